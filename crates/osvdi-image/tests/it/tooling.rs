//! The qemu-img runner itself: version, timeouts, awkward paths, unreadable inputs.

use std::path::Path;
use std::time::Duration;

use osvdi_image::{ImageError, ImageFormat, QemuImg};
use tempfile::TempDir;

use crate::support::*;

#[tokio::test]
async fn version_is_reported() {
    let v = qemu().version().await.unwrap();
    assert!(v.starts_with("qemu-img version "), "{v}");
}

#[tokio::test]
async fn explicit_path_is_used() {
    let q = QemuImg::locate(Some(Path::new("/usr/bin/qemu-img"))).unwrap();
    assert!(q.version().await.is_ok());
    let err = QemuImg::locate(Some(Path::new("/nonexistent/qemu-img"))).unwrap_err();
    assert!(matches!(err, ImageError::Tool { .. }) && err.to_string().contains("qemu-utils"));
}

#[tokio::test]
async fn timeout_is_a_tool_error() {
    let dir = TempDir::new().unwrap();
    let path = qcow2_with_data(dir.path(), "slow.qcow2");
    let err = qemu()
        .with_timeout(Duration::from_millis(1))
        .inspect(&path, &LIMITS)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Tool { .. }), "{err:?}");
    assert!(!err.is_user_error());
}

#[tokio::test]
async fn paths_that_look_like_options_or_protocols_are_safe() {
    let dir = TempDir::new().unwrap();
    let sub = dir.path().join("nbd:localhost:10809");
    std::fs::create_dir(&sub).unwrap();
    let path = qcow2_with_data(&sub, "-f.qcow2");
    let info = inspect(&path).await.unwrap();
    assert_eq!(info.format, ImageFormat::Qcow2);
}

#[tokio::test]
async fn missing_file_and_directory_are_io_errors() {
    let dir = TempDir::new().unwrap();
    let err = inspect(&dir.path().join("nope.qcow2")).await.unwrap_err();
    assert!(matches!(err, ImageError::Io(_)), "{err:?}");
    assert!(!err.is_user_error());
    let err = inspect(dir.path()).await.unwrap_err();
    assert!(matches!(err, ImageError::Io(_)), "{err:?}");
}
