//! Compute backends: where desktops run. One [`Compute`] trait, implemented by the local QEMU
//! backend ([`qemu`]) and, later, OpenStack. The broker holds an `Arc<dyn Compute>` and never
//! asks which backend it has: what a backend cannot do, its [`Capabilities`] say.

pub mod mdev;
pub mod qemu;

mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use osvdi_model::{DesktopId, ImageFormat, TemplateId};

pub use websocket::{VncStream, connect_vnc};

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
    /// RFB inside WebSocket binary messages (a cloud's console proxy, e.g. nova-novncproxy).
    /// The URL carries a one-time token: never log it.
    WebSocket(String),
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

/// A template version's image, for backends that keep their own copy (a cloud's image
/// service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedImage {
    pub template: TemplateId,
    pub version: u32,
    pub path: PathBuf,
    pub format: ImageFormat,
    /// The template's free-text OS ("ubuntu-24.04", "windows-11").
    pub os: String,
}

/// A host of a cloud as the backend reads it (OpenStack: Placement), for the scheduler: the
/// room osvdi may use there (what other tenants use is already taken off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub gpus: Vec<GpuCapacity>,
}

/// A physical GPU of a cloud host: instances of one vGPU type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuCapacity {
    /// The vGPU type as templates name it (OpenStack: the Placement trait, `CUSTOM_...`).
    pub vgpu_type: String,
    pub instances: u32,
}

/// Where a desktop landed: a host of [`CloudHosts::hosts`] and the index of its GPU there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub host: String,
    pub gpu: Option<usize>,
}

/// The hosts a backend spreads desktops over, and where each desktop went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudHosts {
    pub hosts: Vec<HostCapacity>,
    pub placed: HashMap<DesktopId, Placed>,
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

    /// Whether the backend picks vGPUs itself (a cloud's scheduler): the broker then hands out
    /// no local mdev instance and `DesktopSpec::vgpu_device` stays empty.
    fn places_vgpus(&self) -> bool {
        false
    }

    /// The hosts desktops run on when the backend spreads them over many (a cloud), with
    /// their room; `None` (the default): this machine, as configured.
    async fn hosts(&self) -> Result<Option<CloudHosts>, ComputeError> {
        Ok(None)
    }

    /// The broker's scheduler put desktop `id` on `host` (one of [`Compute::hosts`]): backends
    /// that may name a host to their cloud pass it on when they create the desktop.
    fn prefer_host(&self, _id: DesktopId, _host: &str) {}

    /// A template version became ready: backends with their own image store copy it there.
    async fn publish_image(&self, _image: &PublishedImage) -> Result<(), ComputeError> {
        Ok(())
    }

    /// A template version was deleted: backends with their own image store remove their copy
    /// (once no desktop uses it).
    async fn delete_image(&self, _template: TemplateId, _version: u32) -> Result<(), ComputeError> {
        Ok(())
    }
}
