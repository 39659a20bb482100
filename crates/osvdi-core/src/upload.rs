//! Image uploads: stream to a partial file while hashing, verify, then publish as a version.
//!
//! The database records the upload as in flight before the first byte is written, so a
//! server killed mid-upload leaves a row and a `.part` file that [`Core::recover`] removes.
//! A version becomes visible only once verified and moved into place.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use osvdi_model::{AuditAction, AuditOutcome, ImageFormat, TemplateId, TemplateVersion};
use osvdi_store::{NewVersion, ReadyVersion, Store, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::images::remove_quietly;
use crate::{Caller, Core, CoreError, Result};

/// What the uploader announced about the bytes, checked once they have all arrived.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadExpectation {
    /// The exact length (e.g. HTTP Content-Length).
    pub length: Option<u64>,
    /// The SHA-256 of the whole file.
    pub sha256: Option<[u8; 32]>,
}

/// An upload in flight: until disarmed, dropping it removes the partial file and forgets the
/// version, even if the request future is dropped half-way.
struct InFlight {
    store: Store,
    version: NewVersion,
    path: PathBuf,
    armed: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        let (store, version) = (self.store.clone(), self.version);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.abort_upload(version).await {
                    tracing::warn!(error = %e, "cannot forget an aborted upload; it is cleaned at next start");
                }
            });
        }
    }
}

fn model_format(f: osvdi_image::ImageFormat) -> ImageFormat {
    match f {
        osvdi_image::ImageFormat::Qcow2 => ImageFormat::Qcow2,
        osvdi_image::ImageFormat::Raw => ImageFormat::Raw,
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

impl Core {
    /// Receives a disk image for a template as a new version. On any failure nothing is kept.
    pub async fn upload_image<S, E>(
        &self,
        caller: &Caller,
        id: TemplateId,
        expect: UploadExpectation,
        body: S,
    ) -> Result<TemplateVersion>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let template = self.authorize_upload(caller, id, expect).await?;
        let object = format!("template:{id}");
        let result = self.receive(caller, &template, expect, body).await;
        match &result {
            Ok(v) => {
                let detail = format!(
                    "version {} ({} bytes, sha256 {})",
                    v.version, v.size_bytes, v.sha256
                );
                self.record(
                    caller,
                    AuditAction::ImageUpload,
                    object,
                    AuditOutcome::Success,
                    detail,
                )
                .await;
            }
            Err(e) => {
                self.record(
                    caller,
                    AuditAction::ImageUpload,
                    object,
                    AuditOutcome::Failed,
                    e.to_string(),
                )
                .await;
            }
        }
        result
    }

    /// Everything about an upload that can be decided before its first byte: the caller's
    /// right to it, the announced size, the server's ability to verify it. Front ends call
    /// this first so that they can answer a refusal before the body arrives.
    pub async fn authorize_upload(
        &self,
        caller: &Caller,
        id: TemplateId,
        expect: UploadExpectation,
    ) -> Result<osvdi_model::Template> {
        let template = self.managed_template(caller, id).await?;
        if self.qemu_img.is_none() {
            return Err(CoreError::Image(osvdi_image::ImageError::Tool {
                detail: "qemu-img is not installed on the server (Debian package qemu-utils)"
                    .into(),
            }));
        }
        let max = self.config.image_limits.max_file_bytes;
        if let Some(len) = expect.length
            && len > max
        {
            return Err(osvdi_image::ImageError::TooLarge { size: len, max }.into());
        }
        Ok(template)
    }

    async fn receive<S, E>(
        &self,
        caller: &Caller,
        template: &osvdi_model::Template,
        expect: UploadExpectation,
        body: S,
    ) -> Result<TemplateVersion>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let limits = self.config.image_limits;
        // Checked by authorize_upload.
        let Some(qemu_img) = self.qemu_img.as_ref() else {
            return Err(CoreError::Internal("qemu-img vanished".into()));
        };
        let version = match self
            .store
            .begin_upload(template.id, caller.who.id, self.now())
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(CoreError::Conflict(
                    "Another upload to this template is in progress".into(),
                ));
            }
            r => r?,
        };
        let path = self.images.incoming_path(template.id, version.version);
        let mut guard = InFlight {
            store: self.store.clone(),
            version,
            path: path.clone(),
            armed: true,
        };

        let (size, digest) = write_body(&path, body, limits.max_file_bytes).await?;
        if let Some(len) = expect.length
            && len != size
        {
            return Err(CoreError::UploadIncomplete(format!(
                "Received {size} bytes but {len} were announced"
            )));
        }
        let sha256 = hex::encode(digest);
        if let Some(want) = expect.sha256
            && want != digest
        {
            return Err(CoreError::UploadIncomplete(format!(
                "The SHA-256 of the received bytes ({sha256}) differs from the one announced ({})",
                hex::encode(want)
            )));
        }

        let info = qemu_img.inspect(&path, &limits).await?;
        if info.virtual_size > template.spec.disk_bytes() {
            return Err(CoreError::Invalid(format!(
                "The image's virtual disk ({}) is larger than the template's disk_gb ({} GiB); \
                 raise disk_gb or shrink the image",
                gib(info.virtual_size),
                template.spec.disk_gb
            )));
        }
        let format = model_format(info.format);
        let final_path = self
            .images
            .version_path(template.id, version.version, format);
        let dir = final_path.parent().map(PathBuf::from).unwrap_or_default();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(CoreError::io("creating the template's image folder"))?;
        tokio::fs::rename(&path, &final_path)
            .await
            .map_err(CoreError::io("moving the verified image"))?;
        sync_dir(&dir).await;
        let ready = ReadyVersion {
            format,
            size_bytes: size,
            virtual_size: info.virtual_size,
            sha256,
        };
        if let Err(e) = self.store.finish_upload(version, &ready, self.now()).await {
            remove_quietly(&final_path).await;
            return Err(e.into());
        }
        guard.armed = false;
        tracing::info!(template = %template.id, version = version.version, size, %format, "image version ready");
        self.publish_image(osvdi_compute::PublishedImage {
            template: template.id,
            version: version.version,
            path: final_path,
            format,
            os: template.spec.os.clone(),
        });
        Ok(self.store.version(template.id, version.version).await?)
    }
}

/// Streams the body into a new file at `path`, returning its length and SHA-256. Stops with
/// an error as soon as more than `max` bytes arrived or the stream fails.
async fn write_body<S, E>(path: &std::path::Path, body: S, max: u64) -> Result<(u64, [u8; 32])>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(CoreError::io("creating the incoming image folder"))?;
    }
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(CoreError::io("creating the upload file"))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| CoreError::UploadIncomplete(format!("The upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(osvdi_image::ImageError::TooLarge { size, max }.into());
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(CoreError::io("writing the upload file"))?;
    }
    out.flush()
        .await
        .map_err(CoreError::io("writing the upload file"))?;
    out.get_ref()
        .sync_all()
        .await
        .map_err(CoreError::io("writing the upload file"))?;
    Ok((size, hasher.finalize().into()))
}

/// Makes a rename durable. Failure only weakens durability, so it is logged.
async fn sync_dir(dir: &std::path::Path) {
    match tokio::fs::File::open(dir).await {
        Ok(f) => {
            if let Err(e) = f.sync_all().await {
                tracing::debug!(error = %e, "cannot sync image folder");
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot open image folder to sync"),
    }
}

impl Core {
    /// Hands a ready version to the backend in the background (a cloud copies it to its image
    /// service); a failure is logged, and the first launch of the version tries again.
    fn publish_image(&self, image: osvdi_compute::PublishedImage) {
        let Some(compute) = self.compute.clone() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = compute.publish_image(&image).await {
                tracing::warn!(template = %image.template, version = image.version, error = %e,
                    "cannot publish the image to the compute backend; the first launch tries again");
            }
        });
    }
}
