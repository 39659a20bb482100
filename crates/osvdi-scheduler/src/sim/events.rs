//! The simulation's events, drawn up front in time order: reservation starts, course members
//! turning up, and on-demand arrivals (a Poisson process, constant or by hour of the week).

use osvdi_model::UnixMillis;

use super::{Arrivals, Rate, SimConfig};
use crate::calendar::{Calendar, SlotRef};
use crate::civil::MINUTE_MS;
use crate::model::{DesktopRequest, GroupKey};
use crate::rng::SplitMix64;

/// Something that happens at a point in the simulation.
#[derive(Debug)]
pub(super) enum Event<'a> {
    /// A reservation starts: check that it fits beside what runs.
    Check { slot: &'a SlotRef },
    Member {
        request: &'a DesktopRequest,
        group: &'a GroupKey,
        slot: &'a SlotRef,
        end: UnixMillis,
    },
    OnDemand {
        stream: &'a Arrivals,
        end: UnixMillis,
    },
}

/// Every event of the simulation, in time order (ties in the order generated).
pub(super) fn events<'a>(
    cfg: &'a SimConfig,
    calendar: &'a Calendar,
) -> Vec<(UnixMillis, Event<'a>)> {
    let mut rng = SplitMix64::new(cfg.seed);
    let end = UnixMillis(cfg.start.0.saturating_add(cfg.duration_ms));
    let mut ev: Vec<(UnixMillis, Event<'a>)> = Vec::new();
    for r in calendar.reservations() {
        if r.start < cfg.start || r.start >= end {
            continue;
        }
        ev.push((r.start, Event::Check { slot: &r.slot }));
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
                    slot: &r.slot,
                    end: r.end,
                },
            ));
        }
    }
    for stream in &cfg.arrivals {
        let times = match &stream.rate {
            Rate::PerHour(0) => continue,
            Rate::PerHour(n) => constant(&mut rng, stream, *n, cfg.start, end),
            Rate::Weekly(p) => {
                let mut times = Vec::new();
                let mut t = cfg.start.0 as f64;
                while t < end.0 as f64 {
                    let (milli, next) = p.rate_at(t as i64);
                    let next = (next as f64).min(end.0 as f64);
                    if milli == 0 {
                        t = next;
                        continue;
                    }
                    let gap = rng.exponential(60_000.0 * MINUTE_MS as f64 / f64::from(milli));
                    if t + gap >= next {
                        // Memoryless: the next hour starts afresh at its own rate.
                        t = next;
                        continue;
                    }
                    t += gap;
                    let at = UnixMillis(t as i64);
                    times.push((at, life(&mut rng, stream)));
                }
                times
            }
        };
        for (at, life) in times {
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

/// Arrival times and session lengths of a stream at a constant rate.
fn constant(
    rng: &mut SplitMix64,
    stream: &Arrivals,
    per_hour: u32,
    start: UnixMillis,
    end: UnixMillis,
) -> Vec<(UnixMillis, i64)> {
    let mean_gap = 60.0 * MINUTE_MS as f64 / f64::from(per_hour);
    let mut t = start.0 as f64;
    let mut out = Vec::new();
    loop {
        t += rng.exponential(mean_gap);
        if t >= end.0 as f64 {
            break;
        }
        let life = life(rng, stream);
        out.push((UnixMillis(t as i64), life));
    }
    out
}

/// A session length: uniform between half and one and a half times the stream's mean.
fn life(rng: &mut SplitMix64, stream: &Arrivals) -> i64 {
    let mean = i64::from(stream.mean_minutes) * MINUTE_MS;
    mean / 2 + i64::try_from(rng.below(mean.unsigned_abs() + 1)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::{DAY_MS, Date};
    use crate::model::{Inventory, Resources};
    use crate::sim::{CourseAttendance, WeekProfile};
    use std::collections::BTreeMap;

    fn cfg(rate: Rate, days: i64) -> SimConfig {
        SimConfig {
            start: Date::from_days(20_150).at(0, 60),
            duration_ms: days * DAY_MS,
            inventory: Inventory::default(),
            courses: vec![],
            attendance: CourseAttendance {
                percent: 100,
                spread_minutes: 0,
            },
            arrivals: vec![Arrivals {
                request: DesktopRequest::new("t", Resources::new(1, 1, 1)),
                rate,
                mean_minutes: 60,
                groups: vec![],
            }],
            boot_times: BTreeMap::new(),
            warm: None,
            seed: 5,
        }
    }

    #[test]
    fn weekly_profiles_put_arrivals_in_their_hours() {
        // 20 an hour on weekdays 09:00-17:00 local (UTC+1), 2.5 an hour on weekend afternoons.
        let mut rates = vec![0; WeekProfile::HOURS];
        for d in 0..5 {
            for h in 9..17 {
                rates[d * 24 + h] = 20_000;
            }
        }
        for d in 5..7 {
            for h in 13..17 {
                rates[d * 24 + h] = 2500;
            }
        }
        let profile = WeekProfile {
            utc_offset_minutes: 60,
            milli_per_hour: rates,
        };
        let c = cfg(Rate::Weekly(profile), 28);
        let cal = Calendar::new();
        let ev = events(&c, &cal);
        let (mut weekday, mut weekend) = (0u32, 0u32);
        for (at, _) in &ev {
            let local = at.0 + 60 * MINUTE_MS;
            let hour = local.rem_euclid(DAY_MS) / (60 * MINUTE_MS);
            let day = Date::from_days(local.div_euclid(DAY_MS)).weekday() as usize;
            if day < 5 {
                assert!((9..17).contains(&hour), "{hour}");
                weekday += 1;
            } else {
                assert!((13..17).contains(&hour), "{hour}");
                weekend += 1;
            }
        }
        // Expected: 4 weeks x 5 days x 8 h x 20 = 3200, and 4 x 2 x 4 x 2.5 = 80.
        assert!((3000..3400).contains(&weekday), "{weekday}");
        assert!((55..110).contains(&weekend), "{weekend}");
        assert!(ev.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn constant_rates_keep_their_stream() {
        let c = cfg(Rate::PerHour(6), 7);
        let n = events(&c, &Calendar::new()).len();
        assert!((900..1130).contains(&n), "{n}");
        assert!(events(&cfg(Rate::PerHour(0), 7), &Calendar::new()).is_empty());
    }
}
