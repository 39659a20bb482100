//! Integration tests of osvdi-display: the openh264 backend end to end and the pipeline.

mod h264;
mod pipeline;

use osvdi_display::{Framebuffer, Rect};

/// A "text" screen: light background, dark 1-2 px strokes in 8x16 character cells, a few
/// coloured words, a title bar. Deterministic for a seed.
pub fn text_screen(width: u32, height: u32, seed: u32) -> Framebuffer {
    let mut fb = Framebuffer::new(width, height);
    fb.fill(fb.bounds(), [0xf4, 0xf4, 0xf4, 0]).unwrap();
    fb.fill(
        Rect::new(0, 0, width, 24.min(height)),
        [0x80, 0x40, 0x20, 0],
    )
    .unwrap();
    let mut rng = Rng(seed | 1);
    for row in (32..height.saturating_sub(16)).step_by(18) {
        for col in (8..width.saturating_sub(8)).step_by(8) {
            if rng.next_u32().is_multiple_of(7) {
                continue; // a space
            }
            type_glyph(&mut fb, col, row, &mut rng);
        }
    }
    fb
}

/// Draws one glyph-like cell at `(x, y)`: a few strokes in an 8x16 box.
pub fn type_glyph(fb: &mut Framebuffer, x: u32, y: u32, rng: &mut Rng) {
    let colour = match rng.next_u32() % 10 {
        0 => [0x20, 0x20, 0xc0, 0],
        1 => [0x20, 0x90, 0x20, 0],
        _ => [0x10, 0x10, 0x10, 0],
    };
    fb.fill(Rect::new(x, y, 8, 16), [0xf4, 0xf4, 0xf4, 0])
        .unwrap();
    for _ in 0..3 {
        let vertical = rng.next_u32().is_multiple_of(2);
        let (sx, sy) = (x + 1 + rng.next_u32() % 5, y + 2 + rng.next_u32() % 10);
        let rect = if vertical {
            Rect::new(sx, sy, 1, 3 + rng.next_u32() % 4)
        } else {
            Rect::new(sx - 1, sy, 2 + rng.next_u32() % 4, 1)
        };
        fb.fill(rect, colour).unwrap();
    }
}

/// xorshift32.
#[derive(Debug)]
pub struct Rng(pub u32);

impl Rng {
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}
