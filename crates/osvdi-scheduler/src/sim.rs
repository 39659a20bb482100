//! A small discrete-event simulation: courses are admitted, their members and on-demand users
//! arrive, and every desktop goes through the same admission and placement as in production.

use std::collections::BTreeMap;
use std::fmt;

use osvdi_model::UnixMillis;

use crate::admission::admit_course;
use crate::calendar::{Calendar, Course, covering_reservation};
use crate::civil::{DAY_MS, MINUTE_MS};
use crate::feasibility::check_from;
use crate::model::{Allocation, DesktopRequest, GpuSharing, GroupKey, Inventory, MdevType};
use crate::ondemand::{Decision, OnDemand, admit_on_demand};
use crate::rng::SplitMix64;

/// How course members turn up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CourseAttendance {
    /// The share of the reserved desktops that members ask for, in percent (at most 100).
    pub percent: u32,
    /// Members arrive uniformly over this many minutes after the slot starts, and keep their
    /// desktop until the slot ends.
    pub spread_minutes: u32,
}

/// A stream of on-demand requests: a Poisson process of `per_hour` arrivals, each desktop
/// lasting uniformly between half and one and a half times `mean_minutes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrivals {
    pub request: DesktopRequest,
    pub per_hour: u32,
    pub mean_minutes: u32,
    pub groups: Vec<GroupKey>,
}

/// Everything a simulation depends on; the same config gives the same report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub start: UnixMillis,
    pub duration_ms: i64,
    pub inventory: Inventory,
    /// Courses offered at `start`, in this order; each is admitted or refused.
    pub courses: Vec<Course>,
    pub attendance: CourseAttendance,
    pub arrivals: Vec<Arrivals>,
    pub seed: u64,
}

/// Requests of one kind and what became of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcomes {
    pub requests: u32,
    pub admitted: u32,
    pub shortened: u32,
    pub refused: u32,
}

/// What a simulation observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimReport {
    pub duration_ms: i64,
    pub hosts: usize,
    pub seed: u64,
    pub courses_admitted: u32,
    pub courses_refused: u32,
    /// Course members asking within their slot.
    pub members: Outcomes,
    pub on_demand: Outcomes,
    /// Members covered by a reservation with an unused desktop who did not get one for the
    /// whole slot. Must be 0.
    pub guarantees_broken: u32,
    /// Reservation starts at which the check admission relies on ([`crate::check_from`] until
    /// the calendar is quiet) failed beside what ran. Must be 0.
    pub reservation_checks_failed: u32,
    /// Peak share in use, in per mille: vCPUs, memory, GPUs running at least one instance.
    pub peak_vcpu_permille: u32,
    pub peak_memory_permille: u32,
    pub peak_gpu_permille: u32,
    /// One-type GPUs given a type other than the one they last ran.
    pub gpu_type_switches: u32,
}

/// Something that happens at a point in the simulation.
#[derive(Debug)]
enum Event<'a> {
    /// A reservation starts: check that it fits beside what runs.
    Check,
    Member {
        request: &'a DesktopRequest,
        group: &'a GroupKey,
        end: UnixMillis,
    },
    OnDemand {
        stream: &'a Arrivals,
        end: UnixMillis,
    },
}

/// Runs the simulation described by `cfg`.
pub fn simulate(cfg: &SimConfig) -> SimReport {
    let inv = &cfg.inventory;
    let mut report = SimReport {
        duration_ms: cfg.duration_ms,
        hosts: inv.hosts().len(),
        seed: cfg.seed,
        ..SimReport::default()
    };
    let mut calendar = Calendar::new();
    for c in &cfg.courses {
        match admit_course(&calendar, inv, c) {
            Ok(cal) => {
                calendar = cal;
                report.courses_admitted += 1;
            }
            Err(_) => report.courses_refused += 1,
        }
    }
    let events = events(cfg, &calendar);
    let mut allocations: Vec<Allocation> = Vec::new();
    let mut last_type: BTreeMap<(usize, usize), MdevType> = BTreeMap::new();
    for (n, (at, event)) in events.iter().enumerate() {
        let at = *at;
        allocations.retain(|a| a.runs_at(at));
        let (request, groups, end, member) = match event {
            Event::Check => {
                // The check admission relies on, over the chain of reservations from here.
                // Allocations come from the same inventory, so it cannot error.
                let until = Some(calendar.quiet_from(at));
                if !matches!(
                    check_from(inv, &calendar, &allocations, at, until),
                    Ok(Ok(()))
                ) {
                    report.reservation_checks_failed += 1;
                }
                continue;
            }
            Event::Member {
                request,
                group,
                end,
            } => (*request, vec![(*group).clone()], Some(*end), true),
            Event::OnDemand { stream, end } => {
                (&stream.request, stream.groups.clone(), Some(*end), false)
            }
        };
        let covered = member
            && covering_reservation(&calendar, &allocations, &groups, &request.template, at)
                .is_some();
        let ask = OnDemand {
            desktop: format!("d{n}").into(),
            request: request.clone(),
            groups,
            end,
        };
        let outcomes = if member {
            &mut report.members
        } else {
            &mut report.on_demand
        };
        outcomes.requests += 1;
        let decision = admit_on_demand(at, &calendar, inv, &allocations, &ask);
        match &decision {
            Ok(Decision::Admitted(_)) => outcomes.admitted += 1,
            Ok(Decision::Shortened { .. }) => outcomes.shortened += 1,
            Ok(Decision::Refused(_)) | Err(_) => outcomes.refused += 1,
        }
        if covered && !matches!(decision, Ok(Decision::Admitted(_))) {
            report.guarantees_broken += 1;
        }
        if let Ok(Some(a)) = decision.as_ref().map(Decision::allocation) {
            count_switch(inv, a, &mut last_type, &mut report.gpu_type_switches);
            allocations.push(a.clone());
            record_peak(inv, &allocations, &mut report);
        }
    }
    report
}

/// Every event of the simulation, in time order (ties in the order generated).
fn events<'a>(cfg: &'a SimConfig, calendar: &'a Calendar) -> Vec<(UnixMillis, Event<'a>)> {
    let mut rng = SplitMix64::new(cfg.seed);
    let end = UnixMillis(cfg.start.0.saturating_add(cfg.duration_ms));
    let mut ev: Vec<(UnixMillis, Event<'a>)> = Vec::new();
    for r in calendar.reservations() {
        if r.start < cfg.start || r.start >= end {
            continue;
        }
        ev.push((r.start, Event::Check));
        let members = u64::from(r.count) * u64::from(cfg.attendance.percent.min(100)) / 100;
        let spread = i64::from(cfg.attendance.spread_minutes) * MINUTE_MS;
        for _ in 0..members {
            // `below(spread)` is less than `spread`, an i64.
            let delay = i64::try_from(rng.below(spread.max(0).unsigned_abs())).unwrap_or(0);
            let at = UnixMillis((r.start.0 + delay).min(r.end.0 - 1));
            ev.push((
                at,
                Event::Member {
                    request: &r.shape,
                    group: &r.group,
                    end: r.end,
                },
            ));
        }
    }
    for stream in &cfg.arrivals {
        if stream.per_hour == 0 {
            continue;
        }
        let mean_gap = 60.0 * MINUTE_MS as f64 / f64::from(stream.per_hour);
        let mut t = cfg.start.0 as f64;
        loop {
            t += rng.exponential(mean_gap);
            if t >= end.0 as f64 {
                break;
            }
            let mean = i64::from(stream.mean_minutes) * MINUTE_MS;
            let life = mean / 2 + i64::try_from(rng.below(mean.unsigned_abs() + 1)).unwrap_or(0);
            let at = UnixMillis(t as i64);
            ev.push((
                at,
                Event::OnDemand {
                    stream,
                    end: UnixMillis(at.0 + life.max(MINUTE_MS)),
                },
            ));
        }
    }
    // Stable: same-time events keep their generation order (checks before members).
    ev.sort_by_key(|(at, _)| *at);
    ev
}

fn count_switch(
    inv: &Inventory,
    a: &Allocation,
    last: &mut BTreeMap<(usize, usize), MdevType>,
    switches: &mut u32,
) {
    let (Some(g), Some(h)) = (&a.gpu, inv.host_index(&a.host)) else {
        return;
    };
    if inv.hosts()[h].gpus[g.index].sharing != GpuSharing::SingleType {
        return;
    }
    if let Some(prev) = last.insert((h, g.index), g.mdev.clone())
        && prev != g.mdev
    {
        *switches += 1;
    }
}

fn permille(used: u64, total: u64) -> u32 {
    (used.min(total) * 1000)
        .checked_div(total)
        .map_or(0, |pm| u32::try_from(pm).unwrap_or(1000))
}

fn record_peak(inv: &Inventory, allocations: &[Allocation], report: &mut SimReport) {
    let total = inv.total();
    let (mut cpu, mut mem) = (0u64, 0u64);
    let mut gpus = std::collections::BTreeSet::new();
    for a in allocations {
        cpu += u64::from(a.resources.vcpus);
        mem += a.resources.memory_mb;
        if let Some(g) = &a.gpu {
            gpus.insert((&a.host, g.index));
        }
    }
    let all_gpus: usize = inv.hosts().iter().map(|h| h.gpus.len()).sum();
    let gpu_pm = permille(gpus.len() as u64, all_gpus as u64);
    report.peak_vcpu_permille = report
        .peak_vcpu_permille
        .max(permille(cpu, u64::from(total.vcpus)));
    report.peak_memory_permille = report
        .peak_memory_permille
        .max(permille(mem, total.memory_mb));
    report.peak_gpu_permille = report.peak_gpu_permille.max(gpu_pm);
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |pm: u32| format!("{}.{}%", pm / 10, pm % 10);
        let tenths = self.duration_ms.max(0) * 10 / DAY_MS;
        writeln!(
            f,
            "simulation: {}.{} days, {} hosts, seed {}",
            tenths / 10,
            tenths % 10,
            self.hosts,
            self.seed
        )?;
        writeln!(
            f,
            "{:<16}{:>10}{:>10}{:>11}{:>9}",
            "", "requests", "admitted", "shortened", "refused"
        )?;
        for (name, o) in [
            ("course members", self.members),
            ("on demand", self.on_demand),
        ] {
            writeln!(
                f,
                "{:<16}{:>10}{:>10}{:>11}{:>9}",
                name, o.requests, o.admitted, o.shortened, o.refused
            )?;
        }
        let rows = [
            (
                "courses admitted / refused",
                format!("{} / {}", self.courses_admitted, self.courses_refused),
            ),
            (
                "reservation guarantees broken",
                self.guarantees_broken.to_string(),
            ),
            (
                "reservation checks failed",
                self.reservation_checks_failed.to_string(),
            ),
            ("peak vCPU use", pct(self.peak_vcpu_permille)),
            ("peak memory use", pct(self.peak_memory_permille)),
            ("peak GPUs in use", pct(self.peak_gpu_permille)),
            ("GPU type switches", self.gpu_type_switches.to_string()),
        ];
        for (k, v) in rows {
            writeln!(f, "{k:<31}{v:>25}")?;
        }
        Ok(())
    }
}
