//! BGRX → I420 (BT.601, limited range), row by row in plain integer arithmetic with no
//! per-pixel branches, so the compiler vectorises it.

use crate::error::DisplayError;
use crate::framebuffer::{BYTES_PER_PIXEL, Framebuffer};
use crate::geom::Rect;

/// A planar 4:2:0 picture: a full-size Y plane, U and V at half width and height.
/// Width and height are even; planes are packed (stride = width, width / 2).
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I420Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl I420Frame {
    /// A black frame. Sizes must be even and not zero.
    pub fn new(width: u32, height: u32) -> Result<Self, DisplayError> {
        if width == 0 || height == 0 || width % 2 == 1 || height % 2 == 1 {
            return Err(DisplayError::BadSize { width, height });
        }
        let luma = width as usize * height as usize;
        Ok(Self {
            width,
            height,
            y: vec![16; luma],
            u: vec![128; luma / 4],
            v: vec![128; luma / 4],
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn y(&self) -> &[u8] {
        &self.y
    }

    pub fn u(&self) -> &[u8] {
        &self.u
    }

    pub fn v(&self) -> &[u8] {
        &self.v
    }
}

impl openh264::formats::YUVSource for I420Frame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = self.width as usize;
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// Converts the whole framebuffer into `out` (same, even, size).
pub fn bgrx_to_i420(fb: &Framebuffer, out: &mut I420Frame) -> Result<(), DisplayError> {
    bgrx_to_i420_rect(fb, fb.bounds(), out)
}

/// Converts `rect` (widened to even corners) of the framebuffer into the same place of `out`.
pub fn bgrx_to_i420_rect(
    fb: &Framebuffer,
    rect: Rect,
    out: &mut I420Frame,
) -> Result<(), DisplayError> {
    if (fb.width(), fb.height()) != (out.width, out.height) {
        return Err(DisplayError::SizeMismatch {
            width: out.width,
            height: out.height,
            actual_width: fb.width(),
            actual_height: fb.height(),
        });
    }
    let rect = rect
        .clip(fb.width(), fb.height())
        .align_even(fb.width(), fb.height());
    if rect.is_empty() {
        return Ok(());
    }
    let (w, cw) = (out.width as usize, out.width as usize / 2);
    let (x, cx, n) = (rect.x as usize, rect.x as usize / 2, rect.width as usize);
    let stride = fb.stride();
    let src_of =
        |row: usize| &fb.data()[row * stride + x * BYTES_PER_PIXEL..][..n * BYTES_PER_PIXEL];
    for row in (rect.y as usize..rect.bottom() as usize).step_by(2) {
        let (top, bottom) = (src_of(row), src_of(row + 1));
        luma_row(top, &mut out.y[row * w + x..][..n]);
        luma_row(bottom, &mut out.y[(row + 1) * w + x..][..n]);
        let c = row / 2 * cw + cx;
        chroma_row(
            top,
            bottom,
            &mut out.u[c..][..n / 2],
            &mut out.v[c..][..n / 2],
        );
    }
    Ok(())
}

/// Y = 16 + (66 R + 129 G + 25 B + 128) / 256. Each pixel is read as one little-endian
/// `u32` (B in the low byte), which the compiler turns into wide loads and shifts.
#[inline]
fn luma_row(src: &[u8], dst: &mut [u8]) {
    for (px, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
        let p = u32::from_le_bytes([px[0], px[1], px[2], px[3]]);
        let (b, g, r) = (p & 0xff, (p >> 8) & 0xff, (p >> 16) & 0xff);
        *y = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
    }
}

/// U and V of each 2x2 block from the sums of its four pixels (hence / 1024, not / 256).
#[inline]
fn chroma_row(top: &[u8], bottom: &[u8], u: &mut [u8], v: &mut [u8]) {
    let pairs = top.chunks_exact(8).zip(bottom.chunks_exact(8));
    for ((t, b), (u, v)) in pairs.zip(u.iter_mut().zip(v.iter_mut())) {
        let sum = |i: usize| {
            i32::from(t[i]) + i32::from(t[i + 4]) + i32::from(b[i]) + i32::from(b[i + 4])
        };
        let (bs, gs, rs) = (sum(0), sum(1), sum(2));
        *u = (((-38 * rs - 74 * gs + 112 * bs + 512) >> 10) + 128) as u8;
        *v = (((112 * rs - 94 * gs - 18 * bs + 512) >> 10) + 128) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formulas in floating point.
    fn reference(fb: &Framebuffer) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (w, h) = (fb.width(), fb.height());
        let rgb = |x, y| {
            let p = fb.pixel(x, y);
            (f64::from(p[2]), f64::from(p[1]), f64::from(p[0]))
        };
        let mut y_plane = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = rgb(x, y);
                y_plane
                    .push((16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0).round() as u8);
            }
        }
        let (mut u_plane, mut v_plane) = (Vec::new(), Vec::new());
        for y in (0..h).step_by(2) {
            for x in (0..w).step_by(2) {
                let px = [rgb(x, y), rgb(x + 1, y), rgb(x, y + 1), rgb(x + 1, y + 1)];
                let r = px.iter().map(|p| p.0).sum::<f64>() / 4.0;
                let g = px.iter().map(|p| p.1).sum::<f64>() / 4.0;
                let b = px.iter().map(|p| p.2).sum::<f64>() / 4.0;
                u_plane
                    .push((128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0).round() as u8);
                v_plane.push((128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0).round() as u8);
            }
        }
        (y_plane, u_plane, v_plane)
    }

    fn noise_fb(w: u32, h: u32) -> Framebuffer {
        let mut fb = Framebuffer::new(w, h);
        let mut s = 0x2545_f491_u32;
        let bytes: Vec<u8> = (0..w * h * 4)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 24) as u8
            })
            .collect();
        fb.apply_raw(fb.bounds(), &bytes).unwrap();
        fb
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(a, b)| a.abs_diff(*b)).max().unwrap()
    }

    #[test]
    fn matches_reference_within_one() {
        let mut fb = noise_fb(66, 34);
        // The extremes too.
        fb.fill(Rect::new(0, 0, 2, 2), [255, 255, 255, 0]).unwrap();
        fb.fill(Rect::new(2, 0, 2, 2), [0, 0, 0, 0]).unwrap();
        fb.fill(Rect::new(4, 0, 2, 2), [0, 0, 255, 0]).unwrap();
        fb.fill(Rect::new(6, 0, 2, 2), [255, 0, 0, 0]).unwrap();
        let mut out = I420Frame::new(66, 34).unwrap();
        bgrx_to_i420(&fb, &mut out).unwrap();
        let (y, u, v) = reference(&fb);
        assert!(max_diff(out.y(), &y) <= 1);
        assert!(max_diff(out.u(), &u) <= 1);
        assert!(max_diff(out.v(), &v) <= 1);
        assert_eq!((out.y()[0], out.y()[2]), (235, 16));
    }

    #[test]
    fn rect_conversion_touches_only_its_blocks() {
        let fb = noise_fb(64, 32);
        let mut full = I420Frame::new(64, 32).unwrap();
        bgrx_to_i420(&fb, &mut full).unwrap();
        let mut part = I420Frame::new(64, 32).unwrap();
        // An odd rectangle widens to 10..22 x 4..10.
        bgrx_to_i420_rect(&fb, Rect::new(11, 5, 10, 4), &mut part).unwrap();
        for y in 0..32usize {
            for x in 0..64usize {
                let inside = (10..22).contains(&x) && (4..10).contains(&y);
                let want = if inside { full.y()[y * 64 + x] } else { 16 };
                assert_eq!(part.y()[y * 64 + x], want, "at {x},{y}");
            }
        }
        assert_eq!(part.u()[2 * 32 + 5], full.u()[2 * 32 + 5]);
        assert_eq!(part.u()[2 * 32 + 11], 128);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(I420Frame::new(3, 2).is_err());
        assert!(I420Frame::new(0, 2).is_err());
        let fb = Framebuffer::new(4, 4);
        let mut out = I420Frame::new(4, 2).unwrap();
        assert!(bgrx_to_i420(&fb, &mut out).is_err());
    }
}
