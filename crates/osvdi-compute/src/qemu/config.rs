//! Configuration of the QEMU backend.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ComputeError;

/// Which accelerator desktops run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// KVM when a probe VM boots under it, TCG otherwise.
    #[default]
    Auto,
    /// KVM, and refuse to start the backend when the probe fails.
    Kvm,
    /// Software emulation; no probe.
    Tcg,
}

/// The accelerator actually in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelKind {
    Kvm,
    Tcg,
}

impl AccelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccelKind::Kvm => "kvm",
            AccelKind::Tcg => "tcg",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "kvm" => Some(AccelKind::Kvm),
            "tcg" => Some(AccelKind::Tcg),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// One folder per desktop below this (`DATA/desktops`). Created if missing.
    pub run_dir: PathBuf,
    /// `qemu-system-x86_64` from `PATH` when `None`.
    pub qemu_binary: Option<PathBuf>,
    /// `qemu-img` from `PATH` when `None`.
    pub qemu_img: Option<PathBuf>,
    pub accel: Accel,
    /// TCP ports for SPICE endpoints, bound on 127.0.0.1 only.
    pub spice_ports: RangeInclusive<u16>,
    /// How long the KVM probe VM may take to boot.
    pub kvm_probe_timeout: Duration,
}

impl QemuConfig {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        QemuConfig {
            run_dir: run_dir.into(),
            qemu_binary: None,
            qemu_img: None,
            accel: Accel::Auto,
            spice_ports: 5900..=5999,
            kvm_probe_timeout: Duration::from_secs(10),
        }
    }

    pub(crate) fn qemu(&self) -> PathBuf {
        self.qemu_binary
            .clone()
            .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
    }

    pub(crate) fn qemu_img(&self) -> PathBuf {
        self.qemu_img
            .clone()
            .unwrap_or_else(|| PathBuf::from("qemu-img"))
    }
}

/// Longest socket path below `run_dir`: `<run_dir>/<36-char id>/serial.sock`.
const LONGEST_SOCKET_SUFFIX: usize = 1 + 36 + 1 + "serial.sock".len();
/// `sun_path` holds 108 bytes including the terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// Checks that paths below `run_dir` can be used by QEMU: UTF-8 (they go into QEMU options),
/// no `'` (they are quoted for the shell of QEMU's `exec:` migration), short enough for unix
/// sockets.
pub(crate) fn check_run_dir(run_dir: &Path) -> Result<(), ComputeError> {
    let Some(text) = run_dir.to_str() else {
        return Err(ComputeError::Failed(
            "The desktops folder path must be UTF-8".into(),
        ));
    };
    if !run_dir.is_absolute() {
        return Err(ComputeError::Failed(
            "The desktops folder path must be absolute".into(),
        ));
    }
    if text.contains('\'') || text.contains('\n') {
        return Err(ComputeError::Failed(
            "The desktops folder path cannot contain quotes or newlines".into(),
        ));
    }
    if text.len() + LONGEST_SOCKET_SUFFIX > SUN_PATH_MAX {
        return Err(ComputeError::Failed(format!(
            "The desktops folder path is too long for unix sockets (at most {} bytes)",
            SUN_PATH_MAX - LONGEST_SOCKET_SUFFIX
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_rules() {
        assert!(check_run_dir(Path::new("/var/lib/osvdi/desktops")).is_ok());
        assert!(check_run_dir(Path::new("desktops")).is_err());
        assert!(check_run_dir(Path::new("/srv/it's/desktops")).is_err());
        let long = format!("/{}", "d".repeat(60));
        assert!(check_run_dir(Path::new(&long)).is_err());
    }
}
