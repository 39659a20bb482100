//! Rectangles in framebuffer pixels.

/// An axis-aligned rectangle; `x`/`y` is the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// One past the right edge (saturating, so a malformed rectangle cannot wrap).
    pub const fn right(&self) -> u32 {
        self.x.saturating_add(self.width)
    }

    /// One past the bottom edge (saturating).
    pub const fn bottom(&self) -> u32 {
        self.y.saturating_add(self.height)
    }

    pub const fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// Whether the rectangle lies inside a `width` x `height` area.
    pub const fn fits(&self, width: u32, height: u32) -> bool {
        self.right() <= width && self.bottom() <= height
    }

    /// The part of the rectangle inside a `width` x `height` area (possibly empty).
    pub fn clip(&self, width: u32, height: u32) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Rect::new(
            x,
            y,
            self.right().min(width) - x,
            self.bottom().min(height) - y,
        )
    }

    /// The smallest rectangle with even corners that covers this one, clipped to the area
    /// (chroma in I420 covers 2x2 pixels; `width`/`height` are even).
    pub fn align_even(&self, width: u32, height: u32) -> Rect {
        let x = self.x & !1;
        let y = self.y & !1;
        let right = (self.right().saturating_add(1) & !1).min(width);
        let bottom = (self.bottom().saturating_add(1) & !1).min(height);
        Rect::new(x, y, right.saturating_sub(x), bottom.saturating_sub(y))
    }
}
