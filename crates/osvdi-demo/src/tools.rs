//! The host tools and files the build uses, where to find them, and which Debian package
//! provides each.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{DemoError, DemoOptions, kernel};

/// A program the build runs.
#[derive(Debug, Clone)]
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) package: &'static str,
    pub(crate) path: PathBuf,
}

/// Every program the build runs, found.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) mkfs_fat: Tool,
    pub(crate) syslinux: Tool,
    pub(crate) mcopy: Tool,
    pub(crate) qemu_img: Tool,
}

/// The files that go into the image, found but not yet read.
#[derive(Debug)]
pub(crate) struct Inputs {
    pub(crate) kernel: PathBuf,
    pub(crate) busybox: PathBuf,
}

/// The time mtools (ours and the one syslinux runs) stamps on the files it writes, in UTC, so
/// that the same inputs give a byte-identical image (2024-01-01).
const SOURCE_DATE_EPOCH: &str = "1704067200";

/// The package behind each kernel and busybox default.
pub(crate) const KERNEL_PACKAGE: &str = "linux-image-amd64";
pub(crate) const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Where to look for tools and default inputs.
#[derive(Debug)]
pub(crate) struct Host {
    /// Directories searched for tools, in order.
    pub(crate) search: Vec<PathBuf>,
    /// Where kernels are installed.
    pub(crate) boot: PathBuf,
    /// Candidate busybox-static installs, in order.
    pub(crate) busybox: Vec<PathBuf>,
}

impl Host {
    /// This machine: `PATH`, then the sbin directories (often missing from the `PATH` of users
    /// other than root); `/boot`; busybox-static's `/bin/busybox` (`/usr/bin/busybox` when /usr
    /// is not merged).
    pub(crate) fn system() -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let sbin = ["/usr/sbin", "/sbin"].map(PathBuf::from);
        Self {
            search: std::env::split_paths(&path).chain(sbin).collect(),
            boot: PathBuf::from(kernel::BOOT_DIR),
            busybox: ["/bin/busybox", "/usr/bin/busybox"]
                .map(PathBuf::from)
                .to_vec(),
        }
    }

    /// The first file called `name` in the search directories.
    pub(crate) fn find_tool(&self, name: &str) -> Option<PathBuf> {
        self.search
            .iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    }

    /// The first busybox candidate that is indeed static (the `busybox` package installs a
    /// dynamically linked one at the same path).
    fn default_busybox(&self) -> Option<PathBuf> {
        self.busybox
            .iter()
            .find(|path| starts_static(path))
            .cloned()
    }
}

/// Whether the file at `path` reads as a static x86-64 executable.
fn starts_static(path: &Path) -> bool {
    let mut head = Vec::new();
    File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .is_ok_and(|_| is_static_x86_64(&head))
}

/// Finds every tool and input, or names all the packages that are missing at once. Paths the
/// caller gives are taken as they are; reading them comes later.
pub(crate) fn resolve(host: &Host, opts: &DemoOptions) -> Result<(Tools, Inputs), DemoError> {
    let mut missing = Vec::new();
    let mut find = |name: &'static str, package: &'static str| {
        let tool = host.find_tool(name).map(|path| Tool {
            name,
            package,
            path,
        });
        if tool.is_none() {
            missing.push(package);
        }
        tool
    };
    let tools = (
        find("mkfs.fat", "dosfstools"),
        find("syslinux", "syslinux"),
        find("mcopy", "mtools"),
        find("qemu-img", "qemu-utils"),
    );
    let kernel = opts
        .kernel
        .clone()
        .or_else(|| kernel::newest_in(&host.boot));
    if kernel.is_none() {
        missing.push(KERNEL_PACKAGE);
    }
    let busybox = opts.busybox.clone().or_else(|| host.default_busybox());
    if busybox.is_none() {
        missing.push(BUSYBOX_PACKAGE);
    }
    match (tools, kernel, busybox) {
        (
            (Some(mkfs_fat), Some(syslinux), Some(mcopy), Some(qemu_img)),
            Some(kernel),
            Some(busybox),
        ) => Ok((
            Tools {
                mkfs_fat,
                syslinux,
                mcopy,
                qemu_img,
            },
            Inputs { kernel, busybox },
        )),
        _ => Err(DemoError::MissingPackages(missing)),
    }
}

/// Whether `elf` (at least the start of an executable) is a 64-bit x86 ELF without a program
/// interpreter, that is one that runs with no libraries in the initramfs.
pub(crate) fn is_static_x86_64(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 62;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        let b = elf.get(at..at + 8)?;
        Some(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    };
    // 64-bit (class 2), little-endian (data 1), executable or position-independent.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") || u16_at(18) != Some(EM_X86_64) {
        return false;
    }
    if !matches!(u16_at(16), Some(2 | 3)) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff + i * usize::from(phentsize);
        match elf.get(at..at + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP,
            None => false,
        }
    })
}

impl Tool {
    /// Runs the tool with no input and fails with its standard error when it fails.
    pub(crate) fn run<I, S>(&self, args: I) -> Result<(), DemoError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .env("MTOOLS_SKIP_CHECK", "1")
            .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        tracing::debug!(command = ?cmd, "running");
        let out = cmd.output().map_err(|source| DemoError::Spawn {
            tool: self.name,
            package: self.package,
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        // Keep the end, where tools say what went wrong; char-boundary safe.
        let tail_start = stderr.char_indices().rev().nth(499).map_or(0, |(i, _)| i);
        Err(DemoError::ToolFailed {
            tool: self.name,
            status: out.status,
            stderr: stderr[tail_start..].to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn busybox_static_is_static_and_ls_is_not() {
        let host = Host::system();
        let busybox = host.default_busybox().expect("busybox-static is installed");
        assert!(is_static_x86_64(&read(&busybox)));
        let ls = host.find_tool("ls").unwrap();
        assert!(!is_static_x86_64(&read(&ls)), "ls is dynamically linked");
    }

    #[test]
    fn non_elf_and_truncated_files_are_refused() {
        assert!(!is_static_x86_64(b"#!/bin/sh\n"));
        assert!(!is_static_x86_64(b""));
        let busybox = read(&Host::system().default_busybox().unwrap());
        assert!(is_static_x86_64(&busybox));
        assert!(!is_static_x86_64(&busybox[..0x30]), "no program headers");
        let mut i386 = busybox;
        i386[18] = 3;
        assert!(!is_static_x86_64(&i386));
    }

    #[test]
    fn tools_are_found_in_path_or_sbin() {
        let host = Host::system();
        assert!(
            host.find_tool("mkfs.fat").is_some(),
            "dosfstools installs /sbin/mkfs.fat"
        );
        assert!(host.find_tool("no-such-tool-osvdi").is_none());
    }

    #[test]
    fn a_bare_host_names_every_package() {
        let dir = tempfile::tempdir().unwrap();
        let bare = Host {
            search: vec![dir.path().to_owned()],
            boot: dir.path().to_owned(),
            busybox: vec![dir.path().join("busybox")],
        };
        let err = resolve(&bare, &DemoOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Missing tools; install the Debian packages: dosfstools syslinux mtools qemu-utils \
             linux-image-amd64 busybox-static"
        );
    }

    #[test]
    fn a_dynamic_busybox_counts_as_missing_busybox_static() {
        let host = Host::system();
        let dynamic = Host {
            busybox: vec![host.find_tool("ls").unwrap()],
            ..host
        };
        let err = resolve(&dynamic, &DemoOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Missing tools; install the Debian packages: busybox-static"
        );
    }

    #[test]
    fn given_paths_are_taken_as_they_are() {
        let bare = Host {
            boot: "/nonexistent".into(),
            busybox: Vec::new(),
            ..Host::system()
        };
        let opts = DemoOptions {
            kernel: Some("/some/vmlinuz".into()),
            busybox: Some("/some/busybox".into()),
            ..DemoOptions::default()
        };
        let (tools, inputs) = resolve(&bare, &opts).unwrap();
        assert_eq!(inputs.kernel, Path::new("/some/vmlinuz"));
        assert_eq!(inputs.busybox, Path::new("/some/busybox"));
        assert!(tools.qemu_img.path.ends_with("qemu-img"));
    }

    #[test]
    fn failing_tools_report_their_stderr() {
        let sh = Host::system().find_tool("sh").unwrap();
        let tool = Tool {
            name: "sh",
            package: "dash",
            path: sh,
        };
        tool.run(["-c", "exit 0"]).unwrap();
        let err = tool
            .run(["-c", "echo 'Something broke' >&2; exit 3"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sh failed (exit status: 3): Something broke"
        );
        let absent = Tool {
            path: "/nonexistent/sh".into(),
            ..tool
        };
        let err = absent.run(["-c", "true"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot run sh; install the Debian package dash"
        );
    }
}
