//! Verification of uploaded VM disk images (qcow2 or raw) before the server accepts them.
//!
//! The flow, driven by [`QemuImg::inspect`]:
//! 1. the file must be a regular file no larger than [`Limits::max_file_bytes`];
//! 2. [`preflight`] detects its format by [`sniff`]ing the header (qemu is never asked to
//!    probe) and checks qcow2 headers for backing files, external data files and encryption
//!    before any external tool runs;
//! 3. `qemu-img info` (and, for qcow2, `qemu-img check`) run under `prlimit` and a wall-clock
//!    timeout; their JSON output is parsed by [`parse_info`] and [`parse_check`].
//!
//! Every refusal is an [`ImageError`]; [`ImageError::is_user_error`] tells whether the image or
//! our tooling is at fault.

mod error;
mod qemu;
mod report;
mod sniff;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::ImageError;
pub use qemu::QemuImg;
pub use report::{QemuImgCheck, QemuImgInfo, parse_check, parse_info};
pub use sniff::{HEADER_LEN, Sniffed, TAIL_LEN, preflight, sniff};

/// A disk image format the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// QEMU copy-on-write version 2 or 3.
    Qcow2,
    /// A plain disk with an MBR or GPT partition table.
    Raw,
}

impl ImageFormat {
    /// The name qemu uses for the format (`qcow2`, `raw`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qcow2 => "qcow2",
            Self::Raw => "raw",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing an [`ImageFormat`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown image format name; expected qcow2 or raw")]
pub struct ParseImageFormatError;

impl FromStr for ImageFormat {
    type Err = ParseImageFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "qcow2" => Ok(Self::Qcow2),
            "raw" => Ok(Self::Raw),
            _ => Err(ParseImageFormatError),
        }
    }
}

/// Size limits an uploaded image must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file on disk, in bytes.
    pub max_file_bytes: u64,
    /// Largest accepted virtual disk size (what the guest sees), in bytes.
    pub max_virtual_bytes: u64,
}

/// What a successful inspection found out about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Detected (and qemu-confirmed) format.
    pub format: ImageFormat,
    /// Size of the disk as the guest sees it, in bytes.
    pub virtual_size: u64,
    /// Size of the file, in bytes.
    pub file_size: u64,
    /// Clusters `qemu-img check` found leaked (harmless wasted space); always 0 for raw.
    pub leaked_clusters: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in [ImageFormat::Qcow2, ImageFormat::Raw] {
            assert_eq!(f.as_str().parse::<ImageFormat>(), Ok(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        assert_eq!("vmdk".parse::<ImageFormat>(), Err(ParseImageFormatError));
        assert_eq!("QCOW2".parse::<ImageFormat>(), Err(ParseImageFormatError));
    }

    #[test]
    fn format_serde_is_lowercase() {
        assert_eq!(
            serde_json::to_string(&ImageFormat::Qcow2).unwrap(),
            "\"qcow2\""
        );
        assert_eq!(
            serde_json::from_str::<ImageFormat>("\"raw\"").unwrap(),
            ImageFormat::Raw
        );
    }
}
