//! ffmpeg's H.264 encoders, behind the cargo feature `ffmpeg` (off by default: the usual
//! libavcodec build links libx264, which is GPL).
//!
//! - `libx264`, preset `ultrafast`, tune `zerolatency`: software, the fastest per picture.
//! - `h264_nvenc`: NVIDIA's hardware encoder, fed the same system-memory I420 pictures; used
//!   only where opening it on a small test picture works (a GPU with NVENC and its driver).
//! - `h264_vaapi` is detected and reported, not used: it takes pictures in hardware surfaces,
//!   which needs libavutil's hwcontext API, not wrapped by the safe binding used here.
//!
//! Every backend is set up like openh264's: no B-frames, no look-ahead, no periodic or
//! scene-change IDR, SPS/PPS in front of each IDR (Annex B), one picture in → one access unit
//! out.

use std::sync::Once;

use ffmpeg::codec::{self, Context};
use ffmpeg::format::Pixel;
use ffmpeg::{Dictionary, Packet, Rational, frame, picture};
use ffmpeg_next as ffmpeg;

use crate::convert::I420Frame;
use crate::encoder::{EncodedFrame, VideoEncoder};
use crate::error::DisplayError;
use crate::select::{EncoderKind, EncoderProbe};

/// Which of ffmpeg's H.264 encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfmpegCodec {
    X264,
    Nvenc,
}

impl FfmpegCodec {
    /// libavcodec's name for it.
    pub fn codec_name(self) -> &'static str {
        match self {
            Self::X264 => "libx264",
            Self::Nvenc => "h264_nvenc",
        }
    }
}

/// How an ffmpeg backend is set up.
#[derive(Debug, Clone, Copy)]
pub struct FfmpegConfig {
    pub codec: FfmpegCodec,
    /// Constant quality: x264's CRF, NVENC's constant QP (lower: sharper, more bytes).
    pub quality: u8,
    /// The frame rate the rate control budgets for.
    pub max_fps: u32,
    /// Encoder threads (x264 sliced threads; 1: the caller's thread only).
    pub threads: u16,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        Self {
            codec: FfmpegCodec::X264,
            quality: 23,
            max_fps: 30,
            threads: 1,
        }
    }
}

/// An ffmpeg H.264 encoder.
pub struct FfmpegEncoder {
    config: FfmpegConfig,
    /// `None` until the first picture (and again after a resize): opened lazily at the size
    /// of the pictures it gets.
    encoder: Option<ffmpeg::encoder::Video>,
    picture: frame::Video,
    packet: Packet,
    width: u32,
    height: u32,
    pts: i64,
}

impl std::fmt::Debug for FfmpegEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfmpegEncoder")
            .field("config", &self.config)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl FfmpegEncoder {
    /// Opens the encoder at once, so that a missing codec or device is an error here rather
    /// than at the first picture.
    pub fn new(config: FfmpegConfig, width: u32, height: u32) -> Result<Self, DisplayError> {
        let mut this = Self {
            config,
            encoder: None,
            picture: frame::Video::empty(),
            packet: Packet::empty(),
            width: 0,
            height: 0,
            pts: 0,
        };
        this.resize(width, height)?;
        this.encoder = Some(open(config, width, height)?);
        Ok(this)
    }

    pub fn config(&self) -> &FfmpegConfig {
        &self.config
    }
}

impl VideoEncoder for FfmpegEncoder {
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
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            fresh => fresh.insert(open(self.config, self.width, self.height)?),
        };
        copy_plane(&mut self.picture, 0, frame.y(), self.width as usize);
        copy_plane(&mut self.picture, 1, frame.u(), self.width as usize / 2);
        copy_plane(&mut self.picture, 2, frame.v(), self.width as usize / 2);
        self.picture.set_pts(Some(self.pts));
        self.pts += 1;
        self.picture.set_kind(if force_keyframe {
            picture::Type::I
        } else {
            picture::Type::None
        });
        encoder.send_frame(&self.picture).map_err(native_error)?;
        let mut out = EncodedFrame {
            keyframe: false,
            data: Vec::new(),
        };
        // No delay is configured, so the picture's access unit is ready now.
        while encoder.receive_packet(&mut self.packet).is_ok() {
            out.keyframe |= self.packet.is_key();
            out.data
                .extend_from_slice(self.packet.data().unwrap_or_default());
        }
        if out.data.is_empty() {
            return Err(DisplayError::Encoder(format!(
                "{} held a picture back (a delaying option is set)",
                self.config.codec.codec_name()
            )));
        }
        Ok(out)
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), DisplayError> {
        crate::openh264_encoder::check_size(width, height)?;
        if (width, height) != (self.width, self.height) {
            self.encoder = None;
            self.picture = frame::Video::new(Pixel::YUV420P, width, height);
            self.width = width;
            self.height = height;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        self.config.codec.codec_name()
    }
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Only errors, and through libav's own logger (stderr): the probe's expected
        // failures are reported by osvdi instead.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Quiet);
        let _ = ffmpeg::init();
    });
}

fn open(
    config: FfmpegConfig,
    width: u32,
    height: u32,
) -> Result<ffmpeg::encoder::Video, DisplayError> {
    init();
    let name = config.codec.codec_name();
    let codec = ffmpeg::encoder::find_by_name(name)
        .ok_or_else(|| DisplayError::Encoder(format!("libavcodec has no {name} encoder")))?;
    let mut video = Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(native_error)?;
    video.set_width(width);
    video.set_height(height);
    video.set_format(Pixel::YUV420P);
    video.set_time_base(Rational::new(1, config.max_fps as i32));
    video.set_frame_rate(Some(Rational::new(config.max_fps as i32, 1)));
    video.set_max_b_frames(0);
    // No periodic IDR: the longest GOP libavcodec takes.
    video.set_gop(i32::MAX as u32);
    let mut threading = codec::threading::Config::kind(codec::threading::Type::Slice);
    threading.count = usize::from(config.threads);
    video.set_threading(threading);
    let mut options = Dictionary::new();
    let quality = config.quality.to_string();
    match config.codec {
        FfmpegCodec::X264 => {
            options.set("preset", "ultrafast");
            options.set("tune", "zerolatency");
            options.set("crf", &quality);
            options.set("forced-idr", "1");
            options.set("x264-params", "scenecut=0:keyint=infinite:rc-lookahead=0");
        }
        FfmpegCodec::Nvenc => {
            options.set("preset", "p1");
            options.set("tune", "ull");
            options.set("zerolatency", "1");
            options.set("delay", "0");
            options.set("rc", "constqp");
            options.set("qp", &quality);
            options.set("forced-idr", "1");
            options.set("no-scenecut", "1");
        }
    }
    video
        .open_with(options)
        .map_err(|e| DisplayError::Encoder(format!("cannot open {name}: {e}")))
}

fn copy_plane(picture: &mut frame::Video, plane: usize, src: &[u8], width: usize) {
    let stride = picture.stride(plane);
    let dst = picture.data_mut(plane);
    for (row, line) in src.chunks_exact(width).enumerate() {
        dst[row * stride..row * stride + width].copy_from_slice(line);
    }
}

fn native_error(e: ffmpeg::Error) -> DisplayError {
    DisplayError::Encoder(e.to_string())
}

/// Tries each of ffmpeg's H.264 encoders on a small picture; call once at start-up.
pub(crate) fn probe() -> Vec<EncoderProbe> {
    init();
    let mut found = Vec::new();
    for codec in [FfmpegCodec::X264, FfmpegCodec::Nvenc] {
        let name = codec.codec_name();
        let kind = Some(match codec {
            FfmpegCodec::X264 => EncoderKind::X264,
            FfmpegCodec::Nvenc => EncoderKind::Nvenc,
        });
        let config = FfmpegConfig {
            codec,
            ..FfmpegConfig::default()
        };
        let result = FfmpegEncoder::new(config, 256, 144).and_then(|mut encoder| {
            let picture = I420Frame::new(256, 144)?;
            encoder.encode(&picture, false).map(|_| ())
        });
        found.push(match result {
            Ok(()) => EncoderProbe {
                name,
                kind,
                usable: true,
                detail: "encoded a test picture".to_owned(),
            },
            Err(e) => EncoderProbe {
                name,
                kind,
                usable: false,
                detail: e.to_string(),
            },
        });
    }
    let vaapi = "h264_vaapi";
    let render_nodes = render_nodes();
    found.push(EncoderProbe {
        name: vaapi,
        kind: None,
        usable: false,
        detail: match (
            ffmpeg::encoder::find_by_name(vaapi),
            render_nodes.as_slice(),
        ) {
            (None, _) => "libavcodec has no h264_vaapi encoder".to_owned(),
            (Some(_), []) => "no GPU render node in /dev/dri".to_owned(),
            (Some(_), nodes) => format!(
                "render node {} found; not used: VA-API needs pictures in hardware surfaces, \
                 which osvdi does not upload yet",
                nodes.join(", ")
            ),
        },
    });
    found
}

fn render_nodes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/dev/dri") else {
        return Vec::new();
    };
    let mut nodes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains("renderD"))
        .collect();
    nodes.sort();
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nal::{NAL_IDR, NAL_SPS, nal_type, split_annex_b};
    use crate::{Framebuffer, Rect, bgrx_to_i420};

    /// A picture with stripes whose position depends on `shift`.
    fn picture(width: u32, height: u32, shift: u32) -> I420Frame {
        let mut fb = Framebuffer::new(width, height);
        for x in (0..width).step_by(16) {
            let shade = ((x + shift * 8) % 200 + 30) as u8;
            let rect = Rect::new(x, (shift * 3) % (height / 2), 8.min(width - x), height / 2);
            fb.fill(rect, [shade, 255 - shade, shade / 2, 0]).unwrap();
        }
        let mut frame = I420Frame::new(width, height).unwrap();
        bgrx_to_i420(&fb, &mut frame).unwrap();
        frame
    }

    fn types(frame: &EncodedFrame) -> Vec<u8> {
        split_annex_b(&frame.data)
            .into_iter()
            .map(nal_type)
            .collect()
    }

    #[test]
    fn x264_gives_one_access_unit_per_picture_and_keyframes_only_when_asked() {
        let config = FfmpegConfig::default();
        let mut encoder = FfmpegEncoder::new(config, 320, 240).unwrap();
        let first = encoder.encode(&picture(320, 240, 0), false).unwrap();
        assert!(first.keyframe);
        let first_types = types(&first);
        assert!(first_types.contains(&NAL_SPS), "{first_types:?}");
        assert!(first_types.contains(&NAL_IDR), "{first_types:?}");
        // 200 more pictures: no IDR on a timer or a scene change.
        for i in 1..200 {
            let shift = if i % 50 == 0 { 100 } else { i };
            let next = encoder.encode(&picture(320, 240, shift), false).unwrap();
            assert!(!next.keyframe, "picture {i} is a keyframe");
        }
        let asked = encoder.encode(&picture(320, 240, 7), true).unwrap();
        assert!(asked.keyframe);
        assert!(types(&asked).contains(&NAL_SPS));
    }

    #[test]
    fn resize_reopens_with_a_keyframe_and_wrong_sizes_are_refused() {
        let mut encoder = FfmpegEncoder::new(FfmpegConfig::default(), 320, 240).unwrap();
        encoder.encode(&picture(320, 240, 0), false).unwrap();
        assert!(matches!(
            encoder.encode(&picture(640, 480, 0), false),
            Err(DisplayError::SizeMismatch { .. })
        ));
        encoder.resize(640, 480).unwrap();
        assert!(
            encoder
                .encode(&picture(640, 480, 0), false)
                .unwrap()
                .keyframe
        );
        assert!(matches!(
            encoder.resize(641, 480),
            Err(DisplayError::BadSize { .. })
        ));
    }

    #[test]
    fn probe_finds_x264_and_explains_the_others() {
        let found = probe();
        let names: Vec<_> = found.iter().map(|p| p.name).collect();
        assert_eq!(names, ["libx264", "h264_nvenc", "h264_vaapi"]);
        assert!(found[0].usable, "{:?}", found[0]);
        for p in &found[1..] {
            assert!(p.usable || !p.detail.is_empty(), "{p:?}");
        }
    }
}
