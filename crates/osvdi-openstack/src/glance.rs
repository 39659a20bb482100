//! Glance v2: template versions as images, uploaded streamed with a SHA-512 checked against
//! Glance's own `os_hash_value`, found again by their `osvdi_*` properties.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha512};

use crate::OsError;
use crate::client::{Service, Session};

/// An image as Glance lists it (the fields osvdi reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
    #[serde(default)]
    pub osvdi_template_id: Option<String>,
    #[serde(default)]
    pub osvdi_template_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ImageList {
    images: Vec<Image>,
}

/// What an uploaded image says about itself.
#[derive(Debug, Clone)]
pub struct ImageProperties {
    pub template_id: String,
    pub version: u32,
    /// `qcow2` or `raw`.
    pub disk_format: String,
    /// `linux` or `windows` (Nova's `os_type`).
    pub os_type: String,
    /// Nova's `hw_video_model` (`virtio`, `qxl`, `vga`, `none`).
    pub hw_video_model: String,
}

impl ImageProperties {
    pub fn name(&self) -> String {
        format!("osvdi-{}-v{}", self.template_id, self.version)
    }
}

/// The osvdi image of a template version, if Glance has one.
pub async fn find(s: &Session, template_id: &str, version: u32) -> Result<Option<Image>, OsError> {
    // Glance filters on extra properties; the check below keeps us right where it does not.
    let path = format!(
        "/v2/images?osvdi_template_id={template_id}&osvdi_template_version={version}&limit=100"
    );
    let list: ImageList = s.json(Service::Image, Method::GET, &path, None).await?;
    let v = version.to_string();
    Ok(list.images.into_iter().find(|i| {
        i.osvdi_template_id.as_deref() == Some(template_id)
            && i.osvdi_template_version.as_deref() == Some(v.as_str())
            && i.status != "deleted"
    }))
}

pub async fn get(s: &Session, id: &str) -> Result<Image, OsError> {
    s.json(
        Service::Image,
        Method::GET,
        &format!("/v2/images/{id}"),
        None,
    )
    .await
}

/// Creates the image record and streams `file` into it; checks Glance's hash against the one
/// computed while sending. A failed upload leaves no image behind.
pub async fn upload(s: &Session, file: &Path, props: &ImageProperties) -> Result<Image, OsError> {
    let body = json!({
        "name": props.name(),
        "disk_format": props.disk_format,
        "container_format": "bare",
        "visibility": "private",
        "os_type": props.os_type,
        "hw_video_model": props.hw_video_model,
        "osvdi_template_id": props.template_id,
        "osvdi_template_version": props.version.to_string(),
    });
    let image: Image = s
        .json(Service::Image, Method::POST, "/v2/images", Some(&body))
        .await?;
    match put_file(s, &image.id, file).await {
        Ok(img) => Ok(img),
        Err(e) => {
            if let Err(d) = delete(s, &image.id).await {
                tracing::warn!(image = %image.id, error = %d, "cannot remove a failed upload from Glance");
            }
            Err(e)
        }
    }
}

async fn put_file(s: &Session, id: &str, file: &Path) -> Result<Image, OsError> {
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| OsError::Io { context, source }
    };
    let hasher = Arc::new(Mutex::new(Sha512::new()));
    // Opened anew for each try (a 401 retries with a new token).
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(io("opening the image"))?;
    let len = opened
        .metadata()
        .await
        .map_err(io("reading the image's size"))?
        .len();
    drop(opened);
    let path = file.to_owned();
    let h = Arc::clone(&hasher);
    let resp = s
        .send(
            Service::Image,
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            |r| {
                let path = path.clone();
                let h = Arc::clone(&h);
                // A fresh hash for each try.
                *h.lock().expect("hash lock") = Sha512::new();
                let stream =
                    futures_util::stream::once(async move { tokio::fs::File::open(path).await })
                        .map(|f| match f {
                            Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 1 << 20)
                                .left_stream(),
                            Err(e) => {
                                futures_util::stream::once(async move { Err(e) }).right_stream()
                            }
                        })
                        .flatten()
                        .map(move |chunk| {
                            if let Ok(bytes) = &chunk {
                                h.lock().expect("hash lock").update(bytes);
                            }
                            chunk
                        });
                r.header("Content-Type", "application/octet-stream")
                    .header("Content-Length", len)
                    .body(reqwest::Body::wrap_stream(stream))
            },
        )
        .await?;
    drop(resp);
    let sent = hex::encode(hasher.lock().expect("hash lock").clone().finalize());
    let image = get(s, id).await?;
    if image.status != "active" {
        return Err(OsError::Failed(format!(
            "Glance holds the image as '{}' after the upload",
            image.status
        )));
    }
    match (
        image.os_hash_algo.as_deref(),
        image.os_hash_value.as_deref(),
    ) {
        (Some("sha512"), Some(v)) if v != sent => Err(OsError::Failed(
            "Glance's checksum of the image differs from the file sent".into(),
        )),
        (Some("sha512"), Some(_)) => Ok(image),
        _ => {
            tracing::warn!(
                image = id,
                "Glance gives no SHA-512; the upload is unchecked"
            );
            Ok(image)
        }
    }
}

/// Deletes an image; a missing one is fine.
pub async fn delete(s: &Session, id: &str) -> Result<(), OsError> {
    match s
        .call(
            Service::Image,
            Method::DELETE,
            &format!("/v2/images/{id}"),
            None,
        )
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

/// Nova's `os_type` for a template's free-text OS.
pub fn os_type(os: &str) -> &'static str {
    if os.to_ascii_lowercase().contains("windows") {
        "windows"
    } else {
        "linux"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_read_back() {
        let img: Image = serde_json::from_str(
            r#"{"id": "i1", "name": "osvdi-t-v2", "status": "active", "os_hash_algo": "sha512",
                "os_hash_value": "ab", "osvdi_template_id": "t", "osvdi_template_version": "2",
                "hw_video_model": "virtio", "visibility": "private", "size": 65536}"#,
        )
        .unwrap();
        assert_eq!(img.osvdi_template_version.as_deref(), Some("2"));
        assert_eq!(os_type("Windows 11"), "windows");
        assert_eq!(os_type("ubuntu-24.04"), "linux");
    }
}
