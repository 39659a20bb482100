//! The bootable disk: a FAT file system with no partition table ("superfloppy") whose boot
//! sector syslinux writes, holding the kernel, the initramfs and `syslinux.cfg`; converted to
//! qcow2 at the end.
//!
//! Every step runs on the image file through mtools (syslinux's installer uses them too), so
//! nothing is mounted and root is not needed. SeaBIOS boots such a disk from any controller.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::DemoError;
use crate::tools::Tools;

/// The kernel command line. The last `console=` becomes `/dev/console` (the serial port);
/// `vga=0x318` asks the BIOS for a 1024x768 VESA mode, which the kernel's built-in vesafb and
/// framebuffer console then use.
pub const CMDLINE: &str = "console=tty0 console=ttyS0,115200 quiet vga=0x318";

/// Names on the FAT file system, as `syslinux.cfg` refers to them.
const KERNEL_NAME: &str = "vmlinuz";
const INITRD_NAME: &str = "initrd.img";

/// A fixed volume serial, so the same inputs give the same image. There is no volume label:
/// mkfs.fat would stamp its directory entry with the current time.
const VOLUME_ID: &str = "05D1DE40";

const MIB: u64 = 1024 * 1024;
/// Room for syslinux's own files (about 180 KiB), the FAT tables and cluster slack.
const MARGIN: u64 = 2 * MIB;

/// The syslinux configuration: boot the kernel at once, without a prompt.
/// `hd`: the bench variant's 1920x1080 mode instead of 1024x768.
pub(crate) fn syslinux_cfg(extra_cmdline: Option<&str>, hd: bool) -> String {
    let mut append = format!("initrd={INITRD_NAME} {CMDLINE}");
    if hd {
        append = append.replace("vga=0x318", crate::workload::VGA_1080P);
    }
    if let Some(extra) = extra_cmdline.map(str::trim).filter(|e| !e.is_empty()) {
        append.push(' ');
        append.push_str(extra);
    }
    format!(
        "DEFAULT demo\nPROMPT 0\nTIMEOUT 0\n\nLABEL demo\n  KERNEL {KERNEL_NAME}\n  APPEND {append}\n"
    )
}

/// The disk size for `payload` bytes of files: whole MiB with [`MARGIN`] to spare.
pub(crate) fn disk_size(payload: u64) -> u64 {
    (payload + MARGIN).div_ceil(MIB) * MIB
}

/// Whether `sector` (the disk's first) ends with the 0x55 0xAA boot signature.
pub(crate) fn has_boot_signature(sector: &[u8]) -> bool {
    sector.get(510..512) == Some(&[0x55, 0xAA][..])
}

/// The files to put on the disk.
#[derive(Debug)]
pub(crate) struct Payload<'a> {
    pub(crate) kernel: &'a Path,
    pub(crate) initrd: &'a Path,
    pub(crate) config: &'a Path,
}

/// Makes the raw disk at `raw` (which must not exist) of `size` bytes, a multiple of 1 KiB.
pub(crate) fn assemble(
    tools: &Tools,
    raw: &Path,
    size: u64,
    files: &Payload<'_>,
) -> Result<(), DemoError> {
    let kib = (size / 1024).to_string();
    tools.mkfs_fat.run([
        "-C".as_ref(),
        raw.as_os_str(),
        kib.as_ref(),
        "-i".as_ref(),
        VOLUME_ID.as_ref(),
    ])?;
    // Writes the boot sector and ldlinux.sys/ldlinux.c32 (both built into the installer).
    tools
        .syslinux
        .run(["--install".as_ref(), raw.as_os_str()])?;
    for (from, name) in [
        (files.kernel, KERNEL_NAME),
        (files.initrd, INITRD_NAME),
        (files.config, "syslinux.cfg"),
    ] {
        let to = format!("::{name}");
        tools.mcopy.run([
            "-i".as_ref(),
            raw.as_os_str(),
            "-D".as_ref(),
            "o".as_ref(),
            from.as_os_str(),
            to.as_ref(),
        ])?;
    }
    let mut sector = [0u8; 512];
    File::open(raw)
        .and_then(|mut f| f.read_exact(&mut sector))
        .map_err(|source| DemoError::Read {
            path: raw.to_owned(),
            source,
        })?;
    if !has_boot_signature(&sector) {
        return Err(DemoError::NoBootSignature);
    }
    Ok(())
}

/// Converts the raw disk to qcow2 at `out`, which qemu-img creates or overwrites.
pub(crate) fn convert(tools: &Tools, raw: &Path, out: &Path) -> Result<(), DemoError> {
    tools.qemu_img.run([
        "convert".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "raw".as_ref(),
        "-O".as_ref(),
        "qcow2".as_ref(),
        raw.as_os_str(),
        out.as_os_str(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslinux_boots_the_kernel_at_once_with_both_consoles() {
        let want = "DEFAULT demo\n\
                    PROMPT 0\n\
                    TIMEOUT 0\n\
                    \n\
                    LABEL demo\n\
                    \x20 KERNEL vmlinuz\n\
                    \x20 APPEND initrd=initrd.img console=tty0 console=ttyS0,115200 quiet vga=0x318\n";
        assert_eq!(syslinux_cfg(None, false), want);
        assert_eq!(syslinux_cfg(Some("  "), false), want);
    }

    #[test]
    fn the_serial_port_is_the_last_console() {
        let last = CMDLINE.split(' ').rfind(|a| a.starts_with("console="));
        assert_eq!(last, Some("console=ttyS0,115200"));
    }

    #[test]
    fn extra_arguments_go_last() {
        let cfg = syslinux_cfg(Some("loglevel=7 "), false);
        assert!(cfg.ends_with("vga=0x318 loglevel=7\n"), "{cfg}");
        let cfg = syslinux_cfg(None, true);
        assert!(cfg.ends_with("quiet vga=0x392\n"), "{cfg}");
    }

    #[test]
    fn disk_size_rounds_up_to_mib_with_margin() {
        assert_eq!(disk_size(0), 2 * MIB);
        assert_eq!(disk_size(1), 3 * MIB);
        assert_eq!(disk_size(10 * MIB), 12 * MIB);
        assert_eq!(disk_size(8_247_232 + 2_250_000), 13 * MIB);
    }

    #[test]
    fn boot_signature_is_at_510() {
        let mut sector = [0u8; 512];
        assert!(!has_boot_signature(&sector));
        sector[510] = 0x55;
        sector[511] = 0xAA;
        assert!(has_boot_signature(&sector));
        assert!(!has_boot_signature(&sector[..511]));
    }
}
