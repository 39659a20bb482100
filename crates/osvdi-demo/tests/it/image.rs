//! The built image: a valid qcow2 whose raw disk carries a boot signature and our files.

use std::process::Command;

use anyhow::Result;
use osvdi_demo::{DemoError, DemoOptions};

use crate::support::{build_in, output};

#[test]
fn prerequisites_are_installed() -> Result<()> {
    osvdi_demo::check_prerequisites()?;
    Ok(())
}

#[test]
fn image_is_qcow2_and_its_raw_disk_boots_from_a_fat_superfloppy() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let image = build_in(dir.path())?;
    assert!(
        image.kernel_version.ends_with("-amd64"),
        "{}",
        image.kernel_version
    );

    let info = output(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&image.path),
    )?;
    let info: serde_json::Value = serde_json::from_slice(&info)?;
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"].as_u64(), Some(image.virtual_size));
    assert!(info.get("backing-filename").is_none());
    assert_eq!(image.virtual_size % (1024 * 1024), 0);
    assert!(
        image.virtual_size < 64 * 1024 * 1024,
        "{} bytes is more than expected",
        image.virtual_size
    );
    output(
        Command::new("qemu-img")
            .args(["check", "-q"])
            .arg(&image.path),
    )?;

    let raw = dir.path().join("back.raw");
    output(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&image.path)
            .arg(&raw),
    )?;
    let disk = std::fs::read(&raw)?;
    assert_eq!(&disk[510..512], [0x55, 0xAA], "boot signature");
    assert_eq!(
        &disk[3..11],
        b"SYSLINUX",
        "syslinux's OEM name in the boot sector"
    );

    let listing = output(
        Command::new("mdir")
            .args(["-a", "-b", "-i"])
            .arg(&raw)
            .arg("::"),
    )?;
    let listing = String::from_utf8(listing)?.to_lowercase();
    for file in [
        "ldlinux.sys",
        "ldlinux.c32",
        "vmlinuz",
        "initrd.img",
        "syslinux.cfg",
    ] {
        assert!(
            listing.contains(&format!("::/{file}")),
            "{file} missing from {listing}"
        );
    }
    let cfg = output(
        Command::new("mtype")
            .arg("-i")
            .arg(&raw)
            .arg("::syslinux.cfg"),
    )?;
    assert!(String::from_utf8(cfg)?.contains(osvdi_demo::CMDLINE));
    Ok(())
}

/// `osvdi template demo` skips the upload when the image's digest is unchanged.
#[test]
fn the_same_inputs_give_the_same_bytes() -> Result<()> {
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let first = build_in(a.path())?;
    // FAT times have a two-second resolution; cross a tick so the clock would show.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = build_in(b.path())?;
    assert!(
        std::fs::read(&first.path)? == std::fs::read(&second.path)?,
        "images differ"
    );
    Ok(())
}

#[test]
fn a_dynamic_busybox_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        busybox: Some("/bin/ls".into()),
        ..DemoOptions::default()
    };
    let err = osvdi_demo::build(&dir.path().join("x.qcow2"), &opts).unwrap_err();
    assert!(matches!(err, DemoError::BusyboxNotStatic { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "/bin/ls is not a static x86-64 busybox; install busybox-static or pass its path"
    );
    assert!(!dir.path().join("x.qcow2").exists());
}

#[test]
fn an_unreadable_kernel_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        kernel: Some(dir.path().join("vmlinuz-absent")),
        ..DemoOptions::default()
    };
    let err = osvdi_demo::build(&dir.path().join("x.qcow2"), &opts).unwrap_err();
    assert!(matches!(err, DemoError::KernelUnreadable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("run as root or pass a readable copy"),
        "{err}"
    );
}

#[test]
fn a_missing_output_directory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("absent").join("demo.qcow2");
    let err = osvdi_demo::build(&out, &DemoOptions::default()).unwrap_err();
    assert!(matches!(err, DemoError::Write { .. }), "{err}");
}
