//! The JSON shapes of the API, converted by hand from and to domain types.

use std::time::{Duration, UNIX_EPOCH};

use osvdi_model::{
    AuditEntry, DisplayProtocol, Template, TemplateSpec, TemplateVersion, UnixMillis, User,
    Visibility,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// RFC 3339 text for a stored time.
pub(crate) fn rfc3339(t: UnixMillis) -> String {
    let st = UNIX_EPOCH + Duration::from_millis(u64::try_from(t.0).unwrap_or(0));
    humantime::format_rfc3339_millis(st).to_string()
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct LoginResponse {
    /// Use as `Authorization: Bearer <token>`; also set as the `osvdi_session` cookie.
    pub token: String,
    pub expires_at: String,
    pub user: UserDto,
    /// The desktop started for this person at login, when their only template auto-assigns.
    pub session: Option<SessionDto>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserDto {
    pub id: String,
    pub name: String,
    /// `user`, `steward` or `admin`.
    pub role: String,
    pub created_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.to_string(),
            name: u.name.clone(),
            role: u.role.to_string(),
            created_at: rfc3339(u.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MeDto {
    #[serde(flatten)]
    pub user: UserDto,
    pub groups: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateUser {
    pub name: String,
    #[serde(default = "default_role")]
    pub role: String,
    pub password: String,
}

fn default_role() -> String {
    "user".into()
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateUser {
    pub role: Option<String>,
    /// A new password; ends the user's sessions.
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateGroup {
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct GroupDto {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
    pub created_at: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub os: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    /// An mdev type name, e.g. `nvidia-35`.
    pub vgpu_type: Option<String>,
    /// `vnc` (browser) and/or `spice` (native client); default `["vnc"]`.
    #[serde(default = "default_protocols")]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// How osvdi tells the desktop is ready: `marker:TEXT` (the guest prints TEXT on its first
    /// serial port) or `after:SECONDS` (default `after:20`).
    #[serde(default)]
    pub ready: Option<String>,
    /// End desktops unused for this many minutes.
    pub idle_timeout_min: Option<u32>,
    /// End desktops this many minutes after launch at the latest.
    pub max_lifetime_min: Option<u32>,
    /// Keep this many started, never-used desktops ready for instant launches (default 0).
    #[serde(default)]
    pub warm_pool: u32,
    /// `private` (default), `groups` or `everyone`.
    #[serde(default = "default_visibility")]
    pub visibility: String,
    /// Group names, for `visibility: groups`.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn default_protocols() -> Vec<String> {
    vec!["vnc".into()]
}

fn default_visibility() -> String {
    "private".into()
}

/// A partial change of a template's description; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateTemplate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub os: Option<String>,
    pub vcpus: Option<u32>,
    pub memory_mb: Option<u32>,
    pub disk_gb: Option<u32>,
    /// Set to `""` to remove the vGPU.
    pub vgpu_type: Option<String>,
    pub protocols: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub ready: Option<String>,
    /// Set to 0 to remove the limit.
    pub idle_timeout_min: Option<u32>,
    /// Set to 0 to remove the limit.
    pub max_lifetime_min: Option<u32>,
    pub warm_pool: Option<u32>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct SharingDto {
    /// `private`, `groups` or `everyone`.
    pub visibility: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TemplateDto {
    pub id: String,
    pub name: String,
    pub description: String,
    pub os: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    pub vgpu_type: Option<String>,
    pub protocols: Vec<String>,
    pub tags: Vec<String>,
    pub ready: String,
    pub idle_timeout_min: Option<u32>,
    pub max_lifetime_min: Option<u32>,
    pub warm_pool: u32,
    pub owner_id: String,
    pub visibility: String,
    pub groups: Vec<String>,
    /// The newest ready version: what a new desktop starts from. `null` until an image is uploaded.
    pub current_version: Option<u32>,
    /// From where and when its desktops may be used.
    pub policy: PolicyDto,
    /// Whether the caller may launch it now, from where they are.
    pub available: bool,
    /// The policy in a sentence.
    pub access: String,
    /// Why not, when not available.
    pub denied_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TemplateDto {
    pub(crate) fn new(t: &Template, groups: Vec<String>, access: osvdi_core::Access) -> Self {
        TemplateDto {
            id: t.id.to_string(),
            name: t.spec.name.clone(),
            description: t.spec.description.clone(),
            os: t.spec.os.clone(),
            vcpus: t.spec.vcpus,
            memory_mb: t.spec.memory_mb,
            disk_gb: t.spec.disk_gb,
            vgpu_type: t.spec.vgpu_type.clone(),
            protocols: t.spec.protocols.iter().map(ToString::to_string).collect(),
            tags: t.spec.tags.clone(),
            ready: t.spec.ready.to_string(),
            idle_timeout_min: t.spec.idle_timeout_min,
            max_lifetime_min: t.spec.max_lifetime_min,
            warm_pool: t.spec.warm_pool,
            owner_id: t.owner.to_string(),
            visibility: t.visibility.to_string(),
            groups,
            current_version: t.current_version,
            policy: PolicyDto::from(&t.policy),
            available: access.available,
            access: access.description,
            denied_reason: access.denied_reason,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct VersionDto {
    pub version: u32,
    /// `uploading` or `ready`.
    pub state: String,
    pub format: Option<String>,
    pub size_bytes: u64,
    pub virtual_size: u64,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: String,
}

impl From<&TemplateVersion> for VersionDto {
    fn from(v: &TemplateVersion) -> Self {
        VersionDto {
            version: v.version,
            state: v.state.to_string(),
            format: v.format.map(|f| f.to_string()),
            size_bytes: v.size_bytes,
            virtual_size: v.virtual_size,
            sha256: v.sha256.clone(),
            uploaded_by: v.uploaded_by.to_string(),
            created_at: rfc3339(v.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AuditDto {
    pub id: i64,
    pub at: String,
    pub actor_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub object: String,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    pub client: Option<String>,
    pub detail: String,
}

impl From<&AuditEntry> for AuditDto {
    fn from(e: &AuditEntry) -> Self {
        AuditDto {
            id: e.id,
            at: rfc3339(e.at),
            actor_id: e.actor.map(|a| a.to_string()),
            actor: e.actor_name.clone(),
            action: e.action.to_string(),
            object: e.object.clone(),
            outcome: e.outcome.to_string(),
            client: e.client.clone(),
            detail: e.detail.clone(),
        }
    }
}

pub(crate) fn parse<T: std::str::FromStr<Err = osvdi_model::ParseError>>(
    s: &str,
) -> Result<T, ApiError> {
    s.parse()
        .map_err(|e: osvdi_model::ParseError| ApiError::bad_request(e.to_string()))
}

fn protocols(v: &[String]) -> Result<Vec<DisplayProtocol>, ApiError> {
    v.iter().map(|p| parse(p)).collect()
}

impl CreateTemplate {
    pub(crate) fn into_parts(self) -> Result<(TemplateSpec, Visibility, Vec<String>), ApiError> {
        let spec = TemplateSpec {
            name: self.name,
            description: self.description,
            os: self.os,
            vcpus: self.vcpus,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
            vgpu_type: self.vgpu_type.filter(|s| !s.is_empty()),
            protocols: protocols(&self.protocols)?,
            tags: self.tags,
            ready: self
                .ready
                .as_deref()
                .map(parse)
                .transpose()?
                .unwrap_or_default(),
            idle_timeout_min: self.idle_timeout_min,
            max_lifetime_min: self.max_lifetime_min,
            warm_pool: self.warm_pool,
        };
        Ok((spec, parse(&self.visibility)?, self.groups))
    }
}

impl UpdateTemplate {
    pub(crate) fn apply(self, mut spec: TemplateSpec) -> Result<TemplateSpec, ApiError> {
        if let Some(v) = self.name {
            spec.name = v;
        }
        if let Some(v) = self.description {
            spec.description = v;
        }
        if let Some(v) = self.os {
            spec.os = v;
        }
        if let Some(v) = self.vcpus {
            spec.vcpus = v;
        }
        if let Some(v) = self.memory_mb {
            spec.memory_mb = v;
        }
        if let Some(v) = self.disk_gb {
            spec.disk_gb = v;
        }
        if let Some(v) = self.vgpu_type {
            spec.vgpu_type = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.protocols {
            spec.protocols = protocols(&v)?;
        }
        if let Some(v) = self.tags {
            spec.tags = v;
        }
        if let Some(v) = self.ready {
            spec.ready = parse(&v)?;
        }
        if let Some(v) = self.idle_timeout_min {
            spec.idle_timeout_min = Some(v).filter(|m| *m > 0);
        }
        if let Some(v) = self.max_lifetime_min {
            spec.max_lifetime_min = Some(v).filter(|m| *m > 0);
        }
        if let Some(v) = self.warm_pool {
            spec.warm_pool = v;
        }
        Ok(spec)
    }
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct LaunchRequest {
    pub template_id: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SessionDto {
    pub id: String,
    pub template_id: String,
    /// The template version the desktop was made from (kept for its whole life).
    pub template_version: u32,
    pub owner_id: String,
    /// requested, provisioning, booting, ready, suspending, suspended, resuming, stopping,
    /// ended or failed.
    pub state: String,
    /// Why it failed or ended, when known.
    pub reason: Option<String>,
    pub created_at: String,
    /// When the current state was entered.
    pub state_since: String,
    pub last_activity: String,
    /// When it ends at the latest.
    pub expires_at: Option<String>,
    /// The course whose reservation this desktop draws from, if any.
    pub course_id: Option<String>,
    /// Whether a browser console is connected now.
    pub connected: bool,
}

impl From<&osvdi_model::Desktop> for SessionDto {
    fn from(d: &osvdi_model::Desktop) -> Self {
        SessionDto {
            id: d.id.to_string(),
            template_id: d.template.to_string(),
            template_version: d.template_version,
            owner_id: d.owner.to_string(),
            state: d.state.to_string(),
            reason: d.reason.clone(),
            created_at: rfc3339(d.created_at),
            state_since: rfc3339(d.state_since),
            last_activity: rfc3339(d.last_activity),
            expires_at: d.expires_at.map(rfc3339),
            course_id: d
                .reservation
                .as_deref()
                .and_then(|r| r.split([':', '~']).next())
                .map(str::to_owned),
            connected: false,
        }
    }
}

impl SessionDto {
    /// The session with what only the running server knows (console connected or not).
    pub(crate) fn live(d: &osvdi_model::Desktop, core: &osvdi_core::Core) -> Self {
        SessionDto {
            connected: core.is_connected(d.id),
            ..SessionDto::from(d)
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ConsoleDto {
    /// One-time, valid for 60 s, for this person only.
    pub token: String,
    /// The WebSocket to open with it (`GET /ws/console?token=...`, subprotocol `binary`).
    pub url: String,
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SessionEventDto {
    pub at: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
}

impl From<&osvdi_store::DesktopEvent> for SessionEventDto {
    fn from(e: &osvdi_store::DesktopEvent) -> Self {
        SessionEventDto {
            at: rfc3339(e.at),
            from: e.from.map(|s| s.to_string()),
            to: e.to.to_string(),
            reason: e.reason.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct GpuDto {
    /// PCI address of the physical GPU.
    pub parent: String,
    /// `intel`, `nvidia` or the PCI vendor id.
    pub vendor: String,
    /// Whether it runs one mdev type at a time (NVIDIA).
    pub single_type: bool,
    /// The type its instances have now, when it runs exactly one.
    pub active_type: Option<String>,
    pub types: Vec<MdevTypeDto>,
    pub instances: Vec<MdevInstanceDto>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MdevTypeDto {
    pub id: String,
    pub name: String,
    pub description: String,
    pub device_api: String,
    pub available_instances: u32,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MdevInstanceDto {
    pub uuid: String,
    pub type_id: String,
}

impl From<&osvdi_compute::mdev::PhysicalGpu> for GpuDto {
    fn from(g: &osvdi_compute::mdev::PhysicalGpu) -> Self {
        use osvdi_compute::mdev::Vendor;
        GpuDto {
            parent: g.parent.clone(),
            vendor: match g.vendor {
                Vendor::Intel => "intel".into(),
                Vendor::Nvidia => "nvidia".into(),
                Vendor::Other(id) => format!("{id:#06x}"),
            },
            single_type: g.single_type,
            active_type: g.active_type().map(str::to_owned),
            types: g
                .types
                .iter()
                .map(|t| MdevTypeDto {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    description: t.description.clone(),
                    device_api: t.device_api.clone(),
                    available_instances: t.available_instances,
                })
                .collect(),
            instances: g
                .instances
                .iter()
                .map(|i| MdevInstanceDto {
                    uuid: i.uuid.to_string(),
                    type_id: i.type_id.clone(),
                })
                .collect(),
        }
    }
}

/// A template's access policy.
#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct PolicyDto {
    /// Client networks: names from the site's `[networks]` ("campus") or CIDRs. Empty: anywhere.
    #[serde(default)]
    pub networks: Vec<String>,
    /// When: `null` for any time.
    #[serde(default)]
    pub schedule: Option<ScheduleDto>,
    /// A person who may use only this template gets a desktop at login.
    #[serde(default)]
    pub auto_assign: bool,
    /// Whether the browser console passes the clipboard.
    #[serde(default = "default_true")]
    pub clipboard: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct ScheduleDto {
    /// An IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    pub windows: Vec<WindowDto>,
    /// Dates (`YYYY-MM-DD`) on which the weekly windows do not apply.
    #[serde(default)]
    pub closed: Vec<String>,
    /// Extra openings on single dates.
    #[serde(default)]
    pub extra: Vec<ExtraDto>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct WindowDto {
    /// `mon` ... `sun`.
    pub days: Vec<String>,
    /// `HH:MM`, local time.
    pub start: String,
    /// `HH:MM` (up to `24:00`), local time.
    pub end: String,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct ExtraDto {
    pub date: String,
    pub start: String,
    pub end: String,
}

fn hhmm(m: osvdi_model::Minute) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

pub(crate) fn minute(s: &str) -> Result<osvdi_model::Minute, ApiError> {
    let bad = || ApiError::bad_request(format!("Invalid time '{s}'; use HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h * 60 + m > 24 * 60 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub(crate) fn date(s: &str) -> Result<osvdi_model::Date, ApiError> {
    let bad = || ApiError::bad_request(format!("Invalid date '{s}'; use YYYY-MM-DD"));
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (
        it.next().ok_or_else(bad)?,
        it.next().ok_or_else(bad)?,
        it.next().ok_or_else(bad)?,
    );
    let date = osvdi_model::Date {
        year: y.parse().map_err(|_| bad())?,
        month: m.parse().map_err(|_| bad())?,
        day: d.parse().map_err(|_| bad())?,
    };
    if !(1..=12).contains(&date.month) || !(1..=31).contains(&date.day) {
        return Err(bad());
    }
    Ok(date)
}

impl From<&osvdi_model::AccessPolicy> for PolicyDto {
    fn from(p: &osvdi_model::AccessPolicy) -> Self {
        PolicyDto {
            networks: p
                .networks
                .iter()
                .map(|n| match n {
                    osvdi_model::NetworkRule::Named(name) => name.clone(),
                    osvdi_model::NetworkRule::Cidr(c) => c.to_string(),
                })
                .collect(),
            schedule: p.schedule.as_ref().map(|s| ScheduleDto {
                time_zone: s.time_zone.clone(),
                windows: s
                    .windows
                    .iter()
                    .map(|w| WindowDto {
                        days: w.days.iter().map(|d| d.as_str().to_owned()).collect(),
                        start: hhmm(w.start),
                        end: hhmm(w.end),
                    })
                    .collect(),
                closed: s.closed.iter().map(ToString::to_string).collect(),
                extra: s
                    .extra
                    .iter()
                    .map(|e| ExtraDto {
                        date: e.date.to_string(),
                        start: hhmm(e.start),
                        end: hhmm(e.end),
                    })
                    .collect(),
            }),
            auto_assign: p.auto_assign,
            clipboard: p.clipboard,
        }
    }
}

impl PolicyDto {
    pub(crate) fn into_policy(self) -> Result<osvdi_model::AccessPolicy, ApiError> {
        use osvdi_model::{ExtraOpening, NetworkRule, Schedule, Weekday, WeeklyWindow};
        let networks = self
            .networks
            .into_iter()
            .map(|n| match n.parse() {
                Ok(cidr) => NetworkRule::Cidr(cidr),
                Err(_) => NetworkRule::Named(n),
            })
            .collect();
        let schedule = match self.schedule {
            None => None,
            Some(s) => Some(Schedule {
                time_zone: s.time_zone,
                windows: s
                    .windows
                    .iter()
                    .map(|w| {
                        let days = w
                            .days
                            .iter()
                            .map(|d| {
                                Weekday::parse(d).ok_or_else(|| {
                                    ApiError::bad_request(format!("Unknown day '{d}'"))
                                })
                            })
                            .collect::<Result<_, _>>()?;
                        Ok(WeeklyWindow {
                            days,
                            start: minute(&w.start)?,
                            end: minute(&w.end)?,
                        })
                    })
                    .collect::<Result<_, ApiError>>()?,
                closed: s.closed.iter().map(|d| date(d)).collect::<Result<_, _>>()?,
                extra: s
                    .extra
                    .iter()
                    .map(|e| {
                        Ok(ExtraOpening {
                            date: date(&e.date)?,
                            start: minute(&e.start)?,
                            end: minute(&e.end)?,
                        })
                    })
                    .collect::<Result<_, ApiError>>()?,
            }),
        };
        Ok(osvdi_model::AccessPolicy {
            networks,
            schedule,
            auto_assign: self.auto_assign,
            clipboard: self.clipboard,
        })
    }
}
