//! The display session: framebuffer, damage, colour conversion and encoder in one sans-IO
//! object. Updates and `now` go in, encoded pictures come out; the driver owns the clock.

use std::time::{Duration, Instant};

use crate::convert::{I420Frame, bgrx_to_i420_rect};
use crate::damage::Damage;
use crate::encoder::{EncodedFrame, VideoEncoder};
use crate::error::DisplayError;
use crate::framebuffer::Framebuffer;
use crate::geom::Rect;

/// A change to the desktop's picture, as an RFB client decodes it.
#[derive(Debug, Clone, Copy)]
pub enum Update<'a> {
    /// Packed BGRX pixels for `rect`.
    Raw { rect: Rect, bytes: &'a [u8] },
    /// Copy of the pixels at `(src_x, src_y)` to `dst` (RFB CopyRect: scrolling, moving windows).
    CopyRect { dst: Rect, src_x: u32, src_y: u32 },
    /// One colour over `rect` (RFB RRE/hextile backgrounds).
    Fill { rect: Rect, bgrx: [u8; 4] },
    /// The desktop changed size; the picture is black until updates arrive.
    Resize { width: u32, height: u32 },
}

/// Owns the framebuffer, its damage and the encoder.
///
/// **Invariant:** `next_frame` calls the encoder only when something changed (or a keyframe
/// was asked for): no damage, no encoder call, no bytes. The cursor is not drawn into the
/// picture; it travels separately.
pub struct Pipeline {
    fb: Framebuffer,
    damage: Damage,
    frame: I420Frame,
    encoder: Box<dyn VideoEncoder>,
    visible: (u32, u32),
    min_interval: Duration,
    last_encode: Option<Instant>,
    keyframe_wanted: bool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("encoder", &self.encoder.name())
            .field("visible", &self.visible)
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A session for a `width` x `height` desktop that encodes at most once per
    /// `min_interval`. Odd sizes are coded one pixel larger (H.264 4:2:0 needs even sizes),
    /// the extra column or row black.
    pub fn new(
        mut encoder: Box<dyn VideoEncoder>,
        width: u32,
        height: u32,
        min_interval: Duration,
    ) -> Result<Self, DisplayError> {
        let (cw, ch) = coded_size(width, height);
        let frame = I420Frame::new(cw, ch)?;
        encoder.resize(cw, ch)?;
        let mut damage = Damage::new(cw, ch);
        damage.add_all();
        Ok(Self {
            fb: Framebuffer::new(cw, ch),
            damage,
            frame,
            encoder,
            visible: (width, height),
            min_interval,
            last_encode: None,
            keyframe_wanted: true,
        })
    }

    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// The desktop's size (the coded picture may be one pixel larger each way).
    pub fn visible_size(&self) -> (u32, u32) {
        self.visible
    }

    pub fn encoder_name(&self) -> &'static str {
        self.encoder.name()
    }

    /// Applies one change; rectangles must lie inside the desktop.
    pub fn on_update(&mut self, update: Update<'_>) -> Result<(), DisplayError> {
        let (vw, vh) = self.visible;
        let check = |rect: Rect| {
            if rect.fits(vw, vh) {
                Ok(())
            } else {
                Err(DisplayError::OutOfBounds {
                    x: rect.x,
                    y: rect.y,
                    width: rect.width,
                    height: rect.height,
                    fb_width: vw,
                    fb_height: vh,
                })
            }
        };
        match update {
            Update::Raw { rect, bytes } => {
                check(rect)?;
                self.fb.apply_raw(rect, bytes)?;
                self.damage.add(rect);
            }
            Update::CopyRect { dst, src_x, src_y } => {
                check(dst)?;
                check(Rect::new(src_x, src_y, dst.width, dst.height))?;
                self.fb.apply_copy_rect(dst, src_x, src_y)?;
                self.damage.add(dst);
            }
            Update::Fill { rect, bgrx } => {
                check(rect)?;
                self.fb.fill(rect, bgrx)?;
                self.damage.add(rect);
            }
            Update::Resize { width, height } => self.resize(width, height)?,
        }
        Ok(())
    }

    /// Asks for a keyframe (a viewer joined or lost data): the next picture is an IDR of
    /// the whole screen.
    pub fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
        self.damage.add_all();
    }

    /// When `next_frame` will next have something to give, if anything is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.damage.is_empty() {
            return None;
        }
        self.last_encode.map(|last| last + self.min_interval)
    }

    /// Encodes what changed since the last picture, if anything did and the frame interval
    /// has passed; `None` (and no encoder call) otherwise.
    pub fn next_frame(&mut self, now: Instant) -> Result<Option<EncodedFrame>, DisplayError> {
        if self.damage.is_empty() {
            return Ok(None);
        }
        if let Some(at) = self.poll_timeout()
            && now < at
        {
            return Ok(None);
        }
        for rect in self.damage.take() {
            bgrx_to_i420_rect(&self.fb, rect, &mut self.frame)?;
        }
        let encoded = self.encoder.encode(&self.frame, self.keyframe_wanted)?;
        self.keyframe_wanted = false;
        self.last_encode = Some(now);
        Ok(Some(encoded))
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), DisplayError> {
        let (cw, ch) = coded_size(width, height);
        let frame = I420Frame::new(cw, ch)?;
        self.encoder.resize(cw, ch)?;
        self.frame = frame;
        self.fb.resize(cw, ch);
        // The padding column/row must stay black when shrinking onto old content.
        if (cw, ch) != (width, height) {
            let black = [0, 0, 0, 0];
            self.fb.fill(Rect::new(width, 0, cw - width, ch), black)?;
            self.fb.fill(Rect::new(0, height, cw, ch - height), black)?;
        }
        self.damage.resize(cw, ch);
        self.visible = (width, height);
        self.keyframe_wanted = true;
        Ok(())
    }
}

fn coded_size(width: u32, height: u32) -> (u32, u32) {
    (width.saturating_add(1) & !1, height.saturating_add(1) & !1)
}
