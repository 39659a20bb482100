//! Which video encoder a site uses: what this build and machine offer ([`probe_encoders`]),
//! the choice ([`EncoderKind::choose`]) and the factory ([`new_encoder`]).

use crate::encoder::VideoEncoder;
use crate::error::DisplayError;
use crate::openh264_encoder::{OpenH264Config, OpenH264Encoder};

/// An H.264 encoder osvdi can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderKind {
    /// Cisco's openh264, built in (BSD): always there.
    Openh264,
    /// ffmpeg's libx264 (cargo feature `ffmpeg`; GPL).
    X264,
    /// ffmpeg's h264_nvenc on an NVIDIA GPU (cargo feature `ffmpeg`).
    Nvenc,
}

impl EncoderKind {
    /// The name used in the configuration file and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openh264 => "openh264",
            Self::X264 => "x264",
            Self::Nvenc => "nvenc",
        }
    }

    /// `auto` picks hardware first, then x264 (a build with the `ffmpeg` feature has accepted
    /// its licence, and it measures better: see the crate's benches), then openh264.
    /// A requested encoder that is not usable is an error naming why.
    pub fn choose(
        requested: Option<EncoderKind>,
        probes: &[EncoderProbe],
    ) -> Result<EncoderKind, String> {
        let usable = |kind: EncoderKind| probes.iter().find(|p| p.kind == Some(kind));
        match requested {
            Some(kind) => match usable(kind) {
                Some(p) if p.usable => Ok(kind),
                Some(p) => Err(format!(
                    "video encoder {} is not usable: {}",
                    p.name, p.detail
                )),
                None => Err(format!("video encoder {} was not probed", kind.as_str())),
            },
            None => Ok([EncoderKind::Nvenc, EncoderKind::X264]
                .into_iter()
                .find(|&kind| usable(kind).is_some_and(|p| p.usable))
                .unwrap_or(EncoderKind::Openh264)),
        }
    }
}

impl std::str::FromStr for EncoderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openh264" => Ok(Self::Openh264),
            "x264" => Ok(Self::X264),
            "nvenc" => Ok(Self::Nvenc),
            other => Err(format!(
                "unknown video encoder {other:?} (expected auto, openh264, x264 or nvenc)"
            )),
        }
    }
}

/// What [`probe_encoders`] found out about one encoder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EncoderProbe {
    /// `openh264`, or libavcodec's name: `libx264`, `h264_nvenc`, `h264_vaapi`.
    pub name: &'static str,
    /// The choice it stands for (`None`: reported only).
    pub kind: Option<EncoderKind>,
    /// It can be used for desktops on this machine.
    pub usable: bool,
    /// What was found, or why it cannot be used.
    pub detail: String,
}

/// Tries every encoder this build has on a small picture; call once at start-up (a few ms
/// for the software encoders, longer where a GPU driver loads).
pub fn probe_encoders() -> Vec<EncoderProbe> {
    let openh264 = OpenH264Encoder::new(OpenH264Config::default(), 256, 144)
        .and_then(|mut e| e.encode(&crate::I420Frame::new(256, 144)?, false).map(drop));
    let mut found = vec![EncoderProbe {
        name: "openh264",
        kind: Some(EncoderKind::Openh264),
        usable: openh264.is_ok(),
        detail: match openh264 {
            Ok(()) => "built in; encoded a test picture".to_owned(),
            Err(e) => e.to_string(),
        },
    }];
    #[cfg(feature = "ffmpeg")]
    found.extend(crate::ffmpeg_encoder::probe());
    #[cfg(not(feature = "ffmpeg"))]
    found.extend(
        [
            ("libx264", Some(EncoderKind::X264)),
            ("h264_nvenc", Some(EncoderKind::Nvenc)),
            ("h264_vaapi", None),
        ]
        .map(|(name, kind)| EncoderProbe {
            name,
            kind,
            usable: false,
            detail: "not in this build (cargo feature `ffmpeg`)".to_owned(),
        }),
    );
    found
}

/// One line for the log: `openh264 (in use), libx264: not in this build ...`.
pub fn describe(chosen: EncoderKind, probes: &[EncoderProbe]) -> String {
    probes
        .iter()
        .map(|p| match (p.kind == Some(chosen), p.usable) {
            (true, _) => format!("{} (in use)", p.name),
            (false, true) => format!("{} (available)", p.name),
            (false, false) => format!("{}: {}", p.name, p.detail),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A new encoder of `kind` for `width` x `height` pictures, with the engine's settings.
pub fn new_encoder(
    kind: EncoderKind,
    width: u32,
    height: u32,
) -> Result<Box<dyn VideoEncoder>, DisplayError> {
    match kind {
        EncoderKind::Openh264 => Ok(Box::new(OpenH264Encoder::new(
            OpenH264Config::default(),
            width,
            height,
        )?)),
        #[cfg(feature = "ffmpeg")]
        EncoderKind::X264 | EncoderKind::Nvenc => {
            use crate::ffmpeg_encoder::{FfmpegCodec, FfmpegConfig, FfmpegEncoder};
            let codec = if kind == EncoderKind::X264 {
                FfmpegCodec::X264
            } else {
                FfmpegCodec::Nvenc
            };
            let config = FfmpegConfig {
                codec,
                ..FfmpegConfig::default()
            };
            Ok(Box::new(FfmpegEncoder::new(config, width, height)?))
        }
        #[cfg(not(feature = "ffmpeg"))]
        EncoderKind::X264 | EncoderKind::Nvenc => Err(DisplayError::Encoder(format!(
            "{} is not in this build (cargo feature `ffmpeg`)",
            kind.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(name: &'static str, kind: EncoderKind, usable: bool) -> EncoderProbe {
        EncoderProbe {
            name,
            kind: Some(kind),
            usable,
            detail: if usable { "ok" } else { "no GPU" }.to_owned(),
        }
    }

    #[test]
    fn auto_prefers_hardware_then_x264_then_openh264() {
        let base = probe("openh264", EncoderKind::Openh264, true);
        let x264 = probe("libx264", EncoderKind::X264, true);
        let nvenc = probe("h264_nvenc", EncoderKind::Nvenc, true);
        let no_nvenc = probe("h264_nvenc", EncoderKind::Nvenc, false);
        let choose = |p: &[EncoderProbe]| EncoderKind::choose(None, p).unwrap();
        assert_eq!(choose(std::slice::from_ref(&base)), EncoderKind::Openh264);
        assert_eq!(
            choose(&[base.clone(), x264.clone(), no_nvenc.clone()]),
            EncoderKind::X264
        );
        assert_eq!(choose(&[base.clone(), x264, nvenc]), EncoderKind::Nvenc);
        let err = EncoderKind::choose(Some(EncoderKind::Nvenc), &[base, no_nvenc]).unwrap_err();
        assert_eq!(err, "video encoder h264_nvenc is not usable: no GPU");
    }

    #[test]
    fn the_probe_always_finds_openh264_and_names_the_rest() {
        let found = probe_encoders();
        assert_eq!(found[0].name, "openh264");
        assert!(found[0].usable, "{:?}", found[0]);
        let names: Vec<_> = found.iter().map(|p| p.name).collect();
        assert_eq!(names, ["openh264", "libx264", "h264_nvenc", "h264_vaapi"]);
        let chosen = EncoderKind::choose(None, &found).unwrap();
        let line = describe(chosen, &found);
        assert!(line.contains("(in use)"), "{line}");
        assert!(line.contains("h264_vaapi: "), "{line}");
    }

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        for kind in [EncoderKind::Openh264, EncoderKind::X264, EncoderKind::Nvenc] {
            assert_eq!(kind.as_str().parse::<EncoderKind>(), Ok(kind));
        }
        assert!("h265".parse::<EncoderKind>().unwrap_err().contains("h265"));
        assert!(new_encoder(EncoderKind::Openh264, 64, 64).is_ok());
    }
}
