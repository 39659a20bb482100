//! The stream's messages (see the module documentation of `stream` for the protocol): what the
//! viewer may send, the text messages and the picture framing the server sends. Pure.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use osvdi_display::EncodedFrame;
use osvdi_display::nal::{NAL_SPS, nal_type, split_annex_b};
use serde::Deserialize;
use serde_json::json;

use super::flow::Stats;

/// The header in front of each access unit.
pub(crate) const HEADER_LEN: usize = 16;
/// Used when the SPS cannot be read: Constrained Baseline, level 3.1.
pub(crate) const FALLBACK_CODEC: &str = "avc1.42E01F";
/// Cursor shapes larger than this (either side) are not forwarded (browsers refuse cursor
/// images past 128 pixels anyway).
pub(crate) const MAX_CURSOR_SIDE: u16 = 256;
/// Desktop sizes a viewer may ask for.
pub(crate) const MIN_SIDE: u16 = 64;
pub(crate) const MAX_SIDE: u16 = 8192;

/// What the viewer may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum FromViewer {
    Keyframe,
    Pointer {
        x: u16,
        y: u16,
        #[serde(default)]
        buttons: u8,
    },
    Key {
        down: bool,
        keysym: u32,
        #[serde(default)]
        code: Option<u32>,
    },
    /// The viewer decoded picture `frame` (and so all before it), in `decode_ms`.
    Ack {
        frame: u32,
        #[serde(default)]
        decode_ms: Option<f64>,
    },
    /// Text to put on the desktop's clipboard.
    Clipboard {
        text: String,
    },
    /// The viewer's screen area changed: a desktop of this size would fit.
    Resize {
        width: u16,
        height: u16,
    },
}

/// The `avc1.PPCCLL` codec string of the first SPS in `annex_b`, if there is one.
pub(crate) fn codec_string(annex_b: &[u8]) -> Option<String> {
    let sps = split_annex_b(annex_b)
        .into_iter()
        .find(|n| nal_type(n) == NAL_SPS)?;
    let [_, profile, constraints, level, ..] = *sps else {
        return None;
    };
    Some(format!("avc1.{profile:02X}{constraints:02X}{level:02X}"))
}

/// The 16-byte header and the access unit, as one binary message.
pub(crate) fn frame_message(number: u32, captured_ms: u64, frame: &EncodedFrame) -> Bytes {
    let mut out = Vec::with_capacity(HEADER_LEN + frame.data.len());
    out.push(1);
    out.push(u8::from(frame.keyframe));
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&captured_ms.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&frame.data);
    Bytes::from(out)
}

/// What the viewer needs to know before a picture: the codec and size, and what it may send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Init<'a> {
    pub codec: &'a str,
    pub size: (u32, u32),
    /// The template's policy lets the clipboard through.
    pub clipboard: bool,
    /// The desktop accepts resize requests (it announced ExtendedDesktopSize).
    pub resize: bool,
}

pub(crate) fn init_message(init: Init<'_>) -> String {
    json!({
        "type": "init",
        "codec": init.codec,
        "width": init.size.0,
        "height": init.size.1,
        "clipboard": init.clipboard,
        "resize": init.resize,
    })
    .to_string()
}

pub(crate) fn stats_message(stats: &Stats) -> String {
    let mut v = serde_json::to_value(stats).unwrap_or_default();
    v["type"] = "stats".into();
    v.to_string()
}

/// The cursor shape as a text message: RGBA pixels (base64), alpha from the RFB mask. An
/// empty shape (0 x 0) means no cursor. `None` for a shape too large or inconsistent.
pub(crate) fn cursor_message(
    hot: (u16, u16),
    (width, height): (u16, u16),
    bgrx: &[u8],
    mask: &[u8],
) -> Option<String> {
    if width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE {
        return None;
    }
    let (w, h) = (usize::from(width), usize::from(height));
    let row_mask = w.div_ceil(8);
    if bgrx.len() != w * h * 4 || mask.len() != row_mask * h {
        return None;
    }
    let mut rgba = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let p = &bgrx[(y * w + x) * 4..][..4];
            let visible = mask[y * row_mask + x / 8] & (0x80 >> (x % 8)) != 0;
            rgba.extend_from_slice(&[p[2], p[1], p[0], if visible { 255 } else { 0 }]);
        }
    }
    Some(
        json!({
            "type": "cursor",
            "x_hot": hot.0.min(width.saturating_sub(1)),
            "y_hot": hot.1.min(height.saturating_sub(1)),
            "width": width,
            "height": height,
            "rgba": STANDARD.encode(rgba),
        })
        .to_string(),
    )
}

/// The desktop refused a resize request with this ExtendedDesktopSize status.
pub(crate) fn resize_refused_message(status: u16) -> String {
    json!({"type": "resize", "status": status}).to_string()
}

/// Clipboard text from the desktop (Latin-1 by the RFB standard) as a text message.
pub(crate) fn clipboard_message(latin1: &[u8]) -> String {
    let text: String = latin1.iter().map(|&b| char::from(b)).collect();
    json!({"type": "clipboard", "text": text}).to_string()
}

/// Text for the desktop's clipboard as Latin-1 (what RFB carries); other characters become
/// `?`, line ends `\n`.
pub(crate) fn to_latin1(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// A requested desktop size, within bounds and even (H.264 4:2:0 likes even sides).
pub(crate) fn clamp_size(width: u16, height: u16) -> (u16, u16) {
    let side = |v: u16| v.clamp(MIN_SIDE, MAX_SIDE) & !1;
    (side(width), side(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_codec() {
        let frame = EncodedFrame {
            keyframe: true,
            data: vec![0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, 9, 0, 0, 1, 0x68, 1],
        };
        assert_eq!(codec_string(&frame.data).as_deref(), Some("avc1.42C01F"));
        assert_eq!(codec_string(&[0, 0, 1, 0x65, 1]), None);
        let m = frame_message(0x0102_0304, 0x0A0B, &frame);
        assert_eq!(m.len(), HEADER_LEN + frame.data.len());
        assert_eq!(
            m[..HEADER_LEN],
            [1, 1, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0x0A, 0x0B, 0, 0]
        );
        assert_eq!(m[HEADER_LEN..], frame.data[..]);
    }

    #[test]
    fn viewer_messages() {
        let key: FromViewer =
            serde_json::from_str(r#"{"type":"key","down":true,"keysym":97,"code":30}"#).unwrap();
        assert!(matches!(
            key,
            FromViewer::Key {
                down: true,
                keysym: 97,
                code: Some(30)
            }
        ));
        let ack: FromViewer =
            serde_json::from_str(r#"{"type":"ack","frame":3,"decode_ms":1.5}"#).unwrap();
        assert!(matches!(
            ack,
            FromViewer::Ack {
                frame: 3,
                decode_ms: Some(_)
            }
        ));
        assert!(serde_json::from_str::<FromViewer>(r#"{"type":"ack","frame":3}"#).is_ok());
        assert!(serde_json::from_str::<FromViewer>(r#"{"type":"clipboard","text":"hé"}"#).is_ok());
        assert!(
            serde_json::from_str::<FromViewer>(r#"{"type":"resize","width":800,"height":600}"#)
                .is_ok()
        );
        assert!(
            serde_json::from_str::<FromViewer>(r#"{"type":"resize","width":-1,"height":600}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<FromViewer>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn cursor_shapes() {
        // 2 x 2: blue, green / red, white; only the diagonal visible.
        let bgrx = [
            255, 0, 0, 0, 0, 255, 0, 0, //
            0, 0, 255, 0, 255, 255, 255, 0,
        ];
        let mask = [0b1000_0000, 0b0100_0000];
        let m: serde_json::Value =
            serde_json::from_str(&cursor_message((1, 5), (2, 2), &bgrx, &mask).unwrap()).unwrap();
        assert_eq!(m["type"], "cursor");
        assert_eq!(
            (m["x_hot"].as_u64(), m["y_hot"].as_u64()),
            (Some(1), Some(1))
        );
        let rgba = STANDARD.decode(m["rgba"].as_str().unwrap()).unwrap();
        assert_eq!(
            rgba,
            [
                0, 0, 255, 255, 0, 255, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255
            ]
        );
        // No cursor at all.
        let none: serde_json::Value =
            serde_json::from_str(&cursor_message((0, 0), (0, 0), &[], &[]).unwrap()).unwrap();
        assert_eq!(none["width"], 0);
        assert_eq!(none["rgba"], "");
        // Inconsistent or oversized shapes are dropped.
        assert_eq!(cursor_message((0, 0), (2, 2), &bgrx[..8], &mask), None);
        assert_eq!(cursor_message((0, 0), (300, 1), &[0; 1200], &[0; 38]), None);
    }

    #[test]
    fn clipboard_and_sizes() {
        assert_eq!(to_latin1("a\r\nbé€"), b"a\nb\xe9?".to_vec());
        let m: serde_json::Value = serde_json::from_str(&clipboard_message(b"caf\xe9")).unwrap();
        assert_eq!(m["text"], "café");
        assert_eq!(clamp_size(1, 60_000), (MIN_SIDE, MAX_SIDE));
        assert_eq!(clamp_size(1025, 767), (1024, 766));
        let r: serde_json::Value = serde_json::from_str(&resize_refused_message(3)).unwrap();
        assert_eq!((&r["type"], &r["status"]), (&"resize".into(), &3.into()));
        let s: serde_json::Value = serde_json::from_str(&stats_message(&Stats {
            frames: 1,
            bytes: 2,
            period_ms: 1000,
            encode_ms: Some(3.0),
            rtt_ms: None,
            rtt_max_ms: None,
            decode_ms: None,
            waits: 0,
            in_flight: 0,
            total_frames: 1,
        }))
        .unwrap();
        assert_eq!(s["type"], "stats");
        assert_eq!(s["encode_ms"], 3.0);
        assert!(s["rtt_ms"].is_null());
    }
}
