//! On-demand admission: a desktop asked for now is admitted only if it takes no room a
//! reservation needs during its lifetime (else until the first such need, else refused); a
//! member of a group with an active reservation draws from it.

use std::fmt;

use osvdi_model::UnixMillis;

use crate::calendar::{Calendar, SlotRef, covering_reservation};
use crate::error::SchedError;
use crate::feasibility::{Shortfall, Window};
use crate::model::{Allocation, DesktopKey, DesktopRequest, GpuSlot, GroupKey, Inventory};
use crate::nofit::NoFit;
use crate::placement::{PlaceOptions, Placement, host_fits, rank};
use crate::usage::Usage;

/// How many of the best-ranked hosts an on-demand desktop tries before it gives up.
pub const MAX_TRIES: usize = 8;

/// A person asking for a desktop now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDemand {
    /// The key the allocation will carry.
    pub desktop: DesktopKey,
    /// The template's shape (a reservation's shape replaces it when one covers the person).
    pub request: DesktopRequest,
    /// The groups the person belongs to (to find a reservation that covers them).
    pub groups: Vec<GroupKey>,
    /// When the desktop is expected to stop; `None`: until stopped (or, for a desktop drawn
    /// from a reservation, until the slot ends).
    pub end: Option<UnixMillis>,
}

/// Why a desktop was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No host has room now.
    NoRoom(NoFit),
    /// Room exists now, but a reservation needs it (from `now` on, the shortfall says).
    Reserved(Shortfall),
    /// The slot already has all its reserved desktops.
    SlotFull(SlotRef),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoRoom(nf) => nf.fmt(f),
            Refusal::Reserved(s) => write!(f, "The room is reserved: {s}"),
            Refusal::SlotFull(s) => write!(f, "Reservation {s} has all its desktops"),
        }
    }
}

/// The answer to a desktop request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted for the whole lifetime asked for: record the allocation.
    Admitted(Allocation),
    /// Admitted until `allocation.end` (tell the person), when reservations need the room.
    Shortened {
        allocation: Allocation,
        conflict: Shortfall,
    },
    /// Not admitted, and why.
    Refused(Refusal),
}

impl Decision {
    /// The allocation to record, if admitted.
    pub fn allocation(&self) -> Option<&Allocation> {
        match self {
            Decision::Admitted(a) | Decision::Shortened { allocation: a, .. } => Some(a),
            Decision::Refused(_) => None,
        }
    }
}

/// Admits a desktop asked for at `now` beside the `allocations` (every desktop holding room;
/// those ended by `now` are ignored).
///
/// A member of a group whose reservation is active and has an unused desktop draws from it:
/// the allocation is tagged with the slot, has the reservation's shape, ends with the slot
/// unless asked otherwise, and first tries the spot the check planned for that slot.
/// Otherwise the desktop is admitted only if every reserved desktop still to come (until the
/// calendar is quiet after the desktop ends) keeps a host for its whole slot beside it (see
/// [`crate::check_from`]); if that holds only when it ends earlier, it is admitted until
/// the reservation start that needs its room ([`Decision::Shortened`]). Up to [`MAX_TRIES`]
/// hosts are tried in weigh order, keeping room for the largest shape still reserved; the
/// one admitted for longest wins.
pub fn admit_on_demand(
    now: UnixMillis,
    calendar: &Calendar,
    inv: &Inventory,
    allocations: &[Allocation],
    request: &OnDemand,
) -> Result<Decision, SchedError> {
    let slot = covering_reservation(
        calendar,
        allocations,
        &request.groups,
        &request.request.template,
        now,
    );
    // A desktop drawn from a reservation has the reserved shape (the template's).
    let shape = slot
        .as_ref()
        .and_then(|s| calendar.reservation(s))
        .map_or(&request.request, |r| &r.shape);
    admit(Ask {
        now,
        calendar,
        inv,
        allocations,
        desktop: &request.desktop,
        shape,
        end: request.end,
        slot,
    })
}

/// Admits a desktop for reservation `slot` at `now`, possibly before the slot starts (a warm
/// desktop started ahead, see [`crate::plan_warm`]). It lasts until the slot ends, and is
/// refused when the slot already has all its desktops.
pub fn admit_for_reservation(
    now: UnixMillis,
    calendar: &Calendar,
    inv: &Inventory,
    allocations: &[Allocation],
    desktop: &DesktopKey,
    slot: &SlotRef,
) -> Result<Decision, SchedError> {
    let Some(r) = calendar.reservation(slot) else {
        return Err(SchedError::UnknownSlot(slot.clone()));
    };
    let at = now.max(r.start);
    let started = allocations
        .iter()
        .filter(|a| a.reservation.as_ref() == Some(slot) && a.runs_at(at))
        .count();
    if started >= usize::try_from(r.count).unwrap_or(usize::MAX) || now >= r.end {
        return Ok(Decision::Refused(Refusal::SlotFull(slot.clone())));
    }
    admit(Ask {
        now,
        calendar,
        inv,
        allocations,
        desktop,
        shape: &r.shape,
        end: Some(r.end),
        slot: Some(slot.clone()),
    })
}

/// What is being admitted, beside what.
struct Ask<'a> {
    now: UnixMillis,
    calendar: &'a Calendar,
    inv: &'a Inventory,
    allocations: &'a [Allocation],
    desktop: &'a DesktopKey,
    shape: &'a DesktopRequest,
    end: Option<UnixMillis>,
    slot: Option<SlotRef>,
}

fn admit(ask: Ask<'_>) -> Result<Decision, SchedError> {
    let Ask {
        now,
        calendar,
        inv,
        allocations,
        ..
    } = ask;
    let end = match (&ask.slot, ask.end) {
        (Some(s), None) => calendar.reservation(s).map(|r| r.end),
        (_, end) => end,
    };
    if end.is_some_and(|e| e <= now) {
        return Err(SchedError::EmptyLifetime(ask.desktop.clone()));
    }
    let usage = Usage::from_allocations(inv, allocations.iter().filter(|a| a.runs_at(now)))?;
    let opts = PlaceOptions {
        keep_room_for: calendar.largest_wanted(now),
        strategy: None,
    };
    let mut candidates = match rank(inv, &usage, ask.shape, &opts) {
        Ok(r) => r,
        Err(nf) => return Ok(Decision::Refused(Refusal::NoRoom(nf))),
    };
    candidates.truncate(MAX_TRIES);
    // Where the check puts the reserved desktops without this one. A desktop drawn from a
    // reservation first tries the spot planned for its slot now: the plan, with the desktop
    // in that spot, is then exactly what the check finds again.
    let plan = Window {
        inv,
        calendar,
        allocations,
        extra: None,
        from: now,
        until: end.map(|e| calendar.quiet_from(e)),
    }
    .check()?
    .unwrap_or_default();
    if let Some(s) = &ask.slot
        && let Some(p) = plan.iter().find(|p| p.start == now && p.slot == s)
        && host_fits(&inv.hosts()[p.host], usage.host(p.host), ask.shape)
    {
        let planned = Placement {
            host: inv.hosts()[p.host].id.clone(),
            host_index: p.host,
            gpu: p.gpu,
        };
        candidates.retain(|c| c != &planned);
        candidates.insert(0, planned);
    }
    let mut shortened: Option<(Allocation, Shortfall)> = None;
    let mut refused: Option<Shortfall> = None;
    for p in candidates {
        let candidate = Allocation {
            desktop: ask.desktop.clone(),
            host: p.host,
            resources: ask.shape.resources,
            gpu: p
                .gpu
                .zip(ask.shape.vgpu.clone())
                .map(|(index, mdev)| GpuSlot { index, mdev }),
            end,
            reservation: ask.slot.clone(),
        };
        match shorten(&ask, candidate)? {
            Ok((candidate, None)) => return Ok(Decision::Admitted(candidate)),
            Ok((candidate, Some(s))) => {
                if shortened
                    .as_ref()
                    .is_none_or(|(a, _)| a.end < candidate.end)
                {
                    shortened = Some((candidate, s));
                }
            }
            Err(s) => {
                refused.get_or_insert(s);
            }
        }
    }
    Ok(match (shortened, refused) {
        (Some((allocation, conflict)), _) => Decision::Shortened {
            allocation,
            conflict,
        },
        (None, Some(s)) => Decision::Refused(Refusal::Reserved(s)),
        // There was at least one candidate, and each was admitted, shortened or refused.
        (None, None) => unreachable!("no host tried"),
    })
}

/// The candidate, ended early enough that the check passes (with the last conflict that
/// ended it earlier), or the conflict at `now` that refuses it. Every pass ends it earlier.
#[allow(clippy::type_complexity)]
fn shorten(
    ask: &Ask<'_>,
    mut candidate: Allocation,
) -> Result<Result<(Allocation, Option<Shortfall>), Shortfall>, SchedError> {
    let now = ask.now;
    let mut conflict = None;
    loop {
        let window = Window {
            inv: ask.inv,
            calendar: ask.calendar,
            allocations: ask.allocations,
            extra: Some(&candidate),
            from: now,
            until: candidate.end.map(|e| ask.calendar.quiet_from(e)),
        };
        let s = match window.check()? {
            Ok(_) => return Ok(Ok((candidate, conflict))),
            Err(s) => s,
        };
        // End when the conflict starts or, if it already ends by then (what it displaced
        // earlier is in the way), at the last reservation start before its end.
        let end = match candidate.end {
            Some(e) if s.at >= e => ask
                .calendar
                .starts_between(now, Some(e))
                .last()
                .copied()
                .unwrap_or(now),
            _ => s.at,
        };
        if end <= now {
            return Ok(Err(s));
        }
        candidate.end = Some(end);
        conflict = Some(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::admit_course;
    use crate::model::{Gpu, Host, Resources};

    use crate::testkit::{H, inv, once, shape};

    fn ask(desktop: &str, vcpus: u32, end_h: Option<i64>) -> OnDemand {
        OnDemand {
            desktop: desktop.into(),
            request: shape(vcpus),
            groups: vec![],
            end: end_h.map(|h| UnixMillis(h * H)),
        }
    }

    #[test]
    fn on_demand_yields_to_reservations() {
        let inv = inv();
        let cal = admit_course(&Calendar::new(), &inv, &once("c", 3, 4, 10, 12)).unwrap();
        let now = UnixMillis(8 * H);
        // 4 vCPUs stay free during the course: a 4 for the whole morning is fine.
        let d = admit_on_demand(now, &cal, &inv, &[], &ask("x", 4, Some(13))).unwrap();
        let Decision::Admitted(x) = d else {
            panic!("{d:?}")
        };
        assert_eq!(x.end, Some(UnixMillis(13 * H)));
        // A second 4 would take room the course needs at 10:00: it is cut short.
        let d = admit_on_demand(
            now,
            &cal,
            &inv,
            std::slice::from_ref(&x),
            &ask("y", 4, None),
        )
        .unwrap();
        let Decision::Shortened {
            allocation: y,
            conflict,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(y.end, Some(UnixMillis(10 * H)));
        assert_eq!(conflict.at, UnixMillis(10 * H));
        // During the course nothing more fits.
        let during = UnixMillis(11 * H);
        let d = admit_on_demand(
            during,
            &cal,
            &inv,
            std::slice::from_ref(&x),
            &ask("z", 1, Some(12)),
        );
        assert!(
            matches!(d, Ok(Decision::Refused(Refusal::Reserved(_)))),
            "{d:?}"
        );
        // ... except for members of the group, who draw from the reservation.
        let mut member = ask("m", 4, None);
        member.groups = vec!["g".into()];
        let d = admit_on_demand(during, &cal, &inv, std::slice::from_ref(&x), &member).unwrap();
        let Decision::Admitted(m) = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            m.reservation.as_ref().map(|s| s.to_string()).as_deref(),
            Some("c#0")
        );
        assert_eq!(m.end, Some(UnixMillis(12 * H)), "ends with the slot");
        // The slot is whole (and every host full): a fourth member is an ordinary request.
        let on = |host: &str| Allocation {
            host: host.into(),
            ..m.clone()
        };
        assert_eq!(x.host.as_str(), "a");
        let all = [x, on("a"), on("b"), on("b")];
        let d = admit_on_demand(during, &cal, &inv, &all, &member).unwrap();
        assert!(matches!(d, Decision::Refused(Refusal::NoRoom(_))), "{d:?}");
    }

    #[test]
    fn warm_desktops_for_a_slot_count_within_it() {
        let inv = inv();
        let cal = admit_course(&Calendar::new(), &inv, &once("c", 4, 4, 10, 12)).unwrap();
        let slot = SlotRef {
            course: "c".into(),
            index: 0,
        };
        let now = UnixMillis(9 * H);
        let mut allocs = Vec::new();
        for i in 0..4 {
            let d = admit_for_reservation(now, &cal, &inv, &allocs, &format!("w{i}").into(), &slot)
                .unwrap();
            let Decision::Admitted(a) = d else {
                panic!("{d:?}")
            };
            assert_eq!(a.end, Some(UnixMillis(12 * H)));
            allocs.push(a);
        }
        let d = admit_for_reservation(now, &cal, &inv, &allocs, &"w4".into(), &slot).unwrap();
        assert_eq!(d, Decision::Refused(Refusal::SlotFull(slot)));
        let gone = SlotRef {
            course: "nope".into(),
            index: 0,
        };
        assert!(admit_for_reservation(now, &cal, &inv, &allocs, &"w".into(), &gone).is_err());
    }

    #[test]
    fn refuses_when_no_host_has_room_and_rejects_empty_lifetimes() {
        let inv = Inventory::new(vec![
            Host::new("a", "s", Resources::new(8, 65_536, 1000))
                .with_gpu(Gpu::single_type([("n35", 1)])),
        ])
        .unwrap();
        let now = UnixMillis(0);
        let mut req = ask("x", 2, Some(1));
        req.request.vgpu = Some("n36".into());
        let d = admit_on_demand(now, &Calendar::new(), &inv, &[], &req).unwrap();
        assert_eq!(
            d.to_string_refusal(),
            "No host fits 2 vCPU, 1024 MB, 10 GB + n36: no GPU offers n36"
        );
        let e = admit_on_demand(now, &Calendar::new(), &inv, &[], &ask("x", 1, Some(0)));
        assert!(matches!(e, Err(SchedError::EmptyLifetime(_))));
    }

    impl Decision {
        fn to_string_refusal(&self) -> String {
            match self {
                Decision::Refused(r) => r.to_string(),
                other => format!("{other:?}"),
            }
        }
    }
}
