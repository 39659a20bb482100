//! mdev/vGPU inventory: which GPUs offer mediated devices (Intel GVT-g, NVIDIA vGPU), their
//! types and instances, and creating and removing instances, all through sysfs.
//!
//! The kernel's interface (Documentation/driver-api/vfio-mediated-device.rst):
//!
//! ```text
//! /sys/class/mdev_bus/<parent>           -> ../../devices/pci.../<parent>
//! <parent>/mdev_supported_types/<type>/  name, description, device_api, available_instances,
//!                                        create (write a UUID), devices/<uuid> -> ../../../<uuid>
//! <parent>/<uuid>/                       remove (write 1), mdev_type -> ../mdev_supported_types/<type>
//! /sys/bus/mdev/devices/<uuid>           -> ../../../devices/pci.../<parent>/<uuid>
//! ```
//!
//! [`MdevInventory`] takes the sysfs root as a parameter so that tests run against fixture
//! trees (`tests/fixtures/sysfs-*`). The model and the decisions on it (`model.rs`) do no IO;
//! `sysfs.rs` reads and writes. Calls block on file IO (sysfs answers at once): async callers
//! wrap them in `spawn_blocking`.

mod model;
mod sysfs;

/// The kernel's reactions to mdev writes, simulated over a fixture tree (tests only).
#[cfg(any(all(test, unix), feature = "testing"))]
pub mod fake;
#[cfg(all(test, unix))]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

pub use model::{Inventory, MdevInstance, MdevType, PhysicalGpu, Vendor};

/// Why an mdev operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MdevError {
    #[error("Cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("The kernel refused the write to {path}; see dmesg")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Unexpected value {value:?} in {path}")]
    Parse { path: PathBuf, value: String },
    #[error("No mdev-capable GPU {0}; see the inventory for the GPUs there are")]
    UnknownParent(String),
    #[error("{parent} has no mdev type {type_id}; see the inventory for its types")]
    UnknownType { parent: String, type_id: String },
    #[error("No free {type_id} instance on {parent}")]
    NoFreeInstance { parent: String, type_id: String },
    #[error(
        "{parent} runs {running}; it can host only {running} until its {count} instance(s) are removed"
    )]
    TypeConflict {
        parent: String,
        running: String,
        count: usize,
    },
    #[error("No GPU can host another {0} instance; free one or choose another type")]
    NoCapacity(String),
    #[error("The kernel took {uuid} but no instance appeared at {path}; see dmesg")]
    NotCreated { uuid: Uuid, path: PathBuf },
    #[error("No mdev instance {0}; nothing to remove")]
    UnknownInstance(Uuid),
    #[error("Instance {0} is still there after remove; stop the VM that uses it first")]
    NotRemoved(Uuid),
}

/// A write to sysfs that [`MdevInventory`] just made, passed to its write hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteEvent {
    /// `uuid` was written to `<parent>/mdev_supported_types/<type_id>/create`.
    Create {
        parent: String,
        type_id: String,
        uuid: Uuid,
    },
    /// `1` was written to `bus/mdev/devices/<uuid>/remove`.
    Remove { uuid: Uuid },
}

/// Called after each write with what was written; its error stands for the kernel refusing
/// the write. Lets tests play the kernel over a fixture tree of plain files; production sets
/// none, since the real kernel reacts inside the write itself.
pub type WriteHook = Box<dyn Fn(&WriteEvent) -> io::Result<()> + Send + Sync>;

/// The mdev devices under one sysfs root. Every call reads sysfs afresh: the kernel, not this
/// value, holds the state.
pub struct MdevInventory {
    root: PathBuf,
    after_write: Option<WriteHook>,
    /// Serialises this process's check-then-write in [`create`](Self::create) and
    /// [`remove`](Self::remove). Other processes can still race; the kernel has the last word
    /// (its write fails, or the instance does not appear, and the caller gets an error).
    lock: Mutex<()>,
}

impl fmt::Debug for MdevInventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdevInventory")
            .field("root", &self.root)
            .field("after_write", &self.after_write.as_ref().map(|_| "hook"))
            .finish_non_exhaustive()
    }
}

impl MdevInventory {
    /// `sysfs_root` is `/sys` in production.
    pub fn new(sysfs_root: impl Into<PathBuf>) -> Self {
        Self {
            root: sysfs_root.into(),
            after_write: None,
            lock: Mutex::new(()),
        }
    }

    /// Sets the hook called after each write (see [`WriteHook`]).
    pub fn with_write_hook(mut self, hook: WriteHook) -> Self {
        self.after_write = Some(hook);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads every mdev-capable GPU, its types and its instances.
    pub fn scan(&self) -> Result<Inventory, MdevError> {
        sysfs::scan(&self.root)
    }

    /// The GPU where a new `type_id` instance should go (see [`Inventory::find_free`]).
    pub fn find_free(&self, type_id: &str) -> Result<Option<String>, MdevError> {
        Ok(self.scan()?.find_free(type_id).map(|g| g.parent.clone()))
    }

    /// Creates a `type_id` instance on `parent` and returns its UUID. Refuses, writing
    /// nothing, when the GPU does not offer the type, has no free instance of it, or runs
    /// another type and can run only one.
    pub fn create(&self, parent: &str, type_id: &str) -> Result<Uuid, MdevError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner); // guards no data
        let inventory = self.scan()?;
        let gpu = inventory
            .gpu(parent)
            .ok_or_else(|| MdevError::UnknownParent(parent.to_owned()))?;
        // Also what keeps `parent` and `type_id` from naming any other path: both were found
        // in the directory listings.
        gpu.check_create(type_id)?;
        let uuid = Uuid::new_v4();
        let create = sysfs::mdev_bus(&self.root)
            .join(parent)
            .join("mdev_supported_types")
            .join(type_id)
            .join("create");
        self.write(
            &create,
            &format!("{uuid}\n"),
            &WriteEvent::Create {
                parent: parent.to_owned(),
                type_id: type_id.to_owned(),
                uuid,
            },
        )?;
        let instance = sysfs::mdev_devices(&self.root).join(uuid.to_string());
        if !instance.exists() {
            return Err(MdevError::NotCreated {
                uuid,
                path: instance,
            });
        }
        tracing::info!(parent, type_id, %uuid, "mdev instance created");
        Ok(uuid)
    }

    /// Creates a `type_id` instance on the GPU [`find_free`](Self::find_free) picks; returns
    /// the GPU's PCI address and the instance's UUID.
    pub fn allocate(&self, type_id: &str) -> Result<(String, Uuid), MdevError> {
        let parent = self
            .find_free(type_id)?
            .ok_or_else(|| MdevError::NoCapacity(type_id.to_owned()))?;
        let uuid = self.create(&parent, type_id)?;
        Ok((parent, uuid))
    }

    /// Removes the instance `uuid`. The kernel refuses while a VM holds it open.
    pub fn remove(&self, uuid: Uuid) -> Result<(), MdevError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner); // guards no data
        let instance = sysfs::mdev_devices(&self.root).join(uuid.to_string());
        if instance.symlink_metadata().is_err() {
            return Err(MdevError::UnknownInstance(uuid));
        }
        self.write(
            &instance.join("remove"),
            "1\n",
            &WriteEvent::Remove { uuid },
        )?;
        if instance.symlink_metadata().is_ok() {
            return Err(MdevError::NotRemoved(uuid));
        }
        tracing::info!(%uuid, "mdev instance removed");
        Ok(())
    }

    fn write(&self, path: &Path, value: &str, event: &WriteEvent) -> Result<(), MdevError> {
        sysfs::write_attr(path, value)?;
        match &self.after_write {
            Some(hook) => hook(event).map_err(|source| MdevError::Write {
                path: path.to_owned(),
                source,
            }),
            None => Ok(()),
        }
    }
}
