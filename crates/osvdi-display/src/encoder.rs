//! The video encoder interface every backend implements.

use crate::convert::I420Frame;
use crate::error::DisplayError;

/// One encoded picture as H.264 Annex B (start code + NAL unit, repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// An IDR picture (with SPS/PPS in front): a decoder can start here.
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// A video encoder: one picture in, one picture out, no delay (no B-frames, no look-ahead),
/// so a backend such as ffmpeg's libx264 in `zerolatency` fits the same shape.
///
/// Backends produce keyframes only when asked (`force_keyframe`) or after `resize`, never on a
/// timer, and never drop a picture to meet a bit rate: the caller encodes only when something
/// changed, so every picture it hands in matters.
pub trait VideoEncoder: Send {
    fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, DisplayError>;

    /// Prepares for pictures of a new (even) size; the next picture is a keyframe.
    fn resize(&mut self, width: u32, height: u32) -> Result<(), DisplayError>;

    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
}
