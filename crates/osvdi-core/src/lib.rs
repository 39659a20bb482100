//! osvdi's broker core: accounts and login sessions, groups, templates and their image
//! uploads, and the audit log. It decides and records; it knows no HTTP.
//!
//! Every operation takes the [`Caller`] it acts for and checks that caller's rights on the
//! object itself. The HTTP layer and the admin command line are two front ends to this crate.

mod accounts;
mod audit;
mod auth;
mod clock;
mod console;
mod courses;
mod error;
mod gpus;
mod images;
mod oidc;
mod policy;
mod ratelimit;
mod reconcile;
mod sessions;
mod spice;
mod templates;
mod upload;
mod warm;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osvdi_image::QemuImg;
use osvdi_model::{Principal, Role, UserId};
use osvdi_store::Store;

pub use accounts::GroupWithMembers;
pub use auth::{LoginOutcome, Session, generate_password};
pub use clock::{Clock, ShiftedClock, SystemClock};
pub use console::{CONSOLE_TOKEN_TTL, ConsoleLink, ConsoleToken};
pub use courses::{NewCourse, SlotView};
pub use error::CoreError;
pub use oidc::{
    AccessExplanation, Callback, MappingRule, OidcConfig, OidcError, ProviderConfig, ProviderInfo,
    RuleView, SsoLogin, SsoStart, Step,
};
pub use osvdi_image::{ImageError, Limits as ImageLimits};
pub use policy::Access;
pub use ratelimit::LoginLimits;
pub use reconcile::ReconcileReport;
pub use sessions::DesktopChange;
pub use spice::{ADMISSION_WINDOW, SPICE_TICKET_TTL, SpiceFile, SpiceLink};
pub use templates::{NewTemplate, Sharing};
pub use upload::UploadExpectation;
pub use warm::WarmReport;

type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Settings of the core, from the config file and command line.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Where images and other state files live (the database may be elsewhere).
    pub data_dir: PathBuf,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    pub login_limits: LoginLimits,
    pub image_limits: ImageLimits,
    /// qemu-img to use; found on PATH when `None`.
    pub qemu_img: Option<PathBuf>,
    /// Live desktops one person may have at once.
    pub max_desktops_per_user: u32,
    /// A desktop not ready this long after it started fails.
    pub boot_timeout: Duration,
    /// Where sysfs is (`/sys`); tests point it at a fixture tree.
    pub sysfs_root: PathBuf,
    /// This machine's capacity for desktops, as the scheduler counts it: vCPUs (after
    /// overcommit), memory and disk.
    pub host_vcpus: u32,
    pub host_memory_mb: u64,
    pub host_disk_gb: u64,
    /// Client networks by name ("campus", "room-101"), for template policies.
    pub networks: std::collections::BTreeMap<String, Vec<ipnet::IpNet>>,
    /// Single sign-on providers and mapping rules.
    pub oidc: OidcConfig,
}

impl CoreConfig {
    /// Defaults for a data directory: 12 h sessions, 64 GiB images.
    pub fn new(data_dir: PathBuf) -> Self {
        CoreConfig {
            data_dir,
            session_ttl: Duration::from_secs(12 * 3600),
            login_limits: LoginLimits::default(),
            image_limits: ImageLimits {
                max_file_bytes: 64 << 30,
                max_virtual_bytes: 1 << 40,
            },
            qemu_img: None,
            max_desktops_per_user: 2,
            boot_timeout: Duration::from_secs(300),
            sysfs_root: PathBuf::from("/sys"),
            networks: std::collections::BTreeMap::new(),
            host_vcpus: default_vcpus(),
            host_memory_mb: default_memory_mb(),
            host_disk_gb: 10_000,
            oidc: OidcConfig::default(),
        }
    }
}

/// Four desktop vCPUs per host thread: desktops are mostly idle.
fn default_vcpus() -> u32 {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u32::try_from(threads * 4).unwrap_or(u32::MAX)
}

/// The host's memory less 2 GiB for itself, from /proc/meminfo (16 GiB if unreadable).
fn default_memory_mb() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines().find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
    });
    total_kb.map_or(16 * 1024, |kb| (kb / 1024).saturating_sub(2048).max(512))
}

/// Who an operation is done for, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Principal,
    pub client: Option<IpAddr>,
}

impl Caller {
    /// The operator at the server's own command line (`osvdi admin ...`): acts as an admin and
    /// is audited under `name` (the local account running the command).
    pub fn operator(name: &str) -> Self {
        Caller {
            who: Principal {
                id: UserId::nil(),
                name: format!("operator:{name}"),
                role: Role::Admin,
                groups: vec![],
            },
            client: None,
        }
    }
}

/// The broker core. Cheap to share: hold it in an `Arc`.
#[derive(Debug)]
pub struct Core {
    store: Store,
    config: CoreConfig,
    clock: Arc<dyn Clock>,
    limiter: Mutex<ratelimit::LoginLimiter>,
    qemu_img: Option<QemuImg>,
    images: images::ImageDir,
    dummy_hash: std::sync::OnceLock<String>,
    compute: Option<Arc<dyn osvdi_compute::Compute>>,
    changes: tokio::sync::broadcast::Sender<DesktopChange>,
    ops: sessions::OpLocks,
    /// Launches are decided one at a time: the scheduler sees every earlier one.
    launch_lock: tokio::sync::Mutex<()>,
    mdev: Arc<osvdi_compute::mdev::MdevInventory>,
    consoles: console::Consoles,
    spice: spice::SpiceGate,
    oidc: oidc::Oidc,
}

impl Core {
    /// Builds the core over an opened store. A missing qemu-img is not fatal here (the admin
    /// commands do not need it); uploads then fail with a clear error.
    pub fn new(store: Store, config: CoreConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let qemu_img = match QemuImg::locate(config.qemu_img.as_deref()) {
            Ok(q) => Some(q),
            Err(e) => {
                tracing::warn!(error = %e, "image uploads are disabled");
                None
            }
        };
        let images = images::ImageDir::new(config.data_dir.join("images"));
        let mdev = Arc::new(osvdi_compute::mdev::MdevInventory::new(
            config.sysfs_root.clone(),
        ));
        let oidc = oidc::Oidc::new(&config.oidc)?;
        Ok(Core {
            oidc,
            limiter: Mutex::new(ratelimit::LoginLimiter::new(config.login_limits)),
            store,
            config,
            clock,
            qemu_img,
            images,
            dummy_hash: std::sync::OnceLock::new(),
            compute: None,
            changes: tokio::sync::broadcast::channel(1024).0,
            ops: sessions::OpLocks::default(),
            launch_lock: tokio::sync::Mutex::new(()),
            mdev,
            consoles: console::Consoles::default(),
            spice: spice::SpiceGate::default(),
        })
    }

    /// Gives the core a compute backend: without one, desktops cannot be launched.
    pub fn with_compute(mut self, compute: Arc<dyn osvdi_compute::Compute>) -> Self {
        tracing::info!(backend = compute.name(), capabilities = ?compute.capabilities(), "compute backend");
        self.compute = Some(compute);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn now(&self) -> osvdi_model::UnixMillis {
        self.clock.now()
    }

    /// Repairs what a killed server left behind: uploads in flight are forgotten and their
    /// partial files removed. Run once at start, before serving.
    pub async fn recover(&self) -> Result<()> {
        let stale = self.store.uploads_in_flight().await?;
        for v in &stale {
            self.store.abort_upload(*v).await?;
        }
        let removed = self.images.clear_incoming().await?;
        if !stale.is_empty() || removed > 0 {
            tracing::info!(
                uploads = stale.len(),
                files = removed,
                "cleaned up interrupted uploads"
            );
        }
        let expired = self.store.purge_expired_sessions(self.now()).await?;
        tracing::debug!(expired, "purged expired login sessions");
        Ok(())
    }
}
