//! Desktops with a process: the per-desktop [`Slot`] (an operation lock and the attached
//! [`Live`] process), and the two watchers each live desktop has: one notices the process
//! ending, one notices the guest becoming ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::layout::{DesktopDir, log_tail, remove_file};
use super::process::is_desktop_process;
use super::qmp::QmpEvent;
use super::qmp::client::QmpClient;
use crate::{ComputeEvent, PowerState, ReadyProbe};

/// What the backend's background work shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub events: broadcast::Sender<ComputeEvent>,
    pub tasks: TaskTracker,
    /// Cancelled when the backend shuts down: watchers and QMP connections end, desktops
    /// keep running.
    pub cancel: CancellationToken,
}

/// One desktop in memory. Lifecycle operations hold `op`; `live` is set while a process is
/// attached.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub op: tokio::sync::Mutex<()>,
    live: Mutex<Option<Arc<Live>>>,
}

impl Slot {
    pub fn live(&self) -> Option<Arc<Live>> {
        // A poisoned lock means a panic elsewhere while holding it, i.e. a bug.
        self.live.lock().expect("slot lock").clone()
    }

    pub fn set_live(&self, live: Arc<Live>) {
        *self.live.lock().expect("slot lock") = Some(live);
    }

    /// Detaches `live` if it is still the attached process; true if it was.
    pub fn detach(&self, live: &Arc<Live>) -> bool {
        let mut slot = self.live.lock().expect("slot lock");
        match &*slot {
            Some(current) if Arc::ptr_eq(current, live) => {
                *slot = None;
                live.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Detaches whatever is attached (backend shutdown).
    pub fn detach_any(&self) {
        if let Some(live) = self.live.lock().expect("slot lock").take() {
            live.cancel.cancel();
        }
    }
}

/// A QEMU process the backend is attached to.
#[derive(Debug)]
pub(crate) struct Live {
    pub pid: u32,
    pub qmp: QmpClient,
    pub spice_port: Option<u16>,
    ready: AtomicBool,
    /// Set before we make the process end (stop, suspend, delete): its exit is no news.
    exit_expected: AtomicBool,
    /// Ends this process's watchers and QMP connection.
    pub cancel: CancellationToken,
}

impl Live {
    pub fn power_state(&self) -> PowerState {
        if self.ready.load(Ordering::SeqCst) {
            PowerState::Running
        } else {
            PowerState::Booting
        }
    }

    pub fn expect_exit(&self, expected: bool) {
        self.exit_expected.store(expected, Ordering::SeqCst);
    }

    fn exit_expected(&self) -> bool {
        self.exit_expected.load(Ordering::SeqCst)
    }
}

/// Everything needed to attach to a process whose QMP connection is open.
#[derive(Debug)]
pub(crate) struct Attach {
    pub pid: u32,
    pub qmp: QmpClient,
    pub qmp_events: mpsc::UnboundedReceiver<QmpEvent>,
    pub cancel: CancellationToken,
    pub spice_port: Option<u16>,
}

/// Attaches a process to its slot and starts its watchers. Booting or Running by the `ready`
/// file, which survives restarts of the server.
pub(crate) fn attach(
    shared: &Shared,
    slot: &Arc<Slot>,
    dir: &DesktopDir,
    probe: ReadyProbe,
    a: Attach,
) -> PowerState {
    let ready = dir.ready().exists();
    let live = Arc::new(Live {
        pid: a.pid,
        qmp: a.qmp,
        spice_port: a.spice_port,
        ready: AtomicBool::new(ready),
        exit_expected: AtomicBool::new(false),
        cancel: a.cancel,
    });
    slot.set_live(live.clone());
    shared.tasks.spawn(watch_exit(
        live.clone(),
        slot.clone(),
        dir.clone(),
        a.qmp_events,
        shared.events.clone(),
    ));
    if !ready {
        shared.tasks.spawn(watch_ready(
            live.clone(),
            dir.clone(),
            probe,
            shared.events.clone(),
        ));
    }
    live.power_state()
}

/// Why a process ended without being asked: "process disappeared", with the end of its log.
pub(crate) fn crash_reason(dir: &DesktopDir) -> String {
    let tail = log_tail(&dir.qemu_log(), 3);
    let mut reason =
        "QEMU exited unexpectedly: process disappeared (killed by a signal or crashed)".to_owned();
    if !tail.is_empty() {
        reason.push_str("; last log lines: ");
        reason.push_str(&tail);
    }
    reason
}

const POLL: Duration = Duration::from_millis(500);

/// Notices the process ending: its QMP connection closes at once when it dies, and /proc is
/// polled as well. Reports the exit unless an operation caused it.
async fn watch_exit(
    live: Arc<Live>,
    slot: Arc<Slot>,
    dir: DesktopDir,
    mut qmp_events: mpsc::UnboundedReceiver<QmpEvent>,
    events: broadcast::Sender<ComputeEvent>,
) {
    let mut guest_powered_off = false;
    let mut qmp_open = true;
    let mut poll = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = live.cancel.cancelled() => return,
            event = qmp_events.recv(), if qmp_open => match event {
                Some(event) => {
                    if event.name == "SHUTDOWN" && event.data["guest"] == true {
                        guest_powered_off = true;
                    }
                }
                None => {
                    qmp_open = false;
                    poll = tokio::time::interval(Duration::from_millis(20));
                }
            },
            _ = poll.tick() => {
                if !is_desktop_process(live.pid, &dir.id) {
                    break;
                }
            }
        }
    }
    if live.exit_expected() || !slot.detach(&live) {
        return;
    }
    let reason = if guest_powered_off {
        // A clean power-off: Stopped, not Crashed.
        let _ = remove_file(&dir.pid());
        let _ = remove_file(&dir.ready());
        "The guest powered off".to_owned()
    } else {
        crash_reason(&dir)
    };
    tracing::warn!(desktop = %dir.id, %reason, "desktop exited");
    let _ = events.send(ComputeEvent::Exited { id: dir.id, reason });
}

/// Notices the guest becoming ready, records it in the `ready` file and reports it.
async fn watch_ready(
    live: Arc<Live>,
    dir: DesktopDir,
    probe: ReadyProbe,
    events: broadcast::Sender<ComputeEvent>,
) {
    let wait = async {
        match probe {
            ReadyProbe::SerialMarker(marker) => wait_for_marker(&dir, &marker).await,
            ReadyProbe::After(delay) => {
                // Counted from the process start (the pid file's age), also after an adoption.
                let age = std::fs::metadata(dir.pid())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                tokio::time::sleep(delay.saturating_sub(age)).await;
            }
        }
    };
    tokio::select! {
        _ = live.cancel.cancelled() => return,
        _ = wait => {}
    }
    if let Err(e) = std::fs::write(dir.ready(), b"") {
        tracing::warn!(desktop = %dir.id, error = %e, "cannot record readiness");
    }
    live.ready.store(true, Ordering::SeqCst);
    tracing::info!(desktop = %dir.id, "desktop ready");
    let _ = events.send(ComputeEvent::Ready { id: dir.id });
}

/// Tails `serial.log` until a line contains `marker`.
async fn wait_for_marker(dir: &DesktopDir, marker: &str) {
    let mut tail = LineScanner::new(marker);
    let mut offset = 0u64;
    loop {
        if let Ok(bytes) = read_from(&dir.serial_log(), &mut offset).await
            && tail.feed(&bytes)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn read_from(path: &std::path::Path, offset: &mut u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    if len < *offset {
        *offset = 0; // Truncated: a new log.
    }
    file.seek(std::io::SeekFrom::Start(*offset)).await?;
    let mut bytes = Vec::new();
    file.take(1 << 20).read_to_end(&mut bytes).await?;
    *offset += bytes.len() as u64;
    Ok(bytes)
}

/// Finds a marker in a byte stream fed in pieces, line by line.
#[derive(Debug)]
pub(crate) struct LineScanner {
    marker: Vec<u8>,
    line: Vec<u8>,
}

impl LineScanner {
    pub fn new(marker: &str) -> Self {
        LineScanner {
            marker: marker.as_bytes().to_vec(),
            line: Vec::new(),
        }
    }

    /// True once a line (complete or not) contains the marker.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if b == b'\n' {
                self.line.clear();
                continue;
            }
            if self.line.len() < 4096 {
                self.line.push(b);
            }
            if self.line.ends_with(&self.marker) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_across_pieces() {
        let mut scanner = LineScanner::new("OSVDI-READY");
        assert!(!scanner.feed(b"SeaBIOS\r\nBooting...\r\nOSVDI-RE"));
        assert!(scanner.feed(b"ADY\r\n"));
        let mut scanner = LineScanner::new("OSVDI-READY");
        assert!(!scanner.feed(b"OSVDI-RE\nADY\n"));
        assert!(scanner.feed(b"[    3.1] osvdi: OSVDI-READY\n"));
    }
}
