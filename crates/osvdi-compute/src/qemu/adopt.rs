//! Finding desktops again: the state of a desktop from its folder and process, adoption of
//! live QEMU processes nobody is attached to (after a restart of the server, or one killed
//! mid-operation), and the scan of `run_dir` behind [`Compute::list`](crate::Compute::list).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use osvdi_model::DesktopId;

use super::QemuBackend;
use super::layout::{DesktopDir, DesktopRecord, read_pid, remove_file, sync_parent};
use super::lifecycle::{finish_state_file, qmp_failed, quit};
use super::live::{Attach, Slot, attach, crash_reason};
use super::process::is_desktop_process;
use super::qmp::client::QmpClient;
use super::state::{Adoption, Leftovers, adoption, idle_state};
use crate::{ComputeError, PowerState};

/// How long to wait for QMP's greeting: QEMU serves one client at a time.
pub(crate) const QMP_CONNECT: Duration = Duration::from_secs(5);

/// Removes `.staging-*` folders of creates that a killed server left behind.
pub(crate) fn remove_staging(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".staging-") {
            tracing::info!(path = %entry.path().display(), "removing an unfinished desktop folder");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl QemuBackend {
    /// Every desktop folder with its state; adopts live processes, removes orphans.
    pub(crate) async fn scan(&self) -> Result<Vec<(DesktopId, PowerState)>, ComputeError> {
        let entries = std::fs::read_dir(&self.run_dir)
            .map_err(|e| super::layout::io_error("Reading the desktops folder", e))?;
        let mut ids = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.parse::<DesktopId>().ok())
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                ids.push(id);
            }
        }
        ids.sort();
        let mut found = Vec::new();
        for id in ids {
            let dir = self.dir(id);
            if !dir.record().exists() {
                self.remove_orphan(&dir);
                continue;
            }
            match self.state_of(id).await {
                Ok(state) => found.push((id, state)),
                Err(ComputeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(desktop = %id, error = %e, "cannot tell a desktop's state");
                    found.push((
                        id,
                        PowerState::Crashed {
                            reason: e.to_string(),
                        },
                    ));
                }
            }
        }
        Ok(found)
    }

    /// A folder without `desktop.json` is no desktop (create writes it last): remove it,
    /// unless an operation is working on it.
    fn remove_orphan(&self, dir: &DesktopDir) {
        let slot = self.slot(dir.id);
        let Ok(_op) = slot.op.try_lock() else { return };
        if dir.record().exists() {
            return;
        }
        if let Some(pid) = read_pid(dir)
            && is_desktop_process(pid, &dir.id)
        {
            super::process::signal(pid, rustix::process::Signal::KILL);
        }
        tracing::info!(desktop = %dir.id, "removing a desktop folder without desktop.json");
        let _ = std::fs::remove_dir_all(&dir.root);
        drop(_op);
        drop(slot);
        self.forget(dir.id);
    }

    /// The state of one desktop; adopts its process when nobody is attached and no operation
    /// is under way.
    pub(crate) async fn state_of(&self, id: DesktopId) -> Result<PowerState, ComputeError> {
        let slot = self.slot(id);
        if let Some(live) = slot.live() {
            return Ok(live.power_state());
        }
        let result = match slot.op.try_lock() {
            Ok(_op) => self.refresh(&self.dir(id), &slot).await,
            Err(_) => self.observe(&self.dir(id)),
        };
        if let Err(ComputeError::NotFound(_)) = result {
            drop(slot);
            self.forget(id);
        }
        result
    }

    /// The state from the folder and /proc alone, changing nothing.
    fn observe(&self, dir: &DesktopDir) -> Result<PowerState, ComputeError> {
        if !dir.record().exists() {
            return Err(ComputeError::NotFound(dir.id));
        }
        if let Some(pid) = read_pid(dir)
            && is_desktop_process(pid, &dir.id)
        {
            return Ok(if dir.ready().exists() {
                PowerState::Running
            } else {
                PowerState::Booting
            });
        }
        Ok(self.idle(dir))
    }

    fn idle(&self, dir: &DesktopDir) -> PowerState {
        let left = Leftovers {
            pid_file: dir.pid().exists(),
            state_file: dir.state().exists(),
        };
        idle_state(&left, || crash_reason(dir))
    }

    /// The state of a desktop with no attached process, adopting a live one. The caller
    /// holds the slot's operation lock.
    pub(crate) async fn refresh(
        &self,
        dir: &DesktopDir,
        slot: &Arc<Slot>,
    ) -> Result<PowerState, ComputeError> {
        if let Some(live) = slot.live() {
            return Ok(live.power_state());
        }
        if !dir.record().exists() {
            return Err(ComputeError::NotFound(dir.id));
        }
        if let Some(pid) = read_pid(dir)
            && is_desktop_process(pid, &dir.id)
        {
            return self.adopt(dir, slot, pid).await;
        }
        // No process: nothing is writing a temporary state file any more.
        let _ = remove_file(&dir.state_tmp());
        Ok(self.idle(dir))
    }

    /// Attaches to a live QEMU of ours, first finishing or undoing what a killed server left
    /// half done (see [`Adoption`]).
    async fn adopt(
        &self,
        dir: &DesktopDir,
        slot: &Arc<Slot>,
        pid: u32,
    ) -> Result<PowerState, ComputeError> {
        let record = DesktopRecord::read(dir)?;
        let cancel = self.shared.cancel.child_token();
        let (qmp, qmp_events) = match QmpClient::connect(
            &dir.qmp(),
            QMP_CONNECT,
            cancel.clone(),
            &self.shared.tasks,
        )
        .await
        {
            Ok(connection) => connection,
            Err(e) => {
                // Another server may hold the QMP socket: report what /proc says, retry later.
                tracing::warn!(desktop = %dir.id, error = %e, "cannot attach to a running desktop");
                cancel.cancel();
                return self.observe(dir);
            }
        };
        let result = self.settle(dir, &qmp).await;
        let spice_port = match qmp.execute("query-spice", None).await {
            Ok(info) if info["enabled"] == true => {
                info["port"].as_u64().and_then(|p| u16::try_from(p).ok())
            }
            _ => None,
        };
        match result {
            Ok(true) => {
                tracing::info!(desktop = %dir.id, pid, "adopted a running desktop");
                let a = Attach {
                    pid,
                    qmp,
                    qmp_events,
                    cancel,
                    spice_port,
                };
                Ok(attach(&self.shared, slot, dir, record.ready_probe(), a))
            }
            Ok(false) => {
                quit(&qmp, pid, &dir.id).await;
                cancel.cancel();
                let _ = remove_file(&dir.pid());
                Ok(self.idle(dir))
            }
            Err(e) => {
                cancel.cancel();
                Err(e)
            }
        }
    }

    /// Brings an adopted process to a steady state. True: keep it running; false: quit it
    /// (its state is saved).
    async fn settle(&self, dir: &DesktopDir, qmp: &QmpClient) -> Result<bool, ComputeError> {
        let status = qmp
            .execute("query-status", None)
            .await
            .map_err(qmp_failed)?;
        let migration = qmp
            .execute("query-migrate", None)
            .await
            .map_err(qmp_failed)?;
        let run_state = status["status"].as_str().unwrap_or("running");
        let migration = migration["status"].as_str().unwrap_or("none");
        let action = adoption(
            run_state,
            migration,
            dir.state().exists(),
            dir.state_tmp().exists(),
        );
        tracing::info!(desktop = %dir.id, run_state, migration, ?action, "adopting");
        let drop_state = |dir: &DesktopDir| {
            let _ = remove_file(&dir.state());
            let _ = sync_parent(&dir.state());
        };
        match action {
            Adoption::Attach { drop_state: drop } => {
                if drop {
                    drop_state(dir);
                }
                Ok(true)
            }
            Adoption::Continue { drop_state: drop } => {
                qmp.execute("cont", None).await.map_err(qmp_failed)?;
                if drop {
                    drop_state(dir);
                }
                Ok(true)
            }
            Adoption::CancelSuspend => {
                qmp.execute("migrate_cancel", None)
                    .await
                    .map_err(qmp_failed)?;
                for _ in 0..100 {
                    let m = qmp
                        .execute("query-migrate", None)
                        .await
                        .map_err(qmp_failed)?;
                    if !matches!(
                        m["status"].as_str(),
                        Some("setup" | "active" | "device" | "cancelling" | "pre-switchover")
                    ) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = remove_file(&dir.state_tmp());
                qmp.execute("cont", None).await.map_err(qmp_failed)?;
                Ok(true)
            }
            Adoption::ContinueAfterLostState => {
                let _ = remove_file(&dir.state_tmp());
                qmp.execute("cont", None).await.map_err(qmp_failed)?;
                Ok(true)
            }
            Adoption::FinishSuspend { rename_tmp } => {
                if rename_tmp {
                    finish_state_file(dir)?;
                }
                Ok(false)
            }
            Adoption::AbortResume => Ok(false),
        }
    }
}
