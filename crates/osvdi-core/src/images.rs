//! The image directory: where uploads land while in flight and where verified versions live.
//!
//! ```text
//! DATA/images/incoming/<template>-<version>.part   bytes arriving (removed at start)
//! DATA/images/<template>/<version>.<format>          verified, read-only by convention
//! ```

use std::path::{Path, PathBuf};

use osvdi_model::{ImageFormat, TemplateId, TemplateVersion};

use crate::{CoreError, Result};

#[derive(Debug, Clone)]
pub(crate) struct ImageDir {
    root: PathBuf,
}

impl ImageDir {
    pub(crate) fn new(root: PathBuf) -> Self {
        ImageDir { root }
    }

    pub(crate) fn incoming_dir(&self) -> PathBuf {
        self.root.join("incoming")
    }

    pub(crate) fn incoming_path(&self, t: TemplateId, version: u32) -> PathBuf {
        self.incoming_dir().join(format!("{t}-{version}.part"))
    }

    pub(crate) fn version_path(&self, t: TemplateId, version: u32, format: ImageFormat) -> PathBuf {
        self.root
            .join(t.to_string())
            .join(format!("{version}.{format}"))
    }

    /// Removes every partial upload; returns how many there were.
    pub(crate) async fn clear_incoming(&self) -> Result<usize> {
        let dir = self.incoming_dir();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(CoreError::io("reading the incoming image folder")(e)),
        };
        let mut n = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(CoreError::io("reading the incoming image folder"))?
        {
            remove_quietly(&entry.path()).await;
            n += 1;
        }
        Ok(n)
    }

    pub(crate) async fn remove_version(&self, v: &TemplateVersion) {
        if let Some(f) = v.format {
            remove_quietly(&self.version_path(v.template, v.version, f)).await;
        }
    }

    pub(crate) async fn remove_template_dir(&self, t: TemplateId) {
        // Only succeeds when empty, which it is once all versions are gone.
        let _ = tokio::fs::remove_dir(self.root.join(t.to_string())).await;
    }
}

/// Removes a file, logging (not failing) when that is impossible: leftovers are harmless and
/// are swept at the next start.
pub(crate) async fn remove_quietly(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove file"),
    }
}
