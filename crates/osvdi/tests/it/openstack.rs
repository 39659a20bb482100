//! `osvdi serve` with `desktops.backend = "openstack"` against the test bed
//! (`scripts/openstack-testbed/`), through osvdi's own API: a vGPU template published to
//! Glance, a desktop ACTIVE on a GPU provider with the right trait, its console through
//! nova-novncproxy, suspend/resume, admission refusing what the cloud cannot hold, a restart
//! that re-adopts, delete freeing the
//! Placement allocation, and a course that gets all its desktops while others are refused.
//! Runs only when `OS_AUTH_URL` is set.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use osvdi_openstack::{OpenStackConfig, Session, glance, nova, placement};
use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

const USER_PW: &str = "a long enough password 1";

/// The `[openstack]` section for the bed, from its `OS_*` variables.
fn config_file(dir: &std::path::Path) -> std::path::PathBuf {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let text = format!(
        r#"[desktops]
backend = "openstack"
max_per_user = 10
boot_timeout_secs = 120

[openstack]
auth_url = "{}"
region = "{}"
username = "{}"
password = "{}"
project = "{}"
admin_username = "{}"
admin_password = "{}"
admin_project = "{}"
network = "none"
suspend = "suspend"
active_timeout_secs = 60
"#,
        var("OS_AUTH_URL"),
        var("OS_REGION_NAME"),
        var("OS_USERNAME"),
        var("OS_PASSWORD"),
        var("OS_PROJECT_NAME"),
        var("OSVDI_OS_ADMIN_USERNAME"),
        var("OSVDI_OS_ADMIN_PASSWORD"),
        var("OSVDI_OS_ADMIN_PROJECT_NAME"),
    );
    let path = dir.join("osvdi.toml");
    std::fs::write(&path, text).unwrap();
    path
}

impl Api<'_> {
    /// A vGPU template with an image, shared with everyone; returns its id.
    async fn vgpu_template(
        &self,
        token: &str,
        name: &str,
        vgpu: &str,
        image: &std::path::Path,
    ) -> String {
        let (st, t) = self
            .post(
                "/api/v1/templates",
                token,
                json!({"name": name, "vcpus": 1, "memory_mb": 512, "disk_gb": 1, "os": "debian-12",
                       "vgpu_type": vgpu, "ready": "after:0", "visibility": "everyone"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let id = t["id"].as_str().unwrap().to_owned();
        let res = self
            .http
            .put(self.server.url(&format!("/api/v1/templates/{id}/image")))
            .bearer_auth(token)
            .body(std::fs::read(image).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        id
    }
}

fn rfc3339_in(secs: u64) -> String {
    let t = SystemTime::now() + Duration::from_secs(secs);
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    humantime_rfc3339(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (civil-from-days, no dependency).
fn humantime_rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The Nova server of a desktop (found by its name).
async fn server_of(s: &Session, desktop: &str) -> Option<nova::Server> {
    nova::list(s, &format!("^osvdi-{desktop}$"))
        .await
        .unwrap()
        .into_iter()
        .next()
}

/// The traits of the providers a server's VGPU comes from.
async fn vgpu_traits(admin: &Session, server: &str) -> Vec<String> {
    let alloc = placement::allocations(admin, server).await.unwrap();
    let mut out = vec![];
    for p in placement::providers(admin).await.unwrap() {
        if alloc.get(&p.uuid).is_some_and(|r| r.contains_key("VGPU")) {
            out.extend(placement::provider_state(admin, p).await.unwrap().traits);
        }
    }
    out
}

/// Deletes every osvdi server on the bed (a failed earlier run's).
async fn clean_bed(user: &Session) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = nova::list(user, "^osvdi-").await.unwrap();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "leftover servers do not go");
        // Again each round: a server still being built may miss a first delete.
        for s in left {
            nova::delete(user, &s.id).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktops_on_openstack_through_the_osvdi_api() {
    let Some(c) = OpenStackConfig::from_env() else {
        eprintln!(
            "skipped: OS_AUTH_URL is not set (run under scripts/openstack-testbed/with-osbed.sh)"
        );
        return;
    };
    let c = c.unwrap();
    let user = Session::new(
        &c.auth_url,
        c.credentials.clone(),
        c.interface,
        c.region.clone(),
    )
    .unwrap();
    let admin = Session::new(
        &c.auth_url,
        c.admin.clone().unwrap(),
        c.interface,
        c.region.clone(),
    )
    .unwrap();
    clean_bed(&user).await;
    let started = Instant::now();

    let dir = TempDir::with_prefix_in("osvdi-os-", "/tmp").unwrap();
    let data = dir.path().join("d");
    // The server logs stay after a failure: /tmp/osvdi-openstack-it/.
    let logs = std::env::temp_dir().join("osvdi-openstack-it");
    std::fs::create_dir_all(&logs).unwrap();
    let mut site = site_args(&data, None);
    site.extend([
        "--config".to_owned(),
        config_file(dir.path()).display().to_string(),
    ]);
    // At trace level: no password of the cloud and no console token may reach the log.
    let server = Server::start(&site, &logs.join("serve1.log"), &[("RUST_LOG", "trace")]);
    let password = server.first_password().expect("first start");
    let http = reqwest::Client::new();
    let api = Api {
        http: http.clone(),
        server: &server,
    };
    let root = token(&http, &server, "admin", &password).await;

    // The bed's GPU types, as the scheduler sees them: Placement's traits.
    let backend = osvdi_openstack::OpenStackBackend::new(c.clone())
        .await
        .unwrap();
    let hosts = osvdi_compute::Compute::hosts(&backend)
        .await
        .unwrap()
        .unwrap();
    let gpus: Vec<(String, u32)> = hosts
        .hosts
        .iter()
        .flat_map(|h| h.gpus.iter().map(|g| (g.vgpu_type.clone(), g.instances)))
        .collect();
    assert!(gpus.len() >= 2, "the bed has two vGPU types: {gpus:?}");
    let (ty_a, cap_a) = gpus[0].clone();
    let (ty_b, cap_b) = gpus[1].clone();

    // 1. A vGPU template: its version goes to Glance with its properties.
    let image = qcow2(dir.path(), "disk.qcow2", "1G");
    let ta = api.vgpu_template(&root, "Imaging A", &ty_a, &image).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let published = loop {
        if let Some(img) = glance::find(&user, &ta, 1).await.unwrap()
            && img.status == "active"
        {
            break img;
        }
        assert!(Instant::now() < deadline, "the version reaches Glance");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(published.osvdi_template_version.as_deref(), Some("1"));

    // 2. A desktop: ACTIVE on a GPU provider with the template's trait.
    let (st, d) = api
        .post("/api/v1/sessions", &root, json!({"template_id": ta}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{d}");
    let a = d["id"].as_str().unwrap().to_owned();
    api.wait_state(&root, &a, "ready", 90).await;
    let srv = server_of(&user, &a).await.expect("a Nova server");
    assert_eq!(srv.status, "ACTIVE");
    let traits = vgpu_traits(&admin, &srv.id).await;
    assert!(
        traits.contains(&ty_a),
        "VGPU from a provider with {ty_a}: {traits:?}"
    );

    // 3. The console: osvdi's WebSocket relays RFB from nova-novncproxy.
    let (st, console) = api
        .post(&format!("/api/v1/sessions/{a}/console"), &root, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{console}");
    let url = console["url"].as_str().unwrap().replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {root}").parse().unwrap());
    req.headers_mut()
        .insert("sec-websocket-protocol", "binary".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("console WebSocket");
    let first = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("the desktop speaks")
        .unwrap()
        .unwrap();
    let Message::Binary(hello) = first else {
        panic!("{first:?}")
    };
    assert!(hello.starts_with(b"RFB 003."), "{hello:?}");
    ws.send(Message::Binary(hello.clone())).await.unwrap();
    let sec = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(sec, Message::Binary(ref b) if !b.is_empty()),
        "security types: {sec:?}"
    );
    drop(ws);

    // 4. Suspend and resume.
    let (st, _) = api
        .post(&format!("/api/v1/sessions/{a}/suspend"), &root, json!({}))
        .await;
    assert!(st.is_success(), "suspend: {st}");
    api.wait_state(&root, &a, "suspended", 60).await;
    assert_eq!(server_of(&user, &a).await.unwrap().status, "SUSPENDED");
    api.post(&format!("/api/v1/sessions/{a}/resume"), &root, json!({}))
        .await;
    api.wait_state(&root, &a, "ready", 60).await;

    // 5. Admission control on the cloud's inventory: type A holds `cap_a` desktops; the
    //    next one is refused at once with a clear message, nothing started.
    let mut more = vec![];
    for _ in 1..cap_a {
        let (st, d) = api
            .post("/api/v1/sessions", &root, json!({"template_id": ta}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{d}");
        more.push(d["id"].as_str().unwrap().to_owned());
    }
    let (st, refused) = api
        .post("/api/v1/sessions", &root, json!({"template_id": ta}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{refused}");
    let msg = refused["error"]["message"].as_str().unwrap();
    assert!(msg.contains("No room"), "{msg}");
    for id in &more {
        api.wait_state(&root, id, "ready", 90).await;
    }

    // 6. (Keystone's 401 and renewal are tested with the client in osvdi-openstack: the
    //    services' caches of validated tokens would hide a revocation here for minutes.)
    for id in more.drain(..) {
        api.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{id}"),
            &root,
            None,
        )
        .await;
        api.wait_state(&root, &id, "ended", 60).await;
    }
    let log = server.logs();
    for secret in ["OS_PASSWORD", "OSVDI_OS_ADMIN_PASSWORD"] {
        let value = std::env::var(secret).unwrap();
        assert!(!log.contains(&value), "{secret} in the log");
    }
    assert!(log.contains("server ACTIVE"), "the log is the server's");
    assert!(!log.contains("token="), "a console URL in the log");
    assert!(
        !log.contains("gAAAAA"),
        "a Keystone (fernet) token in the log"
    );
    // 7. A restart of osvdi re-adopts the desktop: it stays ready, nothing failed.
    assert!(server.terminate().success());
    let server = Server::start(&site, &logs.join("serve2.log"), &[("RUST_LOG", "info")]);
    let api = Api {
        http: http.clone(),
        server: &server,
    };
    let root = token(&http, &server, "admin", &password).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let d = api.get(&format!("/api/v1/sessions/{a}"), &root).await;
    assert_eq!(d["state"], "ready", "adopted after the restart: {d}");

    // 8. Ending it deletes the server and frees its allocation in Placement.
    api.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/sessions/{a}"),
        &root,
        None,
    )
    .await;
    api.wait_state(&root, &a, "ended", 60).await;
    assert!(server_of(&user, &a).await.is_none());
    // Nova answers 404 for the server a moment before nova-compute removes its allocation.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !placement::allocations(&admin, &srv.id)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "allocation freed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 9. A course books every type-B vGPU for a group from a slot starting in 40 s: members
    //    get all their desktops when it starts; someone else's launch is refused meanwhile.
    let tb = api.vgpu_template(&root, "Imaging B", &ty_b, &image).await;
    let (st, _) = api
        .post("/api/v1/groups", &root, json!({"name": "lab"}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    for (name, role) in [("mia", "user"), ("bob", "user")] {
        let (st, b) = api
            .post(
                "/api/v1/users",
                &root,
                json!({"name": name, "role": role, "password": USER_PW}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    api.call(
        reqwest::Method::PUT,
        "/api/v1/groups/lab/members/mia",
        &root,
        None,
    )
    .await;
    let (st, course) = api
        .post(
            "/api/v1/courses",
            &root,
            json!({"name": "Imaging 101", "template_id": tb, "group": "lab", "desktops": cap_b,
                   "schedule": {"once": {"start": rfc3339_in(40), "end": rfc3339_in(1800)}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{course}");
    let slot_starts = Instant::now() + Duration::from_secs(41);
    let (st, body) = api
        .post(
            "/api/v1/courses",
            &root,
            json!({"name": "One too many", "template_id": tb, "group": "lab", "desktops": 1,
                   "schedule": {"once": {"start": rfc3339_in(60), "end": rfc3339_in(600)}}}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "the cloud has no room for a second course: {body}"
    );
    let mia = token(&http, &server, "mia", USER_PW).await;
    let bob = token(&http, &server, "bob", USER_PW).await;
    tokio::time::sleep_until(slot_starts.into()).await;
    let (st, body) = api
        .post("/api/v1/sessions", &bob, json!({"template_id": tb}))
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "the course holds every type-B vGPU: {body}"
    );
    let mut mine = vec![];
    for _ in 0..cap_b {
        let (st, d) = api
            .post("/api/v1/sessions", &mia, json!({"template_id": tb}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{d}");
        assert_eq!(d["course_id"], course["id"], "{d}");
        mine.push(d["id"].as_str().unwrap().to_owned());
    }
    for id in &mine {
        let d = api.wait_state(&mia, id, "ready", 90).await;
        let srv = server_of(&user, id).await.unwrap();
        assert!(vgpu_traits(&admin, &srv.id).await.contains(&ty_b), "{d}");
    }
    for id in &mine {
        api.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{id}"),
            &mia,
            None,
        )
        .await;
    }
    for id in &mine {
        api.wait_state(&mia, id, "ended", 60).await;
    }
    // 10. Deleting a template deletes its Glance image (no server uses it now).
    for t in [&ta] {
        let (st, body) = api
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/templates/{t}"),
                &root,
                None,
            )
            .await;
        assert!(st.is_success(), "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while glance::find(&user, &ta, 1).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the image leaves Glance");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The course goes too: its slot still runs, and osvdi would keep desktops warm for it.
    let (st, body) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/courses/{}", course["id"].as_str().unwrap()),
            &root,
            None,
        )
        .await;
    assert!(st.is_success(), "{body}");
    assert!(server.terminate().success());
    eprintln!("OpenStack end-to-end: {} s", started.elapsed().as_secs());
    clean_bed(&user).await;
    // Template B's image stays in Glance while its course's desktops live; the bed keeps no
    // more than it needs.
    if let Some(img) = glance::find(&user, &tb, 1).await.unwrap() {
        glance::delete(&user, &img.id).await.unwrap();
    }
}
