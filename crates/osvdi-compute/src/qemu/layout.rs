//! A desktop's folder: file names, the `desktop.json` record (a serde DTO converted by hand to
//! and from [`DesktopSpec`]) and the small marker files that let state survive a restart.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use osvdi_model::{DesktopId, ImageFormat};
use serde::{Deserialize, Serialize};

use super::config::AccelKind;
use crate::{ComputeError, DesktopSpec, ReadyProbe};

/// Paths of one desktop's files, all absolute.
#[derive(Debug, Clone)]
pub(crate) struct DesktopDir {
    pub id: DesktopId,
    pub root: PathBuf,
}

impl DesktopDir {
    pub fn new(run_dir: &Path, id: DesktopId) -> Self {
        DesktopDir {
            id,
            root: run_dir.join(id.to_string()),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    /// The copy-on-write overlay over the template image.
    pub fn disk(&self) -> PathBuf {
        self.file("disk.qcow2")
    }
    /// The [`DesktopRecord`].
    pub fn record(&self) -> PathBuf {
        self.file("desktop.json")
    }
    /// How the last process was launched ([`LaunchRecord`]): a resume must match it.
    pub fn launch(&self) -> PathBuf {
        self.file("launch.json")
    }
    pub fn qmp(&self) -> PathBuf {
        self.file("qmp.sock")
    }
    pub fn vnc(&self) -> PathBuf {
        self.file("vnc.sock")
    }
    pub fn serial_sock(&self) -> PathBuf {
        self.file("serial.sock")
    }
    /// Everything the guest wrote to its first serial port since its last fresh boot.
    pub fn serial_log(&self) -> PathBuf {
        self.file("serial.log")
    }
    /// Written by QEMU; removed by QEMU on a clean exit and by us after a stop. Present with
    /// no process behind it: the desktop crashed.
    pub fn pid(&self) -> PathBuf {
        self.file("qemu.pid")
    }
    /// The saved state of a suspended desktop.
    pub fn state(&self) -> PathBuf {
        self.file("state.bin")
    }
    /// The state being written; never valid on its own.
    pub fn state_tmp(&self) -> PathBuf {
        self.file("state.bin.tmp")
    }
    /// QEMU's messages (`-D`, and its standard error once daemonized).
    pub fn qemu_log(&self) -> PathBuf {
        self.file("qemu.log")
    }
    /// Present once the ready probe was satisfied in the current boot.
    pub fn ready(&self) -> PathBuf {
        self.file("ready")
    }

    pub fn path_str(path: &Path) -> &str {
        // check_run_dir made sure the run folder is UTF-8, and ids and file names are ASCII.
        path.to_str().expect("desktop paths are UTF-8")
    }
}

/// `desktop.json`: the spec, plus what was attached to the desktop later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DesktopRecord {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    pub image: PathBuf,
    pub image_format: String,
    pub vgpu_type: Option<String>,
    /// The mdev device given to QEMU (`/sys/bus/mdev/devices/<uuid>`), once one is assigned.
    #[serde(default)]
    pub vgpu_device: Option<PathBuf>,
    pub spice: bool,
    pub ready: ReadyRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ReadyRecord {
    SerialMarker { marker: String },
    After { millis: u64 },
}

impl DesktopRecord {
    pub fn from_spec(spec: &DesktopSpec) -> Self {
        DesktopRecord {
            id: spec.id.to_string(),
            name: spec.name.clone(),
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            disk_gb: spec.disk_gb,
            image: spec.image.clone(),
            image_format: spec.image_format.as_str().to_owned(),
            vgpu_type: spec.vgpu_type.clone(),
            vgpu_device: spec.vgpu_device.clone(),
            spice: spec.spice,
            ready: match &spec.ready {
                ReadyProbe::SerialMarker(marker) => ReadyRecord::SerialMarker {
                    marker: marker.clone(),
                },
                ReadyProbe::After(d) => ReadyRecord::After {
                    millis: d.as_millis() as u64,
                },
            },
        }
    }

    pub fn to_spec(&self) -> Result<DesktopSpec, String> {
        Ok(DesktopSpec {
            id: self.id.parse().map_err(|e| format!("{e}"))?,
            name: self.name.clone(),
            vcpus: self.vcpus,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
            image: self.image.clone(),
            image_format: self
                .image_format
                .parse::<ImageFormat>()
                .map_err(|e| format!("{e}"))?,
            vgpu_type: self.vgpu_type.clone(),
            vgpu_device: self.vgpu_device.clone(),
            spice: self.spice,
            ready: self.ready_probe(),
        })
    }

    pub fn ready_probe(&self) -> ReadyProbe {
        match &self.ready {
            ReadyRecord::SerialMarker { marker } => ReadyProbe::SerialMarker(marker.clone()),
            ReadyRecord::After { millis } => ReadyProbe::After(Duration::from_millis(*millis)),
        }
    }

    /// The name QEMU shows ("osvdi-<id>" when the spec has none).
    pub fn display_name(&self) -> String {
        if self.name.trim().is_empty() {
            format!("osvdi-{}", self.id)
        } else {
            self.name.clone()
        }
    }

    pub fn read(dir: &DesktopDir) -> Result<Self, ComputeError> {
        let bytes = fs::read(dir.record()).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ComputeError::NotFound(dir.id),
            _ => io_error("Reading desktop.json", e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ComputeError::Failed(format!(
                "Desktop {} has a damaged desktop.json: {e}",
                dir.id
            ))
        })
    }

    pub fn write(&self, dir: &DesktopDir) -> Result<(), ComputeError> {
        // Serialising a struct of strings and numbers cannot fail.
        let bytes = serde_json::to_vec_pretty(self).expect("record serialises");
        write_atomic(&dir.record(), &bytes).map_err(|e| io_error("Writing desktop.json", e))
    }
}

/// `launch.json`: what a resumed process must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LaunchRecord {
    pub accel: String,
}

impl LaunchRecord {
    pub fn read(dir: &DesktopDir) -> Option<AccelKind> {
        let bytes = fs::read(dir.launch()).ok()?;
        let record: LaunchRecord = serde_json::from_slice(&bytes).ok()?;
        AccelKind::parse(&record.accel)
    }

    pub fn write(dir: &DesktopDir, accel: AccelKind) -> Result<(), ComputeError> {
        let record = LaunchRecord {
            accel: accel.as_str().to_owned(),
        };
        // A struct of one string always serialises.
        let bytes = serde_json::to_vec(&record).expect("record serialises");
        write_atomic(&dir.launch(), &bytes).map_err(|e| io_error("Writing launch.json", e))
    }
}

pub(crate) fn io_error(context: &str, source: io::Error) -> ComputeError {
    ComputeError::Io {
        context: context.to_owned(),
        source,
    }
}

/// Writes through a temporary file, fsyncs and renames: readers see the old or the new bytes.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp-write");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Makes a rename or a removal in `path`'s folder durable.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Removes a file; a missing file is fine.
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Reads `qemu.pid`.
pub(crate) fn read_pid(dir: &DesktopDir) -> Option<u32> {
    fs::read_to_string(dir.pid()).ok()?.trim().parse().ok()
}

/// The last lines of `qemu.log`, for error messages ("" when there are none).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let spec = DesktopSpec {
            id: DesktopId::random(),
            name: String::new(),
            vcpus: 2,
            memory_mb: 2048,
            disk_gb: 20,
            image: "/data/images/t.qcow2".into(),
            image_format: ImageFormat::Qcow2,
            vgpu_type: Some("nvidia-35".into()),
            vgpu_device: None,
            spice: true,
            ready: ReadyProbe::After(Duration::from_secs(30)),
        };
        let record = DesktopRecord::from_spec(&spec);
        let json = serde_json::to_string(&record).unwrap();
        let back: DesktopRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_spec().unwrap(), spec);
        assert_eq!(back.display_name(), format!("osvdi-{}", spec.id));
    }
}
