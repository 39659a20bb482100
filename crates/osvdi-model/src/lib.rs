//! Domain types of osvdi: who people are, what templates and desktops are, what the audit log
//! records, and the pure rules that relate them (who may see or change what).
//!
//! No IO, no async, no clock, no wire formats: the store persists these types, the core
//! decides with them, the HTTP layer converts them to and from its own JSON types.

mod access;
mod desktop;
mod identity;
mod ids;
mod names;
mod policy;
mod template;
mod time;

pub use access::{Principal, can_manage_template, can_view_template};
pub use desktop::{Desktop, DesktopState};
pub use identity::{Group, Role, User};
pub use ids::{DesktopId, GroupId, TemplateId, UserId};
pub use names::{
    NameError, validate_group_name, validate_tag, validate_template_name, validate_username,
};
pub use policy::{
    AccessPolicy, Date, Denial, ExtraOpening, LocalTime, Minute, NetworkRule, Schedule, Weekday,
    WeeklyWindow,
};
pub use template::{
    DisplayProtocol, ImageFormat, ReadyRule, SpecError, Template, TemplateSpec, TemplateVersion,
    VersionState, Visibility, limits as template_limits,
};
pub use time::UnixMillis;

mod audit;
mod course;
pub use audit::{AuditAction, AuditEntry, AuditOutcome};
pub use course::{Course, CourseId, CourseSchedule};

/// A value that could not be parsed from its textual form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown {kind} '{value}'")]
pub struct ParseError {
    pub kind: &'static str,
    pub value: String,
}
