//! Test sites: a temporary run folder, a boot-sector guest image, backends over them, and a
//! guard that kills every QEMU the site started, even when a test fails.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use osvdi_compute::qemu::bootsector::print_and_halt;
use osvdi_compute::qemu::{Accel, QemuBackend, QemuConfig};
use osvdi_compute::{ComputeEvent, DesktopSpec, ReadyProbe};
use osvdi_model::{DesktopId, ImageFormat};
use serde_json::Value;
use tokio::sync::broadcast;

pub const MARKER: &str = "OSVDI-READY";
/// TCG boots the boot-sector guest in well under a second; leave room for a loaded machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "osvdi_compute=info".into()),
        )
        .try_init();
}

/// A temporary site. Dropping it kills the QEMUs of its desktops.
pub struct Site {
    _tmp: tempfile::TempDir,
    pub run_dir: PathBuf,
    pub image: PathBuf,
}

impl Site {
    pub fn new() -> Result<Self> {
        init_tracing();
        let tmp = tempfile::Builder::new()
            .prefix("osvdi-it")
            .tempdir_in("/tmp")?;
        let run_dir = tmp.path().join("desktops");
        let image = tmp.path().join("guest.img");
        std::fs::write(&image, print_and_halt(MARKER)?)?;
        Ok(Site {
            _tmp: tmp,
            run_dir,
            image,
        })
    }

    pub fn config(&self) -> QemuConfig {
        let mut config = QemuConfig::new(&self.run_dir);
        config.accel = Accel::Tcg;
        config.spice_ports = 25900..=25999;
        config
    }

    pub async fn backend(&self) -> Result<QemuBackend> {
        Ok(QemuBackend::new(self.config()).await?)
    }

    pub fn spec(&self, spice: bool) -> DesktopSpec {
        DesktopSpec {
            id: DesktopId::random(),
            name: "test desktop".into(),
            vcpus: 1,
            memory_mb: 64,
            disk_gb: 1,
            image: self.image.clone(),
            image_format: ImageFormat::Raw,
            vgpu_type: None,
            vgpu_device: None,
            spice,
            ready: ReadyProbe::SerialMarker(MARKER.into()),
        }
    }

    pub fn dir(&self, id: DesktopId) -> PathBuf {
        self.run_dir.join(id.to_string())
    }

    /// The pid of the desktop's running QEMU, if one is running.
    pub fn pid(&self, id: DesktopId) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir(id).join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_desktop_process(pid, id).then_some(pid)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.run_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<DesktopId>().ok())
            else {
                continue;
            };
            if let Some(pid) = self.pid(id) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Whether `pid` is alive and has the desktop id on its command line.
pub fn is_desktop_process(pid: u32, id: DesktopId) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&id.to_string()))
}

pub fn kill9(pid: u32) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -9 {pid} failed");
    Ok(())
}

/// Waits for an event matching `pred`; other events are skipped.
pub async fn wait_event(
    events: &mut broadcast::Receiver<ComputeEvent>,
    timeout: Duration,
    pred: impl Fn(&ComputeEvent) -> bool,
) -> Result<ComputeEvent> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Err(_) => bail!("no matching event within {timeout:?}"),
            Ok(Err(e)) => bail!("event channel: {e}"),
            Ok(Ok(event)) if pred(&event) => return Ok(event),
            Ok(Ok(_)) => {}
        }
    }
}

pub async fn wait_ready(
    events: &mut broadcast::Receiver<ComputeEvent>,
    id: DesktopId,
) -> Result<()> {
    wait_event(events, READY_TIMEOUT, |e| *e == ComputeEvent::Ready { id })
        .await
        .map(drop)
}

/// A blocking QMP exchange, independent of the backend's client: the commands in order, each
/// one's `return` value.
pub fn qmp(socket: &Path, commands: &[Value]) -> Result<Vec<Value>> {
    let stream = UnixStream::connect(socket).context("connecting to QMP")?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    anyhow::ensure!(line.contains("\"QMP\""), "no QMP greeting: {line}");
    let mut results = Vec::new();
    let all = std::iter::once(serde_json::json!({"execute": "qmp_capabilities"}))
        .chain(commands.iter().cloned());
    for command in all {
        writeln!(writer, "{command}")?;
        loop {
            line.clear();
            anyhow::ensure!(reader.read_line(&mut line)? > 0, "QMP closed");
            let reply: Value = serde_json::from_str(&line)?;
            if let Some(value) = reply.get("return") {
                results.push(value.clone());
                break;
            }
            if let Some(error) = reply.get("error") {
                bail!("QMP {command}: {error}");
            }
        }
    }
    results.remove(0);
    Ok(results)
}
