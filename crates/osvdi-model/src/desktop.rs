//! Desktops (called sessions in the API): one VM made from a template version for one person,
//! and the states it goes through.
//!
//! ```text
//! requested -> provisioning -> booting -> ready <-> (suspending -> suspended -> resuming)
//!     any live state -> stopping -> ended          any state but ended -> failed
//! ```

use crate::template::text_enum;
use crate::{DesktopId, TemplateId, UnixMillis, UserId};

text_enum!(
    /// The life of a desktop. The store is the truth; every transition is written before it
    /// is acted on, and backends are reconciled against it.
    DesktopState, "desktop state", {
        /// Recorded; nothing made yet.
        Requested = "requested",
        /// The backend is making it (disk, files).
        Provisioning = "provisioning",
        /// Started; the guest is not ready yet.
        Booting = "booting",
        /// Running and ready for its person.
        Ready = "ready",
        Suspending = "suspending",
        /// State saved to disk, no process.
        Suspended = "suspended",
        Resuming = "resuming",
        Stopping = "stopping",
        /// Gone for good (its resources are released).
        Ended = "ended",
        /// Died or could not be made; the reason is kept.
        Failed = "failed",
    }
);

impl DesktopState {
    /// Ended and failed desktops are history: they hold nothing on a backend.
    pub fn is_terminal(self) -> bool {
        matches!(self, DesktopState::Ended | DesktopState::Failed)
    }

    /// Whether a desktop in this state counts against its person's quota.
    pub fn is_live(self) -> bool {
        !self.is_terminal()
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: DesktopState) -> bool {
        use DesktopState::*;
        match (self, to) {
            (Ended | Failed, _) => false,
            (_, Failed) => true,
            (Stopping, Ended) => true,
            (Stopping, _) => false,
            (_, Stopping) => true,
            (Requested, Provisioning)
            | (Provisioning, Booting)
            | (Booting, Ready)
            | (Ready, Suspending)
            | (Suspending, Suspended)
            | (Suspending, Ready)
            | (Suspended, Resuming)
            | (Resuming, Ready)
            | (Resuming, Suspended) => true,
            _ => false,
        }
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
    /// Why it failed or ended, for people.
    pub reason: Option<String>,
    pub created_at: UnixMillis,
    /// When `state` was entered.
    pub state_since: UnixMillis,
    /// Last sign of its person (launch, resume, console use): what the idle timeout counts from.
    pub last_activity: UnixMillis,
    /// When it ends at the latest (the template's maximum lifetime, or the end of the
    /// course slot it draws from), if it has one.
    pub expires_at: Option<UnixMillis>,
    /// The course reservation slot it draws from ("course-id:slot-index"), if any.
    pub reservation: Option<String>,
    /// Started ahead by the warm pool and not yet handed to anyone (its owner is then the
    /// template's steward, who cannot use it). Once handed over it is never warm again.
    pub warm: bool,
    /// The mdev instance (UUID) it holds, if its template has a vGPU.
    pub vgpu_instance: Option<String>,
}

impl Desktop {
    /// A new desktop in [`DesktopState::Requested`].
    pub fn requested(
        owner: UserId,
        template: TemplateId,
        template_version: u32,
        now: UnixMillis,
        expires_at: Option<UnixMillis>,
    ) -> Desktop {
        Desktop {
            id: DesktopId::random(),
            owner,
            template,
            template_version,
            state: DesktopState::Requested,
            reason: None,
            created_at: now,
            state_since: now,
            last_activity: now,
            expires_at,
            reservation: None,
            warm: false,
            vgpu_instance: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DesktopState::*;

    #[test]
    fn lifecycle_transitions() {
        let path = [
            Requested,
            Provisioning,
            Booting,
            Ready,
            Suspending,
            Suspended,
            Resuming,
            Ready,
            Stopping,
            Ended,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_become(w[1]), "{} -> {}", w[0], w[1]);
        }
        assert!(!Ended.can_become(Failed), "history stays history");
        assert!(!Failed.can_become(Stopping));
        assert!(Booting.can_become(Failed));
        assert!(!Requested.can_become(Ready), "no skipping");
        assert!(!Suspended.can_become(Ready), "resume goes through resuming");
        assert!(!Stopping.can_become(Ready));
        assert!(Ready.is_live() && !Ended.is_live() && Failed.is_terminal());
    }
}
