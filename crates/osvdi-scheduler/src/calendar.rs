//! Courses (advance reservations), their expansion into concrete slots, and the calendar of
//! admitted courses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use osvdi_model::UnixMillis;

use crate::civil::{Date, MINUTE_MS, Weekday, format_local};
use crate::error::SchedError;
use crate::model::{Allocation, CourseId, DesktopRequest, GroupKey, TemplateKey};
use crate::placement::largest_first;

/// The most slots one course may expand to.
pub const MAX_SLOTS_PER_COURSE: usize = 1000;

/// A half-open interval of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub start: UnixMillis,
    pub end: UnixMillis,
}

impl Slot {
    /// Whether `t` is in `[start, end)`.
    pub fn contains(&self, t: UnixMillis) -> bool {
        self.start <= t && t < self.end
    }
}

/// One slot of one course: `index` counts the course's slots in time order from 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotRef {
    pub course: CourseId,
    pub index: u32,
}

impl fmt::Display for SlotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.course, self.index)
    }
}

/// When a course meets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// A single slot.
    Once(Slot),
    /// The same local time on some weekdays, every week between two dates.
    Weekly(Weekly),
}

/// A weekly recurring schedule, in the course's local time (see [`Course::utc_offset_minutes`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Weekly {
    /// The first and last day that may hold a slot (both included).
    pub first: Date,
    pub last: Date,
    pub days: BTreeSet<Weekday>,
    /// Minutes past local midnight a slot starts.
    pub start_minute: u32,
    /// How long each slot lasts, in minutes.
    pub minutes: u32,
    /// Days skipped (holidays).
    pub except: BTreeSet<Date>,
}

/// A course: `count` desktops of one shape for a group, in every slot of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Course {
    pub id: CourseId,
    pub group: GroupKey,
    pub shape: DesktopRequest,
    pub count: u32,
    pub schedule: Schedule,
    /// The course's local time is this many minutes ahead of UTC (+60 for Paris in winter).
    /// Fixed for the whole course: a course that spans a daylight-saving change is entered as
    /// two courses. No time zone database is involved.
    pub utc_offset_minutes: i32,
}

impl Course {
    /// The course's slots in time order, or why the course is not well formed.
    pub fn slots(&self) -> Result<Vec<Slot>, SchedError> {
        let invalid = |why| SchedError::InvalidCourse {
            course: self.id.clone(),
            why,
        };
        if self.count == 0 {
            return Err(invalid("it reserves no desktop"));
        }
        if self.utc_offset_minutes.abs() > 18 * 60 {
            return Err(invalid("its UTC offset is beyond 18 hours"));
        }
        let slots = match &self.schedule {
            Schedule::Once(s) => vec![*s],
            Schedule::Weekly(w) => {
                if w.start_minute >= 24 * 60 {
                    return Err(invalid("its slots start after midnight"));
                }
                if w.last < w.first {
                    return Err(invalid("its last day is before its first"));
                }
                let (first, last) = (w.first.days_since_epoch(), w.last.days_since_epoch());
                let mut out = Vec::new();
                for day in (first..=last).map(Date::from_days) {
                    if !w.days.contains(&day.weekday()) || w.except.contains(&day) {
                        continue;
                    }
                    if out.len() == MAX_SLOTS_PER_COURSE {
                        return Err(invalid("it has too many slots"));
                    }
                    let start = day.at(w.start_minute, self.utc_offset_minutes);
                    let end = UnixMillis(start.0 + i64::from(w.minutes) * MINUTE_MS);
                    out.push(Slot { start, end });
                }
                out
            }
        };
        if slots.is_empty() {
            return Err(invalid("it has no slot"));
        }
        if slots.iter().any(|s| s.end <= s.start) {
            return Err(invalid("a slot ends before it starts"));
        }
        Ok(slots)
    }

    /// `t` in the course's local time, "YYYY-MM-DD HH:MM".
    pub fn local(&self, t: UnixMillis) -> String {
        format_local(t, self.utc_offset_minutes)
    }
}

/// One concrete reservation: `count` desktops of `shape` for `group` during `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub slot: SlotRef,
    pub start: UnixMillis,
    pub end: UnixMillis,
    pub count: u32,
    pub group: GroupKey,
    pub shape: DesktopRequest,
}

impl Reservation {
    /// Whether the reservation holds at `t`.
    pub fn active_at(&self, t: UnixMillis) -> bool {
        self.start <= t && t < self.end
    }
}

/// The admitted courses and their reservations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    courses: BTreeMap<CourseId, Course>,
    /// Every slot of every course, ordered by (start, slot).
    reservations: Vec<Reservation>,
}

impl Calendar {
    /// An empty calendar.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calendar with `course` added WITHOUT an admission check: for courses admitted
    /// earlier and read back from the store. New courses go through
    /// [`crate::admit_course`].
    pub fn restore(mut self, course: Course) -> Result<Self, SchedError> {
        if self.courses.contains_key(&course.id) {
            return Err(SchedError::DuplicateCourse(course.id));
        }
        let slots = course.slots()?;
        for (i, s) in slots.into_iter().enumerate() {
            self.reservations.push(Reservation {
                slot: SlotRef {
                    course: course.id.clone(),
                    // At most MAX_SLOTS_PER_COURSE slots, far below u32::MAX.
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                },
                start: s.start,
                end: s.end,
                count: course.count,
                group: course.group.clone(),
                shape: course.shape.clone(),
            });
        }
        self.reservations
            .sort_by(|a, b| (a.start, &a.slot).cmp(&(b.start, &b.slot)));
        self.courses.insert(course.id.clone(), course);
        Ok(self)
    }

    /// The calendar without course `id` (cancelled); unchanged if it has no such course.
    pub fn without(mut self, id: &CourseId) -> Self {
        if self.courses.remove(id).is_some() {
            self.reservations.retain(|r| &r.slot.course != id);
        }
        self
    }

    /// The admitted courses, by id.
    pub fn courses(&self) -> impl Iterator<Item = &Course> {
        self.courses.values()
    }

    /// Every reservation, ordered by start.
    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }

    /// The reservation of slot `slot`.
    pub fn reservation(&self, slot: &SlotRef) -> Option<&Reservation> {
        self.reservations.iter().find(|r| &r.slot == slot)
    }

    /// The reservations holding at `t`.
    pub fn active_at(&self, t: UnixMillis) -> impl Iterator<Item = &Reservation> {
        self.reservations
            .iter()
            .take_while(move |r| r.start <= t)
            .filter(move |r| t < r.end)
    }

    /// The distinct reservation starts in `(after, until)` (`until` `None`: no bound), in order.
    pub fn starts_between(&self, after: UnixMillis, until: Option<UnixMillis>) -> Vec<UnixMillis> {
        let mut v: Vec<UnixMillis> = self
            .reservations
            .iter()
            .map(|r| r.start)
            .filter(|s| *s > after && until.is_none_or(|u| *s < u))
            .collect();
        v.dedup();
        v
    }

    /// The first instant at or after `t` at which no reservation holds: after it, nothing
    /// placed for a reservation before `t` is still in the way.
    pub fn quiet_from(&self, t: UnixMillis) -> UnixMillis {
        let mut q = t;
        for r in &self.reservations {
            if r.start > q {
                break;
            }
            q = q.max(r.end);
        }
        q
    }

    /// The largest shape (vGPU first, then memory, vCPUs, disk) among reservations not yet
    /// over at `t`: the one to keep room for.
    pub fn largest_wanted(&self, t: UnixMillis) -> Option<&DesktopRequest> {
        self.reservations
            .iter()
            .filter(|r| r.end > t)
            .map(|r| &r.shape)
            .min_by_key(|s| largest_first(s))
    }
}

/// The active reservation that covers a desktop of `template` asked for at `t` by a member of
/// `groups`, if one still has an unused desktop: the first by (start, slot) among those whose
/// tagged `allocations` running at `t` number fewer than its count.
///
/// The broker hands out a warm desktop tagged with that slot first, if it has one; the warm
/// desktops themselves are allocations tagged with the slot and count as used here.
pub fn covering_reservation(
    calendar: &Calendar,
    allocations: &[Allocation],
    groups: &[GroupKey],
    template: &TemplateKey,
    t: UnixMillis,
) -> Option<SlotRef> {
    calendar
        .active_at(t)
        .filter(|r| &r.shape.template == template && groups.contains(&r.group))
        .find(|r| {
            let used = allocations
                .iter()
                .filter(|a| a.reservation.as_ref() == Some(&r.slot) && a.runs_at(t))
                .count();
            used < usize::try_from(r.count).unwrap_or(usize::MAX)
        })
        .map(|r| r.slot.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;

    fn weekly(first: &str, last: &str, days: &[&str], except: &[&str]) -> Schedule {
        Schedule::Weekly(Weekly {
            first: first.parse().unwrap(),
            last: last.parse().unwrap(),
            days: days.iter().map(|d| d.parse().unwrap()).collect(),
            start_minute: 600,
            minutes: 120,
            except: except.iter().map(|d| d.parse().unwrap()).collect(),
        })
    }

    fn course(id: &str, schedule: Schedule) -> Course {
        Course {
            id: id.into(),
            group: "g".into(),
            shape: DesktopRequest::new("t", Resources::new(2, 2048, 20)),
            count: 3,
            schedule,
            utc_offset_minutes: 60,
        }
    }

    #[test]
    fn weekly_expansion_skips_exceptions_and_uses_the_offset() {
        // March 2025: Tuesdays 4, 11, 18, 25; Thursdays 6, 13, 20, 27.
        let c = course(
            "c",
            weekly("2025-03-03", "2025-03-20", &["tue", "thu"], &["2025-03-11"]),
        );
        let got: Vec<String> = c
            .slots()
            .unwrap()
            .iter()
            .map(|s| format!("{} - {}", c.local(s.start), c.local(s.end)))
            .collect();
        assert_eq!(
            got,
            [
                "2025-03-04 10:00 - 2025-03-04 12:00",
                "2025-03-06 10:00 - 2025-03-06 12:00",
                "2025-03-13 10:00 - 2025-03-13 12:00",
                "2025-03-18 10:00 - 2025-03-18 12:00",
                "2025-03-20 10:00 - 2025-03-20 12:00",
            ]
        );
        // 10:00 at UTC+1 is 09:00 UTC.
        assert_eq!(
            format_local(c.slots().unwrap()[0].start, 0),
            "2025-03-04 09:00"
        );
    }

    #[test]
    fn malformed_courses_are_refused() {
        let mut c = course("c", weekly("2025-03-10", "2025-03-03", &["tue"], &[]));
        assert!(c.slots().is_err());
        c.schedule = weekly("2025-03-03", "2025-03-03", &["tue"], &[]);
        assert!(c.slots().is_err(), "a Monday-only range has no Tuesday");
        c.schedule = weekly("2000-01-01", "2099-01-01", &["mon", "tue"], &[]);
        assert!(c.slots().is_err(), "too many slots");
        c.schedule = Schedule::Once(Slot {
            start: UnixMillis(10),
            end: UnixMillis(10),
        });
        assert!(c.slots().is_err());
        c.schedule = Schedule::Once(Slot {
            start: UnixMillis(10),
            end: UnixMillis(20),
        });
        assert!(c.slots().is_ok());
        c.count = 0;
        assert!(c.slots().is_err());
    }

    #[test]
    fn calendar_orders_reservations_and_finds_active_ones() {
        let once = |id, s, e| {
            course(
                id,
                Schedule::Once(Slot {
                    start: UnixMillis(s),
                    end: UnixMillis(e),
                }),
            )
        };
        let cal = Calendar::new()
            .restore(once("b", 10, 30))
            .unwrap()
            .restore(once("a", 20, 40))
            .unwrap();
        assert!(matches!(
            cal.clone().restore(once("a", 0, 1)),
            Err(SchedError::DuplicateCourse(_))
        ));
        let active: Vec<String> = cal
            .active_at(UnixMillis(25))
            .map(|r| r.slot.to_string())
            .collect();
        assert_eq!(active, ["b#0", "a#0"]);
        assert_eq!(cal.active_at(UnixMillis(30)).count(), 1);
        assert_eq!(
            cal.starts_between(UnixMillis(10), None),
            vec![UnixMillis(20)]
        );
        assert!(
            cal.starts_between(UnixMillis(0), Some(UnixMillis(20)))
                .len()
                == 1
        );
        let cal = cal.without(&"b".into());
        assert_eq!(cal.reservations().len(), 1);
    }

    #[test]
    fn coverage_counts_tagged_allocations() {
        let c = course(
            "c",
            Schedule::Once(Slot {
                start: UnixMillis(100),
                end: UnixMillis(200),
            }),
        );
        let cal = Calendar::new().restore(c).unwrap();
        let slot = SlotRef {
            course: "c".into(),
            index: 0,
        };
        let g = [GroupKey::from("g")];
        let t = TemplateKey::from("t");
        let at = UnixMillis(150);
        assert_eq!(
            covering_reservation(&cal, &[], &g, &t, at),
            Some(slot.clone())
        );
        assert_eq!(covering_reservation(&cal, &[], &["h".into()], &t, at), None);
        assert_eq!(covering_reservation(&cal, &[], &g, &"u".into(), at), None);
        assert_eq!(
            covering_reservation(&cal, &[], &g, &t, UnixMillis(200)),
            None
        );
        let a = Allocation {
            desktop: "d".into(),
            host: "h".into(),
            resources: Resources::ZERO,
            gpu: None,
            end: None,
            reservation: Some(slot),
        };
        let three = vec![a.clone(), a.clone(), a];
        assert!(covering_reservation(&cal, &three[..2], &g, &t, at).is_some());
        assert_eq!(covering_reservation(&cal, &three, &g, &t, at), None);
    }
}
