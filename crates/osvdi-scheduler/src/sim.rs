//! A small discrete-event simulation: courses are admitted, their members and on-demand users
//! arrive, and every desktop goes through the same admission and placement as in production.
//! With warm pools, course desktops are started ahead by [`crate::plan_warm`] as the broker
//! does, and a desktop's boot time (sampled per template) is what a person waits when no
//! started desktop is ready for them.
//!
//! `events` draws the arrivals (a seeded Poisson process, constant or by hour of the week),
//! `run` holds what runs and does what each event asks, `report` prints the result.

mod events;
mod report;
mod run;

use std::collections::BTreeMap;

use osvdi_model::UnixMillis;

use crate::calendar::Course;
use crate::civil::{DAY_MS, MINUTE_MS};
use crate::model::{DesktopRequest, GroupKey, Inventory, TemplateKey};
use crate::rng::SplitMix64;
use crate::warm::WarmSettings;

/// How course members turn up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CourseAttendance {
    /// The share of the reserved desktops that members ask for, in percent (at most 100).
    pub percent: u32,
    /// Members arrive uniformly over this many minutes after the slot starts, and keep their
    /// desktop until the slot ends.
    pub spread_minutes: u32,
}

/// How often requests of a stream arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rate {
    /// The same number of arrivals every hour.
    PerHour(u32),
    /// A rate for each hour of the week, in local time.
    Weekly(WeekProfile),
}

/// Arrival rates by hour of the week: piecewise constant, one rate per local hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekProfile {
    /// Local time is this many minutes ahead of UTC.
    pub utc_offset_minutes: i32,
    /// Arrivals per hour in thousandths (1500: one and a half an hour), for the hours of the
    /// week from Monday 00:00 local: index `24 * weekday + hour`. Hours past the end of the
    /// vector have no arrivals.
    pub milli_per_hour: Vec<u32>,
}

impl WeekProfile {
    /// The hours of a week.
    pub const HOURS: usize = 168;

    /// The rate in force at `t` (thousandths of arrivals per hour) and when it changes next.
    pub fn rate_at(&self, t: i64) -> (u32, i64) {
        const HOUR_MS: i64 = 60 * MINUTE_MS;
        let local = t + i64::from(self.utc_offset_minutes) * MINUTE_MS;
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
        let weekday = (local.div_euclid(DAY_MS) + 3).rem_euclid(7);
        let hour = local.rem_euclid(DAY_MS) / HOUR_MS;
        let index = usize::try_from(weekday * 24 + hour).unwrap_or(usize::MAX);
        let rate = self.milli_per_hour.get(index).copied().unwrap_or(0);
        (rate, t - local.rem_euclid(HOUR_MS) + HOUR_MS)
    }
}

/// A stream of on-demand requests: a Poisson process at `rate`, each desktop lasting uniformly
/// between half and one and a half times `mean_minutes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrivals {
    pub request: DesktopRequest,
    pub rate: Rate,
    pub mean_minutes: u32,
    pub groups: Vec<GroupKey>,
}

/// How long desktops of a template take from start to usable: log-normal with this median and
/// 95th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootTime {
    pub p50_ms: i64,
    pub p95_ms: i64,
}

impl BootTime {
    /// One boot time drawn from `rng` (Box-Muller; sigma from the ratio of p95 to p50).
    pub fn sample(&self, rng: &mut SplitMix64) -> i64 {
        let p50 = self.p50_ms.max(0) as f64;
        let p95 = (self.p95_ms as f64).max(p50);
        if p50 <= 0.0 {
            return 0;
        }
        // z of the 95th percentile of the standard normal.
        let sigma = (p95 / p50).ln() / 1.644_853_6;
        let (u1, u2) = (1.0 - rng.unit(), rng.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (p50 * (sigma * z).exp()).round() as i64
    }
}

/// Warm pools as the broker runs them: [`crate::plan_warm`] every simulated minute, its lead
/// times from the boots seen so far in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmPools {
    /// Lead-time knobs, and the on-demand templates that keep idle desktops (`min_idle`).
    pub settings: WarmSettings,
    /// How long an idle on-demand pool desktop is admitted for. Handed out, it is kept for the
    /// person's whole session if the reservations allow (else until its admitted end, counted
    /// as shortened); expired unused, the planner starts another.
    pub idle_hold_ms: i64,
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
    /// Boot times by template; templates not named are usable at once.
    pub boot_times: BTreeMap<TemplateKey, BootTime>,
    /// Warm pools, or none: every desktop then starts when asked for.
    pub warm: Option<WarmPools>,
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

impl Outcomes {
    /// The share of requests that got a desktop (admitted or shortened), in per mille.
    pub fn accepted_permille(&self) -> u32 {
        if self.requests == 0 {
            return 1000;
        }
        permille(
            u64::from(self.admitted + self.shortened),
            u64::from(self.requests),
        )
    }
}

/// Time to desktop: from asking to a usable desktop, over the requests that got one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Waits {
    pub desktops: u32,
    /// Of those, desktops handed out already started (by a warm pool).
    pub warm: u32,
    pub p50_ms: i64,
    pub p95_ms: i64,
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
    /// Reservation slots starting in the simulated time, of every course offered.
    pub reservations_offered: u32,
    /// Of those, the slots of admitted courses whose start check passed and whose members all
    /// got a desktop. Slots of refused courses are not kept.
    pub reservations_kept: u32,
    /// Peak share in use, in per mille: vCPUs, memory, GPUs running at least one instance.
    pub peak_vcpu_permille: u32,
    pub peak_memory_permille: u32,
    pub peak_gpu_permille: u32,
    /// Mean share of the vGPU capacity in use, in per mille, sampled every minute: per GPU,
    /// its instances over the most its type allows (weights over the budget on mixed GPUs).
    pub mean_vgpu_permille: u32,
    /// Hosts with GPUs, and the most hosts (all; with GPUs) running a desktop at once.
    pub gpu_hosts: usize,
    pub peak_hosts: u32,
    pub peak_gpu_hosts: u32,
    /// One-type GPUs given a type other than the one they last ran.
    pub gpu_type_switches: u32,
    pub members_wait: Waits,
    pub on_demand_wait: Waits,
    /// Desktops started by warm pools ahead of anyone asking, and of those, handed out.
    pub warm_started: u32,
    pub warm_used: u32,
}

impl SimReport {
    /// Reservations kept, in per mille of those offered (1000 when none was).
    pub fn kept_permille(&self) -> u32 {
        if self.reservations_offered == 0 {
            return 1000;
        }
        permille(
            u64::from(self.reservations_kept),
            u64::from(self.reservations_offered),
        )
    }

    /// Requests of both kinds that got a desktop, in per mille.
    pub fn accepted_permille(&self) -> u32 {
        let both = Outcomes {
            requests: self.members.requests + self.on_demand.requests,
            admitted: self.members.admitted + self.on_demand.admitted,
            shortened: self.members.shortened + self.on_demand.shortened,
            refused: self.members.refused + self.on_demand.refused,
        };
        both.accepted_permille()
    }
}

pub(crate) fn permille(used: u64, total: u64) -> u32 {
    (used.min(total) * 1000)
        .checked_div(total)
        .map_or(0, |pm| u32::try_from(pm).unwrap_or(1000))
}

/// Runs the simulation described by `cfg`.
pub fn simulate(cfg: &SimConfig) -> SimReport {
    run::run(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::Date;

    #[test]
    fn week_profile_looks_up_local_hours() {
        let mut rates = vec![0; WeekProfile::HOURS];
        rates[9] = 5000; // Monday 09:00-10:00
        rates[24 * 6 + 23] = 7; // Sunday 23:00-24:00
        let p = WeekProfile {
            utc_offset_minutes: 60,
            milli_per_hour: rates,
        };
        let monday = Date::from_days(20_150); // 2025-03-03, a Monday
        let nine = monday.at(9 * 60 + 30, 60);
        let (rate, next) = p.rate_at(nine.0);
        assert_eq!(rate, 5000);
        assert_eq!(next, monday.at(10 * 60, 60).0);
        assert_eq!(p.rate_at(monday.at(10 * 60, 60).0).0, 0);
        // 23:59 on the Sunday before, local time.
        assert_eq!(p.rate_at(monday.at(0, 60).0 - 60_000).0, 7);
        let short = WeekProfile {
            utc_offset_minutes: 0,
            milli_per_hour: vec![1],
        };
        assert_eq!(short.rate_at(monday.at(9 * 60, 0).0).0, 0);
    }

    #[test]
    fn boot_times_have_the_asked_median_and_p95() {
        let b = BootTime {
            p50_ms: 30_000,
            p95_ms: 90_000,
        };
        let mut rng = SplitMix64::new(3);
        let mut v: Vec<i64> = (0..20_000).map(|_| b.sample(&mut rng)).collect();
        v.sort_unstable();
        let (p50, p95) = (v[10_000], v[19_000]);
        assert!((28_000..32_000).contains(&p50), "{p50}");
        assert!((84_000..96_000).contains(&p95), "{p95}");
        let fixed = BootTime {
            p50_ms: 5000,
            p95_ms: 5000,
        };
        assert_eq!(fixed.sample(&mut rng), 5000);
        let instant = BootTime {
            p50_ms: 0,
            p95_ms: 0,
        };
        assert_eq!(instant.sample(&mut rng), 0);
    }

    #[test]
    fn acceptance_counts_shortened_desktops() {
        let o = Outcomes {
            requests: 8,
            admitted: 5,
            shortened: 1,
            refused: 2,
        };
        assert_eq!(o.accepted_permille(), 750);
        assert_eq!(Outcomes::default().accepted_permille(), 1000);
    }
}
