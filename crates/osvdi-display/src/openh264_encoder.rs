//! The openh264 backend (Cisco's BSD-licensed encoder, built from source by `openh264-sys2`).

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, QpRange,
    RateControlMode, UsageType,
};

use crate::convert::I420Frame;
use crate::encoder::{EncodedFrame, VideoEncoder};
use crate::error::DisplayError;

/// openh264's two real-time tunings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenH264Usage {
    /// `SCREEN_CONTENT_REAL_TIME`: screen-content tools (e.g. scrolling detection).
    Screen,
    /// `CAMERA_VIDEO_REAL_TIME`.
    Camera,
}

/// How the openh264 backend is set up.
#[derive(Debug, Clone, Copy)]
pub struct OpenH264Config {
    pub usage: OpenH264Usage,
    /// The rate control's target, bits per second.
    pub bitrate_bps: u32,
    /// The frame rate the rate control budgets for.
    pub max_fps: f32,
    /// The highest quantiser the rate control may use (lower: sharper text, more bytes).
    pub max_qp: u8,
    /// Encoder threads (1: the caller's thread only).
    pub threads: u16,
}

/// Camera mode by measurement (`cargo bench -p osvdi-display`, 1080p, one core): typing
/// 6.4 ms and 2,972 B per picture at 39.8 dB, scrolling 14.6 ms / 26 KB at 38.8 dB; screen
/// mode took 32 ms and 46 ms, and coded typing in 57 B per picture at 34.5 dB (it leaves
/// small changes behind).
impl Default for OpenH264Config {
    fn default() -> Self {
        Self {
            usage: OpenH264Usage::Camera,
            bitrate_bps: 8_000_000,
            max_fps: 30.0,
            max_qp: 35,
            threads: 1,
        }
    }
}

/// openh264 with frame skipping off, no periodic or scene-change IDR (keyframes only on
/// request and after a resize), quality-mode rate control.
pub struct OpenH264Encoder {
    config: OpenH264Config,
    encoder: Encoder,
    width: u32,
    height: u32,
    /// No picture encoded at this size yet (the first one is an IDR anyway).
    fresh: bool,
}

impl std::fmt::Debug for OpenH264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenH264Encoder")
            .field("config", &self.config)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl OpenH264Encoder {
    pub fn new(config: OpenH264Config, width: u32, height: u32) -> Result<Self, DisplayError> {
        check_size(width, height)?;
        let usage = match config.usage {
            OpenH264Usage::Screen => UsageType::ScreenContentRealTime,
            OpenH264Usage::Camera => UsageType::CameraVideoRealTime,
        };
        let native = EncoderConfig::new()
            .usage_type(usage)
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .scene_change_detect(false)
            .rate_control_mode(RateControlMode::Quality)
            .bitrate(BitRate::from_bps(config.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(config.max_fps))
            .qp(QpRange::new(0, config.max_qp))
            .complexity(Complexity::Low)
            .num_threads(config.threads);
        let encoder =
            Encoder::with_api_config(OpenH264API::from_source(), native).map_err(native_error)?;
        Ok(Self {
            config,
            encoder,
            width,
            height,
            fresh: true,
        })
    }

    pub fn config(&self) -> &OpenH264Config {
        &self.config
    }
}

impl VideoEncoder for OpenH264Encoder {
    fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, DisplayError> {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(DisplayError::SizeMismatch {
                width: self.width,
                height: self.height,
                actual_width: frame.width(),
                actual_height: frame.height(),
            });
        }
        // Before the first picture the encoder is not initialised; that picture is an IDR.
        if force_keyframe && !self.fresh {
            self.encoder.force_intra_frame();
        }
        let stream = self.encoder.encode(frame).map_err(native_error)?;
        self.fresh = false;
        Ok(EncodedFrame {
            keyframe: matches!(stream.frame_type(), FrameType::IDR | FrameType::I),
            data: stream.to_vec(),
        })
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), DisplayError> {
        check_size(width, height)?;
        // The wrapper re-initialises itself, with an IDR, when a picture's size changes.
        self.width = width;
        self.height = height;
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self.config.usage {
            OpenH264Usage::Screen => "openh264-screen",
            OpenH264Usage::Camera => "openh264-camera",
        }
    }
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), DisplayError> {
    let (long, short) = (width.max(height), width.min(height));
    if width == 0 || height == 0 || width % 2 == 1 || height % 2 == 1 || long > 3840 || short > 2160
    {
        return Err(DisplayError::BadSize { width, height });
    }
    Ok(())
}

fn native_error(e: openh264::Error) -> DisplayError {
    DisplayError::Encoder(e.to_string())
}
