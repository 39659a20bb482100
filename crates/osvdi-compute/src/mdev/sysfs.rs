//! Reading and writing the kernel's mdev files under a sysfs root (`/sys`, or a fixture tree).

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::MdevError;
use super::model::{
    Inventory, MdevInstance, MdevType, PhysicalGpu, Vendor, parse_count, parse_pci_id,
};

/// `<root>/class/mdev_bus`: one link per parent device.
pub(super) fn mdev_bus(root: &Path) -> PathBuf {
    root.join("class/mdev_bus")
}

/// `<root>/bus/mdev/devices`: one link per instance, named by its UUID.
pub(super) fn mdev_devices(root: &Path) -> PathBuf {
    root.join("bus/mdev/devices")
}

/// Reads the whole inventory. A root without `class/mdev_bus` (no mdev driver loaded) gives an
/// empty inventory.
pub(super) fn scan(root: &Path) -> Result<Inventory, MdevError> {
    let mut gpus = Vec::new();
    // Canonical parent folder -> index in `gpus`, to attach instances to their GPU.
    let mut by_dir = HashMap::new();
    for (parent, link) in entries(&mdev_bus(root))? {
        let dir = fs::canonicalize(&link).map_err(|source| MdevError::Read {
            path: link.clone(),
            source,
        })?;
        let Some(vendor) = read_optional(&dir.join("vendor"))? else {
            // Not a PCI device (vfio-ccw, vfio-ap, the mtty sample): not a GPU.
            tracing::debug!(parent, "mdev parent without a PCI vendor id skipped");
            continue;
        };
        let vendor = Vendor::from_pci_id(parse_id(&dir.join("vendor"), &vendor)?);
        let device = parse_id(&dir.join("device"), &read(&dir.join("device"))?)?;
        let types = read_types(&dir.join("mdev_supported_types"))?;
        by_dir.insert(dir, gpus.len());
        gpus.push(PhysicalGpu {
            parent,
            vendor,
            device,
            single_type: vendor.single_type(),
            types,
            instances: Vec::new(),
        });
    }
    for (name, link) in entries(&mdev_devices(root))? {
        let Ok(uuid) = Uuid::parse_str(&name) else {
            tracing::warn!(name, "entry in bus/mdev/devices is not a UUID; skipped");
            continue;
        };
        let dir = fs::canonicalize(&link).map_err(|source| MdevError::Read {
            path: link.clone(),
            source,
        })?;
        let Some(&index) = dir.parent().and_then(|p| by_dir.get(p)) else {
            continue; // An instance of a parent skipped above.
        };
        let type_link = link.join("mdev_type");
        let target = fs::read_link(&type_link).map_err(|source| MdevError::Read {
            path: type_link.clone(),
            source,
        })?;
        let Some(type_id) = target.file_name().and_then(|n| n.to_str()) else {
            return Err(MdevError::Parse {
                path: type_link,
                value: target.display().to_string(),
            });
        };
        gpus[index].instances.push(MdevInstance {
            uuid,
            type_id: type_id.to_owned(),
        });
    }
    for gpu in &mut gpus {
        gpu.instances.sort_by_key(|i| i.uuid);
    }
    Ok(Inventory { gpus })
}

fn read_types(dir: &Path) -> Result<Vec<MdevType>, MdevError> {
    let mut types = Vec::new();
    for (id, path) in entries(dir)? {
        let available = path.join("available_instances");
        let text = read(&available)?;
        let available_instances =
            parse_count(&text).ok_or_else(|| parse_error(&available, &text))?;
        types.push(MdevType {
            name: read_optional(&path.join("name"))?
                .map_or_else(|| id.clone(), |n| n.trim().to_owned()),
            description: read_optional(&path.join("description"))?
                .map(|d| d.trim_end().to_owned())
                .unwrap_or_default(),
            device_api: read(&path.join("device_api"))?.trim().to_owned(),
            available_instances,
            id,
        });
    }
    Ok(types)
}

/// A folder's entries as (name, path), sorted by name; a missing folder has none.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, MdevError> {
    let read_dir = match fs::read_dir(dir) {
        Ok(read_dir) => read_dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(MdevError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in read_dir {
        let entry = entry.map_err(|source| MdevError::Read {
            path: dir.to_owned(),
            source,
        })?;
        // sysfs names are ASCII; anything else is not ours.
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<String, MdevError> {
    fs::read_to_string(path).map_err(|source| MdevError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, MdevError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MdevError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_id(path: &Path, text: &str) -> Result<u16, MdevError> {
    parse_pci_id(text).ok_or_else(|| parse_error(path, text))
}

fn parse_error(path: &Path, text: &str) -> MdevError {
    MdevError::Parse {
        path: path.to_owned(),
        value: text.trim().to_owned(),
    }
}

/// Writes `value` to an existing sysfs attribute, as `echo value > path` does. Never creates
/// the file: a missing attribute is an error, not something to make up.
pub(super) fn write_attr(path: &Path, value: &str) -> Result<(), MdevError> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| MdevError::Write {
            path: path.to_owned(),
            source,
        })
}
