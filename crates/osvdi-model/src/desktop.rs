//! Desktops: one VM made from a template version for one person.
//!
//! The compute backends bring desktops to life; here is only what the store and the core need
//! to reason about them (for instance, that a template version is in use).

use crate::template::text_enum;
use crate::{DesktopId, TemplateId, UnixMillis, UserId};

text_enum!(
    /// The life of a desktop. The store is the truth; backends are reconciled against it.
    DesktopState, "desktop state", {
        /// Recorded, not yet created on a backend.
        Pending = "pending",
        Starting = "starting",
        Running = "running",
        Suspending = "suspending",
        /// State saved to disk, no process.
        Suspended = "suspended",
        Stopping = "stopping",
        Stopped = "stopped",
        /// Died or could not be made; the reason is kept.
        Failed = "failed",
    }
);

impl DesktopState {
    /// Whether a desktop in this state still holds its template version (and its disk).
    /// Every state does until the desktop is deleted; kept as a method so the rule has a name.
    pub fn holds_image(self) -> bool {
        true
    }
}

/// A desktop as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desktop {
    pub id: DesktopId,
    pub owner: UserId,
    pub template: TemplateId,
    /// The template version it was made from; kept for its whole life.
    pub template_version: u32,
    pub state: DesktopState,
    pub created_at: UnixMillis,
}
