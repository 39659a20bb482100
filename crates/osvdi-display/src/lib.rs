//! The display engine's pure core: a BGRX framebuffer with damage tracking, BGRX→I420
//! conversion, `trait VideoEncoder` (openh264 built in; libx264 and NVENC through ffmpeg with the
//! `ffmpeg` feature) and the `Pipeline` that ties them together.
//!
//! Nothing here does IO or reads the clock (apart from `probe_encoders`, once at start-up):
//! updates and `now` come in, encoded frames go out.
//! **Invariant:** no damage, no encoder call, no bytes (see `Pipeline::next_frame`).

mod convert;
mod damage;
mod encoder;
mod error;
#[cfg(feature = "ffmpeg")]
mod ffmpeg_encoder;
mod framebuffer;
mod geom;
pub mod nal;
mod openh264_encoder;
mod pipeline;
mod select;

pub use convert::{I420Frame, bgrx_to_i420, bgrx_to_i420_rect};
pub use damage::{Damage, TILE};
pub use encoder::{EncodedFrame, VideoEncoder};
pub use error::DisplayError;
#[cfg(feature = "ffmpeg")]
pub use ffmpeg_encoder::{FfmpegCodec, FfmpegConfig, FfmpegEncoder};
pub use framebuffer::{BYTES_PER_PIXEL, Framebuffer};
pub use geom::Rect;
pub use openh264_encoder::{OpenH264Config, OpenH264Encoder, OpenH264Usage};
pub use pipeline::{Pipeline, Update};
pub use select::{EncoderKind, EncoderProbe, describe, new_encoder, probe_encoders};
