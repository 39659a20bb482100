//! The Tight encoding (RFB 7.7.6, encoding 7) with its JPEG sub-encoding: [`parse_tight`] cuts
//! a Tight rectangle out of the byte stream without decompressing anything (the parser stays
//! pure), and [`TightDecoder`] turns the rectangles into BGRX pixels, keeping the four zlib
//! streams a Tight server compresses into across rectangles and updates.
//!
//! Tight is what QEMU sends to noVNC (noVNC asks for Tight first, with JPEG quality 6 and
//! compression level 2): fills, palettes (two colours as a bitmap, up to 256 as indices),
//! full-colour pixels through zlib with or without the gradient filter, and JPEG for
//! photo-like areas. Pixels travel as 3-byte TPIXELs (R, G, B) for 32-bit depth-24 formats.
//! Decoding is for BGRX clients only, which is what osvdi's display engine uses.

use flate2::{Decompress, FlushDecompress, Status};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::ProtocolError;
use crate::parse::{Parse, Reader};

/// Widest Tight rectangle the protocol allows.
pub const MAX_TIGHT_WIDTH: u16 = 2048;
/// Below this many bytes, basic compression sends the data as is (no zlib, no length).
const MIN_TO_COMPRESS: usize = 12;

/// One Tight rectangle as received, not yet decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tight {
    /// Bit `i` set: reset zlib stream `i` before this rectangle.
    pub reset: u8,
    pub kind: TightKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TightKind {
    /// The whole rectangle is this one TPIXEL.
    Fill(Vec<u8>),
    /// A baseline JPEG of the rectangle.
    Jpeg(Vec<u8>),
    /// Pixels through a filter, through zlib stream `stream` unless the data is short.
    Basic {
        stream: u8,
        filter: TightFilter,
        data: TightData,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TightFilter {
    /// One TPIXEL per pixel.
    Copy,
    /// Indices into these TPIXELs: one bit per pixel for two colours (rows padded to bytes,
    /// most significant bit first), one byte per pixel otherwise.
    Palette(Vec<Vec<u8>>),
    /// Each pixel as its difference from left + above - above-left, per colour component.
    Gradient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TightData {
    /// Fewer than 12 bytes, sent without compression.
    Plain(Vec<u8>),
    /// Bytes to feed the rectangle's zlib stream.
    Zlib(Vec<u8>),
}

/// Bytes per TPIXEL for a client format of `bpp` bytes per pixel: 3 for 32-bit formats (the
/// client's are true colour, depth 24, 8 bits a component), the pixel size otherwise.
fn tpixel_len(bpp: usize) -> usize {
    if bpp == 4 { 3 } else { bpp }
}

/// The compact length of RFB's Tight: 7 bits per byte, low first, at most 3 bytes.
fn compact_len(r: &mut Reader<'_>) -> Result<usize, Parse> {
    let mut len = 0usize;
    for i in 0..3 {
        let b = r.u8()?;
        if i == 2 {
            len |= usize::from(b) << 14;
            break;
        }
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok(len)
}

/// Parses the body of a `w`x`h` Tight rectangle (after its header). `spend` charges the
/// update's byte budget.
pub(crate) fn parse_tight(
    r: &mut Reader<'_>,
    w: u16,
    h: u16,
    bpp: usize,
    spend: &mut dyn FnMut(usize) -> Result<usize, Parse>,
) -> Result<Tight, Parse> {
    if w > MAX_TIGHT_WIDTH || h > crate::MAX_RECT_SIDE {
        return Err(ProtocolError::RectTooLarge { w, h }.into());
    }
    let tp = tpixel_len(bpp);
    let control = r.u8()?;
    let reset = control & 0x0f;
    let kind = match control >> 4 {
        0x8 => TightKind::Fill(r.take(tp)?.to_vec()),
        0x9 => {
            let len = compact_len(r)?;
            TightKind::Jpeg(r.take(spend(len)?)?.to_vec())
        }
        c if c & 0x8 == 0 => {
            let stream = c & 0x3;
            let filter = if c & 0x4 != 0 {
                match r.u8()? {
                    0 => TightFilter::Copy,
                    1 => {
                        let n = usize::from(r.u8()?) + 1;
                        let colours = r.take(n * tp)?.chunks_exact(tp).map(<[u8]>::to_vec);
                        TightFilter::Palette(colours.collect())
                    }
                    2 => TightFilter::Gradient,
                    other => return Err(ProtocolError::Tight(format!("filter {other}")).into()),
                }
            } else {
                TightFilter::Copy
            };
            let (w, h) = (usize::from(w), usize::from(h));
            let row = match &filter {
                TightFilter::Palette(c) if c.len() <= 2 => w.div_ceil(8),
                TightFilter::Palette(_) => w,
                TightFilter::Copy | TightFilter::Gradient => w * tp,
            };
            let size = row * h;
            let data = if size < MIN_TO_COMPRESS {
                TightData::Plain(r.take(size)?.to_vec())
            } else {
                let len = compact_len(r)?;
                TightData::Zlib(r.take(spend(len)?)?.to_vec())
            };
            TightKind::Basic {
                stream,
                filter,
                data,
            }
        }
        other => {
            return Err(ProtocolError::Tight(format!("compression type {other:#x}")).into());
        }
    };
    Ok(Tight { reset, kind })
}

/// Why a Tight rectangle could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TightError {
    #[error("Tight zlib stream {0} is corrupt")]
    Zlib(u8),
    #[error("Tight zlib stream {0} ended early")]
    ShortData(u8),
    #[error("Tight JPEG is corrupt: {0}")]
    Jpeg(String),
    #[error("Tight JPEG is {got:?}, the rectangle {want:?}")]
    JpegSize {
        got: (usize, usize),
        want: (u16, u16),
    },
    #[error("Tight palette index {0} out of range")]
    PaletteIndex(u8),
    #[error("Tight decoding needs a 32-bit client pixel format")]
    PixelFormat,
}

/// The client's half of a Tight connection: four zlib streams, kept for its whole life.
/// Feed it every Tight rectangle, in order.
pub struct TightDecoder {
    streams: [Decompress; 4],
}

impl std::fmt::Debug for TightDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TightDecoder").finish_non_exhaustive()
    }
}

impl Default for TightDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TightDecoder {
    pub fn new() -> Self {
        Self {
            streams: std::array::from_fn(|_| Decompress::new(true)),
        }
    }

    /// Decodes a `w`x`h` rectangle into BGRX pixels (`w * h * 4` bytes, row by row) for a
    /// client of `bpp` bytes per pixel (4 only).
    pub fn decode(&mut self, t: &Tight, w: u16, h: u16, bpp: usize) -> Result<Vec<u8>, TightError> {
        if bpp != 4 {
            return Err(TightError::PixelFormat);
        }
        for (i, s) in self.streams.iter_mut().enumerate() {
            if t.reset & (1 << i) != 0 {
                *s = Decompress::new(true);
            }
        }
        let (wu, hu) = (usize::from(w), usize::from(h));
        let n = wu * hu;
        match &t.kind {
            TightKind::Fill(p) => {
                let px = bgrx(p);
                Ok(px.repeat(n))
            }
            TightKind::Jpeg(data) => decode_jpeg(data, w, h),
            TightKind::Basic {
                stream,
                filter,
                data,
            } => {
                let row = match filter {
                    TightFilter::Palette(c) if c.len() <= 2 => wu.div_ceil(8),
                    TightFilter::Palette(_) => wu,
                    TightFilter::Copy | TightFilter::Gradient => wu * 3,
                };
                let raw = match data {
                    TightData::Plain(b) => b.clone(),
                    TightData::Zlib(z) => self.inflate(*stream, z, row * hu)?,
                };
                let mut out = vec![0u8; n * 4];
                match filter {
                    TightFilter::Copy => {
                        for (o, p) in out.chunks_exact_mut(4).zip(raw.chunks_exact(3)) {
                            o.copy_from_slice(&bgrx(p));
                        }
                    }
                    TightFilter::Palette(colours) => {
                        let pal: Vec<[u8; 4]> = colours.iter().map(|c| bgrx(c)).collect();
                        for y in 0..hu {
                            for x in 0..wu {
                                let idx = if pal.len() <= 2 {
                                    (raw[y * row + x / 8] >> (7 - x % 8)) & 1
                                } else {
                                    raw[y * row + x]
                                };
                                let c = pal
                                    .get(usize::from(idx))
                                    .ok_or(TightError::PaletteIndex(idx))?;
                                out[(y * wu + x) * 4..][..4].copy_from_slice(c);
                            }
                        }
                    }
                    TightFilter::Gradient => gradient(&raw, wu, hu, &mut out),
                }
                Ok(out)
            }
        }
    }

    /// Exactly `len` bytes out of stream `id`, which goes on where the last rectangle left it.
    fn inflate(&mut self, id: u8, input: &[u8], len: usize) -> Result<Vec<u8>, TightError> {
        let s = &mut self.streams[usize::from(id & 3)];
        let mut out = Vec::with_capacity(len);
        let mut pos = 0;
        while out.len() < len {
            let before_in = s.total_in();
            let status = s
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|_| TightError::Zlib(id))?;
            let used = usize::try_from(s.total_in() - before_in).unwrap_or(usize::MAX);
            pos = pos.saturating_add(used).min(input.len());
            if out.len() < len && (used == 0 || status == Status::StreamEnd) {
                return Err(TightError::ShortData(id));
            }
        }
        Ok(out)
    }
}

/// A TPIXEL (R, G, B) as BGRX.
fn bgrx(p: &[u8]) -> [u8; 4] {
    [p[2], p[1], p[0], 0]
}

/// Undoes the gradient filter: each component is the prediction (left + above - above-left,
/// clamped to 0..=255) plus the received difference, modulo 256.
fn gradient(raw: &[u8], w: usize, h: usize, out: &mut [u8]) {
    let mut prev = vec![0u8; w * 3];
    let mut cur = vec![0u8; w * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let left = if x > 0 {
                    i32::from(cur[(x - 1) * 3 + c])
                } else {
                    0
                };
                let up = i32::from(prev[x * 3 + c]);
                let up_left = if x > 0 {
                    i32::from(prev[(x - 1) * 3 + c])
                } else {
                    0
                };
                let pred = (left + up - up_left).clamp(0, 255) as u8;
                cur[x * 3 + c] = pred.wrapping_add(raw[(y * w + x) * 3 + c]);
            }
            out[(y * w + x) * 4..][..4].copy_from_slice(&bgrx(&cur[x * 3..x * 3 + 3]));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
}

fn decode_jpeg(data: &[u8], w: u16, h: u16) -> Result<Vec<u8>, TightError> {
    let options = DecoderOptions::default()
        .set_max_width(usize::from(w))
        .set_max_height(usize::from(h))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = JpegDecoder::new_with_options(ZCursor::new(data), options);
    d.decode_headers()
        .map_err(|e| TightError::Jpeg(format!("{e:?}")))?;
    let info = d
        .info()
        .ok_or_else(|| TightError::Jpeg("no header".into()))?;
    let got = (usize::from(info.width), usize::from(info.height));
    if got != (usize::from(w), usize::from(h)) {
        return Err(TightError::JpegSize { got, want: (w, h) });
    }
    let rgb = d.decode().map_err(|e| TightError::Jpeg(format!("{e:?}")))?;
    let n = got.0 * got.1;
    if rgb.len() < n * 3 {
        return Err(TightError::Jpeg("short output".into()));
    }
    Ok(rgb.chunks_exact(3).take(n).flat_map(bgrx).collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    fn parse(body: &[u8], w: u16, h: u16) -> Result<(Tight, usize), Parse> {
        let mut r = Reader { buf: body, pos: 0 };
        let mut spend = |n: usize| Ok(n);
        let t = parse_tight(&mut r, w, h, 4, &mut spend)?;
        Ok((t, r.pos))
    }

    #[test]
    fn compact_lengths() {
        for (bytes, want) in [
            (&[0x05][..], 5),
            (&[0x90, 0x4e], 10000),
            (&[0xff, 0xff, 0xff], (1 << 22) - 1),
        ] {
            let mut r = Reader { buf: bytes, pos: 0 };
            assert_eq!(compact_len(&mut r), Ok(want));
            assert_eq!(r.pos, bytes.len());
        }
    }

    #[test]
    fn fill_and_short_palette() {
        let (t, used) = parse(&[0x80, 1, 2, 3], 4, 4).unwrap();
        assert_eq!((t.kind.clone(), used), (TightKind::Fill(vec![1, 2, 3]), 4));
        let px = TightDecoder::new().decode(&t, 2, 1, 4).unwrap();
        assert_eq!(px, [3, 2, 1, 0, 3, 2, 1, 0]);

        // Two colours, 8x2: one byte a row, 2 bytes < 12: sent plain.
        let body = [0x40, 1, 1, 0, 0, 0, 255, 255, 255, 0b1000_0001, 0b0100_0000];
        let (t, used) = parse(&body, 8, 2).unwrap();
        assert_eq!(used, body.len());
        let px = TightDecoder::new().decode(&t, 8, 2, 4).unwrap();
        let white = |i: usize| px[i * 4] == 255;
        let on: Vec<_> = (0..16).filter(|&i| white(i)).collect();
        assert_eq!(on, [0, 7, 9]);
    }

    #[test]
    fn zlib_streams_carry_on_across_rects_and_reset() {
        // Copy filter, 4x1 pixels = 12 bytes: compressed on stream 1, twice in one stream.
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        let a: Vec<u8> = (0..12).collect();
        let b: Vec<u8> = (100..112).collect();
        z.write_all(&a).unwrap();
        z.flush().unwrap();
        let first = z.get_ref().clone();
        z.write_all(&b).unwrap();
        z.flush().unwrap();
        let second = z.get_ref()[first.len()..].to_vec();
        let rect = |reset: u8, data: &[u8]| {
            let mut v = vec![reset | 0x10];
            v.push(data.len() as u8);
            v.extend_from_slice(data);
            v
        };
        let mut dec = TightDecoder::new();
        let (t1, _) = parse(&rect(0, &first), 4, 1).unwrap();
        let (t2, _) = parse(&rect(0, &second), 4, 1).unwrap();
        assert_eq!(&dec.decode(&t1, 4, 1, 4).unwrap()[..4], [2, 1, 0, 0]);
        assert_eq!(&dec.decode(&t2, 4, 1, 4).unwrap()[..4], [102, 101, 100, 0]);
        // The second half alone, on a reset stream, is not a zlib stream.
        let (t3, _) = parse(&rect(0b10, &second), 4, 1).unwrap();
        assert!(dec.decode(&t3, 4, 1, 4).is_err());
    }

    #[test]
    fn gradient_undoes_the_prediction() {
        // 2x2 of one grey (10): differences 10, 0 / 0, 0 in each component.
        let mut raw = vec![0u8; 12];
        raw[..3].copy_from_slice(&[10, 10, 10]);
        let mut out = vec![0u8; 16];
        gradient(&raw, 2, 2, &mut out);
        assert!(out.chunks(4).all(|p| p == [10, 10, 10, 0]), "{out:?}");
    }

    #[test]
    fn refuses_bad_rects() {
        let inv = |body: &[u8], w| match parse(body, w, 1) {
            Err(Parse::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(matches!(inv(&[0xa0], 1), ProtocolError::Tight(_)));
        assert!(matches!(inv(&[0x40, 7], 1), ProtocolError::Tight(_)));
        assert_eq!(
            inv(&[0x80, 0, 0, 0], 2049),
            ProtocolError::RectTooLarge { w: 2049, h: 1 }
        );
        // A palette index past the palette.
        let (t, _) = parse(&[0x40, 1, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2, 5], 1, 1).unwrap();
        assert_eq!(
            TightDecoder::new().decode(&t, 1, 1, 4),
            Err(TightError::PaletteIndex(5))
        );
        let (t, _) = parse(&[0x90, 3, 1, 2, 3], 1, 1).unwrap();
        assert!(matches!(
            TightDecoder::new().decode(&t, 1, 1, 4),
            Err(TightError::Jpeg(_))
        ));
    }
}
