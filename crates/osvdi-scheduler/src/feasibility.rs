//! The check behind admission: can every reserved desktop not yet started still get a host for
//! its whole slot, beside the desktops that run, given that no desktop moves once started?
//!
//! Each reserved desktop still to come is an item with a window (`[max(now, slot start),
//! slot end)`); running desktops hold their room until they end. The items of a chain of
//! overlapping reservations are placed together, largest first, each with the ordinary
//! filter and weigh of [`crate::rank`] (pack) at the start of its window, on the first host
//! and GPU that has room throughout the window. Success is a witness (a schedule without
//! migration), so the check never over-admits; a failure may be the heuristic's (bin
//! packing is NP-hard), so it may under-admit.
//!
//! Checking only that the union of the reservations active in each time segment fits is not
//! enough: a desktop started at 09:00 on the only host free then may sit where a course
//! starting at 11:00 needed room, and desktops do not migrate.
//!
//! Desktops already drawn from a reservation (allocations tagged with its slot) hold their
//! room from the start but are weighed as if they arrived in their slot's turn: so a member
//! who takes the spot the plan gave their slot leaves a state whose check makes the very
//! same choices, and passes.

use std::fmt;

use osvdi_model::UnixMillis;

use crate::calendar::{Calendar, Reservation, SlotRef};
use crate::civil::format_local;
use crate::error::SchedError;
use crate::model::{Allocation, DesktopRequest, Inventory, Strategy};
use crate::nofit::NoFit;
use crate::placement::{PlaceOptions, Views, fits_on, largest_first, no_fit, rank, rank_views};
use crate::usage::Usage;

/// A reserved desktop that could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// When room runs out: the first moment of its window at which no host has room for it,
    /// else (no host has room throughout, though each moment some has) the window's start.
    pub at: UnixMillis,
    /// Its slot.
    pub slot: SlotRef,
    /// Reserved desktops the check had to place, and how many it placed before this one.
    pub needed: u32,
    pub placed: u32,
    /// The reservations active at `at`.
    pub active: Vec<SlotRef>,
    /// What hosts lack, at the busiest moment of the window.
    pub no_fit: NoFit,
}

impl Shortfall {
    /// The shortfall, with its time in a zone `utc_offset_minutes` ahead of UTC.
    pub fn describe(&self, utc_offset_minutes: i32) -> String {
        let active: Vec<String> = self.active.iter().map(|s| s.to_string()).collect();
        let zone = if utc_offset_minutes == 0 { " UTC" } else { "" };
        format!(
            "at {}{zone} a desktop of {} does not fit: {} of {} reserved desktops placed \
             (active: {}); {}",
            format_local(self.at, utc_offset_minutes),
            self.slot,
            self.placed,
            self.needed,
            active.join(", "),
            self.no_fit
        )
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(0))
    }
}

/// Whether everything that must hold at `at` fits: the `allocations` running then stay where
/// they are, and the reserved desktops of the active reservations not covered by running
/// allocations tagged with their slot are placed, largest first.
pub fn check_at(
    inv: &Inventory,
    calendar: &Calendar,
    allocations: &[Allocation],
    at: UnixMillis,
) -> Result<Result<(), Shortfall>, SchedError> {
    check_from(
        inv,
        calendar,
        allocations,
        at,
        Some(UnixMillis(at.0.saturating_add(1))),
    )
}

/// Whether every reserved desktop still to come between `from` and `until` (`None`: for
/// ever) gets a host for its whole window beside the `allocations` running (see the module
/// documentation).
pub fn check_from(
    inv: &Inventory,
    calendar: &Calendar,
    allocations: &[Allocation],
    from: UnixMillis,
    until: Option<UnixMillis>,
) -> Result<Result<(), Shortfall>, SchedError> {
    let w = Window {
        inv,
        calendar,
        allocations,
        extra: None,
        from,
        until,
    };
    Ok(w.check()?.map(|_| ()))
}

/// A reserved desktop the check placed: for which slot, where, and for which window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned<'c> {
    pub slot: &'c SlotRef,
    pub host: usize,
    pub gpu: Option<usize>,
    pub start: UnixMillis,
    pub end: UnixMillis,
}

/// One check: the allocations (and `extra`) running at `from`, and the reservations between
/// `from` and `until`.
pub(crate) struct Window<'a, 'c> {
    pub inv: &'a Inventory,
    pub calendar: &'c Calendar,
    pub allocations: &'a [Allocation],
    pub extra: Option<&'a Allocation>,
    pub from: UnixMillis,
    pub until: Option<UnixMillis>,
}

/// Something to place: a reserved desktop to come, or one already drawn from its slot.
struct Item<'a, 'c> {
    r: &'c Reservation,
    start: UnixMillis,
    end: UnixMillis,
    /// The allocation of a desktop already drawn from the slot.
    drawn: Option<&'a Allocation>,
}

const PACK: PlaceOptions<'static> = PlaceOptions {
    keep_room_for: None,
    strategy: Some(Strategy::Pack),
};

impl<'a, 'c> Window<'a, 'c> {
    /// Every reserved desktop to come, placed (in placing order), or the first that could not.
    pub fn check(&self) -> Result<Result<Vec<Planned<'c>>, Shortfall>, SchedError> {
        let (from, inv) = (self.from, self.inv);
        let horizon = self.until.unwrap_or(UnixMillis(i64::MAX));
        let running: Vec<&'a Allocation> = self
            .allocations
            .iter()
            .chain(self.extra)
            .filter(|a| a.runs_at(from))
            .collect();
        // Checks that every running allocation names a host and GPU of the inventory.
        Usage::from_allocations(inv, running.iter().copied())?;
        let end_of = |a: &Allocation| a.end.map_or(horizon, |e| e.min(horizon));
        let relevant: Vec<&'c Reservation> = self
            .calendar
            .reservations()
            .iter()
            .filter(|r| r.end > from && r.start < horizon)
            .collect();
        let mut items: Vec<Item<'a, 'c>> = Vec::new();
        for a in &running {
            let slot = a.reservation.as_ref();
            if let Some(r) = relevant.iter().find(|r| Some(&r.slot) == slot) {
                items.push(Item {
                    r,
                    start: from,
                    end: end_of(a),
                    drawn: Some(a),
                });
            }
        }
        for r in &relevant {
            items.extend(to_come(r, &running, from, horizon));
        }
        let mut bounds: Vec<UnixMillis> = std::iter::once(from)
            .chain(items.iter().flat_map(|i| [i.start, i.end]))
            .chain(running.iter().filter_map(|a| a.end))
            .filter(|b| from <= *b && *b < horizon)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        // The segments `[bounds[i], bounds[i + 1])` that a window `[s, e)` covers.
        let segments = |s: UnixMillis, e: UnixMillis| {
            bounds.partition_point(|b| *b < s)..bounds.partition_point(|b| *b < e)
        };
        // `real`: what is in use, every running desktop included (hosts fit on it). `view`:
        // the same, but desktops drawn from a slot only once the slot's turn has come (hosts
        // are weighed on it), so that a member in a planned spot changes no earlier choice.
        let mut real = vec![Usage::empty(inv); bounds.len()];
        for a in &running {
            // Validated above: the host exists and so does the GPU.
            let h = inv.host_index(&a.host).unwrap_or(0);
            let gpu = a.gpu.as_ref().map(|g| (g.index, &g.mdev));
            for u in &mut real[segments(from, end_of(a))] {
                u.add(h, a.resources, gpu);
            }
        }
        let mut view = real.clone();
        for it in &items {
            if let Some(a) = it.drawn {
                let h = inv.host_index(&a.host).unwrap_or(0);
                let gpu = a.gpu.as_ref().map(|g| (g.index, &g.mdev));
                for u in &mut view[segments(it.start, it.end)] {
                    u.remove(h, a.resources, gpu);
                }
            }
        }
        items.sort_by(|x, y| {
            let key = |i: &Item<'_, 'c>| {
                (
                    largest_first(&i.r.shape),
                    &i.r.slot,
                    i.drawn.is_none(),
                    i.start,
                    i.end,
                )
            };
            key(x).cmp(&key(y))
        });
        let needed = items.iter().filter(|i| i.drawn.is_none()).count();
        let mut plan = Vec::new();
        for it in &items {
            let segs = segments(it.start, it.end);
            if segs.is_empty() {
                continue;
            }
            let shape = &it.r.shape;
            if let Some(a) = it.drawn {
                let h = inv.host_index(&a.host).unwrap_or(0);
                let gpu = a.gpu.as_ref().map(|g| (g.index, &g.mdev));
                for u in &mut view[segs] {
                    u.add(h, a.resources, gpu);
                }
                continue;
            }
            let Some((host, gpu)) = find(inv, &real[segs.clone()], &view[segs.clone()], shape)
            else {
                // When room runs out: the first moment no host has any, if there is one;
                // else no host has room throughout, and the window's busiest moment says
                // what is short.
                let full = segs.clone().find_map(|k| {
                    rank(inv, &real[k], shape, &PACK)
                        .err()
                        .map(|nf| (bounds[k], nf))
                });
                let (at, nf) = full
                    .unwrap_or_else(|| (it.start, no_fit(inv, &Usage::peak(&real[segs]), shape)));
                return Ok(Err(self.shortfall(it, at, needed, plan.len(), nf)));
            };
            for u in real[segs.clone()].iter_mut().chain(&mut view[segs]) {
                u.add(host, shape.resources, gpu.zip(shape.vgpu.as_ref()));
            }
            plan.push(Planned {
                slot: &it.r.slot,
                host,
                gpu,
                start: it.start,
                end: it.end,
            });
        }
        Ok(Ok(plan))
    }

    fn shortfall(
        &self,
        it: &Item<'_, '_>,
        at: UnixMillis,
        needed: usize,
        placed: usize,
        no_fit: NoFit,
    ) -> Shortfall {
        // Counts are bounded by the number of reserved desktops, far below u32::MAX.
        let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        Shortfall {
            at,
            slot: it.r.slot.clone(),
            needed: n(needed),
            placed: n(placed),
            active: self
                .calendar
                .active_at(at)
                .map(|r| r.slot.clone())
                .collect(),
            no_fit,
        }
    }
}

/// The desktops of `r` still to come after `from`: as many as its count lacks when its window
/// opens, and one for each desktop drawn from it that leaves before it closes.
fn to_come<'a, 'c>(
    r: &'c Reservation,
    running: &[&'a Allocation],
    from: UnixMillis,
    horizon: UnixMillis,
) -> Vec<Item<'a, 'c>> {
    let start = r.start.max(from);
    let end = r.end.min(horizon);
    let drawn: Vec<&&Allocation> = running
        .iter()
        .filter(|a| a.reservation.as_ref() == Some(&r.slot) && a.runs_at(start))
        .collect();
    let count = usize::try_from(r.count).unwrap_or(usize::MAX);
    let item = |start| Item {
        r,
        start,
        end,
        drawn: None,
    };
    let mut out: Vec<Item<'a, 'c>> = (drawn.len()..count).map(|_| item(start)).collect();
    let mut leaving: Vec<UnixMillis> = drawn
        .iter()
        .filter_map(|a| a.end)
        .filter(|e| *e < end)
        .collect();
    leaving.sort_unstable();
    // Desktops beyond the count may leave without replacement.
    let surplus = drawn.len().saturating_sub(count);
    out.extend(leaving.into_iter().skip(surplus).map(item));
    out
}

/// The host and GPU for `shape` over a window's segments: the first, in the weigh order at
/// the first segment, that has room in every segment.
fn find(
    inv: &Inventory,
    real: &[Usage],
    view: &[Usage],
    shape: &DesktopRequest,
) -> Option<(usize, Option<usize>)> {
    let views = Views {
        fit: real.first()?,
        weigh: view.first()?,
    };
    let ranked = rank_views(inv, views, shape, &PACK).ok()?;
    for p in ranked {
        let host = &inv.hosts()[p.host_index];
        let mut gpus = vec![p.gpu];
        if shape.vgpu.is_some() {
            gpus.extend((0..host.gpus.len()).map(Some).filter(|g| *g != p.gpu));
        }
        let room = |g: Option<usize>| {
            real.iter()
                .all(|u| fits_on(host, u.host(p.host_index), shape, g))
        };
        if let Some(g) = gpus.into_iter().find(|g| room(*g)) {
            return Some((p.host_index, g));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Course, Schedule, Slot};
    use crate::model::{Gpu, GpuSlot, Host, Resources};

    #[test]
    fn running_desktops_stay_put_and_tagged_ones_count_within_their_slot() {
        // One host, two GPUs that each take one instance: the course needs both.
        let inv = Inventory::new(vec![
            Host::new("a", "s", Resources::new(8, 8192, 100))
                .with_gpu(Gpu::single_type([("n35", 1), ("n36", 1)]))
                .with_gpu(Gpu::single_type([("n35", 1), ("n36", 1)])),
        ])
        .unwrap();
        let cal = Calendar::new()
            .restore(Course {
                id: "c".into(),
                group: "g".into(),
                shape: DesktopRequest::new("t", Resources::new(1, 1024, 10)).with_vgpu("n35"),
                count: 2,
                schedule: Schedule::Once(Slot {
                    start: UnixMillis(100),
                    end: UnixMillis(200),
                }),
                utc_offset_minutes: 0,
            })
            .unwrap();
        let running = |mdev: &str, end, slot: Option<u32>| Allocation {
            desktop: "d".into(),
            host: "a".into(),
            resources: Resources::new(1, 1024, 10),
            gpu: Some(GpuSlot {
                index: 0,
                mdev: mdev.into(),
            }),
            end: Some(UnixMillis(end)),
            reservation: slot.map(|index| SlotRef {
                course: "c".into(),
                index,
            }),
        };
        let at = UnixMillis(100);
        assert_eq!(check_at(&inv, &cal, &[], at), Ok(Ok(())));
        // An n36 desktop running past 100 holds GPU 0: one of the two n35 cannot start.
        let blocked = check_at(&inv, &cal, &[running("n36", 150, None)], at).unwrap();
        let s = blocked.unwrap_err();
        assert_eq!((s.needed, s.placed), (2, 1));
        assert!(s.to_string().contains("1 GPU runs n36"), "{s}");
        // It ends at 100: no conflict.
        assert_eq!(
            check_at(&inv, &cal, &[running("n36", 100, None)], at),
            Ok(Ok(()))
        );
        // An n35 desktop of the slot itself counts as one of the two.
        assert_eq!(
            check_at(&inv, &cal, &[running("n35", 200, Some(0))], at),
            Ok(Ok(()))
        );
        // An allocation on an unknown host is an error, not a shortfall.
        let mut bad = running("n35", 200, None);
        bad.host = "zz".into();
        assert!(check_at(&inv, &cal, &[bad], at).is_err());
    }
}
