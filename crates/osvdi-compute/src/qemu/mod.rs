//! The local QEMU backend: one daemonized `qemu-system-x86_64` per desktop, controlled over
//! QMP, with a folder per desktop under `run_dir` that holds everything needed to find it
//! again after a restart of the server:
//!
//! ```text
//! run_dir/<desktop-id>/
//!   desktop.json   the spec (DesktopRecord); written last at create: no record, no desktop
//!   disk.qcow2     overlay over the template image, which is never written
//!   launch.json    accelerator of the last fresh start (a resume must use the same)
//!   qemu.pid       pid of the running QEMU; left behind by a crash
//!   qmp.sock vnc.sock serial.sock   QMP, RFB and the first serial port
//!   serial.log     what the guest wrote to its serial port since its last fresh boot
//!   qemu.log       QEMU's own messages
//!   ready          the ready probe was satisfied in this boot
//!   state.bin      saved state of a suspended desktop (state.bin.tmp while being written)
//! ```
//!
//! [`QemuBackend::new`] probes the accelerator once and adopts the desktops it finds.

mod adopt;
mod args;
pub mod bootsector;
mod config;
mod layout;
mod lifecycle;
mod live;
mod probe;
mod process;
mod qmp;
mod state;

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osvdi_model::DesktopId;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Accel, AccelKind, QemuConfig};
pub use probe::{KvmProbe, probe_kvm};

use crate::{
    Capabilities, Compute, ComputeError, ComputeEvent, DesktopSpec, DisplayEndpoints, PowerState,
    VncEndpoint,
};
use layout::{DesktopDir, DesktopRecord, io_error};
use live::{Shared, Slot};

/// Desktops as local QEMU processes. See the module documentation for the files.
#[derive(Debug)]
pub struct QemuBackend {
    run_dir: PathBuf,
    qemu: PathBuf,
    qemu_img: PathBuf,
    accel: AccelKind,
    spice_ports: RangeInclusive<u16>,
    next_spice_port: AtomicU16,
    shared: Shared,
    slots: Mutex<HashMap<DesktopId, Arc<Slot>>>,
}

impl QemuBackend {
    /// Checks `run_dir`, decides the accelerator (logging the decision once) and adopts the
    /// desktops already in `run_dir`.
    pub async fn new(config: QemuConfig) -> Result<Self, ComputeError> {
        config::check_run_dir(&config.run_dir)?;
        std::fs::create_dir_all(&config.run_dir)
            .map_err(|e| io_error("Creating the desktops folder", e))?;
        adopt::remove_staging(&config.run_dir);
        let accel = decide_accel(&config).await?;
        let (events, _) = broadcast::channel(256);
        let backend = QemuBackend {
            run_dir: config.run_dir.clone(),
            qemu: config.qemu(),
            qemu_img: config.qemu_img(),
            accel,
            next_spice_port: AtomicU16::new(*config.spice_ports.start()),
            spice_ports: config.spice_ports,
            shared: Shared {
                events,
                tasks: TaskTracker::new(),
                cancel: CancellationToken::new(),
            },
            slots: Mutex::new(HashMap::new()),
        };
        let found = backend.list().await?;
        let running = found
            .iter()
            .filter(|(_, s)| matches!(s, PowerState::Running | PowerState::Booting))
            .count();
        tracing::info!(desktops = found.len(), running, run_dir = %backend.run_dir.display(), "QEMU backend ready");
        Ok(backend)
    }

    /// The accelerator desktops started by this backend use.
    pub fn accel(&self) -> AccelKind {
        self.accel
    }

    /// Gives a desktop its mediated GPU (`/sys/bus/mdev/devices/<uuid>`), passed to QEMU as
    /// `-device vfio-pci,sysfsdev=...,display=on` from its next fresh start. `None` removes it.
    pub async fn assign_vgpu(
        &self,
        id: DesktopId,
        device: Option<PathBuf>,
    ) -> Result<(), ComputeError> {
        let slot = self.slot(id);
        let _op = slot.op.lock().await;
        let dir = self.dir(id);
        let mut record = DesktopRecord::read(&dir)?;
        record.vgpu_device = device;
        record.write(&dir)
    }

    /// Ends the backend's watchers and QMP connections and waits for them. Desktops keep
    /// running; a new backend over the same `run_dir` adopts them.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        for slot in self.slots.lock().expect("slots lock").values() {
            slot.detach_any();
        }
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    fn dir(&self, id: DesktopId) -> DesktopDir {
        DesktopDir::new(&self.run_dir, id)
    }

    fn slot(&self, id: DesktopId) -> Arc<Slot> {
        // A poisoned lock means a panic while holding it: a bug.
        self.slots
            .lock()
            .expect("slots lock")
            .entry(id)
            .or_default()
            .clone()
    }

    /// Forgets an unused slot (the desktop is gone).
    fn forget(&self, id: DesktopId) {
        let mut slots = self.slots.lock().expect("slots lock");
        if let Some(slot) = slots.get(&id)
            && slot.live().is_none()
            && Arc::strong_count(slot) == 1
        {
            slots.remove(&id);
        }
    }

    /// A free SPICE port: not used by our desktops, and bindable on 127.0.0.1 right now.
    fn pick_spice_port(&self) -> Result<u16, ComputeError> {
        let used: Vec<u16> = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .filter_map(|s| s.live().and_then(|l| l.spice_port))
            .collect();
        let (first, last) = (*self.spice_ports.start(), *self.spice_ports.end());
        let count = u32::from(last.saturating_sub(first)) + 1;
        let start = self
            .next_spice_port
            .load(Ordering::Relaxed)
            .clamp(first, last);
        for step in 0..count {
            let port = first + ((u32::from(start - first) + step) % count) as u16;
            if !used.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                let next = if port == last { first } else { port + 1 };
                self.next_spice_port.store(next, Ordering::Relaxed);
                return Ok(port);
            }
        }
        Err(ComputeError::NoCapacity(format!(
            "no free SPICE port in {first}-{last}"
        )))
    }
}

impl Drop for QemuBackend {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

async fn decide_accel(config: &QemuConfig) -> Result<AccelKind, ComputeError> {
    if config.accel == Accel::Tcg {
        tracing::info!("accelerator: tcg (configured)");
        return Ok(AccelKind::Tcg);
    }
    match probe_kvm(&config.qemu(), &config.run_dir, config.kvm_probe_timeout).await {
        KvmProbe::Works { boot } => {
            tracing::info!("accelerator: kvm (probe booted in {} ms)", boot.as_millis());
            Ok(AccelKind::Kvm)
        }
        KvmProbe::Fails { why } if config.accel == Accel::Auto => {
            tracing::info!("accelerator: tcg (KVM probe failed: {why})");
            Ok(AccelKind::Tcg)
        }
        KvmProbe::Fails { why } => Err(ComputeError::Failed(format!(
            "KVM is required but its probe failed: {why}"
        ))),
    }
}

#[async_trait::async_trait]
impl Compute for QemuBackend {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn capabilities(&self) -> Capabilities {
        // vGPU: the backend passes the mdev instance the broker allocated (`vgpu_device` in the
        // spec, or assign_vgpu) through to QEMU.
        Capabilities {
            suspend: true,
            vgpu: true,
            spice: true,
            survives_restart: true,
        }
    }

    async fn create(&self, spec: &DesktopSpec) -> Result<(), ComputeError> {
        self.create_desktop(spec).await
    }

    async fn start(&self, id: DesktopId) -> Result<(), ComputeError> {
        self.start_desktop(id).await
    }

    async fn stop(&self, id: DesktopId, grace: Duration) -> Result<(), ComputeError> {
        self.stop_desktop(id, grace).await
    }

    async fn suspend(&self, id: DesktopId) -> Result<(), ComputeError> {
        self.suspend_desktop(id).await
    }

    async fn resume(&self, id: DesktopId) -> Result<(), ComputeError> {
        self.resume_desktop(id).await
    }

    async fn delete(&self, id: DesktopId) -> Result<(), ComputeError> {
        self.delete_desktop(id).await
    }

    async fn status(&self, id: DesktopId) -> Result<PowerState, ComputeError> {
        self.state_of(id).await
    }

    async fn list(&self) -> Result<Vec<(DesktopId, PowerState)>, ComputeError> {
        self.scan().await
    }

    async fn display(&self, id: DesktopId) -> Result<DisplayEndpoints, ComputeError> {
        let state = self.state_of(id).await?;
        let slot = self.slot(id);
        let vnc = VncEndpoint::Unix(self.dir(id).vnc());
        match (slot.live(), state) {
            (Some(live), _) => Ok(DisplayEndpoints {
                vnc,
                spice: live
                    .spice_port
                    .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            }),
            // Running but not attached (another server holds its QMP): VNC works all the same.
            (None, PowerState::Booting | PowerState::Running) => {
                Ok(DisplayEndpoints { vnc, spice: None })
            }
            (None, state) => Err(ComputeError::WrongState {
                id,
                op: "show its display",
                state: state_name(&state),
            }),
        }
    }

    async fn set_spice_ticket(
        &self,
        id: DesktopId,
        ticket: &str,
        valid_for: Duration,
    ) -> Result<(), ComputeError> {
        let state = self.state_of(id).await?;
        let Some(live) = self.slot(id).live() else {
            return Err(ComputeError::WrongState {
                id,
                op: "set a SPICE ticket",
                state: state_name(&state),
            });
        };
        if live.spice_port.is_none() {
            return Err(ComputeError::Unsupported(
                "set a SPICE ticket on a desktop without SPICE",
            ));
        }
        let password = serde_json::json!({ "protocol": "spice", "password": ticket });
        live.qmp
            .execute("set_password", Some(password))
            .await
            .map_err(lifecycle::qmp_failed)?;
        let expiry = serde_json::json!({ "protocol": "spice", "time": format!("+{}", valid_for.as_secs().max(1)) });
        live.qmp
            .execute("expire_password", Some(expiry))
            .await
            .map_err(lifecycle::qmp_failed)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<ComputeEvent> {
        self.shared.events.subscribe()
    }
}

/// A state as the words of a [`ComputeError::WrongState`].
pub(crate) fn state_name(state: &PowerState) -> String {
    match state {
        PowerState::Stopped => "stopped".into(),
        PowerState::Booting => "booting".into(),
        PowerState::Running => "running".into(),
        PowerState::Suspended => "suspended".into(),
        PowerState::Crashed { .. } => "crashed".into(),
    }
}
