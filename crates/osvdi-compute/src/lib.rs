//! Compute backends: where desktops run. One [`Compute`] trait, implemented by the local QEMU
//! backend ([`qemu`]) and, later, OpenStack. The broker holds an `Arc<dyn Compute>` and never
//! asks which backend it has: what a backend cannot do, its [`Capabilities`] say.

pub mod mdev;
pub mod qemu;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use osvdi_model::{DesktopId, ImageFormat};

/// What a backend can do. The broker checks these instead of trying and failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Save a running desktop's whole state and end its process; resume it later.
    pub suspend: bool,
    /// Desktops with a mediated GPU (mdev/vGPU).
    pub vgpu: bool,
    /// A SPICE endpoint for native clients.
    pub spice: bool,
    /// Desktops survive a restart of `osvdi serve` and are found again by [`Compute::list`].
    pub survives_restart: bool,
}

/// How the backend tells that a booting guest is ready for its person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyProbe {
    /// The guest writes this line to its first serial port (the demo guest writes `OSVDI-READY`).
    SerialMarker(String),
    /// No signal from the guest: ready this long after the VM started.
    After(Duration),
}

/// Everything a backend needs to make a desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopSpec {
    pub id: DesktopId,
    /// A human-readable name for process lists and consoles ("osvdi-<id>" if empty).
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    /// Size of the desktop's disk; the overlay is grown to this if the image is smaller.
    pub disk_gb: u32,
    /// The template version's image (read-only base of the desktop's overlay).
    pub image: PathBuf,
    pub image_format: ImageFormat,
    /// An mdev type name when the desktop needs a vGPU.
    pub vgpu_type: Option<String>,
    /// The mdev instance the broker allocated for it (`/sys/bus/mdev/devices/<uuid>`).
    pub vgpu_device: Option<PathBuf>,
    /// Offer a SPICE endpoint as well as VNC.
    pub spice: bool,
    pub ready: ReadyProbe,
}

/// Where a desktop is in the backend's eyes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerState {
    /// Created (disk ready), never started or cleanly stopped: no process.
    Stopped,
    /// Running, the ready probe not yet satisfied.
    Booting,
    /// Running and ready.
    Running,
    /// State saved to disk by [`Compute::suspend`], no process.
    Suspended,
    /// The process is gone without being asked to go (crash, kill, host reboot).
    Crashed { reason: String },
}

/// Where a client reaches a desktop's display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VncEndpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayEndpoints {
    /// RFB: for the browser console and the display engine.
    pub vnc: VncEndpoint,
    /// SPICE for native clients (password set with [`Compute::set_spice_ticket`]).
    pub spice: Option<SocketAddr>,
}

/// Something that happened to a desktop without the broker asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeEvent {
    /// The ready probe was satisfied.
    Ready { id: DesktopId },
    /// The process ended on its own (guest powered off, crash, kill).
    Exited { id: DesktopId, reason: String },
}

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("Desktop {0} is unknown to the backend")]
    NotFound(DesktopId),
    #[error("Desktop {0} already exists with a different spec")]
    Exists(DesktopId),
    #[error("Desktop {id} cannot {op} while {state}")]
    WrongState {
        id: DesktopId,
        op: &'static str,
        state: String,
    },
    #[error("The backend cannot {0}")]
    Unsupported(&'static str),
    #[error("No capacity: {0}")]
    NoCapacity(String),
    #[error("{0}")]
    Failed(String),
    #[error("Timed out: {0}")]
    Timeout(String),
    #[error("I/O error: {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A place where desktops run. All methods are idempotent where that makes sense (deleting a
/// deleted desktop succeeds; stopping a stopped one too).
#[async_trait::async_trait]
pub trait Compute: Send + Sync + std::fmt::Debug {
    /// A short name for logs ("qemu", "openstack").
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// Allocates the desktop (disk overlay, files) without starting it.
    async fn create(&self, spec: &DesktopSpec) -> Result<(), ComputeError>;
    /// Boots a stopped desktop.
    async fn start(&self, id: DesktopId) -> Result<(), ComputeError>;
    /// Asks the guest to power off, waits up to `grace`, then forces it off.
    async fn stop(&self, id: DesktopId, grace: Duration) -> Result<(), ComputeError>;
    /// Saves the running desktop's whole state and ends its process.
    async fn suspend(&self, id: DesktopId) -> Result<(), ComputeError>;
    /// Restarts a suspended desktop from its saved state.
    async fn resume(&self, id: DesktopId) -> Result<(), ComputeError>;
    /// Forces the desktop off if needed and removes everything it had (disk, state, files).
    async fn delete(&self, id: DesktopId) -> Result<(), ComputeError>;
    async fn status(&self, id: DesktopId) -> Result<PowerState, ComputeError>;
    /// Every desktop the backend knows, with its state: after a restart of the server, this
    /// is how running desktops are found again.
    async fn list(&self) -> Result<Vec<(DesktopId, PowerState)>, ComputeError>;
    async fn display(&self, id: DesktopId) -> Result<DisplayEndpoints, ComputeError>;
    /// Sets a one-time SPICE password valid for `valid_for`.
    async fn set_spice_ticket(
        &self,
        id: DesktopId,
        ticket: &str,
        valid_for: Duration,
    ) -> Result<(), ComputeError>;
    /// Events the backend notices on its own. Each call gives a new receiver.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ComputeEvent>;
}
