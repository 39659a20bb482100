//! The scenario file's shapes, as serde reads them (wire types: `scenario.rs` converts them
//! by hand). Dates, times and weekdays are checked as they are read, so a bad one fails with
//! its line and column.

use std::str::FromStr;

use osvdi_scheduler::{Date, WarmSettings, Weekday};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    pub site: SiteDto,
    #[serde(default)]
    pub attendance: AttendanceDto,
    pub warm: Option<WarmDto>,
    pub hosts: Vec<HostGroupDto>,
    pub templates: Vec<TemplateDto>,
    #[serde(default)]
    pub courses: Vec<CourseDto>,
    #[serde(default)]
    pub on_demand: Vec<OnDemandDto>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteDto {
    pub name: String,
    #[serde(default)]
    pub strategy: StrategyDto,
    pub start: DateDto,
    pub weeks: u32,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum StrategyDto {
    #[default]
    Pack,
    Spread,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AttendanceDto {
    pub percent: u32,
    pub spread_minutes: u32,
}

impl Default for AttendanceDto {
    fn default() -> Self {
        AttendanceDto {
            percent: 90,
            spread_minutes: 15,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct WarmDto {
    pub percentile: u32,
    pub safety_percent: u32,
    pub window: usize,
    pub default_lead_minutes: u32,
    pub min_lead_minutes: u32,
    pub idle_hold_minutes: u32,
}

impl Default for WarmDto {
    fn default() -> Self {
        let s = WarmSettings::default();
        WarmDto {
            percentile: s.percentile,
            safety_percent: s.safety_percent,
            window: s.window,
            default_lead_minutes: 5,
            min_lead_minutes: 1,
            idle_hold_minutes: 120,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HostGroupDto {
    pub name: String,
    pub count: u32,
    pub vcpus: u32,
    pub memory_mb: u64,
    #[serde(default)]
    pub disk_gb: u64,
    #[serde(default)]
    pub traits: Vec<String>,
    #[serde(default)]
    pub gpus: Vec<GpuDto>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GpuDto {
    pub kind: Spanned<GpuKind>,
    /// GPUs like this one in each host.
    #[serde(default = "one")]
    pub count: u32,
    /// Mixed GPUs: the budget the types' weights share.
    pub budget: Option<u32>,
    pub types: Vec<GpuTypeDto>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(super) enum GpuKind {
    SingleType,
    Mixed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GpuTypeDto {
    pub mdev: String,
    pub instances: u32,
    #[serde(default = "one")]
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateDto {
    pub name: Spanned<String>,
    pub vcpus: u32,
    pub memory_mb: u64,
    #[serde(default)]
    pub disk_gb: u64,
    pub vgpu_type: Option<String>,
    #[serde(default)]
    pub traits: Vec<String>,
    #[serde(default)]
    pub persistent: bool,
    pub boot_seconds: BootDto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BootDto {
    pub p50: f64,
    pub p95: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CourseDto {
    pub name: Spanned<String>,
    pub template: Spanned<String>,
    pub group: Option<String>,
    pub desktops: u32,
    /// Weekly: the days it meets, between `first` and `last`, skipping `except`.
    #[serde(default)]
    pub days: Vec<WeekdayDto>,
    /// One-off: the dates it meets (instead of `days`).
    #[serde(default)]
    pub dates: Vec<DateDto>,
    pub start: ClockDto,
    pub end: ClockDto,
    pub first: Option<DateDto>,
    pub last: Option<DateDto>,
    #[serde(default)]
    pub except: Vec<DateDto>,
    pub utc_offset_minutes: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnDemandDto {
    pub template: Spanned<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub mean_session_minutes: u32,
    /// Idle desktops kept started for this template (warm pools only).
    #[serde(default)]
    pub warm: u32,
    /// Arrivals per hour at every hour; or by local hour (24 values) on weekdays and
    /// weekends, each day overridable by its own list.
    pub per_hour: Option<f64>,
    pub weekday: Option<Spanned<Vec<f64>>>,
    pub weekend: Option<Spanned<Vec<f64>>>,
    pub mon: Option<Spanned<Vec<f64>>>,
    pub tue: Option<Spanned<Vec<f64>>>,
    pub wed: Option<Spanned<Vec<f64>>>,
    pub thu: Option<Spanned<Vec<f64>>>,
    pub fri: Option<Spanned<Vec<f64>>>,
    pub sat: Option<Spanned<Vec<f64>>>,
    pub sun: Option<Spanned<Vec<f64>>>,
}

/// A date "YYYY-MM-DD"; a bad one fails with the value's line and column.
#[derive(Debug, Clone, Copy)]
pub(super) struct DateDto(pub Date);

impl<'de> Deserialize<'de> for DateDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::from_str(&s)
            .map(DateDto)
            .map_err(|_| serde::de::Error::custom(format!("invalid date '{s}' (YYYY-MM-DD)")))
    }
}

/// A local time "HH:MM" (00:00 to 24:00), as minutes past midnight.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClockDto(pub u32);

impl<'de> Deserialize<'de> for ClockDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("invalid time '{s}' (HH:MM)"));
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m >= 60 || h * 60 + m > 24 * 60 {
            return Err(bad());
        }
        Ok(ClockDto(h * 60 + m))
    }
}

/// A weekday "mon".."sun".
#[derive(Debug, Clone, Copy)]
pub(super) struct WeekdayDto(pub Weekday);

impl<'de> Deserialize<'de> for WeekdayDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Weekday::from_str(&s).map(WeekdayDto).map_err(|_| {
            serde::de::Error::custom(format!("invalid weekday '{s}' (mon, tue, ... sun)"))
        })
    }
}
