//! Damage tracking on a grid of tiles, so the cost of recording and coalescing is bounded by
//! the number of tiles (510 at 1080p), however many rectangles arrive.

use crate::geom::Rect;

/// Tile edge in pixels.
pub const TILE: u32 = 64;

/// Which parts of the framebuffer changed since the last `take`.
#[derive(Debug, Clone)]
pub struct Damage {
    width: u32,
    height: u32,
    cols: usize,
    rows: usize,
    dirty: Vec<bool>,
    any: bool,
}

impl Damage {
    pub fn new(width: u32, height: u32) -> Self {
        let cols = width.div_ceil(TILE) as usize;
        let rows = height.div_ceil(TILE) as usize;
        Self {
            width,
            height,
            cols,
            rows,
            dirty: vec![false; cols * rows],
            any: false,
        }
    }

    /// Forgets everything and tracks a new size; the whole new area is dirty.
    pub fn resize(&mut self, width: u32, height: u32) {
        *self = Self::new(width, height);
        self.add_all();
    }

    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// Marks the whole area dirty.
    pub fn add_all(&mut self) {
        self.add(Rect::new(0, 0, self.width, self.height));
    }

    /// Marks the tiles `rect` touches (clipped to the area) dirty.
    pub fn add(&mut self, rect: Rect) {
        let rect = rect.clip(self.width, self.height);
        if rect.is_empty() {
            return;
        }
        let (c0, c1) = (
            (rect.x / TILE) as usize,
            (rect.right() - 1) as usize / TILE as usize,
        );
        let (r0, r1) = (
            (rect.y / TILE) as usize,
            (rect.bottom() - 1) as usize / TILE as usize,
        );
        for row in r0..=r1 {
            self.dirty[row * self.cols + c0..=row * self.cols + c1].fill(true);
        }
        self.any = true;
    }

    /// The dirty area as few rectangles (tile-aligned, clipped to the framebuffer), and a clean
    /// slate. Runs of dirty tiles in a row become one rectangle; a run with the same columns as
    /// one in the row above extends it downwards. Empty when nothing changed.
    pub fn take(&mut self) -> Vec<Rect> {
        if !self.any {
            return Vec::new();
        }
        // (first column, last column + 1, first row) of rectangles still open at this row.
        let mut open: Vec<(usize, usize, usize)> = Vec::new();
        let mut done = Vec::new();
        for row in 0..=self.rows {
            let mut runs = Vec::new();
            if row < self.rows {
                let line = &self.dirty[row * self.cols..(row + 1) * self.cols];
                let mut c = 0;
                while c < self.cols {
                    if line[c] {
                        let start = c;
                        while c < self.cols && line[c] {
                            c += 1;
                        }
                        runs.push((start, c));
                    } else {
                        c += 1;
                    }
                }
            }
            let mut next = Vec::with_capacity(runs.len());
            for (c0, c1) in runs {
                match open.iter().position(|&(a, b, _)| (a, b) == (c0, c1)) {
                    Some(i) => next.push(open.swap_remove(i)),
                    None => next.push((c0, c1, row)),
                }
            }
            done.extend(
                open.drain(..)
                    .map(|(c0, c1, r0)| self.to_rect(c0, c1, r0, row)),
            );
            open = next;
        }
        self.dirty.fill(false);
        self.any = false;
        done.sort_by_key(|r| (r.y, r.x));
        done
    }

    fn to_rect(&self, c0: usize, c1: usize, r0: usize, r1: usize) -> Rect {
        Rect::new(
            c0 as u32 * TILE,
            r0 as u32 * TILE,
            (c1 as u32 * TILE).min(self.width) - c0 as u32 * TILE,
            (r1 as u32 * TILE).min(self.height) - r0 as u32 * TILE,
        )
        .clip(self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_changed_is_empty() {
        let mut d = Damage::new(1920, 1080);
        assert!(d.is_empty());
        assert!(d.take().is_empty());
        d.add(Rect::new(5000, 5000, 10, 10));
        d.add(Rect::new(10, 10, 0, 10));
        assert!(d.take().is_empty());
    }

    #[test]
    fn small_rects_in_one_tile_become_that_tile() {
        let mut d = Damage::new(1920, 1080);
        d.add(Rect::new(70, 70, 3, 3));
        d.add(Rect::new(100, 120, 8, 4));
        assert_eq!(d.take(), vec![Rect::new(64, 64, 64, 64)]);
        assert!(d.take().is_empty(), "take leaves a clean slate");
    }

    #[test]
    fn neighbours_merge_across_and_down() {
        let mut d = Damage::new(1920, 1080);
        // A 3x2-tile block from two rectangles, plus a separate tile to the right.
        d.add(Rect::new(0, 0, 150, 10));
        d.add(Rect::new(10, 64, 170, 64));
        d.add(Rect::new(640, 0, 1, 1));
        assert_eq!(
            d.take(),
            vec![Rect::new(0, 0, 192, 128), Rect::new(640, 0, 64, 64)]
        );
    }

    #[test]
    fn different_spans_do_not_merge() {
        let mut d = Damage::new(256, 256);
        d.add(Rect::new(0, 0, 128, 64));
        d.add(Rect::new(0, 64, 64, 64));
        assert_eq!(
            d.take(),
            vec![Rect::new(0, 0, 128, 64), Rect::new(0, 64, 64, 64)]
        );
    }

    #[test]
    fn edges_are_clipped() {
        let mut d = Damage::new(100, 70);
        d.add(Rect::new(90, 60, 100, 100));
        assert_eq!(d.take(), vec![Rect::new(64, 0, 36, 70)]);
        d.add_all();
        assert_eq!(d.take(), vec![Rect::new(0, 0, 100, 70)]);
    }

    #[test]
    fn covers_every_added_pixel() {
        let mut d = Damage::new(1000, 700);
        let added = [
            Rect::new(3, 5, 300, 2),
            Rect::new(900, 600, 99, 99),
            Rect::new(400, 100, 1, 500),
            Rect::new(0, 699, 1000, 1),
        ];
        for r in added {
            d.add(r);
        }
        let out = d.take();
        for r in added {
            for (x, y) in [(r.x, r.y), (r.right() - 1, r.bottom() - 1)] {
                assert!(
                    out.iter()
                        .any(|o| x >= o.x && x < o.right() && y >= o.y && y < o.bottom())
                );
            }
        }
        for (i, a) in out.iter().enumerate() {
            for b in &out[i + 1..] {
                let apart =
                    a.right() <= b.x || b.right() <= a.x || a.bottom() <= b.y || b.bottom() <= a.y;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }
}
