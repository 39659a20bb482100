//! Tight replays, recorded from QEMU 7.2 (`-vnc ...,lossy=on`) showing the demo guest's bench
//! workload at 1920x1080 (`osvdi-demo`'s `workload.c`), with noVNC's encodings (Tight, JPEG
//! quality 6, compression level 2):
//! - `qemu72_tight_typing.bin`: the whole server stream of a client that connected on a
//!   cleared screen and followed the typing phase (fills and two-colour palettes through the
//!   zlib streams); `..._ref.zz` is the top-left 480x48 of the same screen from a Raw client
//!   afterwards (BGRX, zlib). Tight without JPEG is lossless: the pixels must be equal.
//! - `qemu72_tight_jpeg_update.bin`: the JPEG rectangles of one update while a window moved
//!   (cut out of the stream whole: JPEG rectangles need no zlib state), and `..._ref.bin`
//!   every 8th pixel of their area (x u16, y u16, B, G, R) after QEMU's lossless refresh
//!   2 s later; 35.4 dB apart when recorded.

use std::io::Read;

use osvdi_rfb::tight::TightKind;
use osvdi_rfb::{
    Client, Config, Encoding, Event, RectData, ServerMessage, TightDecoder, parse_server_message,
};

use crate::feed;

const TYPING: &[u8] = include_bytes!("../data/qemu72_tight_typing.bin");
const TYPING_REF: &[u8] = include_bytes!("../data/qemu72_tight_typing_ref.zz");
const JPEG_UPDATE: &[u8] = include_bytes!("../data/qemu72_tight_jpeg_update.bin");
const JPEG_REF: &[u8] = include_bytes!("../data/qemu72_tight_jpeg_ref.bin");

const W: usize = 1920;

fn paint(fb: &mut [u8], x: u16, y: u16, w: u16, px: &[u8]) {
    let (x, y, w) = (usize::from(x), usize::from(y), usize::from(w));
    for (row, line) in px.chunks_exact(w * 4).enumerate() {
        let at = ((y + row) * W + x) * 4;
        fb[at..at + w * 4].copy_from_slice(line);
    }
}

#[test]
fn typing_replay_decodes_losslessly() {
    for chunk in [1, 1000, TYPING.len()] {
        let config = Config {
            encodings: Encoding::novnc(),
            ..Config::default()
        };
        let mut client = Client::new(config);
        let (_, events) = feed(&mut client, TYPING, chunk);
        assert_eq!(client.size(), (1920, 1080));
        let mut fb = vec![0u8; W * 1080 * 4];
        let mut tight = TightDecoder::new();
        let (mut updates, mut rects) = (0, 0);
        for e in &events {
            let Event::FramebufferUpdate { rects: rs } = e else {
                assert!(matches!(e, Event::Connected { .. }), "{e:?}");
                continue;
            };
            updates += 1;
            for r in rs {
                if let RectData::Tight(t) = &r.data {
                    let px = tight.decode(t, r.w, r.h, 4).expect("decodes");
                    paint(&mut fb, r.x, r.y, r.w, &px);
                    rects += 1;
                }
            }
        }
        assert!(
            updates > 40 && rects > 80,
            "{updates} updates, {rects} rects"
        );
        let mut want = Vec::new();
        flate2::read::ZlibDecoder::new(TYPING_REF)
            .read_to_end(&mut want)
            .unwrap();
        assert_eq!(want.len(), 480 * 48 * 4);
        for y in 0..48 {
            let got = &fb[y * W * 4..(y * W + 480) * 4];
            let want = &want[y * 480 * 4..(y + 1) * 480 * 4];
            // Compare colours only (QEMU's fourth byte is padding).
            let differ = got
                .chunks(4)
                .zip(want.chunks(4))
                .position(|(g, w)| g[..3] != w[..3]);
            assert_eq!(differ, None, "row {y} (chunks of {chunk})");
        }
        // Something was typed: the top rows are not all background.
        assert!(want.chunks(4).any(|p| p[..3] != want[..3]));
    }
}

#[test]
fn jpeg_rects_decode_close_to_the_lossless_picture() {
    let (msg, used) = parse_server_message(JPEG_UPDATE, 4).unwrap();
    assert_eq!(used, JPEG_UPDATE.len());
    let ServerMessage::FramebufferUpdate(rects) = msg else {
        panic!("not an update")
    };
    let mut fb = vec![0u8; W * 1080 * 4];
    let mut tight = TightDecoder::new();
    for r in &rects {
        let RectData::Tight(t) = &r.data else {
            panic!("not tight: {r:?}")
        };
        assert!(matches!(t.kind, TightKind::Jpeg(_)));
        let px = tight.decode(t, r.w, r.h, 4).unwrap();
        assert_eq!(px.len(), usize::from(r.w) * usize::from(r.h) * 4);
        paint(&mut fb, r.x, r.y, r.w, &px);
    }
    let (mut se, mut n) = (0.0f64, 0.0f64);
    for s in JPEG_REF.chunks_exact(7) {
        let x = usize::from(u16::from_be_bytes([s[0], s[1]]));
        let y = usize::from(u16::from_be_bytes([s[2], s[3]]));
        let at = (y * W + x) * 4;
        for c in 0..3 {
            let d = f64::from(fb[at + c]) - f64::from(s[4 + c]);
            se += d * d;
            n += 1.0;
        }
    }
    assert!(n > 5000.0);
    let psnr = 10.0 * (255.0f64 * 255.0 / (se / n)).log10();
    // Swapped colours or a broken decode would be far below this.
    assert!(psnr > 32.0, "PSNR {psnr:.1} dB");
}
