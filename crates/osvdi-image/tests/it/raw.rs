//! Raw images: accepted only when they look like a partitioned disk.

use osvdi_image::{ImageError, ImageFormat, Limits};
use tempfile::TempDir;

use crate::support::*;

#[tokio::test]
async fn raw_with_mbr_is_accepted() {
    let dir = TempDir::new().unwrap();
    let path = create(dir.path(), "raw", "mbr.img", "16M", &[]);
    poke(&path, 510, &[0x55, 0xaa]);
    let info = inspect(&path).await.unwrap();
    assert_eq!(info.format, ImageFormat::Raw);
    assert_eq!(info.virtual_size, 16 * MIB);
    assert_eq!(info.file_size, 16 * MIB);
    assert_eq!(info.leaked_clusters, 0);
}

#[tokio::test]
async fn raw_with_gpt_is_accepted() {
    let dir = TempDir::new().unwrap();
    let path = create(dir.path(), "raw", "gpt.img", "16M", &[]);
    poke(&path, 512, b"EFI PART");
    assert_eq!(inspect(&path).await.unwrap().format, ImageFormat::Raw);
}

#[tokio::test]
async fn raw_without_partition_table_is_unknown() {
    let dir = TempDir::new().unwrap();
    let path = create(dir.path(), "raw", "zero.img", "16M", &[]);
    let err = inspect(&path).await.unwrap_err();
    assert!(matches!(err, ImageError::UnknownFormat), "{err:?}");

    // A boot signature but not whole sectors.
    let odd = dir.path().join("odd.img");
    let mut bytes = vec![0u8; 1000];
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    std::fs::write(&odd, bytes).unwrap();
    assert!(matches!(
        inspect(&odd).await,
        Err(ImageError::UnknownFormat)
    ));
}

#[tokio::test]
async fn raw_over_the_virtual_limit_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = create(dir.path(), "raw", "mbr.img", "16M", &[]);
    poke(&path, 510, &[0x55, 0xaa]);
    let limits = Limits {
        max_virtual_bytes: 8 << 20,
        ..LIMITS
    };
    let err = qemu().inspect(&path, &limits).await.unwrap_err();
    assert!(
        matches!(err, ImageError::VirtualTooLarge { size, .. } if size == 16 * MIB),
        "{err:?}"
    );
}

#[tokio::test]
async fn raw_holding_a_qcow2_header_is_treated_as_qcow2() {
    let dir = TempDir::new().unwrap();
    let qcow2 = qcow2_with_data(dir.path(), "real.qcow2");
    let disguised = dir.path().join("disk.raw");
    std::fs::copy(&qcow2, &disguised).unwrap();
    let info = inspect(&disguised).await.unwrap();
    assert_eq!(info.format, ImageFormat::Qcow2);
    assert_eq!(info.virtual_size, 64 * MIB);
}
