//! The host's mediated GPUs (mdev/vGPU), for admins.

use std::sync::Arc;

use osvdi_compute::mdev::{Inventory, MdevInventory};

use crate::{Caller, Core, CoreError, Result};

impl Core {
    /// Reads the mdev inventory of the sysfs root the core was given (`/sys` in production).
    pub async fn gpu_inventory(&self, caller: &Caller) -> Result<Inventory> {
        if !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Only admins see the GPU inventory".into(),
            ));
        }
        let inventory: Arc<MdevInventory> = Arc::clone(&self.mdev);
        tokio::task::spawn_blocking(move || inventory.scan())
            .await
            .map_err(|e| CoreError::Internal(format!("inventory task failed: {e}")))?
            .map_err(|e| CoreError::Internal(format!("cannot read the mdev inventory: {e}")))
    }
}

impl Core {
    /// Hands a desktop an mdev instance of `mdev_type` (type affinity first, see
    /// `MdevInventory::allocate`), records it, and returns the device path for QEMU.
    pub(crate) async fn allocate_vgpu(
        &self,
        desktop: osvdi_model::DesktopId,
        mdev_type: &str,
    ) -> Result<std::path::PathBuf> {
        let inventory = Arc::clone(&self.mdev);
        let ty = mdev_type.to_owned();
        let (_parent, uuid) = tokio::task::spawn_blocking(move || inventory.allocate(&ty))
            .await
            .map_err(|e| CoreError::Internal(format!("vGPU task failed: {e}")))?
            .map_err(|e| CoreError::Conflict(format!("No vGPU for this desktop now: {e}")))?;
        self.store
            .set_vgpu_instance(desktop, Some(&uuid.to_string()))
            .await?;
        tracing::info!(%desktop, %uuid, mdev_type, "vGPU instance handed out");
        Ok(self
            .mdev
            .root()
            .join("bus/mdev/devices")
            .join(uuid.to_string()))
    }

    /// Gives a desktop's mdev instance back, if it holds one. Failures are logged: the
    /// reconciler's next look at the inventory shows what is left.
    pub(crate) async fn release_vgpu(&self, d: &osvdi_model::Desktop) {
        let Some(uuid) = d
            .vgpu_instance
            .as_deref()
            .and_then(|u| u.parse::<uuid::Uuid>().ok())
        else {
            return;
        };
        let inventory = Arc::clone(&self.mdev);
        match tokio::task::spawn_blocking(move || inventory.remove(uuid)).await {
            Ok(Ok(())) | Ok(Err(osvdi_compute::mdev::MdevError::UnknownInstance { .. })) => {
                let _ = self.store.set_vgpu_instance(d.id, None).await;
                tracing::info!(desktop = %d.id, %uuid, "vGPU instance released");
            }
            Ok(Err(e)) => {
                tracing::warn!(desktop = %d.id, %uuid, error = %e, "cannot release a vGPU instance");
            }
            Err(e) => tracing::warn!(desktop = %d.id, error = %e, "vGPU release task failed"),
        }
    }

    /// Replaces the mdev inventory (tests: a fixture tree with a simulated kernel).
    pub fn with_mdev(mut self, inventory: MdevInventory) -> Self {
        self.mdev = Arc::new(inventory);
        self
    }
}
