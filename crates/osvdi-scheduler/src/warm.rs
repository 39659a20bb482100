//! Warm pools: which desktops to start before anyone asks (ahead of course slots, and a floor
//! of idle desktops per on-demand template), and which never-used ones to stop.

use std::collections::BTreeMap;

use osvdi_model::UnixMillis;

use crate::calendar::{Calendar, SlotRef};
use crate::model::{DesktopKey, TemplateKey};

/// One observed boot: how long a desktop of `template` took from start to usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSample {
    pub template: TemplateKey,
    pub millis: i64,
}

/// How warm pools are sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmSettings {
    /// How many of the latest boots of a template are looked at.
    pub window: usize,
    /// Which percentile of them (1..=100).
    pub percentile: u32,
    /// The lead time is that percentile times this, in percent (150: one and a half times).
    pub safety_percent: u32,
    /// The lead time of a template never seen booting.
    pub default_lead_ms: i64,
    /// The shortest lead time, whatever the observations say.
    pub min_lead_ms: i64,
    /// On-demand templates and how many never-used started desktops each keeps ready.
    pub min_idle: BTreeMap<TemplateKey, u32>,
}

impl Default for WarmSettings {
    /// p90 of the last 20 boots, times 1.5, at least one minute; five minutes when unknown.
    fn default() -> Self {
        WarmSettings {
            window: 20,
            percentile: 90,
            safety_percent: 150,
            default_lead_ms: 5 * 60_000,
            min_lead_ms: 60_000,
            min_idle: BTreeMap::new(),
        }
    }
}

/// A started desktop the broker knows of: warm (never used) or handed to someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDesktop {
    pub desktop: DesktopKey,
    pub template: TemplateKey,
    /// The slot it was started for, if any.
    pub reservation: Option<SlotRef>,
    /// Whether someone has used it. A used desktop is never handed to anyone else, so the
    /// plan only ever counts, moves or stops never-used ones.
    pub used: bool,
}

/// One thing to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmAction {
    /// Start `count` desktops of `template`, for `reservation` or for the on-demand pool.
    /// Each is placed with [`crate::admit_for_reservation`] or [`crate::admit_on_demand`].
    Start {
        template: TemplateKey,
        count: u32,
        reservation: Option<SlotRef>,
    },
    /// Move a never-used desktop whose slot is over to its template's on-demand pool.
    Release { desktop: DesktopKey },
    /// Stop a never-used desktop nobody will need.
    Stop { desktop: DesktopKey },
}

/// How long before it is needed a desktop of `template` is started: the configured percentile
/// of its latest boots times the safety factor, at least the floor; the default without
/// observations (`boots` oldest first).
pub fn lead_time(template: &TemplateKey, boots: &[BootSample], s: &WarmSettings) -> i64 {
    let mut latest: Vec<i64> = boots
        .iter()
        .rev()
        .filter(|b| &b.template == template)
        .take(s.window)
        .map(|b| b.millis.max(0))
        .collect();
    if latest.is_empty() {
        return s.default_lead_ms.max(s.min_lead_ms);
    }
    latest.sort_unstable();
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let n = latest.len();
    let p = usize::try_from(s.percentile.clamp(1, 100)).unwrap_or(100);
    let rank = (p * n).div_ceil(100).clamp(1, n);
    let pct = latest[rank - 1];
    let lead = pct.saturating_mul(i64::from(s.safety_percent)) / 100;
    lead.max(s.min_lead_ms)
}

/// The actions that bring the warm pools to what is wanted at `now`:
///
/// - for each reservation of a non-persistent shape, from its lead time before its start until
///   a lead time before its end: as many desktops tagged with its slot as it reserves (used
///   ones included: they were handed to members);
/// - after a slot ends, its never-used desktops go to the template's on-demand pool where that
///   pool is short, and are stopped otherwise (also those of cancelled courses);
/// - each on-demand template keeps `min_idle` never-used untagged desktops; surplus ones are
///   stopped (highest desktop key first), as are idle ones of templates without a pool.
pub fn plan_warm(
    now: UnixMillis,
    calendar: &Calendar,
    boots: &[BootSample],
    settings: &WarmSettings,
    desktops: &[PoolDesktop],
) -> Vec<WarmAction> {
    let mut actions = Vec::new();
    let mut idle: BTreeMap<&TemplateKey, Vec<&DesktopKey>> = BTreeMap::new();
    for d in desktops
        .iter()
        .filter(|d| !d.used && d.reservation.is_none())
    {
        idle.entry(&d.template).or_default().push(&d.desktop);
    }
    let deficit = |t: &TemplateKey, idle: &BTreeMap<&TemplateKey, Vec<&DesktopKey>>| {
        let want = settings.min_idle.get(t).copied().unwrap_or(0);
        let have = idle.get(t).map_or(0, |v| v.len());
        usize::try_from(want)
            .unwrap_or(usize::MAX)
            .saturating_sub(have)
    };
    // Never-used desktops of slots that are over or gone.
    let mut finished: Vec<&PoolDesktop> = desktops
        .iter()
        .filter(|d| !d.used)
        .filter(|d| {
            d.reservation
                .as_ref()
                .is_some_and(|s| calendar.reservation(s).is_none_or(|r| now >= r.end))
        })
        .collect();
    finished.sort_by(|a, b| (&a.reservation, &a.desktop).cmp(&(&b.reservation, &b.desktop)));
    for d in finished {
        if deficit(&d.template, &idle) > 0 {
            idle.entry(&d.template).or_default().push(&d.desktop);
            actions.push(WarmAction::Release {
                desktop: d.desktop.clone(),
            });
        } else {
            actions.push(WarmAction::Stop {
                desktop: d.desktop.clone(),
            });
        }
    }
    // Reservations being prepared or running. One lead time per template: a semester's
    // calendar has hundreds of reservations of a few templates.
    let mut leads: BTreeMap<&TemplateKey, i64> = BTreeMap::new();
    for r in calendar.reservations() {
        if r.shape.persistent || now >= r.end {
            continue;
        }
        let lead = *leads
            .entry(&r.shape.template)
            .or_insert_with(|| lead_time(&r.shape.template, boots, settings));
        if now.0 < r.start.0.saturating_sub(lead) || now.0 >= r.end.0.saturating_sub(lead) {
            continue;
        }
        let have = desktops
            .iter()
            .filter(|d| d.reservation.as_ref() == Some(&r.slot))
            .count();
        let want = usize::try_from(r.count).unwrap_or(usize::MAX);
        if want > have {
            actions.push(WarmAction::Start {
                template: r.shape.template.clone(),
                // Bounded by `r.count`, a u32.
                count: u32::try_from(want - have).unwrap_or(u32::MAX),
                reservation: Some(r.slot.clone()),
            });
        }
    }
    // On-demand pools.
    for t in settings.min_idle.keys() {
        let missing = deficit(t, &idle);
        if missing > 0 {
            actions.push(WarmAction::Start {
                template: t.clone(),
                count: u32::try_from(missing).unwrap_or(u32::MAX),
                reservation: None,
            });
        }
    }
    for (t, keys) in &mut idle {
        let want = settings.min_idle.get(*t).copied().unwrap_or(0);
        let want = usize::try_from(want).unwrap_or(usize::MAX);
        if keys.len() > want {
            keys.sort();
            for k in keys[want..].iter().rev() {
                actions.push(WarmAction::Stop {
                    desktop: (*k).clone(),
                });
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Course, Schedule, Slot};
    use crate::model::{DesktopRequest, Resources};

    const MIN: i64 = 60_000;

    fn boots(t: &str, secs: &[i64]) -> Vec<BootSample> {
        secs.iter()
            .map(|s| BootSample {
                template: t.into(),
                millis: s * 1000,
            })
            .collect()
    }

    #[test]
    fn lead_time_is_a_padded_percentile_of_recent_boots() {
        let s = WarmSettings {
            window: 10,
            ..Default::default()
        };
        let t = TemplateKey::from("t");
        assert_eq!(lead_time(&t, &[], &s), 5 * MIN);
        // Ten boots of 10..=100 s: p90 is 90 s, times 1.5 = 135 s.
        let b = boots("t", &[10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(lead_time(&t, &b, &s), 135_000);
        // Only the latest ten count: an old 1000 s boot is forgotten.
        let mut old = boots("t", &[1000]);
        old.extend(b);
        assert_eq!(lead_time(&t, &old, &s), 135_000);
        // Fast boots hit the floor; other templates are ignored.
        let mut fast = boots("t", &[5, 5, 5]);
        fast.extend(boots("u", &[500]));
        assert_eq!(lead_time(&t, &fast, &s), MIN);
    }

    fn calendar() -> Calendar {
        Calendar::new()
            .restore(Course {
                id: "c".into(),
                group: "g".into(),
                shape: DesktopRequest::new("t", Resources::new(2, 2048, 20)),
                count: 3,
                schedule: Schedule::Once(Slot {
                    start: UnixMillis(60 * MIN),
                    end: UnixMillis(120 * MIN),
                }),
                utc_offset_minutes: 0,
            })
            .unwrap()
    }

    fn slot() -> SlotRef {
        SlotRef {
            course: "c".into(),
            index: 0,
        }
    }

    fn desk(k: &str, t: &str, r: Option<SlotRef>, used: bool) -> PoolDesktop {
        PoolDesktop {
            desktop: k.into(),
            template: t.into(),
            reservation: r,
            used,
        }
    }

    #[test]
    fn starts_ahead_of_a_slot_and_tops_up_during_it() {
        let s = WarmSettings::default(); // lead 5 minutes
        let cal = calendar();
        assert_eq!(plan_warm(UnixMillis(54 * MIN), &cal, &[], &s, &[]), vec![]);
        let start = |count| WarmAction::Start {
            template: "t".into(),
            count,
            reservation: Some(slot()),
        };
        assert_eq!(
            plan_warm(UnixMillis(55 * MIN), &cal, &[], &s, &[]),
            vec![start(3)]
        );
        let have = [
            desk("a", "t", Some(slot()), true),
            desk("b", "t", Some(slot()), false),
        ];
        assert_eq!(
            plan_warm(UnixMillis(70 * MIN), &cal, &[], &s, &have),
            vec![start(1)]
        );
        // Too late to be worth it.
        assert_eq!(
            plan_warm(UnixMillis(116 * MIN), &cal, &[], &s, &have),
            vec![]
        );
    }

    #[test]
    fn after_a_slot_unused_desktops_feed_the_pool_or_stop() {
        let mut s = WarmSettings::default();
        s.min_idle.insert("t".into(), 1);
        let cal = calendar();
        let have = [
            desk("a", "t", Some(slot()), true),
            desk("b", "t", Some(slot()), false),
            desk("c", "t", Some(slot()), false),
        ];
        assert_eq!(
            plan_warm(UnixMillis(120 * MIN), &cal, &[], &s, &have),
            vec![
                WarmAction::Release {
                    desktop: "b".into()
                },
                WarmAction::Stop {
                    desktop: "c".into()
                },
            ]
        );
    }

    #[test]
    fn on_demand_pools_keep_their_floor() {
        let mut s = WarmSettings::default();
        s.min_idle.insert("t".into(), 2);
        let cal = Calendar::new();
        let have = [
            desk("x", "t", None, false),
            desk("y", "t", None, true),
            desk("z", "u", None, false),
        ];
        assert_eq!(
            plan_warm(UnixMillis(0), &cal, &[], &s, &have),
            vec![
                WarmAction::Start {
                    template: "t".into(),
                    count: 1,
                    reservation: None
                },
                WarmAction::Stop {
                    desktop: "z".into()
                },
            ]
        );
        s.min_idle.insert("t".into(), 0);
        assert_eq!(
            plan_warm(UnixMillis(0), &cal, &[], &s, &have),
            vec![
                WarmAction::Stop {
                    desktop: "x".into()
                },
                WarmAction::Stop {
                    desktop: "z".into()
                },
            ]
        );
    }
}
