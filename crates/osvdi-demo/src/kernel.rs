//! Finding the host's Debian kernel and reading its version from the bzImage header.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::DemoError;

/// Where Debian's linux-image packages install kernels.
pub(crate) const BOOT_DIR: &str = "/boot";

/// Enough of a bzImage to hold its setup header and the version string it points to.
const HEADER_LEN: u64 = 64 * 1024;

/// A kernel chosen for the image.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) path: PathBuf,
    pub(crate) version: String,
}

/// The newest `vmlinuz-*` in `dir`, by version order of what follows the dash.
pub(crate) fn newest_in(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix("vmlinuz-")?.to_owned();
            Some((version, e.path()))
        })
        .max_by(|a, b| compare_versions(&a.0, &b.0))
        .map(|(_, path)| path)
}

/// Orders version strings such as `6.1.0-9-amd64` < `6.1.0-56-amd64`: runs of digits compare
/// as numbers, everything else as text.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let (ta, ra) = split_token(a);
        let (tb, rb) = split_token(b);
        let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
        let order = if digits(ta) && digits(tb) {
            let (ta, tb) = (ta.trim_start_matches('0'), tb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            ta.cmp(tb)
        };
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (ra, rb);
    }
}

/// Splits off the leading run of digits or of non-digits.
fn split_token(s: &str) -> (&str, &str) {
    let digit = s.starts_with(|c: char| c.is_ascii_digit());
    let end = s
        .find(|c: char| c.is_ascii_digit() != digit)
        .unwrap_or(s.len());
    s.split_at(end)
}

/// The version a bzImage setup header names, such as `6.1.0-56-amd64`; `None` when `header` is
/// not a bzImage or names none.
pub(crate) fn bzimage_version(header: &[u8]) -> Option<&str> {
    if header.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let offset = u16::from_le_bytes([*header.get(0x20E)?, *header.get(0x20F)?]);
    if offset == 0 {
        return None;
    }
    let text = header.get(0x200 + usize::from(offset)..)?;
    let end = text.iter().position(|&c| c == 0)?;
    let version = std::str::from_utf8(&text[..end])
        .ok()?
        .split_whitespace()
        .next()?;
    Some(version)
}

/// Whether `header` starts like a bzImage at all.
fn is_bzimage(header: &[u8]) -> bool {
    header.get(0x202..0x206) == Some(b"HdrS")
}

impl Kernel {
    /// Reads the header of the kernel at `path` and takes its version from there, or else
    /// from a `vmlinuz-VERSION` file name.
    pub(crate) fn open(path: &Path) -> Result<Self, DemoError> {
        let unreadable = |source: io::Error| DemoError::KernelUnreadable {
            path: path.to_owned(),
            source,
        };
        let mut header = Vec::new();
        File::open(path)
            .and_then(|f| f.take(HEADER_LEN).read_to_end(&mut header))
            .map_err(unreadable)?;
        if !is_bzimage(&header) {
            return Err(DemoError::NotAKernel {
                path: path.to_owned(),
            });
        }
        let from_name = || {
            let name = path.file_name()?.to_str()?;
            name.strip_prefix("vmlinuz-").map(str::to_owned)
        };
        let version = bzimage_version(&header)
            .map(str::to_owned)
            .or_else(from_name)
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(Self {
            path: path.to_owned(),
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal bzImage setup header naming `version` at offset 0x300 of the setup code.
    fn fake_header(version: &str) -> Vec<u8> {
        let mut h = vec![0u8; 0x600];
        h[0x202..0x206].copy_from_slice(b"HdrS");
        h[0x20E..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        let text = format!("{version} (debian-kernel@lists.debian.org) #1 SMP\0");
        h[0x500..0x500 + text.len()].copy_from_slice(text.as_bytes());
        h
    }

    #[test]
    fn versions_order_numerically() {
        let mut v = [
            "6.1.0-9-amd64",
            "6.1.0-56-amd64",
            "5.10.0-30-amd64",
            "6.1.0-10-amd64",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "5.10.0-30-amd64",
                "6.1.0-9-amd64",
                "6.1.0-10-amd64",
                "6.1.0-56-amd64"
            ]
        );
        assert_eq!(compare_versions("6.1", "6.1.0"), Ordering::Less);
        assert_eq!(compare_versions("6.01", "6.1"), Ordering::Equal);
    }

    #[test]
    fn version_comes_from_the_setup_header() {
        assert_eq!(
            bzimage_version(&fake_header("6.1.0-56-amd64")),
            Some("6.1.0-56-amd64")
        );
        let mut no_magic = fake_header("6.1.0-56-amd64");
        no_magic[0x202] = b'X';
        assert_eq!(bzimage_version(&no_magic), None);
        assert_eq!(
            bzimage_version(&fake_header("")[..0x400]),
            None,
            "string cut off"
        );
        assert_eq!(bzimage_version(b"short"), None);
    }

    #[test]
    fn newest_kernel_wins_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "vmlinuz-6.1.0-9-amd64",
            "vmlinuz-6.1.0-56-amd64",
            "config-6.1.0-99-amd64",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let newest = newest_in(dir.path()).unwrap();
        assert_eq!(newest.file_name().unwrap(), "vmlinuz-6.1.0-56-amd64");
        assert_eq!(newest_in(&dir.path().join("absent")), None);
    }

    #[test]
    fn open_reads_the_version_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bzImage");
        std::fs::write(&path, fake_header("6.1.0-56-amd64")).unwrap();
        assert_eq!(Kernel::open(&path).unwrap().version, "6.1.0-56-amd64");

        std::fs::write(&path, b"not a kernel").unwrap();
        assert!(matches!(
            Kernel::open(&path),
            Err(DemoError::NotAKernel { .. })
        ));
        let absent = dir.path().join("absent");
        assert!(matches!(
            Kernel::open(&absent),
            Err(DemoError::KernelUnreadable { .. })
        ));
    }
}
