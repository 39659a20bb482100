//! The error type for image verification, with user-facing messages.

use crate::ImageFormat;

/// Why an image was refused or could not be verified.
///
/// Messages are meant for the steward who uploaded the image: they say what is wrong and what
/// to do, and never contain server-side paths.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file is neither qcow2, a raw disk with a partition table, nor any known format.
    #[error(
        "The file is not a recognised disk image; upload a qcow2 image, or a raw disk image \
         with an MBR or GPT partition table"
    )]
    UnknownFormat,
    /// A known format the server does not accept (`vmdk`, `vdi`, `iso`, ...).
    #[error("{}", unsupported_message(.format))]
    UnsupportedFormat { format: &'static str },
    /// The image depends on a backing file.
    #[error(
        "The image has a backing file{}; upload a standalone image: \
         qemu-img convert -O qcow2 IN OUT",
        in_parens(.name)
    )]
    BackingFile { name: Option<String> },
    /// The qcow2 image keeps its guest data in an external data file.
    #[error(
        "The image keeps its data in an external file{}; upload a self-contained image: \
         qemu-img convert -O qcow2 IN OUT",
        in_parens(.name)
    )]
    ExternalDataFile { name: Option<String> },
    /// The qcow2 image is encrypted; the server could not boot it.
    #[error(
        "The image is encrypted; upload an unencrypted image \
         (qemu-img convert -O qcow2 with the decryption secret)"
    )]
    Encrypted,
    /// qemu-img read the image as another format than its header says.
    #[error(
        "The image header says {expected} but qemu-img reads it as {found}; \
         re-export it with qemu-img convert -O qcow2 IN OUT"
    )]
    FormatMismatch {
        expected: ImageFormat,
        found: String,
    },
    /// The file on disk is over [`Limits::max_file_bytes`](crate::Limits).
    #[error(
        "The image file is {}; compress it (qemu-img convert -c -O qcow2 IN OUT) \
         or ask an administrator to raise the limit",
        over_limit(*.size, *.max)
    )]
    TooLarge { size: u64, max: u64 },
    /// The virtual disk is over [`Limits::max_virtual_bytes`](crate::Limits).
    #[error(
        "The image's virtual disk is {}; shrink the disk or ask an administrator \
         to raise the limit",
        over_limit(*.size, *.max)
    )]
    VirtualTooLarge { size: u64, max: u64 },
    /// The qcow2 metadata points past the end of the file.
    #[error(
        "The image is truncated: it needs {expected} bytes but the file has {actual}; \
         upload the complete file"
    )]
    Truncated { expected: u64, actual: u64 },
    /// The image is damaged or qemu-img cannot read it.
    #[error(
        "The image is corrupt or unreadable ({detail}); repair it with \
         qemu-img check -r all, or export it again"
    )]
    Corrupt { detail: String },
    /// Our tooling failed: qemu-img missing, timed out, crashed or printed unparseable output.
    #[error("Image verification failed: {detail}")]
    Tool { detail: String },
    /// Reading the uploaded file failed.
    #[error("Could not read the uploaded image file")]
    Io(#[from] std::io::Error),
}

impl ImageError {
    /// `true` when the image is at fault (answer 4xx), `false` when our side failed (5xx).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Tool { .. } | Self::Io(_))
    }

    pub(crate) fn tool(detail: impl Into<String>) -> Self {
        Self::Tool {
            detail: detail.into(),
        }
    }

    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        Self::Corrupt {
            detail: detail.into(),
        }
    }
}

fn unsupported_message(format: &str) -> String {
    if format == "iso" {
        "The file is an installer ISO, not a disk image; install the system into a VM \
         and upload the VM's disk"
            .to_owned()
    } else {
        format!(
            "Unsupported image format {format}; convert it with \
             `qemu-img convert -O qcow2 IN OUT` and upload the result"
        )
    }
}

fn in_parens(name: &Option<String>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!(" ({n})"),
        _ => String::new(),
    }
}

/// "10.5 GiB, over the limit of 10.0 GiB", falling back to exact bytes when rounding would
/// make both look the same.
fn over_limit(size: u64, max: u64) -> String {
    let (s, m) = (human_bytes(size), human_bytes(max));
    if s == m {
        format!("{size} bytes, over the limit of {max} bytes")
    } else {
        format!("{s}, over the limit of {m}")
    }
}

pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    // Precision loss in the cast is irrelevant for a one-decimal display.
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Makes a string from a hostile image or tool output safe to show: printable characters only,
/// bounded length.
pub(crate) fn sanitize(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_capital_and_name_the_fix() {
        let errs = [
            ImageError::UnknownFormat,
            ImageError::UnsupportedFormat { format: "vmdk" },
            ImageError::UnsupportedFormat { format: "iso" },
            ImageError::BackingFile {
                name: Some("base.img".into()),
            },
            ImageError::ExternalDataFile { name: None },
            ImageError::Encrypted,
            ImageError::FormatMismatch {
                expected: ImageFormat::Qcow2,
                found: "raw".into(),
            },
            ImageError::TooLarge {
                size: 11 << 30,
                max: 10 << 30,
            },
            ImageError::VirtualTooLarge {
                size: 3 << 40,
                max: 2 << 40,
            },
            ImageError::Truncated {
                expected: 10,
                actual: 5,
            },
            ImageError::corrupt("qemu-img check found 3 corruptions"),
            ImageError::tool("qemu-img timed out"),
            ImageError::Io(std::io::Error::other("x")),
        ];
        for e in &errs {
            let m = e.to_string();
            assert!(m.starts_with(char::is_uppercase), "{m}");
        }
        assert_eq!(
            errs[3].to_string(),
            "The image has a backing file (base.img); upload a standalone image: \
             qemu-img convert -O qcow2 IN OUT"
        );
        assert!(errs[1].to_string().contains("vmdk"));
        assert!(errs[1].to_string().contains("qemu-img convert -O qcow2"));
        assert!(
            errs[2]
                .to_string()
                .contains("installer ISO, not a disk image")
        );
        assert_eq!(
            errs[7].to_string().split(';').next().unwrap(),
            "The image file is 11.0 GiB, over the limit of 10.0 GiB"
        );
    }

    #[test]
    fn user_errors_vs_tool_errors() {
        assert!(ImageError::UnknownFormat.is_user_error());
        assert!(ImageError::corrupt("x").is_user_error());
        assert!(
            ImageError::Truncated {
                expected: 2,
                actual: 1
            }
            .is_user_error()
        );
        assert!(!ImageError::tool("x").is_user_error());
        assert!(!ImageError::Io(std::io::Error::other("x")).is_user_error());
    }

    #[test]
    fn over_limit_falls_back_to_bytes() {
        assert_eq!(
            over_limit((10 << 30) + 1, 10 << 30),
            "10737418241 bytes, over the limit of 10737418240 bytes"
        );
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn sanitize_strips_controls_and_bounds_length() {
        assert_eq!(sanitize("a\x1b[31mb\n", 100), "a?[31mb?");
        assert_eq!(sanitize("abcdef", 3), "abc…");
    }
}
