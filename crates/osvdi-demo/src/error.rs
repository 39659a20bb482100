//! The error type of the demo image builder.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Why the demo desktop image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Tools or files that Debian packages provide are absent; the list names the packages.
    #[error("Missing tools; install the Debian packages: {}", .0.join(" "))]
    MissingPackages(Vec<&'static str>),

    /// The kernel exists but cannot be read (Debian makes `/boot/vmlinuz-*` root-only).
    #[error("Cannot read the kernel {path}; run as root or pass a readable copy of it")]
    KernelUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The kernel file is not an x86 bzImage.
    #[error("{path} is not an x86 Linux kernel (bzImage); pass a kernel such as /boot/vmlinuz-*")]
    NotAKernel { path: PathBuf },

    /// The busybox binary is dynamically linked, not for x86-64, or not an executable at all.
    #[error("{path} is not a static x86-64 busybox; install busybox-static or pass its path")]
    BusyboxNotStatic { path: PathBuf },

    /// Reading an input file failed.
    #[error("Cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Writing the output or a scratch file failed.
    #[error("Cannot write {path}; check the directory exists and is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A tool could not be started.
    #[error("Cannot run {tool}; install the Debian package {package}")]
    Spawn {
        tool: &'static str,
        package: &'static str,
        #[source]
        source: io::Error,
    },

    /// A tool ran and failed.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        status: ExitStatus,
        stderr: String,
    },

    /// The assembled disk does not end its first sector with 0x55 0xAA.
    #[error(
        "The disk has no boot signature after the syslinux install; check the syslinux package"
    )]
    NoBootSignature,
}
