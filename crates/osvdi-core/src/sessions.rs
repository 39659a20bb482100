//! Desktops for people ("sessions" in the API): launch, suspend, resume, end.
//!
//! Every state change is written to the store (a compare-and-set) before the backend is
//! asked to act, and announced on a broadcast channel for live views. Backend work runs in
//! background tasks; one operation at a time per desktop (an async lock per desktop), so that,
//! say, ending a desktop that is still being created waits for the creation to finish.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osvdi_compute::{Compute, DesktopSpec, ReadyProbe};
use osvdi_model::{
    AuditAction, AuditOutcome, Desktop, DesktopId, DesktopState, ReadyRule, Template, TemplateId,
    UnixMillis, UserId,
};
use osvdi_store::{DesktopEvent, StoreError, Transition};

use crate::{Caller, Core, CoreError, Result};

/// A desktop changed state: what live views (server-sent events) get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopChange {
    pub desktop: DesktopId,
    pub owner: UserId,
    pub state: DesktopState,
    pub reason: Option<String>,
    pub at: UnixMillis,
}

/// Per-desktop operation locks.
#[derive(Debug, Default)]
pub(crate) struct OpLocks(Mutex<HashMap<DesktopId, Arc<tokio::sync::Mutex<()>>>>);

impl OpLocks {
    pub(crate) fn get(&self, id: DesktopId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, l| Arc::strong_count(l) > 1 || l.try_lock().is_err());
        map.entry(id).or_default().clone()
    }
}

fn ready_probe(rule: &ReadyRule) -> ReadyProbe {
    match rule {
        ReadyRule::SerialMarker(m) => ReadyProbe::SerialMarker(m.clone()),
        ReadyRule::AfterSeconds(s) => ReadyProbe::After(Duration::from_secs(u64::from(*s))),
    }
}

impl Core {
    pub(crate) fn compute(&self) -> Result<&Arc<dyn Compute>> {
        self.compute.as_ref().ok_or_else(|| {
            CoreError::Conflict(
                "No compute backend is configured on this server; desktops cannot run".into(),
            )
        })
    }

    /// Live views of desktop changes. Each call gives a new receiver.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<DesktopChange> {
        self.changes.subscribe()
    }

    /// Moves a desktop if it is still in `from`, recording and announcing the change.
    /// Returns false if someone moved it first.
    pub(crate) async fn move_desktop(
        &self,
        d: &Desktop,
        from: DesktopState,
        to: DesktopState,
        reason: Option<&str>,
    ) -> Result<bool> {
        debug_assert!(from.can_become(to), "{from} -> {to}");
        let at = self.now();
        let moved = self
            .store
            .transition(
                d.id,
                &Transition {
                    from,
                    to,
                    reason,
                    at,
                },
            )
            .await?;
        if moved {
            tracing::info!(desktop = %d.id, %from, %to, reason = reason.unwrap_or(""), "desktop state");
            let change = DesktopChange {
                desktop: d.id,
                owner: d.owner,
                state: to,
                reason: reason.map(str::to_owned),
                at,
            };
            // Nobody listening is fine.
            let _ = self.changes.send(change);
        }
        Ok(moved)
    }

    /// Tells live views about a desktop as it is now (nobody listening is fine).
    pub(crate) fn announce(&self, d: &Desktop) {
        let _ = self.changes.send(DesktopChange {
            desktop: d.id,
            owner: d.owner,
            state: d.state,
            reason: d.reason.clone(),
            at: self.now(),
        });
    }

    /// A desktop the caller may see: their own, or any for admins. Others are "not found".
    pub async fn desktop(&self, caller: &Caller, id: DesktopId) -> Result<Desktop> {
        let d = self
            .store
            .desktop(id)
            .await
            .map_err(|_| CoreError::NotFound("Session"))?;
        // A warm desktop belongs to nobody yet: only admins see it.
        if (d.owner == caller.who.id && !d.warm) || caller.who.role.is_admin() {
            Ok(d)
        } else {
            Err(CoreError::NotFound("Session"))
        }
    }

    /// The caller's desktops (admins: everyone's when `all`), newest first.
    pub async fn desktops(
        &self,
        caller: &Caller,
        all: bool,
        live_only: bool,
    ) -> Result<Vec<Desktop>> {
        if all && !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Only admins list everyone's sessions".into(),
            ));
        }
        let owner = if all { None } else { Some(caller.who.id) };
        let list = self.store.desktops(owner, live_only).await?;
        Ok(list.into_iter().filter(|d| all || !d.warm).collect())
    }

    /// A desktop's recorded state changes, oldest first.
    pub async fn desktop_history(
        &self,
        caller: &Caller,
        id: DesktopId,
    ) -> Result<Vec<DesktopEvent>> {
        self.desktop(caller, id).await?;
        Ok(self.store.desktop_events(id).await?)
    }

    /// Launches a desktop of a template the caller may see; answers at once with the desktop
    /// in `requested` while a background task creates and boots it.
    pub async fn launch(
        self: &Arc<Self>,
        caller: &Caller,
        template: TemplateId,
    ) -> Result<Desktop> {
        let t = self.template(caller, template).await?;
        self.check_access(caller, &t, caller.client).await?;
        self.compute()?;
        let Some(version) = t.current_version else {
            return Err(CoreError::Conflict(format!(
                "Template '{}' has no image yet",
                t.spec.name
            )));
        };
        let _one_launch_at_a_time = self.launch_lock.lock().await;
        let now = self.now();
        let expires = t
            .spec
            .max_lifetime_min
            .map(|m| now.plus(Duration::from_secs(u64::from(m) * 60)));
        let mut d = Desktop::requested(caller.who.id, t.id, version, now, expires);
        let max = self.config.max_desktops_per_user;
        let mine = self.store.desktops(Some(caller.who.id), true).await?;
        let under_quota = mine.iter().filter(|x| !x.warm).count() < max as usize;
        // A desktop started ahead for a course slot covering this person goes first (the
        // scheduler counts it as the slot's already), then one of the template's pool.
        if under_quota && let Some(w) = self.claim_course_warm(caller, &t, now).await? {
            return Ok(self.handed_over(caller, &t, w).await);
        }
        let admission = self.admit_launch(caller, &t, d.id, expires).await?;
        if under_quota
            && admission.reservation.is_none()
            && let Some(w) = self
                .store
                .claim_warm(t.id, None, caller.who.id, admission.end, now)
                .await?
        {
            return Ok(self.handed_over(caller, &t, w).await);
        }
        d.expires_at = admission.end;
        d.reservation = admission.reservation;
        d.reason = admission.notice;
        match self.store.create_desktop_within_quota(&d, max).await {
            Err(StoreError::Conflict) => {
                return Err(CoreError::Conflict(format!(
                    "You already have {max} desktop(s); end one before starting another"
                )));
            }
            r => r?,
        }
        self.announce(&d);
        let detail = format!("template {} version {version}", t.spec.name);
        self.record(
            caller,
            AuditAction::SessionLaunch,
            format!("session:{}", d.id),
            AuditOutcome::Success,
            detail,
        )
        .await;
        let core = Arc::clone(self);
        let launched = d.clone();
        tokio::spawn(async move { core.provision(launched, t).await });
        Ok(d)
    }

    /// Announces and audits a warm desktop handed to `caller`.
    async fn handed_over(&self, caller: &Caller, t: &Template, w: Desktop) -> Desktop {
        self.announce(&w);
        let detail = format!(
            "template {} version {} (warm)",
            t.spec.name, w.template_version
        );
        let object = format!("session:{}", w.id);
        self.record(
            caller,
            AuditAction::SessionLaunch,
            object,
            AuditOutcome::Success,
            detail,
        )
        .await;
        w
    }

    /// Creates and starts a requested desktop; readiness is noticed by the reconciler.
    pub(crate) async fn provision(self: Arc<Self>, d: Desktop, t: Template) {
        let lock = self.ops.get(d.id);
        let _guard = lock.lock().await;
        if let Err(e) = self.try_provision(&d, &t).await {
            let reason = format!("Could not start the desktop: {e}");
            self.fail(&d, &reason).await;
        }
    }

    async fn try_provision(&self, d: &Desktop, t: &Template) -> Result<()> {
        let compute = self.compute()?;
        if !self
            .move_desktop(d, DesktopState::Requested, DesktopState::Provisioning, None)
            .await?
        {
            return Ok(());
        }
        let version = self.store.version(t.id, d.template_version).await?;
        let image = self
            .image_path(&version)
            .ok_or_else(|| CoreError::Internal("version without format".into()))?;
        let spec = DesktopSpec {
            id: d.id,
            name: format!("osvdi-{}", d.id),
            vcpus: t.spec.vcpus,
            memory_mb: t.spec.memory_mb,
            disk_gb: t.spec.disk_gb,
            image,
            image_format: version.format.unwrap_or(osvdi_model::ImageFormat::Qcow2),
            vgpu_type: t.spec.vgpu_type.clone(),
            vgpu_device: match &t.spec.vgpu_type {
                Some(ty) if !compute.places_vgpus() => Some(self.allocate_vgpu(d.id, ty).await?),
                _ => None,
            },
            spice: t
                .spec
                .protocols
                .contains(&osvdi_model::DisplayProtocol::Spice),
            ready: ready_probe(&t.spec.ready),
        };
        compute
            .create(&spec)
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        if !self
            .move_desktop(d, DesktopState::Provisioning, DesktopState::Booting, None)
            .await?
        {
            return Ok(());
        }
        compute
            .start(d.id)
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(())
    }

    /// Marks a desktop failed (from whatever live state it is in) and releases its resources.
    pub(crate) async fn fail(&self, d: &Desktop, reason: &str) {
        let current = match self.store.desktop(d.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(desktop = %d.id, error = %e, "cannot read desktop to fail it");
                return;
            }
        };
        if current.state.is_terminal() {
            return;
        }
        if let Err(e) = self
            .move_desktop(&current, current.state, DesktopState::Failed, Some(reason))
            .await
        {
            tracing::error!(desktop = %d.id, error = %e, "cannot record failure");
            return;
        }
        if let Ok(compute) = self.compute()
            && let Err(e) = compute.delete(d.id).await
        {
            tracing::warn!(desktop = %d.id, error = %e, "cannot release a failed desktop; the reconciler retries");
        }
        self.release_vgpu(&current).await;
    }

    fn wrong_state(d: &Desktop, what: &str) -> CoreError {
        CoreError::Conflict(format!(
            "The session is {}; it cannot be {what} now",
            d.state
        ))
    }

    /// Starts an operation the caller asked for: moves their desktop from `from` to `via`
    /// (refusing any other state as "cannot be `verb` now") and audits it.
    async fn begin(
        &self,
        caller: &Caller,
        id: DesktopId,
        (from, via): (DesktopState, DesktopState),
        action: AuditAction,
        verb: &str,
    ) -> Result<Desktop> {
        let d = self.desktop(caller, id).await?;
        if d.state != from || !self.move_desktop(&d, from, via, None).await? {
            return Err(Self::wrong_state(&d, verb));
        }
        self.record(
            caller,
            action,
            format!("session:{id}"),
            AuditOutcome::Success,
            "",
        )
        .await;
        Ok(d)
    }

    /// Runs `job` in the background while holding the desktop's operation lock.
    fn spawn_locked<F, Fut>(self: &Arc<Self>, d: Desktop, job: F)
    where
        F: FnOnce(Arc<Core>, Desktop) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let core = Arc::clone(self);
        tokio::spawn(async move {
            let lock = core.ops.get(d.id);
            let _guard = lock.lock().await;
            job(core, d).await;
        });
    }

    /// Suspends a ready desktop: its whole state goes to disk and its process ends.
    pub async fn suspend(self: &Arc<Self>, caller: &Caller, id: DesktopId) -> Result<Desktop> {
        if !self.compute()?.capabilities().suspend {
            return Err(CoreError::Conflict(
                "This server's compute backend cannot suspend desktops".into(),
            ));
        }
        let states = (DesktopState::Ready, DesktopState::Suspending);
        let d = self
            .begin(caller, id, states, AuditAction::SessionSuspend, "suspended")
            .await?;
        self.spawn_locked(d, |core, job| async move {
            let outcome = match core.compute() {
                Ok(c) => c.suspend(job.id).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let result = match outcome {
                Ok(()) => {
                    core.move_desktop(
                        &job,
                        DesktopState::Suspending,
                        DesktopState::Suspended,
                        None,
                    )
                    .await
                }
                Err(e) => {
                    let reason = format!("Suspend failed: {e}");
                    core.move_desktop(
                        &job,
                        DesktopState::Suspending,
                        DesktopState::Ready,
                        Some(&reason),
                    )
                    .await
                }
            };
            if let Err(e) = result {
                tracing::error!(desktop = %job.id, error = %e, "cannot record suspend outcome");
            }
        });
        self.desktop(caller, id).await
    }

    /// Resumes a suspended desktop from its saved state.
    pub async fn resume(self: &Arc<Self>, caller: &Caller, id: DesktopId) -> Result<Desktop> {
        self.compute()?;
        let states = (DesktopState::Suspended, DesktopState::Resuming);
        let d = self
            .begin(caller, id, states, AuditAction::SessionResume, "resumed")
            .await?;
        self.spawn_locked(d, |core, job| async move {
            let outcome = match core.compute() {
                Ok(c) => c.resume(job.id).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => {
                    let _ = core.store.touch_desktop(job.id, core.now()).await;
                    if let Err(e) = core
                        .move_desktop(&job, DesktopState::Resuming, DesktopState::Ready, None)
                        .await
                    {
                        tracing::error!(desktop = %job.id, error = %e, "cannot record resume");
                    }
                }
                Err(e) => core.fail(&job, &format!("Resume failed: {e}")).await,
            }
        });
        self.desktop(caller, id).await
    }

    /// Ends a desktop: it stops and (being non-persistent) is destroyed.
    pub async fn end(self: &Arc<Self>, caller: &Caller, id: DesktopId) -> Result<Desktop> {
        let d = self.desktop(caller, id).await?;
        self.end_for(&d, None).await?;
        let object = format!("session:{id}");
        self.record(
            caller,
            AuditAction::SessionEnd,
            object,
            AuditOutcome::Success,
            "",
        )
        .await;
        self.desktop(caller, id).await
    }

    /// Ends a desktop for a reason (a user's request when `None`, else a limit), in the
    /// background.
    pub(crate) async fn end_for(self: &Arc<Self>, d: &Desktop, reason: Option<&str>) -> Result<()> {
        if d.state.is_terminal() {
            return Err(Self::wrong_state(d, "ended"));
        }
        if d.state != DesktopState::Stopping
            && !self
                .move_desktop(d, d.state, DesktopState::Stopping, reason)
                .await?
        {
            return Err(CoreError::Conflict(
                "The session changed meanwhile; try again".into(),
            ));
        }
        let core = Arc::clone(self);
        let job = d.clone();
        tokio::spawn(async move { core.finish_stop(&job).await });
        Ok(())
    }

    /// Destroys a stopping desktop's resources and records it ended.
    pub(crate) async fn finish_stop(&self, d: &Desktop) {
        let lock = self.ops.get(d.id);
        let _guard = lock.lock().await;
        if let Ok(compute) = self.compute()
            && let Err(e) = compute.delete(d.id).await
        {
            tracing::warn!(desktop = %d.id, error = %e, "cannot destroy an ending desktop; the reconciler retries");
            return;
        }
        if let Ok(current) = self.store.desktop(d.id).await {
            self.release_vgpu(&current).await;
        }
        if let Err(e) = self
            .move_desktop(d, DesktopState::Stopping, DesktopState::Ended, None)
            .await
        {
            tracing::error!(desktop = %d.id, error = %e, "cannot record end");
        }
    }
}
