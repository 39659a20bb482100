//! The reconciler: makes the store's desktops and the backend's agree, and enforces time
//! limits. It runs beside the server, reacts to backend events at once and checks everything
//! every few seconds; after a restart its first pass adopts, fails or cleans up what the
//! previous run left.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use osvdi_compute::{ComputeEvent, PowerState};
use osvdi_model::{Desktop, DesktopId, DesktopState, TemplateId};
use tokio_util::sync::CancellationToken;

use crate::{Core, Result};

/// What one pass changed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub ready: usize,
    pub failed: usize,
    pub ended: usize,
    pub repaired: usize,
    pub orphans_removed: usize,
}

impl Core {
    /// Runs until `cancel`: a pass at once, then on every backend event and every `period`.
    pub async fn run_reconciler(self: Arc<Self>, period: Duration, cancel: CancellationToken) {
        let Ok(compute) = self.compute() else { return };
        let mut events = compute.subscribe();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                ev = events.recv() => match ev {
                    Ok(ev) => self.on_event(ev).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "reconciler lagged behind backend events; checking all");
                        self.pass().await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.pass().await,
            }
        }
    }

    async fn pass(self: &Arc<Self>) {
        match self.reconcile_once().await {
            Ok(r) if r != ReconcileReport::default() => tracing::info!(?r, "reconciled"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reconcile pass failed"),
        }
        if let Err(e) = self.tend_warm_pools().await {
            tracing::error!(error = %e, "warm pool pass failed");
        }
    }

    async fn on_event(self: &Arc<Self>, ev: ComputeEvent) {
        let (id, exited) = match &ev {
            ComputeEvent::Ready { id } => (*id, None),
            ComputeEvent::Exited { id, reason } => (*id, Some(reason.clone())),
        };
        let Ok(d) = self.store.desktop(id).await else {
            return;
        };
        match exited {
            None if d.state == DesktopState::Booting => {
                let _ = self
                    .move_desktop(&d, DesktopState::Booting, DesktopState::Ready, None)
                    .await;
                let _ = self.store.touch_desktop(d.id, self.now()).await;
            }
            // Exits the broker asked for (suspend, stop) are expected.
            Some(reason)
                if matches!(
                    d.state,
                    DesktopState::Booting | DesktopState::Ready | DesktopState::Resuming
                ) =>
            {
                self.fail(&d, &format!("The desktop stopped unexpectedly: {reason}"))
                    .await;
            }
            _ => {}
        }
    }

    /// One full comparison of store and backend, plus time limits.
    pub async fn reconcile_once(self: &Arc<Self>) -> Result<ReconcileReport> {
        let compute = Arc::clone(self.compute()?);
        let mut report = ReconcileReport::default();
        let backend: HashMap<DesktopId, PowerState> = compute
            .list()
            .await
            .map_err(|e| crate::CoreError::Internal(e.to_string()))?
            .into_iter()
            .collect();
        let live = self.store.desktops(None, true).await?;
        let now = self.now();
        let mut idle_limits: HashMap<TemplateId, Option<u32>> = HashMap::new();

        for d in &live {
            // An operation in flight owns the desktop; look again next time.
            let lock = self.ops.get(d.id);
            let Ok(_guard) = lock.try_lock() else {
                continue;
            };
            let seen = backend.get(&d.id);
            if let Some(action) = repair(d, seen, now, self.config.boot_timeout) {
                match action {
                    Repair::Move(to) => {
                        if self.move_desktop(d, d.state, to, None).await? {
                            if to == DesktopState::Ready {
                                report.ready += 1;
                                let _ = self.store.touch_desktop(d.id, now).await;
                            } else {
                                report.repaired += 1;
                            }
                        }
                    }
                    Repair::Fail(reason) => {
                        drop(_guard);
                        self.fail(d, &reason).await;
                        report.failed += 1;
                    }
                    Repair::FinishStop => {
                        drop(_guard);
                        self.finish_stop(d).await;
                        report.ended += 1;
                    }
                }
                continue;
            }
            // Time limits.
            if d.expires_at.is_some_and(|t| t <= now) && d.state != DesktopState::Stopping {
                drop(_guard);
                if self
                    .end_for(d, Some("Ended: the maximum lifetime was reached"))
                    .await
                    .is_ok()
                {
                    report.ended += 1;
                }
                continue;
            }
            if d.state == DesktopState::Ready && !d.warm {
                let idle = match idle_limits.get(&d.template) {
                    Some(v) => *v,
                    None => {
                        let v = self
                            .store
                            .template(d.template)
                            .await
                            .ok()
                            .and_then(|t| t.spec.idle_timeout_min);
                        idle_limits.insert(d.template, v);
                        v
                    }
                };
                if let Some(min) = idle
                    && d.last_activity
                        .plus(Duration::from_secs(u64::from(min) * 60))
                        <= now
                {
                    drop(_guard);
                    let reason = format!("Ended: idle for {min} minute(s)");
                    if self.end_for(d, Some(&reason)).await.is_ok() {
                        report.ended += 1;
                    }
                }
            }
        }

        // Desktops the backend has and the store does not know as live: leftovers.
        for id in backend.keys() {
            if !live.iter().any(|d| d.id == *id) {
                let lock = self.ops.get(*id);
                let Ok(_guard) = lock.try_lock() else {
                    continue;
                };
                tracing::warn!(desktop = %id, "removing a desktop the store does not know as live");
                if compute.delete(*id).await.is_ok() {
                    report.orphans_removed += 1;
                }
            }
        }
        Ok(report)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repair {
    Move(DesktopState),
    Fail(String),
    FinishStop,
}

/// What to do about a desktop given what the backend says (`None`: it does not know it).
/// Pure, so that every case is a unit test.
fn repair(
    d: &Desktop,
    seen: Option<&PowerState>,
    now: osvdi_model::UnixMillis,
    boot_timeout: Duration,
) -> Option<Repair> {
    use DesktopState as S;
    use PowerState as P;
    let gone = |what: &str| Some(Repair::Fail(format!("The desktop {what}")));
    match (d.state, seen) {
        (S::Stopping, _) => Some(Repair::FinishStop),
        (S::Requested | S::Provisioning, _) => Some(Repair::Fail(
            "Interrupted while being created (the server restarted); launch it again".into(),
        )),
        (_, Some(P::Crashed { reason })) => Some(Repair::Fail(format!(
            "The desktop stopped unexpectedly: {reason}"
        ))),
        (S::Booting, Some(P::Running)) => Some(Repair::Move(S::Ready)),
        (S::Booting, Some(P::Booting)) if d.state_since.plus(boot_timeout) <= now => {
            Some(Repair::Fail(format!(
                "The desktop did not become ready within {} s",
                boot_timeout.as_secs()
            )))
        }
        (S::Booting | S::Ready, Some(P::Booting | P::Running)) => None,
        (S::Suspending, Some(P::Suspended)) | (S::Resuming, Some(P::Suspended)) => {
            Some(Repair::Move(S::Suspended))
        }
        (S::Suspending, Some(P::Running | P::Booting))
        | (S::Resuming, Some(P::Running | P::Booting)) => Some(Repair::Move(S::Ready)),
        (S::Suspended, Some(P::Suspended)) => None,
        (_, Some(P::Suspended)) => gone("was found suspended unexpectedly"),
        (_, Some(P::Stopped)) => gone("was found stopped"),
        (_, None) => gone("is gone from its host"),
        (S::Ended | S::Failed, _) => None,
        (S::Suspended, Some(_)) => gone("was found running while recorded as suspended"),
    }
}

#[cfg(test)]
mod tests {
    use osvdi_model::{TemplateId, UnixMillis, UserId};

    use super::*;

    fn desktop(state: DesktopState, since: i64) -> Desktop {
        let mut d = Desktop::requested(
            UserId::random(),
            TemplateId::random(),
            1,
            UnixMillis(0),
            None,
        );
        d.state = state;
        d.state_since = UnixMillis(since);
        d
    }

    #[test]
    fn repairs() {
        use DesktopState as S;
        use PowerState as P;
        let t = Duration::from_secs(60);
        let now = UnixMillis(10_000);
        let r = |state, seen: Option<P>| repair(&desktop(state, 0), seen.as_ref(), now, t);
        assert_eq!(
            r(S::Booting, Some(P::Running)),
            Some(Repair::Move(S::Ready))
        );
        assert_eq!(
            r(S::Booting, Some(P::Booting)),
            None,
            "within the boot timeout"
        );
        assert!(matches!(
            repair(
                &desktop(S::Booting, 0),
                Some(&P::Booting),
                UnixMillis(61_000),
                t
            ),
            Some(Repair::Fail(_))
        ));
        assert_eq!(r(S::Ready, Some(P::Running)), None);
        assert!(matches!(r(S::Ready, None), Some(Repair::Fail(m)) if m.contains("gone")));
        assert!(
            matches!(r(S::Ready, Some(P::Crashed { reason: "killed".into() })), Some(Repair::Fail(m)) if m.contains("killed"))
        );
        assert!(
            matches!(r(S::Provisioning, Some(P::Stopped)), Some(Repair::Fail(m)) if m.contains("restarted"))
        );
        assert_eq!(
            r(S::Suspending, Some(P::Suspended)),
            Some(Repair::Move(S::Suspended))
        );
        assert_eq!(
            r(S::Suspending, Some(P::Running)),
            Some(Repair::Move(S::Ready))
        );
        assert_eq!(
            r(S::Resuming, Some(P::Running)),
            Some(Repair::Move(S::Ready))
        );
        assert_eq!(r(S::Suspended, Some(P::Suspended)), None);
        assert!(matches!(r(S::Suspended, None), Some(Repair::Fail(_))));
        assert_eq!(r(S::Stopping, Some(P::Running)), Some(Repair::FinishStop));
        assert_eq!(r(S::Stopping, None), Some(Repair::FinishStop));
    }
}
