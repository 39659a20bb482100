//! Helpers to build test images with the real qemu-img and qemu-io.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use osvdi_image::{ImageError, ImageInfo, Limits, QemuImg};

pub const MIB: u64 = 1 << 20;

pub const LIMITS: Limits = Limits {
    max_file_bytes: 1 << 30,
    max_virtual_bytes: 1 << 30,
};

pub fn qemu() -> QemuImg {
    QemuImg::locate(None).expect("qemu-img must be installed (qemu-utils) to run these tests")
}

/// Runs a program (no shell) and panics with its stderr if it fails. qemu's LUKS key
/// derivation times itself with getrusage, which in some VMs sporadically reads no CPU time
/// ("Unable to get accurate CPU usage"): that one error is retried.
pub fn run(program: &str, args: &[&str]) {
    let mut out = Command::new(program).args(args).output().expect(program);
    for _ in 0..10 {
        if out.status.success()
            || !String::from_utf8_lossy(&out.stderr).contains("accurate CPU usage")
        {
            break;
        }
        out = Command::new(program).args(args).output().expect(program);
    }
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `qemu-img create -f FMT [EXTRA...] DIR/NAME SIZE`, returning the path.
pub fn create(dir: &Path, fmt: &str, name: &str, size: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["create", "-q", "-f", fmt];
    args.extend_from_slice(extra);
    args.extend([path.to_str().unwrap(), size]);
    run("qemu-img", &args);
    path
}

/// `qemu-io -f FMT -c CMD PATH`.
pub fn qemu_io(path: &Path, fmt: &str, cmd: &str) {
    run("qemu-io", &["-f", fmt, "-c", cmd, path.to_str().unwrap()]);
}

/// Overwrites bytes of a file in place.
pub fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// A qcow2 image of 64 MiB with 4 MiB of data written at offset 0.
pub fn qcow2_with_data(dir: &Path, name: &str) -> PathBuf {
    let path = create(dir, "qcow2", name, "64M", &[]);
    qemu_io(&path, "qcow2", "write -P 0xab 0 4M");
    path
}

pub async fn inspect(path: &Path) -> Result<ImageInfo, ImageError> {
    qemu().inspect(path, &LIMITS).await
}

/// Asserts the error is a user error whose message does not leak the temp directory.
pub fn assert_user_error(err: &ImageError, dir: &Path) {
    assert!(err.is_user_error(), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains(dir.to_str().unwrap()), "path leaked: {msg}");
    assert!(msg.starts_with(char::is_uppercase), "{msg}");
}
