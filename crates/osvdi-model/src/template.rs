//! Desktop templates and their image versions.

use crate::{
    GroupId, NameError, ParseError, TemplateId, UnixMillis, UserId, validate_tag,
    validate_template_name,
};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::ParseError { kind: $kind, value: s.chars().take(64).collect() }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Who may see and launch a template besides its owner and the admins.
    Visibility, "visibility", {
        /// Only the owner (and admins).
        Private = "private",
        /// Members of the groups it is shared with.
        Groups = "groups",
        /// Every account.
        Everyone = "everyone",
    }
);

text_enum!(
    /// How people reach a desktop made from the template.
    DisplayProtocol, "display protocol", {
        /// In the browser (VNC console or the H.264 stream, both fed from the VM's VNC display).
        Vnc = "vnc",
        /// In a native SPICE client such as remote-viewer.
        Spice = "spice",
    }
);

text_enum!(
    /// The disk image formats osvdi accepts.
    ImageFormat, "image format", {
        Qcow2 = "qcow2",
        Raw = "raw",
    }
);

text_enum!(
    /// Where an image version is in its life.
    VersionState, "version state", {
        /// Bytes are arriving; not usable, invisible to users.
        Uploading = "uploading",
        /// Verified and usable.
        Ready = "ready",
    }
);

/// What a steward says about a template: everything but identity, ownership and sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    pub name: String,
    pub description: String,
    /// Free text such as "ubuntu-24.04" or "windows-11"; informs the guest set-up.
    pub os: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    /// An mdev type name (e.g. "nvidia-35", "i915-GVTg_V5_4") when the desktop needs a vGPU.
    pub vgpu_type: Option<String>,
    pub protocols: Vec<DisplayProtocol>,
    pub tags: Vec<String>,
    /// How osvdi tells that a booting desktop is ready.
    pub ready: ReadyRule,
    /// End a desktop nobody has used for this long.
    pub idle_timeout_min: Option<u32>,
    /// End a desktop this long after launch at the latest.
    pub max_lifetime_min: Option<u32>,
    /// How many started, never-used desktops to keep ready for on-demand launches.
    pub warm_pool: u32,
}

/// How osvdi tells that a desktop of a template has finished booting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyRule {
    /// The guest prints this line on its first serial port (e.g. from a boot script).
    SerialMarker(String),
    /// The guest gives no signal: ready this many seconds after it started.
    AfterSeconds(u32),
}

impl Default for ReadyRule {
    fn default() -> Self {
        ReadyRule::AfterSeconds(20)
    }
}

impl std::fmt::Display for ReadyRule {
    /// The stored form: `marker:TEXT` or `after:SECONDS`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadyRule::SerialMarker(m) => write!(f, "marker:{m}"),
            ReadyRule::AfterSeconds(s) => write!(f, "after:{s}"),
        }
    }
}

impl std::str::FromStr for ReadyRule {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError {
            kind: "ready rule",
            value: s.chars().take(64).collect(),
        };
        match s.split_once(':') {
            Some(("marker", m)) if !m.is_empty() => Ok(ReadyRule::SerialMarker(m.to_owned())),
            Some(("after", n)) => n.parse().map(ReadyRule::AfterSeconds).map_err(|_| err()),
            _ => Err(err()),
        }
    }
}

/// Limits of a [`TemplateSpec`]: generous, only there to refuse nonsense early.
pub mod limits {
    pub const VCPUS: std::ops::RangeInclusive<u32> = 1..=256;
    pub const MEMORY_MB: std::ops::RangeInclusive<u32> = 128..=4 * 1024 * 1024;
    pub const DISK_GB: std::ops::RangeInclusive<u32> = 1..=64 * 1024;
    pub const DESCRIPTION_CHARS: usize = 4000;
    pub const TAGS: usize = 32;
}

impl TemplateSpec {
    /// Checks every field, returning the first problem as a sentence for a person.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_template_name(&self.name)?;
        if self.description.chars().count() > limits::DESCRIPTION_CHARS {
            return Err(SpecError::Field(
                "description is longer than 4000 characters",
            ));
        }
        if self.os.chars().count() > 64 || self.os.chars().any(char::is_control) {
            return Err(SpecError::Field(
                "os must be at most 64 printable characters",
            ));
        }
        if !limits::VCPUS.contains(&self.vcpus) {
            return Err(SpecError::Field("vcpus must be between 1 and 256"));
        }
        if !limits::MEMORY_MB.contains(&self.memory_mb) {
            return Err(SpecError::Field(
                "memory_mb must be between 128 and 4194304",
            ));
        }
        if !limits::DISK_GB.contains(&self.disk_gb) {
            return Err(SpecError::Field("disk_gb must be between 1 and 65536"));
        }
        if let Some(t) = &self.vgpu_type {
            let ok = !t.is_empty()
                && t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                return Err(SpecError::Field(
                    "vgpu_type must be an mdev type name such as nvidia-35",
                ));
            }
        }
        if self.protocols.is_empty() {
            return Err(SpecError::Field(
                "protocols must name at least one display protocol",
            ));
        }
        if self.tags.len() > limits::TAGS {
            return Err(SpecError::Field("at most 32 tags"));
        }
        for t in &self.tags {
            validate_tag(t)?;
        }
        match &self.ready {
            ReadyRule::SerialMarker(m)
                if m.is_empty() || m.len() > 64 || !m.chars().all(|c| c.is_ascii_graphic()) =>
            {
                return Err(SpecError::Field(
                    "the ready marker must be 1 to 64 printable ASCII characters",
                ));
            }
            ReadyRule::AfterSeconds(s) if *s > 3600 => {
                return Err(SpecError::Field("the ready delay is at most 3600 seconds"));
            }
            _ => {}
        }
        if self.warm_pool > 100 {
            return Err(SpecError::Field("warm_pool is at most 100"));
        }
        if self.idle_timeout_min == Some(0) || self.max_lifetime_min == Some(0) {
            return Err(SpecError::Field(
                "timeouts are at least one minute (leave them out for none)",
            ));
        }
        Ok(())
    }

    /// The disk size in bytes a desktop of this template gets.
    pub fn disk_bytes(&self) -> u64 {
        u64::from(self.disk_gb) * 1024 * 1024 * 1024
    }
}

/// Why a [`TemplateSpec`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("Invalid template: {0}")]
    Field(&'static str),
}

/// A template as stored: its spec, owner and sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub spec: TemplateSpec,
    pub owner: UserId,
    pub visibility: Visibility,
    /// From where and when its desktops may be used.
    pub policy: crate::AccessPolicy,
    /// The groups it is shared with; meaningful when `visibility` is [`Visibility::Groups`].
    pub shared_with: Vec<GroupId>,
    /// The newest ready version, if any: what a new desktop starts from.
    pub current_version: Option<u32>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// One uploaded disk image of a template. Versions are numbered from 1 and never reused while
/// they exist; a desktop keeps the version it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub template: TemplateId,
    pub version: u32,
    pub state: VersionState,
    /// Set once ready.
    pub format: Option<ImageFormat>,
    pub size_bytes: u64,
    pub virtual_size: u64,
    /// Hex SHA-256 of the image file as uploaded.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub created_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TemplateSpec {
        TemplateSpec {
            name: "Ubuntu course".into(),
            description: String::new(),
            os: "ubuntu-24.04".into(),
            vcpus: 2,
            memory_mb: 4096,
            disk_gb: 20,
            vgpu_type: None,
            protocols: vec![DisplayProtocol::Vnc],
            tags: vec!["course".into()],
            ready: ReadyRule::default(),
            idle_timeout_min: None,
            max_lifetime_min: Some(480),
            warm_pool: 0,
        }
    }

    #[test]
    fn valid_spec() {
        assert_eq!(spec().validate(), Ok(()));
        assert_eq!(spec().disk_bytes(), 20 << 30);
    }

    #[test]
    fn invalid_specs() {
        let cases: [fn(&mut TemplateSpec); 10] = [
            |s| s.ready = ReadyRule::SerialMarker("has space".into()),
            |s| s.ready = ReadyRule::AfterSeconds(99_999),
            |s| s.idle_timeout_min = Some(0),
            |s| s.vcpus = 0,
            |s| s.memory_mb = 64,
            |s| s.disk_gb = 0,
            |s| s.vgpu_type = Some("a/../b".into()),
            |s| s.protocols.clear(),
            |s| s.tags = vec!["Bad Tag".into()],
            |s| s.name = String::new(),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut s = spec();
            f(&mut s);
            assert!(s.validate().is_err(), "case {i} should be refused");
        }
    }

    #[test]
    fn text_round_trip() {
        for v in Visibility::ALL {
            assert_eq!(v.as_str().parse::<Visibility>(), Ok(*v));
        }
        assert!("public".parse::<Visibility>().is_err());
        for r in [
            ReadyRule::SerialMarker("OSVDI-READY".into()),
            ReadyRule::AfterSeconds(20),
        ] {
            assert_eq!(r.to_string().parse::<ReadyRule>(), Ok(r));
        }
        assert!("after:x".parse::<ReadyRule>().is_err());
        assert!("marker:".parse::<ReadyRule>().is_err());
    }
}
