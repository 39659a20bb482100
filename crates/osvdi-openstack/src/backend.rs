//! `trait Compute` over the cloud: a desktop is a Nova server named `osvdi-<desktop id>` with
//! osvdi's metadata, booted from the Glance copy of its template version with a flavor of the
//! template's shape. Nothing is kept on this machine: after a restart, the servers are found
//! again by their metadata.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osvdi_compute::{
    Capabilities, CloudHosts, Compute, ComputeError, ComputeEvent, DesktopSpec, DisplayEndpoints,
    Placed, PowerState, PublishedImage, ReadyProbe, VncEndpoint,
};
use osvdi_model::{DesktopId, TemplateId};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::client::Session;
use crate::config::{OpenStackConfig, SuspendMode};
use crate::glance::{self, ImageProperties};
use crate::nova::{self, FlavorShape, META_DESKTOP, META_READY, META_TEMPLATE, Server};
use crate::placement;
use crate::{OsError, console};

type UploadLock = Arc<tokio::sync::Mutex<()>>;

/// How long a read of Placement is reused (three calls per provider: a large cloud is not
/// read every few seconds). Creating or deleting a desktop reads it again; osvdi's own
/// desktops are counted from the database in between.
const HOSTS_TTL: Duration = Duration::from_secs(15);

/// Desktops as Nova servers. See the module documentation.
#[derive(Debug)]
pub struct OpenStackBackend {
    config: OpenStackConfig,
    user: Session,
    admin: Option<Session>,
    /// Desktop → Nova server id, as found.
    servers: Mutex<HashMap<DesktopId, String>>,
    /// Desktops whose ready probe was satisfied since they last became ACTIVE.
    ready: Mutex<HashSet<DesktopId>>,
    /// One upload per template version at a time.
    uploads: Mutex<HashMap<(TemplateId, u32), UploadLock>>,
    /// One flavor creation at a time.
    flavor_lock: tokio::sync::Mutex<()>,
    /// Glance images to delete once no server uses them.
    doomed_images: Mutex<HashSet<String>>,
    /// Placement allocations by server id (they change only when the server moves).
    allocations: Mutex<HashMap<String, placement::Allocations>>,
    hosts_cache: Mutex<Option<(Instant, CloudHosts)>>,
    /// Hosts the broker's scheduler chose, for desktops not created yet.
    hints: Mutex<HashMap<DesktopId, String>>,
    events: broadcast::Sender<ComputeEvent>,
}

fn compute_error(e: OsError) -> ComputeError {
    match e {
        OsError::NoCapacity(m) => ComputeError::NoCapacity(m),
        OsError::Timeout(m) => ComputeError::Timeout(m),
        other => ComputeError::Failed(other.to_string()),
    }
}

/// The server name of a desktop.
fn server_name(id: DesktopId) -> String {
    format!("osvdi-{id}")
}

/// The template and version of an image file the broker keeps
/// (`.../images/<template>/<version>.<format>`).
fn image_of(path: &Path) -> Result<(String, u32), ComputeError> {
    let bad = || ComputeError::Failed(format!("not a template image: {}", path.display()));
    let template = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .ok_or_else(bad)?;
    template.parse::<TemplateId>().map_err(|_| bad())?;
    let version = path
        .file_stem()
        .and_then(|n| n.to_str())
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(bad)?;
    Ok((template.to_owned(), version))
}

/// The stored form of a ready probe in the server's metadata.
fn ready_meta(p: &ReadyProbe) -> String {
    match p {
        ReadyProbe::After(d) => format!("after:{}", d.as_secs()),
        ReadyProbe::SerialMarker(m) => {
            format!("marker:{}", m.chars().take(240).collect::<String>())
        }
    }
}

/// The backend's view of a server's state, given whether its ready probe is satisfied.
/// `None`: the server is going or gone.
pub fn power_state(s: &Server, ready: bool) -> Option<PowerState> {
    Some(match s.status.as_str() {
        "ACTIVE" if ready => PowerState::Running,
        "SHUTOFF" => PowerState::Stopped,
        "SUSPENDED" | "PAUSED" | "SHELVED" | "SHELVED_OFFLOADED" => PowerState::Suspended,
        "ERROR" => PowerState::Crashed {
            reason: s.failure().to_string(),
        },
        "DELETED" | "SOFT_DELETED" => return None,
        _ => PowerState::Booting,
    })
}

impl OpenStackBackend {
    /// Logs in (with the admin account too, when configured) and checks that the catalogue
    /// has Nova and Glance.
    pub async fn new(config: OpenStackConfig) -> Result<Self, OsError> {
        let session =
            |c| Session::new(&config.auth_url, c, config.interface, config.region.clone());
        let user = session(config.credentials.clone())?;
        let admin = config.admin.clone().map(session).transpose()?;
        user.endpoint(crate::Service::Compute).await?;
        user.endpoint(crate::Service::Image).await?;
        if let Some(a) = &admin {
            a.token().await?;
        }
        tracing::info!(auth_url = %config.auth_url, region = config.region.as_deref().unwrap_or("-"),
            admin = admin.is_some(), suspend = ?config.suspend, "OpenStack backend ready");
        Ok(OpenStackBackend {
            config,
            user,
            admin,
            servers: Mutex::default(),
            ready: Mutex::default(),
            uploads: Mutex::default(),
            flavor_lock: tokio::sync::Mutex::new(()),
            doomed_images: Mutex::default(),
            allocations: Mutex::default(),
            hosts_cache: Mutex::default(),
            hints: Mutex::default(),
            events: broadcast::channel(64).0,
        })
    }

    /// The user session (tests revoke its token).
    pub fn session(&self) -> &Session {
        &self.user
    }

    /// The session for Placement and flavors: the admin's when there is one.
    fn operator(&self) -> &Session {
        self.admin.as_ref().unwrap_or(&self.user)
    }

    /// The server of a desktop, if there is one.
    pub async fn server(&self, id: DesktopId) -> Result<Option<Server>, OsError> {
        let known = self.lock_servers().get(&id).cloned();
        if let Some(sid) = known {
            match nova::get(&self.user, &sid).await {
                Ok(s) if s.status != "DELETED" => return Ok(Some(s)),
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            self.lock_servers().remove(&id);
        }
        let want = id.to_string();
        let found = nova::list(&self.user, &format!("^{}$", server_name(id)))
            .await?
            .into_iter()
            .find(|s| s.desktop_id() == Some(want.as_str()) && s.status != "DELETED");
        if let Some(s) = &found {
            self.lock_servers().insert(id, s.id.clone());
        }
        Ok(found)
    }

    async fn need_server(&self, id: DesktopId) -> Result<Server, ComputeError> {
        self.server(id)
            .await
            .map_err(compute_error)?
            .ok_or(ComputeError::NotFound(id))
    }

    fn lock_servers(&self) -> std::sync::MutexGuard<'_, HashMap<DesktopId, String>> {
        // Poisoned only by a panic while held: a bug.
        self.servers.lock().expect("servers lock")
    }

    fn set_ready(&self, id: DesktopId, ready: bool) {
        let mut r = self.ready.lock().expect("ready lock");
        if ready {
            r.insert(id);
        } else {
            r.remove(&id);
        }
    }

    /// Polls the server until `done` says yes; ERROR fails, `timeout` times out.
    async fn wait_for(
        &self,
        server: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Server) -> bool,
    ) -> Result<Server, OsError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(300);
        loop {
            let s = nova::get(&self.user, server).await?;
            if done(&s) {
                return Ok(s);
            }
            if s.status == "ERROR" {
                return Err(s.failure());
            }
            if start.elapsed() >= timeout {
                return Err(OsError::Timeout(format!(
                    "the server was not {what} within {} s (it is {})",
                    timeout.as_secs(),
                    s.status
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// The Glance image of a template version, uploaded now if Glance does not have it.
    async fn ensure_image(&self, image: &PublishedImage) -> Result<String, OsError> {
        let template = image.template.to_string();
        let lock = self
            .uploads
            .lock()
            .expect("uploads lock")
            .entry((image.template, image.version))
            .or_default()
            .clone();
        let _one = lock.lock().await;
        if let Some(found) = glance::find(&self.user, &template, image.version).await? {
            if found.status == "active" {
                return Ok(found.id);
            }
            // A failed or interrupted upload: start again.
            glance::delete(&self.user, &found.id).await?;
        }
        let started = Instant::now();
        let props = ImageProperties {
            template_id: template,
            version: image.version,
            disk_format: image.format.to_string(),
            os_type: glance::os_type(&image.os).into(),
            hw_video_model: "virtio".into(),
        };
        let uploaded = glance::upload(&self.user, &image.path, &props).await?;
        tracing::info!(image = %uploaded.id, template = %image.template, version = image.version,
            ms = started.elapsed().as_millis() as u64, "template version uploaded to Glance");
        Ok(uploaded.id)
    }

    /// The flavor for a shape: configured, found, or created.
    async fn flavor(&self, shape: &FlavorShape) -> Result<String, OsError> {
        let wanted = shape.name();
        let flavors = nova::flavors(self.operator()).await?;
        if let Some(name) = self.config.flavors.get(&wanted) {
            return flavors
                .iter()
                .find(|f| &f.name == name)
                .map(|f| f.id.clone())
                .ok_or_else(|| {
                    OsError::Config(format!("flavor '{name}' (for {wanted}) does not exist"))
                });
        }
        if let Some(f) = nova::pick_flavor(&flavors, shape) {
            return Ok(f.id.clone());
        }
        if !self.config.create_flavors {
            return Err(OsError::Config(format!(
                "no flavor matches {wanted}; name one in [openstack.flavors] or give admin \
                 credentials so that osvdi creates it"
            )));
        }
        let _one = self.flavor_lock.lock().await;
        let flavors = nova::flavors(self.operator()).await?;
        if let Some(f) = nova::pick_flavor(&flavors, shape) {
            return Ok(f.id.clone());
        }
        let f = nova::create_flavor(self.operator(), shape).await?;
        tracing::info!(flavor = %f.name, "created a flavor");
        Ok(f.id)
    }

    /// Whether an ACTIVE server's ready probe is satisfied now.
    async fn probe_ready(&self, id: DesktopId, s: &Server) -> bool {
        if self.ready.lock().expect("ready lock").contains(&id) {
            return true;
        }
        let ready = match s.metadata.get(META_READY).map(String::as_str) {
            Some(rule) if rule.starts_with("after:") => {
                let secs: i64 = rule["after:".len()..].parse().unwrap_or(0);
                s.launched_at
                    .as_deref()
                    .and_then(crate::auth::parse_os_time)
                    .is_none_or(|at| jiff::Timestamp::now().as_second() >= at.as_second() + secs)
            }
            Some(rule) if rule.starts_with("marker:") => {
                let marker = &rule["marker:".len()..];
                match nova::console_output(&self.user, &s.id, 200).await {
                    Ok(out) => out.contains(marker),
                    Err(e) => {
                        tracing::debug!(desktop = %id, error = %e, "no console output yet");
                        false
                    }
                }
            }
            _ => true,
        };
        if ready {
            self.set_ready(id, true);
            let _ = self.events.send(ComputeEvent::Ready { id });
        }
        ready
    }

    async fn state_of(&self, id: DesktopId, s: &Server) -> Option<PowerState> {
        let ready = s.status == "ACTIVE" && s.task_state.is_none() && self.probe_ready(id, s).await;
        power_state(s, ready)
    }

    /// Deletes the images whose versions are gone, once no server uses them.
    async fn sweep_images(&self) {
        let doomed: Vec<String> = self
            .doomed_images
            .lock()
            .expect("images lock")
            .iter()
            .cloned()
            .collect();
        for image in doomed {
            match nova::using_image(&self.user, &image).await {
                Ok(users) if users.is_empty() => match glance::delete(&self.user, &image).await {
                    Ok(()) => {
                        tracing::info!(%image, "Glance image deleted");
                        self.doomed_images
                            .lock()
                            .expect("images lock")
                            .remove(&image);
                    }
                    Err(e) => tracing::warn!(%image, error = %e, "cannot delete a Glance image"),
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%image, error = %e, "cannot tell whether an image is used");
                }
            }
        }
    }

    async fn read_hosts(&self) -> Result<CloudHosts, OsError> {
        let s = self.operator();
        let providers = placement::read_all(s).await?;
        let servers = nova::list(&self.user, "^osvdi-").await?;
        let mut ours = HashMap::new();
        let mut desktop_of = HashMap::new();
        for srv in servers {
            let Some(d) = srv.desktop_id().and_then(|d| d.parse::<DesktopId>().ok()) else {
                continue;
            };
            let cached = self
                .allocations
                .lock()
                .expect("allocations lock")
                .get(&srv.id)
                .cloned();
            let alloc = match cached {
                Some(a) => a,
                None => {
                    let a = placement::allocations(s, &srv.id).await?;
                    // Cache only settled servers (a building one has none yet).
                    if !a.is_empty() && srv.status == "ACTIVE" {
                        self.allocations
                            .lock()
                            .expect("allocations lock")
                            .insert(srv.id.clone(), a.clone());
                    }
                    a
                }
            };
            desktop_of.insert(srv.id.clone(), d);
            ours.insert(srv.id, alloc);
        }
        let (hosts, landed) = placement::hosts(&providers, &ours);
        let placed = landed
            .into_iter()
            .filter_map(|(server, (host, gpu))| {
                desktop_of.get(&server).map(|d| (*d, Placed { host, gpu }))
            })
            .collect();
        Ok(CloudHosts { hosts, placed })
    }

    fn forget_allocations(&self, server: &str) {
        self.allocations
            .lock()
            .expect("allocations lock")
            .remove(server);
        *self.hosts_cache.lock().expect("hosts lock") = None;
    }
}

#[async_trait::async_trait]
impl Compute for OpenStackBackend {
    fn name(&self) -> &'static str {
        "openstack"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            suspend: true,
            vgpu: true,
            spice: false,
            survives_restart: true,
        }
    }

    async fn create(&self, spec: &DesktopSpec) -> Result<(), ComputeError> {
        if self.server(spec.id).await.map_err(compute_error)?.is_some() {
            return Ok(());
        }
        let (template, version) = image_of(&spec.image)?;
        let image = self
            .ensure_image(&PublishedImage {
                template: template
                    .parse()
                    .map_err(|_| ComputeError::NotFound(spec.id))?,
                version,
                path: spec.image.clone(),
                format: spec.image_format,
                os: String::new(),
            })
            .await
            .map_err(compute_error)?;
        let shape = FlavorShape {
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            disk_gb: spec.disk_gb,
            vgpu_trait: spec.vgpu_type.as_deref().map(nova::vgpu_trait),
        };
        let flavor = self.flavor(&shape).await.map_err(compute_error)?;
        let metadata = [
            (META_DESKTOP.to_owned(), spec.id.to_string()),
            (META_READY.to_owned(), ready_meta(&spec.ready)),
            (META_TEMPLATE.to_owned(), template),
        ]
        .into();
        let new = nova::NewServer {
            name: server_name(spec.id),
            image,
            flavor,
            network: self.config.network.clone(),
            availability_zone: self.config.availability_zone.clone(),
            metadata,
            host: self.hints.lock().expect("hints lock").remove(&spec.id),
        };
        let started = Instant::now();
        let sid = nova::create(&self.user, &new)
            .await
            .map_err(compute_error)?;
        self.lock_servers().insert(spec.id, sid.clone());
        *self.hosts_cache.lock().expect("hosts lock") = None;
        let active = self
            .wait_for(&sid, "ACTIVE", self.config.active_timeout, |s| {
                s.status == "ACTIVE"
            })
            .await;
        match active {
            Ok(_) => {
                tracing::info!(desktop = %spec.id, server = %sid, ms = started.elapsed().as_millis() as u64, "server ACTIVE");
                Ok(())
            }
            Err(e) => {
                // Leave nothing behind: the broker fails the desktop.
                let _ = nova::delete(&self.user, &sid).await;
                self.lock_servers().remove(&spec.id);
                Err(compute_error(e))
            }
        }
    }

    async fn start(&self, id: DesktopId) -> Result<(), ComputeError> {
        let s = self.need_server(id).await?;
        if s.status == "SHUTOFF" {
            self.set_ready(id, false);
            nova::action(&self.user, &s.id, "os-start", Value::Null)
                .await
                .map_err(compute_error)?;
            self.wait_for(&s.id, "started", self.config.active_timeout, |s| {
                s.status == "ACTIVE"
            })
            .await
            .map_err(compute_error)?;
        }
        Ok(())
    }

    async fn stop(&self, id: DesktopId, grace: Duration) -> Result<(), ComputeError> {
        let Some(s) = self.server(id).await.map_err(compute_error)? else {
            return Ok(());
        };
        if s.status != "SHUTOFF" {
            nova::action(&self.user, &s.id, "os-stop", Value::Null)
                .await
                .map_err(compute_error)?;
            self.wait_for(&s.id, "stopped", grace + Duration::from_secs(60), |s| {
                s.status == "SHUTOFF"
            })
            .await
            .map_err(compute_error)?;
        }
        self.set_ready(id, false);
        Ok(())
    }

    async fn suspend(&self, id: DesktopId) -> Result<(), ComputeError> {
        let s = self.need_server(id).await?;
        let (action, done): (&str, fn(&Server) -> bool) = match self.config.suspend {
            SuspendMode::Suspend => ("suspend", |s| s.status == "SUSPENDED"),
            SuspendMode::Shelve => ("shelve", |s| {
                s.status == "SHELVED_OFFLOADED" || (s.status == "SHELVED" && s.task_state.is_none())
            }),
        };
        nova::action(&self.user, &s.id, action, Value::Null)
            .await
            .map_err(compute_error)?;
        self.wait_for(&s.id, "suspended", self.config.active_timeout, done)
            .await
            .map_err(compute_error)?;
        self.forget_allocations(&s.id);
        Ok(())
    }

    async fn resume(&self, id: DesktopId) -> Result<(), ComputeError> {
        let s = self.need_server(id).await?;
        let action = match s.status.as_str() {
            "SUSPENDED" => "resume",
            "SHELVED" | "SHELVED_OFFLOADED" => "unshelve",
            "PAUSED" => "unpause",
            other => {
                return Err(ComputeError::WrongState {
                    id,
                    op: "resume",
                    state: other.to_owned(),
                });
            }
        };
        nova::action(&self.user, &s.id, action, Value::Null)
            .await
            .map_err(compute_error)?;
        self.wait_for(&s.id, "resumed", self.config.active_timeout, |s| {
            s.status == "ACTIVE" && s.task_state.is_none()
        })
        .await
        .map_err(compute_error)?;
        self.forget_allocations(&s.id);
        self.set_ready(id, true);
        Ok(())
    }

    async fn delete(&self, id: DesktopId) -> Result<(), ComputeError> {
        self.hints.lock().expect("hints lock").remove(&id);
        let Some(s) = self.server(id).await.map_err(compute_error)? else {
            return Ok(());
        };
        nova::delete(&self.user, &s.id)
            .await
            .map_err(compute_error)?;
        let gone = async {
            let start = Instant::now();
            loop {
                match nova::get(&self.user, &s.id).await {
                    Err(e) if e.is_not_found() => return Ok(()),
                    Ok(srv) if srv.status == "DELETED" => return Ok(()),
                    Err(e) => return Err(compute_error(e)),
                    Ok(_) if start.elapsed() > Duration::from_secs(120) => {
                        return Err(ComputeError::Timeout(
                            "the server was not deleted within 120 s".into(),
                        ));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        };
        gone.await?;
        self.lock_servers().remove(&id);
        self.set_ready(id, false);
        self.forget_allocations(&s.id);
        if !self.doomed_images.lock().expect("images lock").is_empty() {
            self.sweep_images().await;
        }
        Ok(())
    }

    async fn status(&self, id: DesktopId) -> Result<PowerState, ComputeError> {
        let s = self.need_server(id).await?;
        self.state_of(id, &s)
            .await
            .ok_or(ComputeError::NotFound(id))
    }

    async fn list(&self) -> Result<Vec<(DesktopId, PowerState)>, ComputeError> {
        let servers = nova::list(&self.user, "^osvdi-")
            .await
            .map_err(compute_error)?;
        let mut out = vec![];
        for s in servers {
            let Some(id) = s.desktop_id().and_then(|d| d.parse::<DesktopId>().ok()) else {
                continue;
            };
            self.lock_servers()
                .entry(id)
                .or_insert_with(|| s.id.clone());
            if let Some(state) = self.state_of(id, &s).await {
                out.push((id, state));
            }
        }
        Ok(out)
    }

    async fn display(&self, id: DesktopId) -> Result<DisplayEndpoints, ComputeError> {
        let s = self.need_server(id).await?;
        if s.status != "ACTIVE" {
            return Err(ComputeError::WrongState {
                id,
                op: "show its display",
                state: s.status,
            });
        }
        let url = nova::vnc_console(&self.user, &s.id)
            .await
            .map_err(compute_error)?;
        let ws = console::websocket_url(&url).map_err(compute_error)?;
        Ok(DisplayEndpoints {
            vnc: VncEndpoint::WebSocket(ws),
            spice: None,
        })
    }

    async fn set_spice_ticket(
        &self,
        _id: DesktopId,
        _ticket: &str,
        _valid_for: Duration,
    ) -> Result<(), ComputeError> {
        Err(ComputeError::Unsupported("give SPICE tickets on OpenStack"))
    }

    fn subscribe(&self) -> broadcast::Receiver<ComputeEvent> {
        self.events.subscribe()
    }

    fn places_vgpus(&self) -> bool {
        true
    }

    fn prefer_host(&self, id: DesktopId, host: &str) {
        if self.config.host_hints {
            self.hints
                .lock()
                .expect("hints lock")
                .insert(id, host.to_owned());
        }
    }

    async fn hosts(&self) -> Result<Option<CloudHosts>, ComputeError> {
        if let Some((at, h)) = self.hosts_cache.lock().expect("hosts lock").as_ref()
            && at.elapsed() < HOSTS_TTL
        {
            return Ok(Some(h.clone()));
        }
        let h = self.read_hosts().await.map_err(compute_error)?;
        *self.hosts_cache.lock().expect("hosts lock") = Some((Instant::now(), h.clone()));
        Ok(Some(h))
    }

    async fn publish_image(&self, image: &PublishedImage) -> Result<(), ComputeError> {
        self.ensure_image(image)
            .await
            .map(drop)
            .map_err(compute_error)
    }

    async fn delete_image(&self, template: TemplateId, version: u32) -> Result<(), ComputeError> {
        let found = glance::find(&self.user, &template.to_string(), version)
            .await
            .map_err(compute_error)?;
        if let Some(img) = found {
            self.doomed_images
                .lock()
                .expect("images lock")
                .insert(img.id);
            self.sweep_images().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: &str) -> Server {
        serde_json::from_value(serde_json::json!({"id": "s", "status": status})).unwrap()
    }

    #[test]
    fn nova_states() {
        assert_eq!(
            power_state(&server("ACTIVE"), true),
            Some(PowerState::Running)
        );
        assert_eq!(
            power_state(&server("ACTIVE"), false),
            Some(PowerState::Booting)
        );
        assert_eq!(
            power_state(&server("BUILD"), false),
            Some(PowerState::Booting)
        );
        assert_eq!(
            power_state(&server("SHUTOFF"), false),
            Some(PowerState::Stopped)
        );
        for s in ["SUSPENDED", "SHELVED", "SHELVED_OFFLOADED"] {
            assert_eq!(power_state(&server(s), false), Some(PowerState::Suspended));
        }
        assert!(matches!(
            power_state(&server("ERROR"), false),
            Some(PowerState::Crashed { .. })
        ));
        assert_eq!(power_state(&server("DELETED"), false), None);
    }

    #[test]
    fn images_by_path() {
        let t = TemplateId::random();
        let p = std::path::PathBuf::from(format!("/data/images/{t}/3.qcow2"));
        assert_eq!(image_of(&p).unwrap(), (t.to_string(), 3));
        assert!(image_of(Path::new("/data/images/x/3.qcow2")).is_err());
        assert!(image_of(Path::new("/tmp/disk.qcow2")).is_err());
        assert_eq!(
            ready_meta(&ReadyProbe::After(Duration::from_secs(5))),
            "after:5"
        );
    }
}
