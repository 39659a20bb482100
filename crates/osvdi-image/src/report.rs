//! Parsing and judging the JSON that `qemu-img info` and `qemu-img check` print.
//!
//! The parsers are pure and never panic on any input, so they can be fuzzed.

use serde_json::{Map, Value};

use crate::error::{ImageError, sanitize};
use crate::{ImageFormat, Limits};

/// The parts of `qemu-img info --output=json` the verification looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuImgInfo {
    /// Format qemu opened the image as (`format`).
    pub format: String,
    /// Virtual disk size (`virtual-size`); signed because qemu's schema is.
    pub virtual_size: i64,
    /// Any of `backing-filename`, `full-backing-filename`, `backing-filename-format` or
    /// `backing-image` is present, or a child node is called `backing`.
    pub has_backing_file: bool,
    /// The backing file name, when qemu gave one.
    pub backing_file: Option<String>,
    /// `format-specific.data.data-file` or `data-file-raw` is present, or a child node is
    /// called `data-file`.
    pub has_data_file: bool,
    /// The external data file name, when qemu gave one.
    pub data_file: Option<String>,
    /// `encrypted` is true.
    pub encrypted: bool,
    /// `format-specific.data.corrupt` is true (qemu's qcow2 corrupt flag).
    pub marked_corrupt: bool,
}

/// The parts of `qemu-img check --output=json` the verification looks at. Keys qemu leaves
/// out (it omits zero counts) read as 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuImgCheck {
    /// `corruptions`: metadata errors that can damage data.
    pub corruptions: u64,
    /// `leaks`: clusters allocated but unused (harmless).
    pub leaks: u64,
    /// `check-errors`: parts of the image the check could not examine.
    pub check_errors: u64,
    /// `image-end-offset`: where the image's last cluster ends, in bytes.
    pub image_end_offset: Option<u64>,
}

/// Parses `qemu-img info --output=json` output.
pub fn parse_info(json: &[u8]) -> Result<QemuImgInfo, ImageError> {
    let obj = parse_object(json, "info")?;
    let format = obj
        .get("format")
        .and_then(Value::as_str)
        .ok_or_else(|| unparseable("info", "no format"))?
        .to_owned();
    let virtual_size = match obj.get("virtual-size") {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .ok_or_else(|| unparseable("info", "virtual-size is not an integer"))?,
        _ => return Err(unparseable("info", "no virtual-size")),
    };

    let child_named = |name: &str| {
        obj.get("children")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
            })
    };

    let backing_keys = [
        "backing-filename",
        "full-backing-filename",
        "backing-filename-format",
        "backing-image",
    ];
    let has_backing_file =
        backing_keys.iter().any(|k| obj.contains_key(*k)) || child_named("backing");
    let backing_file = ["backing-filename", "full-backing-filename"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(display_name);

    let specific = obj
        .get("format-specific")
        .and_then(|f| f.get("data"))
        .and_then(Value::as_object);
    let specific_has = |k: &str| specific.is_some_and(|d| d.contains_key(k));
    let has_data_file =
        specific_has("data-file") || specific_has("data-file-raw") || child_named("data-file");
    let data_file = specific
        .and_then(|d| d.get("data-file"))
        .and_then(Value::as_str)
        .map(display_name);

    Ok(QemuImgInfo {
        format,
        virtual_size,
        has_backing_file,
        backing_file,
        has_data_file,
        data_file,
        encrypted: obj.get("encrypted") == Some(&Value::Bool(true)),
        marked_corrupt: specific.and_then(|d| d.get("corrupt")) == Some(&Value::Bool(true)),
    })
}

/// Parses `qemu-img check --output=json` output.
pub fn parse_check(json: &[u8]) -> Result<QemuImgCheck, ImageError> {
    let obj = parse_object(json, "check")?;
    let count = |key: &str| -> Result<Option<u64>, ImageError> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| unparseable("check", &format!("{key} is not a count"))),
        }
    };
    Ok(QemuImgCheck {
        corruptions: count("corruptions")?.unwrap_or(0),
        leaks: count("leaks")?.unwrap_or(0),
        check_errors: count("check-errors")?.unwrap_or(0),
        image_end_offset: count("image-end-offset")?,
    })
}

impl QemuImgInfo {
    /// Refuses what the image must not be; returns the virtual size on success.
    pub(crate) fn judge(&self, expected: ImageFormat, limits: &Limits) -> Result<u64, ImageError> {
        if self.has_backing_file {
            return Err(ImageError::BackingFile {
                name: self.backing_file.clone(),
            });
        }
        if self.has_data_file {
            return Err(ImageError::ExternalDataFile {
                name: self.data_file.clone(),
            });
        }
        if self.format != expected.as_str() {
            return Err(ImageError::FormatMismatch {
                expected,
                found: display_name(&self.format),
            });
        }
        if self.encrypted {
            return Err(ImageError::Encrypted);
        }
        if self.marked_corrupt {
            return Err(ImageError::corrupt("qemu marked the image as corrupt"));
        }
        let size = u64::try_from(self.virtual_size)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| ImageError::corrupt("its virtual disk size is zero or negative"))?;
        if size > limits.max_virtual_bytes {
            return Err(ImageError::VirtualTooLarge {
                size,
                max: limits.max_virtual_bytes,
            });
        }
        Ok(size)
    }
}

fn parse_object(json: &[u8], what: &str) -> Result<Map<String, Value>, ImageError> {
    match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(unparseable(what, "not a JSON object")),
        Err(e) => Err(unparseable(what, &e.to_string())),
    }
}

fn unparseable(what: &str, why: &str) -> ImageError {
    ImageError::tool(format!("cannot parse the output of qemu-img {what}: {why}"))
}

fn display_name(s: &str) -> String {
    sanitize(s, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from qemu-img 10.0.2 (`info --output=json -U -f FMT`), reformatted.
    const INFO_QCOW2: &str = r#"{"children": [{"name": "file", "info": {"children": [], "virtual-size": 197120, "filename": "good.qcow2", "format": "file", "actual-size": 200704, "format-specific": {"type": "file", "data": {}}, "dirty-flag": false}}], "virtual-size": 67108864, "filename": "good.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}"#;
    const INFO_RAW: &str = r#"{"children": [{"name": "file", "info": {"children": [], "virtual-size": 67108864, "filename": "base.raw", "format": "file", "actual-size": 4096, "format-specific": {"type": "file", "data": {}}, "dirty-flag": false}}], "virtual-size": 67108864, "filename": "base.raw", "format": "raw", "actual-size": 4096, "dirty-flag": false}"#;
    const INFO_BACKING: &str = r#"{"children": [{"name": "file", "info": {"children": [], "virtual-size": 197120, "filename": "nb.qcow2", "format": "file", "actual-size": 200704, "format-specific": {"type": "file", "data": {}}, "dirty-flag": false}}], "backing-filename-format": "qcow2", "virtual-size": 67108864, "filename": "nb.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "full-backing-filename": "/nonexistent/base.qcow2", "backing-filename": "/nonexistent/base.qcow2", "dirty-flag": false}"#;
    const INFO_DATA_FILE: &str = r#"{"children": [{"name": "file", "info": {"children": [], "virtual-size": 197120, "filename": "df.qcow2", "format": "file", "actual-size": 200704, "format-specific": {"type": "file", "data": {}}, "dirty-flag": false}}], "virtual-size": 67108864, "filename": "df.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "data-file": "/tmp/qi/data.raw", "data-file-raw": false, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}"#;
    const INFO_ENCRYPTED: &str = r#"{"children": [{"name": "file", "info": {"children": [], "virtual-size": 2359296, "filename": "enc.qcow2", "format": "file", "actual-size": 2297856, "format-specific": {"type": "file", "data": {}}, "dirty-flag": false}}], "virtual-size": 16777216, "filename": "enc.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 2297856, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "encrypt": {"format": "luks", "cipher-alg": "aes-256"}, "corrupt": false, "extended-l2": false}}, "encrypted": true, "dirty-flag": false}"#;

    // Captured from qemu-img 10.0.2 (`check --output=json -U -f qcow2`).
    const CHECK_CLEAN: &str = r#"{
    "image-end-offset": 262144,
    "total-clusters": 1024,
    "check-errors": 0,
    "filename": "good.qcow2",
    "format": "qcow2"
}"#;
    const CHECK_CORRUPT: &str = r#"{"image-end-offset": 4521984, "total-clusters": 1024, "corruptions": 4, "check-errors": 0, "leaks": 65, "filename": "c.qcow2", "format": "qcow2"}"#;
    const CHECK_TRUNCATED: &str = r#"{"image-end-offset": 2293760, "total-clusters": 1024, "corruptions": 34, "check-errors": 0, "allocated-clusters": 64, "filename": "t.qcow2", "format": "qcow2"}"#;

    const LIMITS: Limits = Limits {
        max_file_bytes: 1 << 30,
        max_virtual_bytes: 1 << 30,
    };

    #[test]
    fn good_qcow2_info() {
        let info = parse_info(INFO_QCOW2.as_bytes()).unwrap();
        assert_eq!(info.format, "qcow2");
        assert_eq!(info.virtual_size, 64 << 20);
        assert!(!info.has_backing_file && !info.has_data_file && !info.encrypted);
        assert!(!info.marked_corrupt);
        assert_eq!(info.judge(ImageFormat::Qcow2, &LIMITS).unwrap(), 64 << 20);
    }

    #[test]
    fn raw_info_and_format_mismatch() {
        let info = parse_info(INFO_RAW.as_bytes()).unwrap();
        assert_eq!(info.judge(ImageFormat::Raw, &LIMITS).unwrap(), 64 << 20);
        match info.judge(ImageFormat::Qcow2, &LIMITS) {
            Err(ImageError::FormatMismatch { expected, found }) => {
                assert_eq!((expected, found.as_str()), (ImageFormat::Qcow2, "raw"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backing_file_is_refused() {
        let info = parse_info(INFO_BACKING.as_bytes()).unwrap();
        assert!(info.has_backing_file);
        match info.judge(ImageFormat::Qcow2, &LIMITS) {
            Err(ImageError::BackingFile { name }) => {
                assert_eq!(name.as_deref(), Some("/nonexistent/base.qcow2"));
            }
            other => panic!("{other:?}"),
        }
        // Any one of the keys is enough, whatever its value.
        for key in [
            "backing-filename",
            "full-backing-filename",
            "backing-filename-format",
        ] {
            let json = format!(r#"{{"format": "qcow2", "virtual-size": 1, "{key}": null}}"#);
            let info = parse_info(json.as_bytes()).unwrap();
            assert!(matches!(
                info.judge(ImageFormat::Qcow2, &LIMITS),
                Err(ImageError::BackingFile { name: None })
            ));
        }
        let json = r#"{"format": "qcow2", "virtual-size": 1, "children": [{"name": "backing"}]}"#;
        assert!(parse_info(json.as_bytes()).unwrap().has_backing_file);
    }

    #[test]
    fn data_file_is_refused() {
        let info = parse_info(INFO_DATA_FILE.as_bytes()).unwrap();
        match info.judge(ImageFormat::Qcow2, &LIMITS) {
            Err(ImageError::ExternalDataFile { name }) => {
                assert_eq!(name.as_deref(), Some("/tmp/qi/data.raw"));
            }
            other => panic!("{other:?}"),
        }
        let json = r#"{"format": "qcow2", "virtual-size": 1, "format-specific": {"type": "qcow2", "data": {"data-file-raw": true}}}"#;
        assert!(parse_info(json.as_bytes()).unwrap().has_data_file);
    }

    #[test]
    fn encrypted_and_corrupt_flag_are_refused() {
        let info = parse_info(INFO_ENCRYPTED.as_bytes()).unwrap();
        assert!(matches!(
            info.judge(ImageFormat::Qcow2, &LIMITS),
            Err(ImageError::Encrypted)
        ));
        let json = INFO_QCOW2.replace(r#""corrupt": false"#, r#""corrupt": true"#);
        let info = parse_info(json.as_bytes()).unwrap();
        assert!(matches!(
            info.judge(ImageFormat::Qcow2, &LIMITS),
            Err(ImageError::Corrupt { .. })
        ));
    }

    #[test]
    fn virtual_size_limits() {
        let info = parse_info(INFO_QCOW2.as_bytes()).unwrap();
        let small = Limits {
            max_virtual_bytes: 32 << 20,
            ..LIMITS
        };
        match info.judge(ImageFormat::Qcow2, &small) {
            Err(ImageError::VirtualTooLarge { size, max }) => {
                assert_eq!((size, max), (64 << 20, 32 << 20));
            }
            other => panic!("{other:?}"),
        }
        for size in ["0", "-1"] {
            let json = format!(r#"{{"format": "raw", "virtual-size": {size}}}"#);
            assert!(matches!(
                parse_info(json.as_bytes())
                    .unwrap()
                    .judge(ImageFormat::Raw, &LIMITS),
                Err(ImageError::Corrupt { .. })
            ));
        }
        let huge = r#"{"format": "raw", "virtual-size": 18446744073709551615}"#;
        assert!(matches!(
            parse_info(huge.as_bytes())
                .unwrap()
                .judge(ImageFormat::Raw, &LIMITS),
            Err(ImageError::VirtualTooLarge { .. })
        ));
    }

    #[test]
    fn bad_info_is_a_tool_error() {
        for json in [
            "",
            "[]",
            "{",
            r#"{"format": "qcow2"}"#,
            r#"{"virtual-size": 1}"#,
            r#"{"format": 3, "virtual-size": 1}"#,
            r#"{"format": "raw", "virtual-size": 1.5}"#,
            r#"{"format": "raw", "virtual-size": "1"}"#,
        ] {
            let err = parse_info(json.as_bytes()).unwrap_err();
            assert!(matches!(err, ImageError::Tool { .. }), "{json}: {err:?}");
        }
    }

    #[test]
    fn hostile_names_are_sanitized() {
        let json = r#"{"format": "qcow2\u001b[2J", "virtual-size": 1, "backing-filename": "a\nb"}"#;
        let info = parse_info(json.as_bytes()).unwrap();
        assert_eq!(info.backing_file.as_deref(), Some("a?b"));
        let json = r#"{"format": "qcow2\u001b[2J", "virtual-size": 1}"#;
        match parse_info(json.as_bytes())
            .unwrap()
            .judge(ImageFormat::Qcow2, &LIMITS)
        {
            Err(ImageError::FormatMismatch { found, .. }) => assert_eq!(found, "qcow2?[2J"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_outputs() {
        assert_eq!(
            parse_check(CHECK_CLEAN.as_bytes()).unwrap(),
            QemuImgCheck {
                image_end_offset: Some(262_144),
                ..QemuImgCheck::default()
            }
        );
        assert_eq!(
            parse_check(CHECK_CORRUPT.as_bytes()).unwrap(),
            QemuImgCheck {
                corruptions: 4,
                leaks: 65,
                check_errors: 0,
                image_end_offset: Some(4_521_984),
            }
        );
        let t = parse_check(CHECK_TRUNCATED.as_bytes()).unwrap();
        assert_eq!((t.corruptions, t.image_end_offset), (34, Some(2_293_760)));
        assert_eq!(parse_check(b"{}").unwrap(), QemuImgCheck::default());
    }

    #[test]
    fn bad_check_is_a_tool_error() {
        for json in ["", "null", r#"{"leaks": -1}"#, r#"{"corruptions": "many"}"#] {
            assert!(matches!(
                parse_check(json.as_bytes()),
                Err(ImageError::Tool { .. })
            ));
        }
    }
}
