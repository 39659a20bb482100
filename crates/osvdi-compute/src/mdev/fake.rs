//! The kernel's side of mdev sysfs, played over a fixture tree of plain files for tests: what
//! the mdev core and the vendor driver do when `create` or `remove` is written.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

use super::{WriteEvent, WriteHook};

/// Free graphics memory of a GVT-g GPU, in MB: low (CPU-visible aperture) and high.
#[derive(Debug, Clone, Copy)]
struct GvtPool {
    low: u64,
    high: u64,
}

/// Applies the kernel's reaction to each write. Per vendor, as the drivers do:
/// - GVT-g: every instance takes its type's low and high graphics memory from one pool, and
///   each type's `available_instances` is `min(free low / low size, free high / high size)`;
/// - NVIDIA: the created type loses one, every other type reads 0 while any instance exists,
///   and all come back to `max_instance` when the last one goes;
/// - others: the type's own count goes down and up.
#[derive(Debug)]
pub struct FakeKernel {
    root: PathBuf,
    gvt: Mutex<HashMap<String, GvtPool>>,
}

impl FakeKernel {
    /// Reads the GVT-g pools from the tree as it is now.
    pub fn new(root: &Path) -> Arc<Self> {
        let mut gvt = HashMap::new();
        for entry in fs::read_dir(root.join("class/mdev_bus"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = entry.path();
            if read(&dir.join("vendor")).trim() != "0x8086" {
                continue;
            }
            // The largest amount every type's count accounts for (counts are floored).
            let mut pool = GvtPool { low: 0, high: 0 };
            for (_, type_dir) in types(&dir) {
                let (low, high) = gvt_sizes(&type_dir);
                let n = count(&type_dir);
                pool.low = pool.low.max(n * low);
                pool.high = pool.high.max(n * high);
            }
            gvt.insert(entry.file_name().to_string_lossy().into_owned(), pool);
        }
        Arc::new(Self {
            root: root.to_owned(),
            gvt: Mutex::new(gvt),
        })
    }

    /// A hook for [`super::MdevInventory::with_write_hook`].
    pub fn hook(self: &Arc<Self>) -> WriteHook {
        let kernel = Arc::clone(self);
        Box::new(move |event| kernel.apply(event))
    }

    fn apply(&self, event: &WriteEvent) -> io::Result<()> {
        match event {
            WriteEvent::Create {
                parent,
                type_id,
                uuid,
            } => self.create(parent, type_id, *uuid),
            WriteEvent::Remove { uuid } => self.remove(*uuid),
        }
    }

    fn create(&self, parent: &str, type_id: &str, uuid: Uuid) -> io::Result<()> {
        let dir = fs::canonicalize(self.root.join("class/mdev_bus").join(parent))?;
        let type_dir = dir.join("mdev_supported_types").join(type_id);
        if count(&type_dir) == 0 {
            return Err(io::Error::other("no instance available (EDQUOT)"));
        }
        let instance = dir.join(uuid.to_string());
        fs::create_dir(&instance)?; // fails if it exists, as the kernel's -EEXIST
        fs::write(instance.join("remove"), "")?;
        symlink(
            Path::new("../mdev_supported_types").join(type_id),
            instance.join("mdev_type"),
        )?;
        fs::create_dir_all(type_dir.join("devices"))?;
        symlink(
            Path::new("../../..").join(uuid.to_string()),
            type_dir.join("devices").join(uuid.to_string()),
        )?;
        let bus = self.root.join("bus/mdev/devices");
        fs::create_dir_all(&bus)?;
        let from_root = dir
            .strip_prefix(fs::canonicalize(&self.root)?)
            .map_err(io::Error::other)?;
        symlink(
            Path::new("../../..").join(from_root).join(uuid.to_string()),
            bus.join(uuid.to_string()),
        )?;
        self.account(parent, &dir, type_id, true)
    }

    fn remove(&self, uuid: Uuid) -> io::Result<()> {
        let link = self.root.join("bus/mdev/devices").join(uuid.to_string());
        let instance = fs::canonicalize(&link)?;
        let dir = instance
            .parent()
            .ok_or_else(|| io::Error::other("instance without parent"))?
            .to_owned();
        let type_id = file_name(&fs::read_link(instance.join("mdev_type"))?);
        let parent = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fs::remove_file(
            dir.join("mdev_supported_types")
                .join(&type_id)
                .join("devices")
                .join(uuid.to_string()),
        )?;
        fs::remove_file(&link)?;
        fs::remove_dir_all(&instance)?;
        self.account(&parent, &dir, &type_id, false)
    }

    /// Updates every type's `available_instances` on the GPU in `dir` after an instance of
    /// `type_id` was created (`created`) or removed.
    fn account(&self, parent: &str, dir: &Path, type_id: &str, created: bool) -> io::Result<()> {
        let step = |n: u64| if created { n.saturating_sub(1) } else { n + 1 };
        match read(&dir.join("vendor")).trim() {
            "0x8086" => {
                let mut pools = self.gvt.lock().unwrap_or_else(PoisonError::into_inner);
                let pool = pools
                    .get_mut(parent)
                    .ok_or_else(|| io::Error::other("unknown GVT-g GPU"))?;
                let (low, high) = gvt_sizes(&dir.join("mdev_supported_types").join(type_id));
                if created {
                    pool.low = pool.low.saturating_sub(low);
                    pool.high = pool.high.saturating_sub(high);
                } else {
                    pool.low += low;
                    pool.high += high;
                }
                for (_, type_dir) in types(dir) {
                    let (low, high) = gvt_sizes(&type_dir);
                    set_count(&type_dir, (pool.low / low).min(pool.high / high))?;
                }
            }
            "0x10de" => {
                let idle = instances(dir) == 0;
                for (id, type_dir) in types(dir) {
                    let n = if idle {
                        max_instance(&type_dir)
                    } else if id == type_id {
                        step(count(&type_dir))
                    } else {
                        0
                    };
                    set_count(&type_dir, n)?;
                }
            }
            _ => {
                let type_dir = dir.join("mdev_supported_types").join(type_id);
                set_count(&type_dir, step(count(&type_dir)))?;
            }
        }
        Ok(())
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn types(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<_> = fs::read_dir(dir.join("mdev_supported_types"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

/// How many instances the GPU in `dir` has: its subfolders with an `mdev_type` link.
fn instances(dir: &Path) -> usize {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("mdev_type").symlink_metadata().is_ok())
        .count()
}

fn count(type_dir: &Path) -> u64 {
    read(&type_dir.join("available_instances"))
        .trim()
        .parse()
        .unwrap_or(0)
}

fn set_count(type_dir: &Path, n: u64) -> io::Result<()> {
    fs::write(type_dir.join("available_instances"), format!("{n}\n"))
}

/// `max_instance=N` from an NVIDIA description.
fn max_instance(type_dir: &Path) -> u64 {
    let description = read(&type_dir.join("description"));
    description
        .split(", ")
        .find_map(|kv| kv.trim().strip_prefix("max_instance=")?.parse().ok())
        .unwrap_or(0)
}

/// `low_gm_size` and `high_gm_size` in MB from a GVT-g description (1 if unreadable, so that
/// divisions stay defined).
fn gvt_sizes(type_dir: &Path) -> (u64, u64) {
    let description = read(&type_dir.join("description"));
    let size = |key: &str| {
        description
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("MB")?.parse().ok())
            .unwrap_or(1)
    };
    (size("low_gm_size:"), size("high_gm_size:"))
}
