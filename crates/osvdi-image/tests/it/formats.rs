//! Files that are not acceptable disk images: other formats, ISOs, garbage.

use osvdi_image::ImageError;
use tempfile::TempDir;

use crate::support::*;

#[tokio::test]
async fn other_image_formats_are_refused_by_name() {
    let dir = TempDir::new().unwrap();
    let cases: [(&str, &[&str], &str); 7] = [
        ("vmdk", &[], "vmdk"),
        ("vmdk", &["-o", "subformat=monolithicFlat"], "vmdk"),
        ("vdi", &[], "vdi"),
        ("vhdx", &[], "vhdx"),
        ("vpc", &[], "vhd (vpc)"),
        ("vpc", &["-o", "subformat=fixed"], "vhd (vpc)"),
        ("qed", &[], "qed"),
    ];
    for (i, (fmt, extra, name)) in cases.into_iter().enumerate() {
        let path = create(dir.path(), fmt, &format!("img{i}.{fmt}"), "16M", extra);
        let err = inspect(&path).await.unwrap_err();
        match &err {
            ImageError::UnsupportedFormat { format } => {
                assert_eq!(*format, name, "{fmt} {extra:?}");
            }
            other => panic!("{fmt} {extra:?}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("qemu-img convert -O qcow2"),
            "{msg}"
        );
        assert_user_error(&err, dir.path());
    }
}

#[tokio::test]
async fn iso_is_refused_as_installer() {
    let dir = TempDir::new().unwrap();
    // A hybrid ISO: MBR boot signature plus the ISO 9660 primary volume descriptor.
    let mut iso = vec![0u8; 1 << 20];
    iso[510] = 0x55;
    iso[511] = 0xaa;
    iso[0x8000] = 1;
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    let path = dir.path().join("installer.iso");
    std::fs::write(&path, iso).unwrap();
    let err = inspect(&path).await.unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedFormat { format: "iso" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("installer ISO, not a disk image"));
}

#[tokio::test]
async fn garbage_is_unknown() {
    let dir = TempDir::new().unwrap();
    // xorshift64: deterministic noise, 1 MiB (a whole number of sectors).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cases: [(&str, &[u8]); 3] = [
        ("noise.bin", &noise),
        ("empty.img", b""),
        ("notes.txt", b"This is not a disk image.\n"),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = inspect(&path).await.unwrap_err();
        assert!(matches!(err, ImageError::UnknownFormat), "{name}: {err:?}");
        assert_user_error(&err, dir.path());
    }
}
