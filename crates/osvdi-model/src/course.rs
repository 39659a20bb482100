//! Courses: advance reservations of desktops of one template for one group, in time slots.

use crate::{Date, GroupId, Minute, TemplateId, UnixMillis, UserId, Weekday};

/// Identifies a course.
pub type CourseId = crate::DesktopId;

/// When a course's slots are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CourseSchedule {
    /// One slot.
    Once { start: UnixMillis, end: UnixMillis },
    /// The same local time on some weekdays, every week from `first` to `last` (both included),
    /// skipping the dates in `except`, in the IANA time zone `time_zone`.
    Weekly {
        first: Date,
        last: Date,
        days: Vec<Weekday>,
        start: Minute,
        end: Minute,
        except: Vec<Date>,
        time_zone: String,
    },
}

/// A course as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: CourseId,
    pub name: String,
    pub template: TemplateId,
    pub group: GroupId,
    /// Desktops reserved in every slot.
    pub desktops: u32,
    pub schedule: CourseSchedule,
    pub created_by: UserId,
    pub created_at: UnixMillis,
}
