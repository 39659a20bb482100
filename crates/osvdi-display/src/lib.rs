//! The display engine's pure core: a BGRX framebuffer with damage tracking, BGRX→I420
//! conversion, `trait VideoEncoder` (openh264 today) and the `Pipeline` that ties them together.
//!
//! Nothing here does IO or reads the clock: updates and `now` come in, encoded frames go out.
//! **Invariant:** no damage, no encoder call, no bytes (see `Pipeline::next_frame`).

mod convert;
mod damage;
mod encoder;
mod error;
mod framebuffer;
mod geom;
pub mod nal;
mod openh264_encoder;
mod pipeline;

pub use convert::{I420Frame, bgrx_to_i420, bgrx_to_i420_rect};
pub use damage::{Damage, TILE};
pub use encoder::{EncodedFrame, VideoEncoder};
pub use error::DisplayError;
pub use framebuffer::{BYTES_PER_PIXEL, Framebuffer};
pub use geom::Rect;
pub use openh264_encoder::{OpenH264Config, OpenH264Encoder, OpenH264Usage};
pub use pipeline::{Pipeline, Update};
