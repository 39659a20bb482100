//! Builds the osvdi demo desktop: a qcow2 disk that boots, in seconds even under TCG, a Debian
//! kernel and a busybox initramfs to a shell on the screen and one on the serial port.
//!
//! [`build`] uses only files that Debian packages install, and downloads nothing:
//! 1. the kernel (the newest `/boot/vmlinuz-*`, from linux-image-amd64) and a static busybox
//!    (busybox-static) are found by `tools::resolve` and checked;
//! 2. `initramfs::build` writes a newc cpio archive in memory, with our own writer (no
//!    `cpio` tool, and device nodes without root);
//! 3. `disk::assemble` makes a FAT "superfloppy" with `mkfs.fat`, installs syslinux on it
//!    and copies the files in with `mcopy`, never mounting anything;
//! 4. `disk::convert` turns it into qcow2 with `qemu-img`.
//!
//! The guest prints [`READY_MARKER`] on its serial port when both shells are up; its screen
//! is a 1024x768 VESA framebuffer console showing [`BANNER`]. Run it with a VGA device that
//! has a VESA BIOS (`-vga std`) and a serial port.
//!
//! The same inputs give a byte-identical image: file times are fixed (`SOURCE_DATE_EPOCH`),
//! the cpio archive carries none, and the FAT volume serial is constant.
//!
//! **Architecture Invariant:** nothing here needs the network or root.

mod cpio;
mod disk;
mod error;
mod initramfs;
mod kernel;
mod tools;
pub mod workload;

use std::fs::{self, Permissions};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use disk::CMDLINE;
pub use error::DemoError;
pub use initramfs::{BANNER, HOSTNAME, READY_MARKER};

use tools::{Host, Inputs, Tools};

/// What to build the demo from; the defaults use the host's Debian packages.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// The x86 kernel (bzImage) to boot; the newest `/boot/vmlinuz-*` when `None`.
    pub kernel: Option<PathBuf>,
    /// A static x86-64 busybox; busybox-static's `/bin/busybox` when `None`.
    pub busybox: Option<PathBuf>,
    /// Kernel arguments appended to [`CMDLINE`].
    pub extra_cmdline: Option<String>,
    /// Build the bench variant ([`workload`]): 1920x1080 and `/bin/osvdi-workload`. Needs
    /// the host's C compiler.
    pub workload: bool,
}

/// The image [`build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoImage {
    /// The qcow2 file.
    pub path: PathBuf,
    /// The disk size the guest sees, in bytes.
    pub virtual_size: u64,
    /// The kernel release, such as `6.1.0-56-amd64`.
    pub kernel_version: String,
}

/// Checks that the tools and files the default build needs are installed and readable,
/// naming the missing Debian packages.
pub fn check_prerequisites() -> Result<(), DemoError> {
    let (_, inputs) = tools::resolve(&Host::system(), &DemoOptions::default())?;
    kernel::Kernel::open(&inputs.kernel)?;
    Ok(())
}

/// Builds the demo desktop image at `out` (replaced if it exists). Blocking, and quick (well
/// under a second of work plus the tools' start-up); call it from `spawn_blocking` in async code.
pub fn build(out: &Path, opts: &DemoOptions) -> Result<DemoImage, DemoError> {
    let started = Instant::now();
    let (tools, inputs) = tools::resolve(&Host::system(), opts)?;
    let kernel = kernel::Kernel::open(&inputs.kernel)?;
    tracing::info!(
        kernel = %kernel.path.display(),
        version = %kernel.version,
        busybox = %inputs.busybox.display(),
        "building the demo desktop image"
    );

    let work = tempfile::Builder::new()
        .prefix("osvdi-demo-")
        .tempdir()
        .map_err(|source| DemoError::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let program = if opts.workload {
        let cc = workload::find_compiler(&Host::system())?;
        Some(workload::compile(&cc, work.path())?)
    } else {
        None
    };
    let initrd = initramfs::build(&read_busybox(&inputs)?, program.as_deref());
    let initrd_path = work.path().join("initrd.img");
    write(&initrd_path, &initrd)?;
    let config_path = work.path().join("syslinux.cfg");
    write(
        &config_path,
        disk::syslinux_cfg(opts.extra_cmdline.as_deref(), opts.workload).as_bytes(),
    )?;

    let kernel_len = fs::metadata(&kernel.path)
        .map_err(|source| DemoError::KernelUnreadable {
            path: kernel.path.clone(),
            source,
        })?
        .len();
    let config_len = 1024;
    let size = disk::disk_size(kernel_len + initrd.len() as u64 + config_len);
    let raw = work.path().join("disk.img");
    let payload = disk::Payload {
        kernel: &kernel.path,
        initrd: &initrd_path,
        config: &config_path,
    };
    disk::assemble(&tools, &raw, size, &payload)?;

    convert_into_place(&tools, &raw, out)?;
    tracing::info!(
        path = %out.display(),
        virtual_size = size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "built the demo desktop image"
    );
    Ok(DemoImage {
        path: out.to_owned(),
        virtual_size: size,
        kernel_version: kernel.version,
    })
}

/// Reads the busybox binary, refusing anything that would not run alone in the initramfs.
fn read_busybox(inputs: &Inputs) -> Result<Vec<u8>, DemoError> {
    let path = &inputs.busybox;
    let mut data = Vec::new();
    fs::File::open(path)
        // One byte over the limit is enough to tell it is too large.
        .and_then(|f| f.take(cpio::MAX_FILE as u64 + 1).read_to_end(&mut data))
        .map_err(|source| DemoError::Read {
            path: path.clone(),
            source,
        })?;
    if data.len() > cpio::MAX_FILE || !tools::is_static_x86_64(&data) {
        return Err(DemoError::BusyboxNotStatic { path: path.clone() });
    }
    Ok(data)
}

/// Converts into a temporary file beside `out`, then renames it, so `out` is never half written.
fn convert_into_place(tools: &Tools, raw: &Path, out: &Path) -> Result<(), DemoError> {
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let write_err = |source| DemoError::Write {
        path: out.to_owned(),
        source,
    };
    let part = tempfile::Builder::new()
        .prefix(".osvdi-demo-")
        .suffix(".qcow2.part")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(write_err)?;
    disk::convert(tools, raw, part.path())?;
    part.persist(out).map_err(|e| write_err(e.error))?;
    Ok(())
}

fn write(path: &Path, data: &[u8]) -> Result<(), DemoError> {
    fs::write(path, data).map_err(|source| DemoError::Write {
        path: path.to_owned(),
        source,
    })
}
