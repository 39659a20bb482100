//! The openh264 backend: a decodable Annex B stream of good quality, keyframes only on request.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use osvdi_display::nal::{NAL_IDR, NAL_PPS, NAL_SLICE, NAL_SPS, nal_type, split_annex_b};
use osvdi_display::{
    EncodedFrame, I420Frame, OpenH264Config, OpenH264Encoder, OpenH264Usage, VideoEncoder,
    bgrx_to_i420,
};

use crate::{Rng, text_screen, type_glyph};

const MODES: [OpenH264Usage; 2] = [OpenH264Usage::Screen, OpenH264Usage::Camera];

fn encoder(usage: OpenH264Usage, w: u32, h: u32) -> OpenH264Encoder {
    let config = OpenH264Config {
        usage,
        ..OpenH264Config::default()
    };
    OpenH264Encoder::new(config, w, h).unwrap()
}

fn types(frame: &EncodedFrame) -> Vec<u8> {
    assert!(frame.data.starts_with(&[0, 0, 0, 1]) || frame.data.starts_with(&[0, 0, 1]));
    split_annex_b(&frame.data)
        .iter()
        .map(|n| nal_type(n))
        .collect()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

/// The decoded picture's Y plane, packed.
fn decode_luma(decoder: &mut Decoder, data: &[u8], w: usize, h: usize) -> Vec<u8> {
    let yuv = decoder.decode(data).unwrap().expect("a picture");
    assert_eq!(yuv.dimensions(), (w, h));
    let stride = yuv.strides().0;
    (0..h)
        .flat_map(|row| yuv.y()[row * stride..][..w].to_vec())
        .collect()
}

#[test]
fn stream_decodes_with_good_quality() {
    let (w, h) = (640, 480);
    for usage in MODES {
        let mut enc = encoder(usage, w, h);
        let mut decoder = Decoder::new().unwrap();
        let mut fb = text_screen(w, h, 7);
        let mut frame = I420Frame::new(w, h).unwrap();
        bgrx_to_i420(&fb, &mut frame).unwrap();

        let first = enc.encode(&frame, false).unwrap();
        assert!(first.keyframe);
        let t = types(&first);
        for needed in [NAL_SPS, NAL_PPS, NAL_IDR] {
            assert!(t.contains(&needed), "{usage:?}: first frame has {t:?}");
        }
        let luma = decode_luma(&mut decoder, &first.data, w as usize, h as usize);
        let quality = psnr(&luma, frame.y());
        eprintln!(
            "{usage:?}: IDR {} bytes, Y PSNR {quality:.1} dB",
            first.data.len()
        );
        assert!(quality > 35.0, "{usage:?}: PSNR {quality:.1} dB");

        // Typing: P frames that decode to the new picture.
        let mut rng = Rng(3);
        for i in 0..5 {
            type_glyph(&mut fb, 40 + 8 * i, 200, &mut rng);
            bgrx_to_i420(&fb, &mut frame).unwrap();
            let next = enc.encode(&frame, false).unwrap();
            assert!(!next.keyframe);
            let t = types(&next);
            assert!(
                t.contains(&NAL_SLICE) && !t.contains(&NAL_IDR),
                "{usage:?}: {t:?}"
            );
            let luma = decode_luma(&mut decoder, &next.data, w as usize, h as usize);
            let quality = psnr(&luma, frame.y());
            assert!(quality > 35.0, "{usage:?}: P frame PSNR {quality:.1} dB");
        }
    }
}

#[test]
fn keyframes_only_on_request_and_resize() {
    let (w, h) = (320, 240);
    for usage in MODES {
        let mut enc = encoder(usage, w, h);
        let mut fb = text_screen(w, h, 11);
        let mut frame = I420Frame::new(w, h).unwrap();
        let mut rng = Rng(5);
        let mut idrs = Vec::new();
        for i in 0..300u32 {
            // Typing, then every 50th frame a full change (scene change detection is off).
            if i % 50 == 49 {
                fb = text_screen(w, h, i);
            } else {
                type_glyph(&mut fb, 8 + 8 * (i % 36), 40 + 18 * (i / 36), &mut rng);
            }
            bgrx_to_i420(&fb, &mut frame).unwrap();
            let out = enc.encode(&frame, i == 200).unwrap();
            assert!(!out.data.is_empty(), "{usage:?}: frame {i} was dropped");
            if out.keyframe || types(&out).contains(&NAL_IDR) {
                idrs.push(i);
            }
        }
        assert_eq!(idrs, [0, 200], "{usage:?}");

        enc.resize(160, 120).unwrap();
        let small = I420Frame::new(160, 120).unwrap();
        let out = enc.encode(&small, false).unwrap();
        assert!(out.keyframe && types(&out).contains(&NAL_SPS), "{usage:?}");
        assert!(!enc.encode(&small, false).unwrap().keyframe);
        assert!(enc.encode(&frame, false).is_err(), "old size refused");
    }
}
