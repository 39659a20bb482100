//! The scheduler's error type: inputs it cannot work with, and courses it refuses.

use crate::admission::CourseConflict;
use crate::calendar::SlotRef;
use crate::model::{CourseId, DesktopKey, HostId, MdevType};

/// What went wrong. Refusing an on-demand desktop is not an error (see
/// [`crate::Decision`]); refusing a course is, since the caller asked for a new calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    #[error("Duplicate host {0}")]
    DuplicateHost(HostId),
    #[error("GPU {gpu} of host {host} offers {mdev} but can hold no instance of it")]
    InvalidGpu {
        host: HostId,
        gpu: usize,
        mdev: MdevType,
    },
    #[error("Unknown host {0}")]
    UnknownHost(HostId),
    #[error("Host {host} has no GPU {gpu}")]
    UnknownGpu { host: HostId, gpu: usize },
    #[error("Invalid date '{0}'")]
    InvalidDate(String),
    #[error("Invalid course {course}: {why}")]
    InvalidCourse { course: CourseId, why: &'static str },
    #[error("Course {0} is already in the calendar")]
    DuplicateCourse(CourseId),
    #[error("Unknown reservation slot {0}")]
    UnknownSlot(SlotRef),
    #[error("Desktop {0} would end before it starts")]
    EmptyLifetime(DesktopKey),
    #[error("{0}")]
    CourseConflict(Box<CourseConflict>),
}
