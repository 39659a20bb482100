//! The desktop's picture: BGRX, 32 bits per pixel, rows `stride` bytes apart.

use crate::error::DisplayError;
use crate::geom::Rect;

pub const BYTES_PER_PIXEL: usize = 4;

/// A BGRX framebuffer (byte order B, G, R, X in memory, as RFB's usual 32bpp little-endian
/// true-colour format delivers it). New and resized framebuffers are black.
#[derive(Clone)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    stride: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framebuffer")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .finish_non_exhaustive()
    }
}

impl Framebuffer {
    pub fn new(width: u32, height: u32) -> Self {
        let stride = width as usize * BYTES_PER_PIXEL;
        Self {
            width,
            height,
            stride,
            data: vec![0; stride * height as usize],
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from one row to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// The BGRX bytes of one pixel.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let at = y as usize * self.stride + x as usize * BYTES_PER_PIXEL;
        let mut px = [0; 4];
        px.copy_from_slice(&self.data[at..at + BYTES_PER_PIXEL]);
        px
    }

    /// Changes the size; the content is kept where old and new overlap, the rest is black.
    pub fn resize(&mut self, width: u32, height: u32) {
        let mut next = Framebuffer::new(width, height);
        let keep = (self.width.min(width) as usize) * BYTES_PER_PIXEL;
        for row in 0..self.height.min(height) as usize {
            next.data[row * next.stride..][..keep]
                .copy_from_slice(&self.data[row * self.stride..][..keep]);
        }
        *self = next;
    }

    /// Writes raw BGRX pixels (rows packed, `rect.width * 4` bytes each) into `rect`.
    pub fn apply_raw(&mut self, rect: Rect, bytes: &[u8]) -> Result<(), DisplayError> {
        self.check(rect)?;
        let row_len = rect.width as usize * BYTES_PER_PIXEL;
        let expected = row_len * rect.height as usize;
        if bytes.len() != expected {
            return Err(DisplayError::BadLength {
                expected,
                actual: bytes.len(),
            });
        }
        if row_len == 0 {
            return Ok(());
        }
        let x0 = rect.x as usize * BYTES_PER_PIXEL;
        for (i, src) in bytes.chunks_exact(row_len).enumerate() {
            let at = (rect.y as usize + i) * self.stride + x0;
            self.data[at..at + row_len].copy_from_slice(src);
        }
        Ok(())
    }

    /// Fills `rect` with one BGRX colour.
    pub fn fill(&mut self, rect: Rect, bgrx: [u8; 4]) -> Result<(), DisplayError> {
        self.check(rect)?;
        let x0 = rect.x as usize * BYTES_PER_PIXEL;
        let row_len = rect.width as usize * BYTES_PER_PIXEL;
        for y in rect.y..rect.bottom() {
            let at = y as usize * self.stride + x0;
            for px in self.data[at..at + row_len].chunks_exact_mut(BYTES_PER_PIXEL) {
                px.copy_from_slice(&bgrx);
            }
        }
        Ok(())
    }

    /// Copies the pixels at `(src_x, src_y)` (of `dst`'s size) to `dst`, as RFB's CopyRect
    /// does; source and destination may overlap.
    pub fn apply_copy_rect(
        &mut self,
        dst: Rect,
        src_x: u32,
        src_y: u32,
    ) -> Result<(), DisplayError> {
        self.check(dst)?;
        self.check(Rect::new(src_x, src_y, dst.width, dst.height))?;
        let row_len = dst.width as usize * BYTES_PER_PIXEL;
        let copy_row = |data: &mut Vec<u8>, i: u32| {
            let from = (src_y + i) as usize * self.stride + src_x as usize * BYTES_PER_PIXEL;
            let to = (dst.y + i) as usize * self.stride + dst.x as usize * BYTES_PER_PIXEL;
            data.copy_within(from..from + row_len, to);
        };
        // Moving down: copy the bottom row first so no source row is overwritten before use.
        if src_y < dst.y {
            for i in (0..dst.height).rev() {
                copy_row(&mut self.data, i);
            }
        } else {
            for i in 0..dst.height {
                copy_row(&mut self.data, i);
            }
        }
        Ok(())
    }

    fn check(&self, rect: Rect) -> Result<(), DisplayError> {
        if rect.fits(self.width, self.height) {
            Ok(())
        } else {
            Err(DisplayError::OutOfBounds {
                x: rect.x,
                y: rect.y,
                width: rect.width,
                height: rect.height,
                fb_width: self.width,
                fb_height: self.height,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_copy_rect_overlapping() {
        let mut fb = Framebuffer::new(4, 4);
        let bytes: Vec<u8> = (0..16u8).flat_map(|i| [i, i, i, 0]).collect();
        fb.apply_raw(fb.bounds(), &bytes).unwrap();
        // Scroll up by one row: rows 1..4 move to 0..3.
        fb.apply_copy_rect(Rect::new(0, 0, 4, 3), 0, 1).unwrap();
        assert_eq!(fb.pixel(0, 0)[0], 4);
        assert_eq!(fb.pixel(3, 2)[0], 15);
        // Scroll down by one row.
        fb.apply_copy_rect(Rect::new(0, 1, 4, 3), 0, 0).unwrap();
        assert_eq!(fb.pixel(0, 1)[0], 4);
        assert_eq!(fb.pixel(3, 3)[0], 15);
        // Overlapping horizontal move.
        fb.apply_copy_rect(Rect::new(1, 0, 3, 1), 0, 0).unwrap();
        assert_eq!(
            [fb.pixel(1, 0)[0], fb.pixel(2, 0)[0], fb.pixel(3, 0)[0]],
            [4, 5, 6]
        );
    }

    #[test]
    fn rejects_bad_input() {
        let mut fb = Framebuffer::new(4, 4);
        assert!(matches!(
            fb.apply_raw(Rect::new(3, 3, 2, 1), &[0; 8]),
            Err(DisplayError::OutOfBounds { .. })
        ));
        assert!(matches!(
            fb.apply_raw(Rect::new(0, 0, 2, 1), &[0; 7]),
            Err(DisplayError::BadLength {
                expected: 8,
                actual: 7
            })
        ));
        assert!(fb.apply_copy_rect(Rect::new(0, 0, 2, 2), 3, 3).is_err());
        assert!(fb.apply_raw(Rect::new(u32::MAX, 0, 2, 1), &[0; 8]).is_err());
    }

    #[test]
    fn resize_keeps_overlap() {
        let mut fb = Framebuffer::new(2, 2);
        fb.fill(fb.bounds(), [9, 9, 9, 0]).unwrap();
        fb.resize(3, 1);
        assert_eq!(fb.pixel(1, 0), [9, 9, 9, 0]);
        assert_eq!(fb.pixel(2, 0), [0, 0, 0, 0]);
        assert_eq!(fb.data().len(), 12);
    }
}
