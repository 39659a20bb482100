//! The client and the backend against the test bed: Keystone (password, application
//! credential, a revoked token), Placement's nested GPU providers as hosts, a vGPU desktop
//! through its whole life (Glance upload, flavor, ACTIVE on a GPU provider with the right
//! trait, suspend/resume, console over nova-novncproxy, delete freeing the allocation),
//! capacity exhaustion and adoption by a new backend.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use osvdi_compute::{Compute, ComputeError, DesktopSpec, PowerState, ReadyProbe};
use osvdi_model::{DesktopId, ImageFormat, TemplateId};
use osvdi_openstack::{
    Credentials, OpenStackBackend, OpenStackConfig, Service, Session, SuspendMode, placement,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One test at a time on the bed: they count its capacity.
static BED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deletes the servers a failed earlier run left behind.
async fn clean(backend: &OpenStackBackend) {
    for (id, _) in backend.list().await.unwrap() {
        backend.delete(id).await.unwrap();
    }
}

/// The bed's settings, or `None` (with a line saying so) when there is no bed.
fn config() -> Option<OpenStackConfig> {
    match OpenStackConfig::from_env() {
        None => {
            eprintln!(
                "skipped: OS_AUTH_URL is not set (run under scripts/openstack-testbed/with-osbed.sh)"
            );
            None
        }
        Some(c) => Some(c.expect("the bed's OS_* variables")),
    }
}

/// An empty 1 GiB qcow2 (made by qemu-img) as a template version's image, where the broker
/// keeps them.
fn image(dir: &std::path::Path, template: TemplateId, version: u32) -> PathBuf {
    let folder = dir.join("images").join(template.to_string());
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(format!("{version}.qcow2"));
    let ok = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("1G")
        .status()
        .expect("qemu-img (Debian package qemu-utils)")
        .success();
    assert!(ok);
    path
}

fn spec(image: PathBuf, vgpu: Option<&str>) -> DesktopSpec {
    let id = DesktopId::random();
    DesktopSpec {
        id,
        name: format!("osvdi-{id}"),
        vcpus: 1,
        memory_mb: 512,
        disk_gb: 1,
        image,
        image_format: ImageFormat::Qcow2,
        vgpu_type: vgpu.map(str::to_owned),
        vgpu_device: None,
        spice: false,
        ready: ReadyProbe::After(Duration::ZERO),
    }
}

fn admin_session(c: &OpenStackConfig) -> Session {
    Session::new(
        &c.auth_url,
        c.admin.clone().expect("the bed has an admin account"),
        c.interface,
        c.region.clone(),
    )
    .unwrap()
}

/// Provider UUID → its traits, for the providers a server's allocation uses.
async fn vgpu_traits_of(admin: &Session, server: &str) -> Vec<String> {
    let alloc = placement::allocations(admin, server).await.unwrap();
    let mut traits = vec![];
    for (rp, res) in &alloc {
        if res.contains_key("VGPU") {
            let p = placement::providers(admin)
                .await
                .unwrap()
                .into_iter()
                .find(|p| &p.uuid == rp)
                .unwrap();
            traits.extend(placement::provider_state(admin, p).await.unwrap().traits);
        }
    }
    traits
}

#[tokio::test]
async fn keystone_logins_and_a_revoked_token() {
    let Some(c) = config() else { return };
    let s = Session::new(
        &c.auth_url,
        c.credentials.clone(),
        c.interface,
        c.region.clone(),
    )
    .unwrap();
    let first = s.token().await.unwrap();
    assert!(first.project_id.is_some());
    let compute = s.endpoint(Service::Compute).await.unwrap();
    assert!(compute.starts_with("http"), "{compute}");
    // Revoke the token behind the session's back: the next call gets a 401, logs in again.
    s.revoke_current().await.unwrap();
    let flavors = osvdi_openstack::nova::flavors(&s).await.unwrap();
    assert!(!flavors.is_empty());
    let second = s.token().await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &second), "a new token");

    // The application credential of the bed.
    if let (Ok(id), Ok(secret)) = (
        std::env::var("OSVDI_OS_APP_CRED_ID"),
        std::env::var("OSVDI_OS_APP_CRED_SECRET"),
    ) {
        let ac = Session::new(
            &c.auth_url,
            Credentials::ApplicationCredential {
                id,
                secret: osvdi_openstack::Secret::new(secret),
            },
            c.interface,
            c.region.clone(),
        )
        .unwrap();
        osvdi_openstack::nova::flavors(&ac).await.unwrap();
    }

    // Bad credentials are a clear refusal.
    let bad = Session::new(
        &c.auth_url,
        Credentials::Password {
            username: "osvdi".into(),
            password: osvdi_openstack::Secret::new("wrong"),
            user_domain: "Default".into(),
            project: "osvdi".into(),
            project_domain: "Default".into(),
        },
        c.interface,
        c.region.clone(),
    )
    .unwrap();
    let e = bad.token().await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Keystone refused the credentials"),
        "{e}"
    );
}

#[tokio::test]
async fn placement_hosts_with_nested_gpus() {
    let Some(c) = config() else { return };
    let backend = OpenStackBackend::new(c).await.unwrap();
    let hosts = backend.hosts().await.unwrap().expect("a cloud has hosts");
    let by_name: HashMap<&str, _> = hosts.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    eprintln!("{:#?}", hosts.hosts);
    let gpu = by_name
        .values()
        .find(|h| !h.gpus.is_empty())
        .expect("a GPU host");
    assert!(gpu.gpus.iter().all(|g| g.vgpu_type.starts_with("CUSTOM_")));
    assert!(
        by_name.values().any(|h| h.gpus.is_empty()),
        "a host without GPUs"
    );
}

/// The GPU host's first vGPU type and how many instances it has.
async fn a_vgpu_type(backend: &OpenStackBackend) -> (String, u32) {
    let hosts = backend.hosts().await.unwrap().unwrap();
    let g = hosts
        .hosts
        .iter()
        .flat_map(|h| h.gpus.iter())
        .next()
        .expect("a vGPU");
    (g.vgpu_type.clone(), g.instances)
}

#[tokio::test]
async fn vgpu_desktop_lifecycle() {
    let Some(c) = config() else { return };
    let _bed = BED.lock().await;
    let admin = admin_session(&c);
    let backend = OpenStackBackend::new(c.clone()).await.unwrap();
    clean(&backend).await;
    let dir = tempfile::tempdir().unwrap();
    let template = TemplateId::random();
    let (vgpu, _) = a_vgpu_type(&backend).await;
    let s = spec(image(dir.path(), template, 1), Some(&vgpu));
    let id = s.id;

    backend.create(&s).await.unwrap();
    backend.start(id).await.unwrap();
    assert_eq!(backend.status(id).await.unwrap(), PowerState::Running);
    let server = backend.server(id).await.unwrap().unwrap();
    assert_eq!(server.metadata["osvdi_desktop_id"], id.to_string());
    let traits = vgpu_traits_of(&admin, &server.id).await;
    assert!(
        traits.contains(&vgpu),
        "VGPU from a provider with {vgpu}: {traits:?}"
    );
    let placed = backend.hosts().await.unwrap().unwrap().placed;
    assert!(placed[&id].gpu.is_some(), "recorded on a GPU: {placed:?}");

    // The console: RFB through nova-novncproxy's WebSocket.
    let display = backend.display(id).await.unwrap();
    let mut rfb = osvdi_compute::connect_vnc(&display.vnc).await.unwrap();
    let mut hello = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), rfb.read_exact(&mut hello))
        .await
        .expect("the proxy answers")
        .unwrap();
    assert!(hello.starts_with(b"RFB 003."), "{hello:?}");
    rfb.write_all(&hello).await.unwrap();
    drop(rfb);

    backend.suspend(id).await.unwrap();
    assert_eq!(backend.status(id).await.unwrap(), PowerState::Suspended);
    backend.resume(id).await.unwrap();
    assert_eq!(backend.status(id).await.unwrap(), PowerState::Running);

    // A new backend (a restarted osvdi) finds the desktop by its metadata.
    let again = OpenStackBackend::new(c).await.unwrap();
    let listed = again.list().await.unwrap();
    assert!(listed.contains(&(id, PowerState::Running)), "{listed:?}");

    backend.delete(id).await.unwrap();
    backend.delete(id).await.unwrap();
    assert!(matches!(
        backend.status(id).await,
        Err(ComputeError::NotFound(_))
    ));
    // Nova answers 404 for the server a moment before nova-compute removes its allocation.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = placement::allocations(&admin, &server.id).await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delete frees the allocation: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The version's image goes once no server uses it.
    backend.delete_image(template, 1).await.unwrap();
    assert!(
        osvdi_openstack::glance::find(backend.session(), &template.to_string(), 1)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn capacity_exhaustion_is_a_clear_error() {
    let Some(mut c) = config() else { return };
    let _bed = BED.lock().await;
    c.suspend = SuspendMode::Shelve;
    c.active_timeout = Duration::from_secs(60);
    let backend = OpenStackBackend::new(c).await.unwrap();
    clean(&backend).await;
    let dir = tempfile::tempdir().unwrap();
    let template = TemplateId::random();
    let path = image(dir.path(), template, 1);
    // More vGPUs of one type than the cloud has.
    let (vgpu, free) = a_vgpu_type(&backend).await;
    let mut made = vec![];
    let mut refused = None;
    for _ in 0..=free {
        let s = spec(path.clone(), Some(&vgpu));
        match backend.create(&s).await {
            Ok(()) => made.push(s.id),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the last one does not fit");
    assert!(matches!(e, ComputeError::NoCapacity(_)), "{e}");
    assert!(e.to_string().contains("No capacity"), "{e}");

    // Shelving frees the host: then there is room again.
    backend.suspend(made[0]).await.unwrap();
    let s = spec(path.clone(), Some(&vgpu));
    backend.create(&s).await.unwrap();
    made.push(s.id);
    for id in made {
        backend.delete(id).await.unwrap();
    }
    backend.delete_image(template, 1).await.unwrap();
}

/// With the bed's short token lifetime (`OSVDI_OSBED_TOKEN_EXPIRATION` ≤ 120 s at its
/// start), a session renews its token before it expires and calls go on.
#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let Some(c) = config() else { return };
    let lifetime: u64 = std::env::var("OSVDI_OS_TOKEN_EXPIRATION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600);
    if lifetime > 120 {
        eprintln!(
            "skipped: the bed's tokens live {lifetime} s (start it with OSVDI_OSBED_TOKEN_EXPIRATION=60)"
        );
        return;
    }
    let s = Session::new(
        &c.auth_url,
        c.credentials.clone(),
        c.interface,
        c.region.clone(),
    )
    .unwrap();
    let first = s.token().await.unwrap();
    // Renewal starts 30 s before expiry for short tokens.
    let renew_at = first.expires_at().as_second() - 29;
    let wait = (renew_at - jiff::Timestamp::now().as_second()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    osvdi_openstack::nova::flavors(&s).await.unwrap();
    let second = s.token().await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &second), "a new token");
    assert!(second.expires_at() > first.expires_at());
}

/// With `host_hints` and an account with the admin role, the host the broker's scheduler
/// chose is where Nova puts the server.
#[tokio::test]
async fn host_hints_put_servers_where_the_scheduler_said() {
    let Some(mut c) = config() else { return };
    let _bed = BED.lock().await;
    c.credentials = c.admin.clone().expect("the bed has an admin account");
    c.host_hints = true;
    let backend = OpenStackBackend::new(c.clone()).await.unwrap();
    clean(&backend).await;
    let admin = admin_session(&c);
    let dir = tempfile::tempdir().unwrap();
    let template = TemplateId::random();
    let path = image(dir.path(), template, 1);
    let hosts = backend.hosts().await.unwrap().unwrap().hosts;
    assert!(hosts.len() >= 2, "{hosts:?}");
    for h in &hosts {
        let s = spec(path.clone(), None);
        backend.prefer_host(s.id, &h.name);
        backend.create(&s).await.unwrap();
        let server = backend.server(s.id).await.unwrap().unwrap();
        let alloc = placement::allocations(&admin, &server.id).await.unwrap();
        let root = placement::providers(&admin)
            .await
            .unwrap()
            .into_iter()
            .find(|p| alloc.get(&p.uuid).is_some_and(|r| r.contains_key("VCPU")))
            .unwrap();
        assert_eq!(root.name, h.name, "the server is where the hint said");
        backend.delete(s.id).await.unwrap();
    }
    backend.delete_image(template, 1).await.unwrap();
}
