//! qcow2 images: accepted when standalone and sound, refused otherwise.

use std::fs::OpenOptions;
use std::time::{Duration, Instant};

use osvdi_image::{ImageError, ImageFormat, Limits};
use tempfile::TempDir;

use crate::support::*;

/// Offset of the L1 table in a fresh 64 MiB qcow2 made by qemu-img 10 (header, refcount
/// table, refcount block, then L1).
const L1_OFFSET: u64 = 0x30000;

#[tokio::test]
async fn good_qcow2_is_accepted() {
    let dir = TempDir::new().unwrap();
    let path = qcow2_with_data(dir.path(), "good.qcow2");
    let info = inspect(&path).await.unwrap();
    assert_eq!(info.format, ImageFormat::Qcow2);
    assert_eq!(info.virtual_size, 64 * MIB);
    assert_eq!(info.file_size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(info.leaked_clusters, 0);
}

#[tokio::test]
async fn fresh_empty_qcow2_is_accepted() {
    // qemu leaves the last cluster unpadded: image-end-offset lies past the end of the file.
    let dir = TempDir::new().unwrap();
    let path = create(dir.path(), "qcow2", "empty.qcow2", "64M", &[]);
    let info = inspect(&path).await.unwrap();
    assert_eq!(info.virtual_size, 64 * MIB);
}

#[tokio::test]
async fn leaked_clusters_are_accepted_and_counted() {
    let dir = TempDir::new().unwrap();
    let path = qcow2_with_data(dir.path(), "leaky.qcow2");
    // Dropping the only L1 entry orphans the L2 table and 64 data clusters: leaks, no damage.
    poke(&path, L1_OFFSET, &[0; 8]);
    let info = inspect(&path).await.unwrap();
    assert_eq!(info.leaked_clusters, 65);
}

#[tokio::test]
async fn backing_file_is_refused() {
    let dir = TempDir::new().unwrap();
    create(dir.path(), "raw", "base.raw", "64M", &[]);
    let path = create(
        dir.path(),
        "qcow2",
        "overlay.qcow2",
        "64M",
        &["-b", "base.raw", "-F", "raw"],
    );
    let err = inspect(&path).await.unwrap_err();
    match &err {
        ImageError::BackingFile { name } => assert_eq!(name.as_deref(), Some("base.raw")),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("(base.raw)"));
    assert_user_error(&err, dir.path());
}

#[tokio::test]
async fn backing_file_is_refused_without_being_opened() {
    let dir = TempDir::new().unwrap();
    // Missing backing file: a tool that opened it would fail with "Could not open".
    let missing = create(
        dir.path(),
        "qcow2",
        "missing.qcow2",
        "64M",
        &["-u", "-b", "/nonexistent/base.qcow2", "-F", "qcow2"],
    );
    let err = inspect(&missing).await.unwrap_err();
    assert!(matches!(err, ImageError::BackingFile { .. }), "{err:?}");

    // A FIFO as backing file: opening it would block until the timeout.
    let fifo = dir.path().join("fifo");
    run("mkfifo", &[fifo.to_str().unwrap()]);
    let blocking = create(
        dir.path(),
        "qcow2",
        "fifo.qcow2",
        "64M",
        &["-u", "-b", fifo.to_str().unwrap(), "-F", "raw"],
    );
    let started = Instant::now();
    let err = qemu()
        .with_timeout(Duration::from_secs(10))
        .inspect(&blocking, &LIMITS)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::BackingFile { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // (The message names the backing file, which here happens to live in the temp dir.)
    assert!(err.is_user_error());
}

#[tokio::test]
async fn external_data_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data.raw");
    let opt = format!("data_file={}", data.display());
    let path = create(dir.path(), "qcow2", "df.qcow2", "64M", &["-o", &opt]);
    let err = inspect(&path).await.unwrap_err();
    assert!(
        matches!(err, ImageError::ExternalDataFile { .. }),
        "{err:?}"
    );

    // Same with data-file-raw and a data file that no longer exists.
    let opt = format!(
        "data_file={},data_file_raw=on",
        dir.path().join("gone.raw").display()
    );
    let path = create(dir.path(), "qcow2", "dfr.qcow2", "64M", &["-o", &opt]);
    std::fs::remove_file(dir.path().join("gone.raw")).unwrap();
    let err = inspect(&path).await.unwrap_err();
    assert!(
        matches!(err, ImageError::ExternalDataFile { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn encrypted_qcow2_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = create(
        dir.path(),
        "qcow2",
        "enc.qcow2",
        "16M",
        &[
            "--object",
            "secret,id=s0,data=hunter2",
            "-o",
            "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=200",
        ],
    );
    let err = inspect(&path).await.unwrap_err();
    assert!(matches!(err, ImageError::Encrypted), "{err:?}");
}

#[tokio::test]
async fn truncated_qcow2_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = qcow2_with_data(dir.path(), "t.qcow2");
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = inspect(&path).await.unwrap_err();
    match &err {
        ImageError::Truncated { expected, actual } => {
            assert_eq!(*actual, len / 2);
            assert!(expected > actual);
        }
        // Depending on where the cut falls, qemu sees missing metadata as corruption.
        ImageError::Corrupt { .. } => {}
        other => panic!("{other:?}"),
    }
    assert_user_error(&err, dir.path());
}

#[tokio::test]
async fn corrupt_l1_table_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = qcow2_with_data(dir.path(), "l1.qcow2");
    poke(&path, L1_OFFSET, &[0xff; 8]);
    let err = inspect(&path).await.unwrap_err();
    match &err {
        ImageError::Corrupt { detail } => assert!(detail.contains("corruption"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_user_error(&err, dir.path());
}

#[tokio::test]
async fn corrupt_header_fields_are_refused() {
    let dir = TempDir::new().unwrap();
    // (offset, bytes): cluster_bits = 64; L1 table offset far past the end of the file.
    let pokes: [(u64, &[u8]); 2] = [
        (20, &[0, 0, 0, 64]),
        (40, &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]),
    ];
    for (i, (offset, bytes)) in pokes.into_iter().enumerate() {
        let path = qcow2_with_data(dir.path(), &format!("h{i}.qcow2"));
        poke(&path, offset, bytes);
        let err = inspect(&path).await.unwrap_err();
        assert!(matches!(err, ImageError::Corrupt { .. }), "{i}: {err:?}");
        assert_user_error(&err, dir.path());
    }
}

#[tokio::test]
async fn oversize_virtual_disk_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = create(dir.path(), "qcow2", "big.qcow2", "2G", &[]);
    let err = inspect(&path).await.unwrap_err();
    match err {
        ImageError::VirtualTooLarge { size, max } => assert_eq!((size, max), (2 << 30, 1 << 30)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversize_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = qcow2_with_data(dir.path(), "f.qcow2");
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..LIMITS
    };
    let err = qemu().inspect(&path, &limits).await.unwrap_err();
    assert!(
        matches!(err, ImageError::TooLarge { max: 1048576, .. }),
        "{err:?}"
    );
}
