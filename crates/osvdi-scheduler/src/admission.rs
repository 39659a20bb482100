//! Course admission: a course is admitted only if every slot of it fits beside the
//! reservations already accepted, by the check of [`crate::check_from`] (which never
//! over-admits and may under-admit).

use std::fmt;

use osvdi_model::UnixMillis;

use crate::calendar::{Calendar, Course, Slot};
use crate::civil::format_local;
use crate::error::SchedError;
use crate::feasibility::{Shortfall, Window};
use crate::model::{CourseId, Inventory};

/// Why a course was refused: its first slot that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseConflict {
    pub course: CourseId,
    pub slot_index: u32,
    pub slot: Slot,
    pub utc_offset_minutes: i32,
    pub shortfall: Shortfall,
}

impl fmt::Display for CourseConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = |t| format_local(t, self.utc_offset_minutes);
        write!(
            f,
            "Course {} does not fit in slot {} ({} to {}): {}",
            self.course,
            self.slot_index,
            local(self.slot.start),
            local(self.slot.end),
            self.shortfall.describe(self.utc_offset_minutes)
        )
    }
}

/// The calendar with `course` added, if every slot of it fits beside the reservations already
/// accepted (see [`crate::check_from`]: reserved desktops started at each slot start stay
/// where they are until the slot ends). Only the chains of overlapping reservations that a
/// new slot joins are checked again. Running desktops are not looked at: reservations take
/// precedence over on-demand desktops, which [`crate::admit_on_demand`] ends before a reservation
/// needs their room.
pub fn admit_course(
    calendar: &Calendar,
    inv: &Inventory,
    course: &Course,
) -> Result<Calendar, SchedError> {
    let with = calendar.clone().restore(course.clone())?;
    let slots = course.slots()?;
    for (from, until) in chains_with(&with, &course.id) {
        let window = Window {
            inv,
            calendar: &with,
            allocations: &[],
            extra: None,
            from,
            until: Some(until),
        };
        if let Err(shortfall) = window.check()? {
            let i = slots
                .iter()
                .rposition(|s| s.start <= shortfall.at)
                .unwrap_or(0);
            return Err(SchedError::CourseConflict(Box::new(CourseConflict {
                course: course.id.clone(),
                // At most MAX_SLOTS_PER_COURSE slots.
                slot_index: u32::try_from(i).unwrap_or(u32::MAX),
                slot: slots[i],
                utc_offset_minutes: course.utc_offset_minutes,
                shortfall,
            })));
        }
    }
    Ok(with)
}

/// The spans of the chains of overlapping reservations that hold a slot of `course`. Chains
/// are independent: when one ends, nothing placed for it remains.
fn chains_with(calendar: &Calendar, course: &CourseId) -> Vec<(UnixMillis, UnixMillis)> {
    let mut chains = Vec::new();
    let mut span: Option<(UnixMillis, UnixMillis)> = None;
    let mut touched = false;
    for r in calendar.reservations() {
        match &mut span {
            Some((_, end)) if r.start < *end => *end = (*end).max(r.end),
            _ => {
                if let (Some(done), true) = (span, touched) {
                    chains.push(done);
                }
                span = Some((r.start, r.end));
                touched = false;
            }
        }
        touched |= &r.slot.course == course;
    }
    if let (Some(done), true) = (span, touched) {
        chains.push(done);
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testkit::{inv, once};

    #[test]
    fn courses_fit_beside_each_other_or_are_refused_with_the_slot() {
        let inv = inv();
        let cal = admit_course(&Calendar::new(), &inv, &once("c1", 4, 2, 10, 12)).unwrap();
        // 8 of 16 vCPUs are reserved 10-12: another 8 fit, 10 do not.
        let cal = admit_course(&cal, &inv, &once("c2", 2, 4, 11, 13)).unwrap();
        let e = admit_course(&cal, &inv, &once("c3", 1, 2, 9, 12)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Course c3 does not fit in slot 0 (1970-01-01 09:00 to 1970-01-01 12:00): at \
             1970-01-01 11:00 UTC a desktop of c3#0 does not fit: 6 of 7 reserved desktops \
             placed (active: c3#0, c1#0, c2#0); No host fits 2 vCPU, 1024 MB, 10 GB: \
             2 hosts lack vCPUs"
        );
        // Back to back is fine: slots are half-open.
        assert!(admit_course(&cal, &inv, &once("c4", 2, 4, 13, 14)).is_ok());
        assert!(admit_course(&cal, &inv, &once("c1", 1, 1, 20, 21)).is_err());
    }
}
