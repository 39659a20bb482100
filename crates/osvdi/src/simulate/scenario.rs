//! The scenario file of `osvdi simulate` (TOML, documented in examples/README.md) and its
//! mapping onto the scheduler's `SimConfig`. The file's shapes are wire types: they are read
//! here and converted by hand, so the scheduler's types know nothing of TOML.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, bail};
use osvdi_scheduler::{
    Arrivals, BootTime, Course, CourseAttendance, Date, DesktopRequest, Gpu, Host, Inventory, Rate,
    Resources, Schedule, SimConfig, Strategy, WarmPools, WarmSettings, WeekProfile, Weekday,
    Weekly,
};
use toml::Spanned;

use super::file::{CourseDto, GpuKind, HostGroupDto, OnDemandDto, ScenarioFile, StrategyDto};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// What the command line changes in a scenario.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overrides {
    pub weeks: Option<u32>,
    /// A run of this many days (instead of whole weeks).
    pub days: Option<u32>,
    pub seed: Option<u64>,
    /// The number of GPU hosts, shared among the GPU host groups in proportion to their
    /// counts in the file.
    pub gpu_hosts: Option<u32>,
}

/// A scenario read from its file, ready to be built (several times, for a sweep).
#[derive(Debug)]
pub(crate) struct Scenario {
    file: ScenarioFile,
    text: String,
}

/// What the report's header says about a built scenario.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub name: String,
    pub hosts: u32,
    pub gpu_hosts: u32,
    pub gpus: u32,
    pub courses: usize,
    pub start: Date,
    pub days: u32,
    pub warm: bool,
}

impl Scenario {
    /// Reads a scenario; TOML errors name the line and field.
    pub fn parse(text: &str) -> anyhow::Result<Scenario> {
        let file: ScenarioFile = toml::from_str(text)?;
        let s = Scenario {
            file,
            text: text.to_owned(),
        };
        // Build once to report every error now, not in the middle of a sweep.
        s.build(Overrides::default())?;
        Ok(s)
    }

    /// The GPU hosts the file has.
    pub fn gpu_hosts(&self) -> u32 {
        self.file
            .hosts
            .iter()
            .filter(|g| !g.gpus.is_empty())
            .map(|g| g.count)
            .sum()
    }

    /// "line L, column C" of a byte offset in the file.
    fn at(&self, offset: usize) -> String {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("line {line}, column {column}")
    }

    /// The simulation config, with `o` applied.
    pub fn build(&self, o: Overrides) -> anyhow::Result<(SimConfig, Summary)> {
        let f = &self.file;
        let site = &f.site;
        let days = match o.days {
            Some(d) => d,
            None => o.weeks.unwrap_or(site.weeks).saturating_mul(7),
        };
        if days == 0 {
            bail!("site.weeks: simulate at least one day");
        }
        if site.utc_offset_minutes.abs() > 18 * 60 {
            bail!("site.utc_offset_minutes: beyond 18 hours");
        }
        let (inventory, summary_hosts) = self.inventory(o.gpu_hosts)?;
        let templates = self.templates()?;
        let start = site.start.0.at(0, site.utc_offset_minutes);
        // The timetable is the file's: --weeks shortens the run, not the semester.
        let last_day =
            Date::from_days(site.start.0.days_since_epoch() + i64::from(site.weeks.max(1)) * 7 - 1);
        let mut courses = Vec::new();
        let mut names = BTreeSet::new();
        for c in &f.courses {
            if !names.insert(c.name.get_ref().as_str()) {
                bail!(
                    "{}: course '{}' is defined twice",
                    self.at(c.name.span().start),
                    c.name.get_ref()
                );
            }
            courses.push(self.course(c, &templates, site.start.0, last_day)?);
        }
        let (arrivals, min_idle) = self.arrivals(&templates)?;
        let warm = f.warm.as_ref().map(|w| WarmPools {
            settings: WarmSettings {
                window: w.window.max(1),
                percentile: w.percentile.clamp(1, 100),
                safety_percent: w.safety_percent,
                default_lead_ms: i64::from(w.default_lead_minutes) * MINUTE_MS,
                min_lead_ms: i64::from(w.min_lead_minutes) * MINUTE_MS,
                min_idle,
            },
            idle_hold_ms: i64::from(w.idle_hold_minutes) * MINUTE_MS,
        });
        if f.warm.is_none() && f.on_demand.iter().any(|a| a.warm > 0) {
            bail!("on_demand.warm needs a [warm] section (warm pools are off without one)");
        }
        let boot_times = templates
            .iter()
            .map(|(name, (_, boot))| (name.as_str().into(), *boot))
            .collect();
        let summary = Summary {
            name: site.name.clone(),
            hosts: summary_hosts.0,
            gpu_hosts: summary_hosts.1,
            gpus: summary_hosts.2,
            courses: courses.len(),
            start: site.start.0,
            days,
            warm: warm.is_some(),
        };
        let strategy = match site.strategy {
            StrategyDto::Pack => Strategy::Pack,
            StrategyDto::Spread => Strategy::Spread,
        };
        let config = SimConfig {
            start,
            duration_ms: i64::from(days) * DAY_MS,
            inventory: inventory.with_strategy(site.name.clone(), strategy),
            courses,
            attendance: CourseAttendance {
                percent: f.attendance.percent.min(100),
                spread_minutes: f.attendance.spread_minutes,
            },
            arrivals,
            boot_times,
            warm,
            seed: o.seed.unwrap_or(site.seed),
        };
        Ok((config, summary))
    }

    /// The hosts, named `<group>-01`...; returns (inventory, (hosts, GPU hosts, GPUs)).
    fn inventory(&self, gpu_hosts: Option<u32>) -> anyhow::Result<(Inventory, (u32, u32, u32))> {
        let groups = &self.file.hosts;
        if groups.is_empty() {
            bail!("no [[hosts]]: a site needs hosts");
        }
        let counts = match gpu_hosts {
            Some(n) => scale_gpu_groups(groups, n)?,
            None => groups.iter().map(|g| g.count).collect(),
        };
        let (mut hosts, mut n_gpu_hosts, mut n_gpus) = (Vec::new(), 0, 0);
        for (gi, (g, count)) in groups.iter().zip(counts).enumerate() {
            let field = format!("hosts[{gi}] ('{}')", g.name);
            let mut gpus = Vec::new();
            for (i, gpu) in g.gpus.iter().enumerate() {
                let types = gpu.types.iter();
                let built = match (gpu.kind.get_ref(), gpu.budget) {
                    (GpuKind::SingleType, None) => {
                        Gpu::single_type(types.map(|t| (t.mdev.as_str(), t.instances)))
                    }
                    (GpuKind::Mixed, Some(b)) => {
                        Gpu::mixed(b, types.map(|t| (t.mdev.as_str(), t.instances, t.weight)))
                    }
                    (GpuKind::SingleType, Some(_)) => bail!(
                        "{}: {field}.gpus[{i}]: a single_type GPU has no budget",
                        self.at(gpu.kind.span().start)
                    ),
                    (GpuKind::Mixed, None) => bail!(
                        "{}: {field}.gpus[{i}]: a mixed GPU needs a budget",
                        self.at(gpu.kind.span().start)
                    ),
                };
                if gpu.types.is_empty() {
                    bail!("{field}.gpus[{i}]: no types");
                }
                for _ in 0..gpu.count {
                    gpus.push(built.clone());
                }
            }
            let width = if count >= 100 { 3 } else { 2 };
            for n in 1..=count {
                let mut h = Host::new(
                    format!("{}-{n:0width$}", g.name),
                    self.file.site.name.clone(),
                    Resources::new(g.vcpus, g.memory_mb, g.disk_gb),
                );
                for t in &g.traits {
                    h = h.with_trait(t.clone());
                }
                for gpu in &gpus {
                    h = h.with_gpu(gpu.clone());
                }
                hosts.push(h);
            }
            if !gpus.is_empty() {
                n_gpu_hosts += count;
                n_gpus += count * u32::try_from(gpus.len()).unwrap_or(u32::MAX);
            }
        }
        let n = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
        let inv = Inventory::new(hosts).context("hosts")?;
        Ok((inv, (n, n_gpu_hosts, n_gpus)))
    }

    /// Templates by name: the desktop they ask for and their boot time.
    fn templates(&self) -> anyhow::Result<BTreeMap<String, (DesktopRequest, BootTime)>> {
        let mut out = BTreeMap::new();
        for t in &self.file.templates {
            let name = t.name.get_ref();
            let at = self.at(t.name.span().start);
            let b = &t.boot_seconds;
            if !(b.p50.is_finite() && b.p95.is_finite() && 0.0 <= b.p50 && b.p50 <= b.p95) {
                bail!("{at}: template '{name}': boot_seconds needs 0 <= p50 <= p95");
            }
            let mut req = DesktopRequest::new(
                name.as_str(),
                Resources::new(t.vcpus, t.memory_mb, t.disk_gb),
            );
            if let Some(v) = &t.vgpu_type {
                req = req.with_vgpu(v.as_str());
            }
            for tr in &t.traits {
                req = req.with_trait(tr.clone());
            }
            req.persistent = t.persistent;
            let boot = BootTime {
                p50_ms: (b.p50 * 1000.0).round() as i64,
                p95_ms: (b.p95 * 1000.0).round() as i64,
            };
            if out.insert(name.clone(), (req, boot)).is_some() {
                bail!("{at}: template '{name}' is defined twice");
            }
        }
        Ok(out)
    }

    fn template<'t>(
        &self,
        name: &Spanned<String>,
        templates: &'t BTreeMap<String, (DesktopRequest, BootTime)>,
    ) -> anyhow::Result<&'t DesktopRequest> {
        templates
            .get(name.get_ref())
            .map(|(r, _)| r)
            .ok_or_else(|| {
                let known: Vec<&str> = templates.keys().map(String::as_str).collect();
                anyhow!(
                    "{}: unknown template '{}' (templates: {})",
                    self.at(name.span().start),
                    name.get_ref(),
                    known.join(", ")
                )
            })
    }

    fn course(
        &self,
        c: &CourseDto,
        templates: &BTreeMap<String, (DesktopRequest, BootTime)>,
        site_first: Date,
        site_last: Date,
    ) -> anyhow::Result<Course> {
        let name = c.name.get_ref();
        let at = self.at(c.name.span().start);
        let shape = self.template(&c.template, templates)?.clone();
        if c.end.0 <= c.start.0 {
            bail!("{at}: course '{name}': end must be after start");
        }
        let schedule = match (c.days.is_empty(), c.dates.is_empty()) {
            (false, true) => Schedule::Weekly(Weekly {
                first: c.first.map_or(site_first, |d| d.0),
                last: c.last.map_or(site_last, |d| d.0),
                days: c.days.iter().map(|d| d.0).collect(),
                start_minute: c.start.0,
                minutes: c.end.0 - c.start.0,
                except: c.except.iter().map(|d| d.0).collect(),
            }),
            // One-off dates: every day from the first to the last date, except the others.
            (true, false) => {
                if c.first.is_some() || c.last.is_some() || !c.except.is_empty() {
                    bail!("{at}: course '{name}': first, last and except go with days, not dates");
                }
                let dates: BTreeSet<Date> = c.dates.iter().map(|d| d.0).collect();
                let (Some(first), Some(last)) = (dates.first(), dates.last()) else {
                    unreachable!("dates is not empty");
                };
                let except = (first.days_since_epoch()..=last.days_since_epoch())
                    .map(Date::from_days)
                    .filter(|d| !dates.contains(d))
                    .collect();
                Schedule::Weekly(Weekly {
                    first: *first,
                    last: *last,
                    days: [
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri,
                        Weekday::Sat,
                        Weekday::Sun,
                    ]
                    .into(),
                    start_minute: c.start.0,
                    minutes: c.end.0 - c.start.0,
                    except,
                })
            }
            _ => bail!("{at}: course '{name}': give either days (weekly) or dates (one-off)"),
        };
        let course = Course {
            id: name.as_str().into(),
            group: c.group.clone().unwrap_or_else(|| name.clone()).into(),
            shape,
            count: c.desktops,
            schedule,
            utc_offset_minutes: c
                .utc_offset_minutes
                .unwrap_or(self.file.site.utc_offset_minutes),
        };
        course.slots().with_context(|| at.clone())?;
        Ok(course)
    }

    /// On-demand streams, and the warm pool size per template.
    #[allow(clippy::type_complexity)]
    fn arrivals(
        &self,
        templates: &BTreeMap<String, (DesktopRequest, BootTime)>,
    ) -> anyhow::Result<(Vec<Arrivals>, BTreeMap<osvdi_scheduler::TemplateKey, u32>)> {
        let mut out = Vec::new();
        let mut min_idle = BTreeMap::new();
        for (i, a) in self.file.on_demand.iter().enumerate() {
            let request = self.template(&a.template, templates)?.clone();
            let field = format!("on_demand[{i}] ('{}')", a.template.get_ref());
            if a.mean_session_minutes == 0 {
                bail!("{field}: mean_session_minutes must be at least 1");
            }
            let profile = self.profile(a, &field)?;
            if a.warm > 0 {
                *min_idle.entry(request.template.clone()).or_insert(0) += a.warm;
            }
            out.push(Arrivals {
                request,
                rate: Rate::Weekly(profile),
                mean_minutes: a.mean_session_minutes,
                groups: a.groups.iter().map(|g| g.as_str().into()).collect(),
            });
        }
        Ok((out, min_idle))
    }

    /// The hour-of-week rates of one stream.
    fn profile(&self, a: &OnDemandDto, field: &str) -> anyhow::Result<WeekProfile> {
        let days = [&a.mon, &a.tue, &a.wed, &a.thu, &a.fri, &a.sat, &a.sun];
        let any_list =
            a.weekday.is_some() || a.weekend.is_some() || days.iter().any(|d| d.is_some());
        let mut rates = vec![0.0; WeekProfile::HOURS];
        match (a.per_hour, any_list) {
            (Some(r), false) => rates.fill(r),
            (None, true) => {
                for (d, own) in days.iter().enumerate() {
                    let list = own.as_ref().or(if d < 5 {
                        a.weekday.as_ref()
                    } else {
                        a.weekend.as_ref()
                    });
                    let Some(list) = list else { continue };
                    if list.get_ref().len() != 24 {
                        bail!(
                            "{}: {field}: an hourly list has 24 values (local hours 0 to 23), \
                             not {}",
                            self.at(list.span().start),
                            list.get_ref().len()
                        );
                    }
                    rates[d * 24..d * 24 + 24].copy_from_slice(list.get_ref());
                }
            }
            (Some(_), true) => bail!("{field}: give per_hour or hourly lists, not both"),
            (None, false) => bail!(
                "{field}: no arrival rate (per_hour, or weekday/weekend/mon..sun hourly lists)"
            ),
        }
        if let Some(bad) = rates.iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
            bail!("{field}: arrival rates are numbers of at least 0, not {bad}");
        }
        Ok(WeekProfile {
            utc_offset_minutes: self.file.site.utc_offset_minutes,
            milli_per_hour: rates.iter().map(|r| (r * 1000.0).round() as u32).collect(),
        })
    }
}

/// The host counts of the groups when the GPU groups hold `n` hosts in all, shared in
/// proportion to their counts in the file (largest remainder, earlier groups first on ties).
fn scale_gpu_groups(groups: &[HostGroupDto], n: u32) -> anyhow::Result<Vec<u32>> {
    let gpu: Vec<usize> = (0..groups.len())
        .filter(|i| !groups[*i].gpus.is_empty())
        .collect();
    if gpu.is_empty() {
        bail!("--sweep-hosts: the scenario has no host group with GPUs");
    }
    let total: u64 = gpu.iter().map(|i| u64::from(groups[*i].count)).sum();
    let mut counts: Vec<u32> = groups.iter().map(|g| g.count).collect();
    // Weights: the file's counts, or equal shares if they are all zero.
    let weight = |i: usize| {
        if total == 0 {
            1
        } else {
            u64::from(groups[i].count)
        }
    };
    let wsum: u64 = gpu.iter().map(|i| weight(*i)).sum();
    let mut rem: Vec<(u64, usize)> = Vec::new();
    let mut given = 0u64;
    for &i in &gpu {
        let exact = u64::from(n) * weight(i);
        counts[i] = u32::try_from(exact / wsum).unwrap_or(u32::MAX);
        given += exact / wsum;
        rem.push((exact % wsum, i));
    }
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rem
        .iter()
        .take(usize::try_from(u64::from(n) - given).unwrap_or(0))
    {
        counts[*i] += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::file::GpuDto;
    use osvdi_scheduler::{GpuSharing, UnixMillis};

    const SMALL: &str = r#"
[site]
name = "uni"
strategy = "spread"
start = "2025-09-01"
weeks = 2
utc_offset_minutes = 120

[warm]
idle_hold_minutes = 60

[[hosts]]
name = "cpu"
count = 2
vcpus = 32
memory_mb = 131072
disk_gb = 1000

[[hosts]]
name = "gpu"
count = 3
vcpus = 64
memory_mb = 262144
traits = ["gpu"]
[[hosts.gpus]]
kind = "single_type"
count = 2
types = [{ mdev = "nvidia-L4-4Q", instances = 6 }, { mdev = "nvidia-L4-8Q", instances = 3 }]
[[hosts.gpus]]
kind = "mixed"
budget = 8
types = [{ mdev = "gvtg-4", instances = 2, weight = 4 }]

[[templates]]
name = "office"
vcpus = 2
memory_mb = 4096
disk_gb = 20
boot_seconds = { p50 = 20, p95 = 45 }

[[templates]]
name = "cad"
vcpus = 4
memory_mb = 16384
vgpu_type = "nvidia-L4-4Q"
boot_seconds = { p50 = 40, p95 = 90.5 }

[[courses]]
name = "cad-101"
template = "cad"
desktops = 12
days = ["tue", "thu"]
start = "14:00"
end = "16:30"
except = ["2025-09-04"]

[[courses]]
name = "exam"
template = "office"
group = "exam-takers"
desktops = 40
dates = ["2025-09-10", "2025-09-03"]
start = "09:00"
end = "12:00"

[[on_demand]]
template = "office"
groups = ["staff"]
mean_session_minutes = 90
warm = 2
weekday = [0,0,0,0,0,0,0,0,4,8,8,8,6,8,8,8,6,4,2,1,0,0,0,0]
weekend = [0,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,0,0,0,0,0,0,0,0]
fri = [0,0,0,0,0,0,0,0,2,4,4,4,2,2,2,0,0,0,0,0,0,0,0,0]

[[on_demand]]
template = "cad"
mean_session_minutes = 120
per_hour = 0.5
"#;

    fn build(text: &str) -> anyhow::Result<(SimConfig, Summary)> {
        Scenario::parse(text)?.build(Overrides::default())
    }

    fn err(text: &str) -> String {
        format!("{:#}", Scenario::parse(text).unwrap_err())
    }

    #[test]
    fn maps_a_scenario_onto_the_simulator() {
        let (cfg, sum) = build(SMALL).unwrap();
        assert_eq!(
            (sum.hosts, sum.gpu_hosts, sum.gpus, sum.courses),
            (5, 3, 9, 2)
        );
        let hosts = cfg.inventory.hosts();
        let ids: Vec<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["cpu-01", "cpu-02", "gpu-01", "gpu-02", "gpu-03"]);
        let g = &hosts[2];
        assert!(g.has_trait("gpu") && g.has_trait("site:uni"));
        assert_eq!(g.gpus.len(), 3);
        assert_eq!(g.gpus[0].sharing, GpuSharing::SingleType);
        assert_eq!(g.gpus[0].types[1].max_instances, 3);
        assert_eq!(g.gpus[2].sharing, GpuSharing::Mixed { budget: 8 });
        assert_eq!(cfg.inventory.strategy("uni"), Strategy::Spread);
        // Monday 2025-09-01 00:00 at UTC+2, for two weeks.
        assert_eq!(cfg.start, UnixMillis(1_756_677_600_000));
        assert_eq!(cfg.duration_ms, 14 * DAY_MS);
        assert_eq!(cfg.attendance.percent, 90);
        assert_eq!(cfg.seed, 1);
        // cad-101: Tue and Thu of two weeks, less the 4th; 14:00 local is 12:00 UTC.
        let slots = cfg.courses[0].slots().unwrap();
        assert_eq!(slots.len(), 3);
        assert_eq!(cfg.courses[0].local(slots[0].start), "2025-09-02 14:00");
        assert_eq!(slots[0].end.0 - slots[0].start.0, 150 * MINUTE_MS);
        assert_eq!(cfg.courses[0].group.as_str(), "cad-101");
        assert_eq!(
            cfg.courses[0].shape.vgpu.as_ref().unwrap().as_str(),
            "nvidia-L4-4Q"
        );
        // The exam meets on its two dates only, whatever their order in the file.
        let exam = cfg.courses[1].slots().unwrap();
        let days: Vec<String> = exam.iter().map(|s| cfg.courses[1].local(s.start)).collect();
        assert_eq!(days, ["2025-09-03 09:00", "2025-09-10 09:00"]);
        assert_eq!(cfg.courses[1].group.as_str(), "exam-takers");
        // Rates by local hour of the week, in thousandths: Monday 09:00, Friday 09:00,
        // Saturday 10:00; a constant half an hour.
        let Rate::Weekly(p) = &cfg.arrivals[0].rate else {
            panic!("weekly");
        };
        assert_eq!(p.utc_offset_minutes, 120);
        assert_eq!(
            (p.milli_per_hour[9], p.milli_per_hour[4 * 24 + 9]),
            (8000, 4000)
        );
        assert_eq!(p.milli_per_hour[5 * 24 + 10], 1000);
        assert_eq!(cfg.arrivals[0].groups[0].as_str(), "staff");
        let Rate::Weekly(c) = &cfg.arrivals[1].rate else {
            panic!("weekly");
        };
        assert!(c.milli_per_hour.iter().all(|r| *r == 500));
        assert_eq!(cfg.boot_times[&"cad".into()].p95_ms, 90_500);
        let warm = cfg.warm.as_ref().unwrap();
        assert_eq!(warm.idle_hold_ms, 60 * MINUTE_MS);
        assert_eq!(warm.settings.min_idle[&"office".into()], 2);
        assert_eq!(warm.settings.percentile, 90);
    }

    #[test]
    fn overrides_change_weeks_seed_and_gpu_hosts() {
        let s = Scenario::parse(SMALL).unwrap();
        assert_eq!(s.gpu_hosts(), 3);
        let (cfg, sum) = s
            .build(Overrides {
                weeks: Some(1),
                days: None,
                seed: Some(9),
                gpu_hosts: Some(5),
            })
            .unwrap();
        assert_eq!((cfg.duration_ms, cfg.seed), (7 * DAY_MS, 9));
        assert_eq!((sum.hosts, sum.gpu_hosts), (7, 5));
        // A course's last day defaults to the end of the file's weeks, whatever is simulated.
        assert_eq!(cfg.courses[0].slots().unwrap().len(), 3);
        let days = Overrides {
            days: Some(3),
            ..Overrides::default()
        };
        assert_eq!(s.build(days).unwrap().0.duration_ms, 3 * DAY_MS);
    }

    #[test]
    fn gpu_groups_scale_in_proportion() {
        let g = |count, gpus| HostGroupDto {
            name: "g".into(),
            count,
            vcpus: 1,
            memory_mb: 1,
            disk_gb: 1,
            traits: vec![],
            gpus: if gpus {
                vec![GpuDto {
                    kind: Spanned::new(0..0, GpuKind::SingleType),
                    count: 1,
                    budget: None,
                    types: vec![],
                }]
            } else {
                vec![]
            },
        };
        let groups = [g(10, false), g(6, true), g(2, true)];
        assert_eq!(scale_gpu_groups(&groups, 8).unwrap(), [10, 6, 2]);
        assert_eq!(scale_gpu_groups(&groups, 4).unwrap(), [10, 3, 1]);
        assert_eq!(scale_gpu_groups(&groups, 5).unwrap(), [10, 4, 1]);
        assert_eq!(scale_gpu_groups(&groups, 0).unwrap(), [10, 0, 0]);
        assert!(scale_gpu_groups(&groups[..1], 3).is_err());
        assert_eq!(
            scale_gpu_groups(&[g(0, true), g(0, true)], 3).unwrap(),
            [2, 1]
        );
    }

    #[test]
    fn bad_files_say_where() {
        let e = err(&SMALL.replace("memory_mb = 131072", "memroy_mb = 131072"));
        assert!(e.contains("line 16") && e.contains("memroy_mb"), "{e}");
        let e = err(&SMALL.replace("\"2025-09-04\"", "\"2025-09-31\""));
        assert!(
            e.contains("line 55") && e.contains("invalid date '2025-09-31'"),
            "{e}"
        );
        let e = err(&SMALL.replace("end = \"16:30\"", "end = \"16h30\""));
        assert!(e.contains("invalid time '16h30'"), "{e}");
        let e = err(&SMALL.replace(
            "template = \"cad\"\ndesktops",
            "template = \"cda\"\ndesktops",
        ));
        assert!(
            e.contains("line 50") && e.contains("unknown template 'cda' (templates: cad, office)"),
            "{e}"
        );
        let e = err(&SMALL.replace("days = [\"tue\", \"thu\"]", "days = [\"tue\", \"thurs\"]"));
        assert!(e.contains("invalid weekday 'thurs'"), "{e}");
        let e = err(&SMALL.replace("fri = [0,0,0,0,", "fri = [0,0,0,"));
        assert!(
            e.contains("line 73") && e.contains("24 values") && e.contains("not 23"),
            "{e}"
        );
        let e = err(&SMALL.replace("kind = \"mixed\"", "kind = \"shared\""));
        assert!(e.contains("shared") && e.contains("line 30"), "{e}");
        let e = err(&SMALL.replace("budget = 8\n", ""));
        assert!(e.contains("a mixed GPU needs a budget"), "{e}");
        let e = err(&SMALL.replace("dates = [", "days = [\"mon\"]\ndates = ["));
        assert!(e.contains("either days (weekly) or dates (one-off)"), "{e}");
        let e = err(&SMALL.replace("per_hour = 0.5", "per_hour = -1.0"));
        assert!(e.contains("at least 0"), "{e}");
        let e = err(&SMALL.replace("[warm]\nidle_hold_minutes = 60\n", ""));
        assert!(e.contains("needs a [warm] section"), "{e}");
        let e = err(&SMALL.replace("start = \"14:00\"", "start = \"17:00\""));
        assert!(e.contains("end must be after start"), "{e}");
    }
}
