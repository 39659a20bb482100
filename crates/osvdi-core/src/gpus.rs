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
