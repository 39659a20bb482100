//! The lifecycle operations: create, start, stop, suspend, resume, delete. Each holds its
//! desktop's operation lock throughout, so operations on one desktop never interleave.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use osvdi_model::DesktopId;
use rustix::process::Signal;
use serde_json::json;
use tokio::process::Command;

use super::adopt::QMP_CONNECT;
use super::args::{LaunchPlan, load_uri, qemu_args, save_uri};
use super::config::AccelKind;
use super::layout::{
    DesktopDir, DesktopRecord, LaunchRecord, io_error, read_pid, remove_file, sync_parent,
};
use super::live::{Attach, Live, Slot, attach};
use super::process::{is_desktop_process, kill, signal, spawn_daemon, wait_gone};
use super::qmp::client::{QmpClient, QmpFailure};
use super::{QemuBackend, state_name};
use crate::{ComputeError, DesktopSpec, PowerState};

/// How long `quit` may take before SIGKILL.
const QUIT_GRACE: Duration = Duration::from_secs(3);
/// Migration is throttled to 32 MiB/s by default; saving to a local file needs no throttle.
const MAX_BANDWIDTH: u64 = 10 << 30;
const QEMU_IMG_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn qmp_failed(e: QmpFailure) -> ComputeError {
    ComputeError::Failed(e.to_string())
}

/// Asks QEMU to quit, then kills it if it has not gone after [`QUIT_GRACE`].
pub(crate) async fn quit(qmp: &QmpClient, pid: u32, id: &DesktopId) {
    let _ = qmp.execute("quit", None).await;
    if !wait_gone(pid, id, QUIT_GRACE).await {
        tracing::warn!(desktop = %id, pid, "QEMU ignored quit; killing it");
        kill(pid, id).await;
    }
}

/// fsyncs `state.bin.tmp` and renames it to `state.bin`.
pub(crate) fn finish_state_file(dir: &DesktopDir) -> Result<(), ComputeError> {
    let sync = || -> std::io::Result<()> {
        std::fs::File::open(dir.state_tmp())?.sync_all()?;
        std::fs::rename(dir.state_tmp(), dir.state())?;
        sync_parent(&dir.state())
    };
    sync().map_err(|e| io_error("Saving the desktop's state file", e))
}

/// Kills a just-launched process unless disarmed: no QEMU outlives a failed (or cancelled)
/// start or resume.
struct LaunchGuard {
    pid: u32,
    id: DesktopId,
    armed: bool,
}

impl Drop for LaunchGuard {
    fn drop(&mut self) {
        if self.armed && is_desktop_process(self.pid, &self.id) {
            signal(self.pid, Signal::KILL);
        }
    }
}

impl QemuBackend {
    pub(crate) async fn create_desktop(&self, spec: &DesktopSpec) -> Result<(), ComputeError> {
        check_spec(spec)?;
        let image = std::fs::canonicalize(&spec.image)
            .map_err(|e| io_error(&format!("Opening the image of desktop {}", spec.id), e))?;
        let mut spec = spec.clone();
        spec.image = image;
        let slot = self.slot(spec.id);
        let _op = slot.op.lock().await;
        let dir = self.dir(spec.id);
        let record = DesktopRecord::from_spec(&spec);
        match DesktopRecord::read(&dir) {
            Ok(existing) if existing.to_spec().as_ref() == Ok(&spec) => return Ok(()),
            Ok(_) => return Err(ComputeError::Exists(spec.id)),
            Err(ComputeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if dir.root.exists() {
            std::fs::remove_dir_all(&dir.root)
                .map_err(|e| io_error("Removing an unfinished desktop folder", e))?;
        }
        let staging = DesktopDir {
            id: spec.id,
            root: self.run_dir.join(format!(".staging-{}", spec.id)),
        };
        let _ = std::fs::remove_dir_all(&staging.root);
        std::fs::create_dir(&staging.root)
            .map_err(|e| io_error("Creating the desktop folder", e))?;
        let made = async {
            let virtual_size = self.image_size(&spec).await?;
            let size = virtual_size.max(u64::from(spec.disk_gb) << 30);
            self.make_overlay(&spec, &staging.disk(), size).await?;
            record.write(&staging)?;
            std::fs::rename(&staging.root, &dir.root)
                .map_err(|e| io_error("Creating the desktop folder", e))?;
            sync_parent(&dir.root).map_err(|e| io_error("Creating the desktop folder", e))
        };
        let result = made.await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging.root);
        }
        tracing::info!(desktop = %spec.id, ok = result.is_ok(), "created desktop");
        result
    }

    async fn image_size(&self, spec: &DesktopSpec) -> Result<u64, ComputeError> {
        let format = spec.image_format.as_str();
        let out = run_qemu_img(
            &self.qemu_img,
            &[
                "info",
                "--output=json",
                "-f",
                format,
                path_arg(&spec.image)?,
            ],
        )
        .await?;
        let info: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
            ComputeError::Failed(format!("qemu-img info said something unexpected: {e}"))
        })?;
        info["virtual-size"]
            .as_u64()
            .ok_or_else(|| ComputeError::Failed("qemu-img info gave no virtual size".into()))
    }

    async fn make_overlay(
        &self,
        spec: &DesktopSpec,
        disk: &Path,
        size: u64,
    ) -> Result<(), ComputeError> {
        let format = spec.image_format.as_str();
        let size = size.to_string();
        let args = [
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            format,
            "-b",
            path_arg(&spec.image)?,
            path_arg(disk)?,
            &size,
        ];
        run_qemu_img(&self.qemu_img, &args).await.map(drop)
    }

    pub(crate) async fn start_desktop(&self, id: DesktopId) -> Result<(), ComputeError> {
        let slot = self.slot(id);
        let _op = slot.op.lock().await;
        let dir = self.dir(id);
        match self.refresh(&dir, &slot).await? {
            PowerState::Booting | PowerState::Running => return Ok(()),
            state @ PowerState::Suspended => {
                return Err(ComputeError::WrongState {
                    id,
                    op: "start (resume it)",
                    state: state_name(&state),
                });
            }
            PowerState::Stopped | PowerState::Crashed { .. } => {}
        }
        let record = DesktopRecord::read(&dir)?;
        if let (Some(vgpu), None) = (&record.vgpu_type, &record.vgpu_device) {
            return Err(ComputeError::Failed(format!(
                "Desktop {id} needs a vGPU ({vgpu}) and none is assigned"
            )));
        }
        for file in [
            dir.pid(),
            dir.ready(),
            dir.serial_log(),
            dir.state_tmp(),
            dir.qemu_log(),
        ] {
            remove_file(&file).map_err(|e| io_error("Clearing the previous boot's files", e))?;
        }
        let started = Instant::now();
        let (attach_to, mut guard) = self.launch(&dir, &record, self.accel, false).await?;
        LaunchRecord::write(&dir, self.accel)?;
        guard.armed = false;
        attach(&self.shared, &slot, &dir, record.ready_probe(), attach_to);
        tracing::info!(desktop = %id, accel = self.accel.as_str(), ms = started.elapsed().as_millis(), "started desktop");
        Ok(())
    }

    /// Starts QEMU for `dir` and opens its QMP connection. A SPICE port taken by someone else
    /// between our check and QEMU's bind is retried with another port.
    async fn launch(
        &self,
        dir: &DesktopDir,
        record: &DesktopRecord,
        accel: AccelKind,
        incoming: bool,
    ) -> Result<(Attach, LaunchGuard), ComputeError> {
        let mut attempt = 0;
        let spice_port = loop {
            attempt += 1;
            let spice_port = if record.spice {
                Some(self.pick_spice_port()?)
            } else {
                None
            };
            let plan = LaunchPlan {
                dir,
                record,
                accel,
                spice_port,
                incoming,
            };
            match spawn_daemon(&self.qemu, &qemu_args(&plan), &dir.qemu_log()).await {
                Ok(()) => break spice_port,
                Err(message)
                    if spice_port.is_some()
                        && attempt < 3
                        && message.to_lowercase().contains("spice") =>
                {
                    tracing::info!(desktop = %dir.id, %message, "SPICE port taken; trying another");
                }
                Err(message) => {
                    return Err(ComputeError::Failed(format!(
                        "QEMU did not start: {message}"
                    )));
                }
            }
        };
        let Some(pid) = read_pid(dir) else {
            return Err(ComputeError::Failed(
                "QEMU started but wrote no pid file".into(),
            ));
        };
        let guard = LaunchGuard {
            pid,
            id: dir.id,
            armed: true,
        };
        let cancel = self.shared.cancel.child_token();
        let (qmp, qmp_events) =
            QmpClient::connect(&dir.qmp(), QMP_CONNECT, cancel.clone(), &self.shared.tasks)
                .await
                .map_err(|e| {
                    ComputeError::Failed(format!("QEMU started but its QMP socket failed: {e}"))
                })?;
        Ok((
            Attach {
                pid,
                qmp,
                qmp_events,
                cancel,
                spice_port,
            },
            guard,
        ))
    }

    pub(crate) async fn stop_desktop(
        &self,
        id: DesktopId,
        grace: Duration,
    ) -> Result<(), ComputeError> {
        let slot = self.slot(id);
        let _op = slot.op.lock().await;
        let dir = self.dir(id);
        let state = self.refresh(&dir, &slot).await?;
        if let Some(live) = slot.live() {
            self.power_off(&dir, &slot, &live, grace).await?;
        } else if let PowerState::Booting | PowerState::Running = state {
            // Alive but not attachable (its QMP is held elsewhere): signals only.
            if let Some(pid) = read_pid(&dir) {
                signal(pid, Signal::TERM);
                if !wait_gone(pid, &id, grace.max(QUIT_GRACE)).await && !kill(pid, &id).await {
                    return Err(ComputeError::Failed(format!(
                        "QEMU of desktop {id} does not die"
                    )));
                }
            }
        }
        // Stopping a suspended desktop drops its saved state, as pulling the plug would.
        for file in [dir.pid(), dir.ready(), dir.state_tmp(), dir.state()] {
            remove_file(&file).map_err(|e| io_error("Clearing a stopped desktop's files", e))?;
        }
        tracing::info!(desktop = %id, "stopped desktop");
        Ok(())
    }

    /// ACPI power button, `grace` to obey, then `quit`, then SIGKILL.
    async fn power_off(
        &self,
        dir: &DesktopDir,
        slot: &Slot,
        live: &Arc<Live>,
        grace: Duration,
    ) -> Result<(), ComputeError> {
        live.expect_exit(true);
        let _ = live.qmp.execute("system_powerdown", None).await;
        if !wait_gone(live.pid, &dir.id, grace).await {
            tracing::info!(desktop = %dir.id, ?grace, "guest ignored the power button; quitting QEMU");
            quit(&live.qmp, live.pid, &dir.id).await;
        }
        if is_desktop_process(live.pid, &dir.id) {
            return Err(ComputeError::Failed(format!(
                "QEMU of desktop {} does not die",
                dir.id
            )));
        }
        slot.detach(live);
        Ok(())
    }

    pub(crate) async fn suspend_desktop(&self, id: DesktopId) -> Result<(), ComputeError> {
        let slot = self.slot(id);
        let _op = slot.op.lock().await;
        let dir = self.dir(id);
        let state = self.refresh(&dir, &slot).await?;
        let Some(live) = slot.live() else {
            return match state {
                PowerState::Suspended => Ok(()),
                state => Err(ComputeError::WrongState {
                    id,
                    op: "suspend",
                    state: state_name(&state),
                }),
            };
        };
        let record = DesktopRecord::read(&dir)?;
        let started = Instant::now();
        live.expect_exit(true);
        if let Err(e) = self.save_state(&dir, &live, record.memory_mb).await {
            let _ = remove_file(&dir.state_tmp());
            if is_desktop_process(live.pid, &id) {
                // Keep the desktop running as it was.
                live.expect_exit(false);
                let _ = live.qmp.execute("cont", None).await;
            } else {
                slot.detach(&live);
            }
            return Err(e);
        }
        let saved = started.elapsed();
        quit(&live.qmp, live.pid, &id).await;
        slot.detach(&live);
        let _ = remove_file(&dir.pid());
        let bytes = std::fs::metadata(dir.state()).map(|m| m.len()).unwrap_or(0);
        tracing::info!(desktop = %id, save_ms = saved.as_millis(), total_ms = started.elapsed().as_millis(), bytes, "suspended desktop");
        Ok(())
    }

    /// Pauses the guest and migrates it into `state.bin` (through `state.bin.tmp`).
    async fn save_state(
        &self,
        dir: &DesktopDir,
        live: &Live,
        memory_mb: u32,
    ) -> Result<(), ComputeError> {
        let qmp = &live.qmp;
        remove_file(&dir.state_tmp()).map_err(|e| io_error("Clearing an old state file", e))?;
        qmp.execute("stop", None).await.map_err(qmp_failed)?;
        qmp.execute(
            "migrate-set-parameters",
            Some(json!({ "max-bandwidth": MAX_BANDWIDTH })),
        )
        .await
        .map_err(qmp_failed)?;
        qmp.execute("migrate", Some(json!({ "uri": save_uri(dir) })))
            .await
            .map_err(qmp_failed)?;
        if let Err(e) = wait_migration(qmp, memory_mb, "Saving the desktop's state").await {
            let _ = qmp.execute("migrate_cancel", None).await;
            return Err(e);
        }
        finish_state_file(dir)
    }

    pub(crate) async fn resume_desktop(&self, id: DesktopId) -> Result<(), ComputeError> {
        let slot = self.slot(id);
        let _op = slot.op.lock().await;
        let dir = self.dir(id);
        match self.refresh(&dir, &slot).await? {
            PowerState::Suspended => {}
            PowerState::Booting | PowerState::Running => return Ok(()),
            state => {
                return Err(ComputeError::WrongState {
                    id,
                    op: "resume",
                    state: state_name(&state),
                });
            }
        }
        let record = DesktopRecord::read(&dir)?;
        let accel = LaunchRecord::read(&dir).unwrap_or(self.accel);
        if accel == AccelKind::Kvm && self.accel != AccelKind::Kvm {
            return Err(ComputeError::Failed(format!(
                "Desktop {id} was suspended under KVM, which this host does not offer now"
            )));
        }
        let started = Instant::now();
        let _ = remove_file(&dir.pid());
        let (attach_to, mut guard) = self.launch(&dir, &record, accel, true).await?;
        let qmp = &attach_to.qmp;
        qmp.execute("migrate-incoming", Some(json!({ "uri": load_uri(&dir) })))
            .await
            .map_err(qmp_failed)?;
        wait_migration(qmp, record.memory_mb, "Loading the desktop's state").await?;
        qmp.execute("cont", None).await.map_err(qmp_failed)?;
        guard.armed = false;
        // Running again: the saved state is history.
        let _ = remove_file(&dir.state());
        let _ = sync_parent(&dir.state());
        attach(&self.shared, &slot, &dir, record.ready_probe(), attach_to);
        tracing::info!(desktop = %id, ms = started.elapsed().as_millis(), "resumed desktop");
        Ok(())
    }

    pub(crate) async fn delete_desktop(&self, id: DesktopId) -> Result<(), ComputeError> {
        let slot = self.slot(id);
        let op = slot.op.lock().await;
        let dir = self.dir(id);
        if let Some(live) = slot.live() {
            live.expect_exit(true);
            if !kill(live.pid, &id).await {
                return Err(ComputeError::Failed(format!(
                    "QEMU of desktop {id} does not die"
                )));
            }
            slot.detach(&live);
        } else if let Some(pid) = read_pid(&dir)
            && is_desktop_process(pid, &id)
            && !kill(pid, &id).await
        {
            return Err(ComputeError::Failed(format!(
                "QEMU of desktop {id} does not die"
            )));
        }
        match std::fs::remove_dir_all(&dir.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error("Removing the desktop folder", e));
            }
            _ => {}
        }
        let _ = sync_parent(&dir.root);
        drop(op);
        drop(slot);
        self.forget(id);
        tracing::info!(desktop = %id, "deleted desktop");
        Ok(())
    }
}

/// Polls `query-migrate` until the migration completed; fails on `failed`/`cancelled` or
/// after a deadline that allows 50 MB/s plus a minute.
async fn wait_migration(qmp: &QmpClient, memory_mb: u32, what: &str) -> Result<(), ComputeError> {
    let limit = Duration::from_secs(60) + Duration::from_millis(20 * u64::from(memory_mb));
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        let info = qmp
            .execute("query-migrate", None)
            .await
            .map_err(qmp_failed)?;
        match info["status"].as_str() {
            Some("completed") => return Ok(()),
            Some(status @ ("failed" | "cancelled")) => {
                let why = info["error-desc"].as_str().unwrap_or(status);
                return Err(ComputeError::Failed(format!("{what} failed: {why}")));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(ComputeError::Timeout(format!(
                "{what} took more than {limit:?}"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn check_spec(spec: &DesktopSpec) -> Result<(), ComputeError> {
    let bad = |what: &str| Err(ComputeError::Failed(format!("Desktop {}: {what}", spec.id)));
    if spec.vcpus == 0 || spec.vcpus > 256 {
        return bad("vCPUs must be 1 to 256");
    }
    if spec.memory_mb < 16 {
        return bad("memory must be at least 16 MB");
    }
    if spec.disk_gb == 0 {
        return bad("the disk must be at least 1 GB");
    }
    if !spec.image.is_absolute() {
        return bad("the image path must be absolute");
    }
    Ok(())
}

fn path_arg(path: &Path) -> Result<&str, ComputeError> {
    path.to_str()
        .ok_or_else(|| ComputeError::Failed(format!("Path {} is not UTF-8", path.display())))
}

/// Runs qemu-img and returns its standard output; its standard error becomes the error.
async fn run_qemu_img(qemu_img: &Path, args: &[&str]) -> Result<Vec<u8>, ComputeError> {
    let child = Command::new(qemu_img)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io_error(&format!("Running {}", qemu_img.display()), e))?;
    let output = tokio::time::timeout(QEMU_IMG_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            ComputeError::Timeout(format!(
                "qemu-img {} took more than {QEMU_IMG_TIMEOUT:?}",
                args[0]
            ))
        })?
        .map_err(|e| io_error("Waiting for qemu-img", e))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr)
            .trim()
            .replace('\n', "; ");
        return Err(ComputeError::Failed(format!(
            "qemu-img {} failed: {message}",
            args[0]
        )));
    }
    Ok(output.stdout)
}
