//! What a desktop folder means, as pure functions: the power state of a folder with no live
//! process, and what to do with a live QEMU found after a restart of the server.

use crate::PowerState;

/// What is on disk, for a desktop whose process is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leftovers {
    /// `qemu.pid` exists: QEMU removes it on a clean exit and we after a stop.
    pub pid_file: bool,
    /// `state.bin` exists (complete: it is renamed into place only after an fsync).
    pub state_file: bool,
}

/// The state of a desktop without a process. `crash_reason` is asked only when needed.
pub(crate) fn idle_state(left: &Leftovers, crash_reason: impl FnOnce() -> String) -> PowerState {
    if left.state_file {
        PowerState::Suspended
    } else if left.pid_file {
        PowerState::Crashed {
            reason: crash_reason(),
        }
    } else {
        PowerState::Stopped
    }
}

/// What to do with a live QEMU of ours that no backend is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adoption {
    /// Running (or halted by the guest): attach. `drop_state`: a resume finished but the
    /// server died before removing `state.bin`.
    Attach { drop_state: bool },
    /// Paused by us: a suspend that never began migrating, or a resume whose incoming state
    /// was loaded but not yet continued. Continue it, then attach.
    Continue { drop_state: bool },
    /// A suspend was migrating when the server died: cancel the migration, continue the guest
    /// and attach. The broker asked for a suspend it never heard the end of; the desktop is
    /// simply still running.
    CancelSuspend,
    /// A suspend finished saving (QEMU in `postmigrate`): finish it (rename the temporary
    /// state file if needed), quit QEMU. The desktop is Suspended.
    FinishSuspend { rename_tmp: bool },
    /// The state was saved but its file is gone: continue rather than lose the guest.
    ContinueAfterLostState,
    /// A resume was loading state when the server died: quit QEMU. `state.bin` is kept until
    /// a resume completes, so the desktop is Suspended and can be resumed again.
    AbortResume,
}

/// Decides from QEMU's run state (`query-status`), its outgoing migration status
/// (`query-migrate`, "none" when there is none) and the state files on disk.
pub(crate) fn adoption(
    run_state: &str,
    migration: &str,
    state_file: bool,
    state_tmp: bool,
) -> Adoption {
    let migrating = matches!(
        migration,
        "setup" | "active" | "device" | "pre-switchover" | "cancelling" | "wait-unplug"
    );
    match run_state {
        "inmigrate" => Adoption::AbortResume,
        "postmigrate" if state_file => Adoption::FinishSuspend { rename_tmp: false },
        "postmigrate" if state_tmp && migration == "completed" => {
            Adoption::FinishSuspend { rename_tmp: true }
        }
        "postmigrate" => Adoption::ContinueAfterLostState,
        _ if migrating => Adoption::CancelSuspend,
        "paused" | "finish-migrate" | "prelaunch" => Adoption::Continue {
            drop_state: state_file,
        },
        _ => Adoption::Attach {
            drop_state: state_file,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_states() {
        let crash = || "gone".to_owned();
        let left = |pid_file, state_file| Leftovers {
            pid_file,
            state_file,
        };
        assert_eq!(idle_state(&left(false, false), crash), PowerState::Stopped);
        assert_eq!(
            idle_state(&left(true, false), crash),
            PowerState::Crashed {
                reason: "gone".into()
            }
        );
        assert_eq!(idle_state(&left(false, true), crash), PowerState::Suspended);
        // Killed after saving, before removing its pid file: the state is complete.
        assert_eq!(idle_state(&left(true, true), crash), PowerState::Suspended);
    }

    #[test]
    fn adoptions() {
        assert_eq!(
            adoption("running", "none", false, false),
            Adoption::Attach { drop_state: false }
        );
        assert_eq!(
            adoption("running", "completed", true, false),
            Adoption::Attach { drop_state: true }
        );
        assert_eq!(
            adoption("guest-panicked", "none", false, false),
            Adoption::Attach { drop_state: false }
        );
        assert_eq!(
            adoption("paused", "none", false, false),
            Adoption::Continue { drop_state: false }
        );
        assert_eq!(
            adoption("paused", "completed", true, false),
            Adoption::Continue { drop_state: true }
        );
        assert_eq!(
            adoption("paused", "active", false, true),
            Adoption::CancelSuspend
        );
        assert_eq!(
            adoption("finish-migrate", "device", false, true),
            Adoption::CancelSuspend
        );
        assert_eq!(
            adoption("postmigrate", "completed", false, true),
            Adoption::FinishSuspend { rename_tmp: true }
        );
        assert_eq!(
            adoption("postmigrate", "completed", true, false),
            Adoption::FinishSuspend { rename_tmp: false }
        );
        assert_eq!(
            adoption("postmigrate", "failed", false, true),
            Adoption::ContinueAfterLostState
        );
        assert_eq!(
            adoption("inmigrate", "none", true, false),
            Adoption::AbortResume
        );
    }
}
