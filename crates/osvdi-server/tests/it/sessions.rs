//! Sessions on real QEMU guests (TCG) booted from the demo template: the whole lifecycle with
//! the guest's state kept across suspend, crashes, limits, and who may touch whose desktop.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Db, Serial, TestServer};

const BOOT_SECS: u64 = 120;

async fn launch(s: &TestServer, token: &str, template: &str) -> (StatusCode, Value) {
    s.post("/api/v1/sessions", token, json!({"template_id": template}))
        .await
}

async fn lifecycle_keeps_the_guest_state_across_suspend(s: TestServer) {
    let template = s.demo_template("Demo", json!({})).await;
    let user = s.user("ursula", "user").await;
    let (st, session) = launch(&s, &user, &template).await;
    assert_eq!(
        (st, session["state"].as_str()),
        (StatusCode::ACCEPTED, Some("requested")),
        "{session}"
    );
    let id = session["id"].as_str().unwrap().to_owned();

    // Watch the state changes as server-sent events until ready.
    let res = s
        .http
        .get(s.url(&format!("/api/v1/sessions/{id}/events")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = res.bytes_stream();
    let mut states: Vec<String> = vec![];
    let deadline = Instant::now() + Duration::from_secs(BOOT_SECS);
    let mut text = String::new();
    while !states.iter().any(|s| s == "ready") {
        assert!(
            Instant::now() < deadline,
            "no ready event; states {states:?}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(BOOT_SECS), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).unwrap();
                states.push(v["state"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        states.last().map(String::as_str),
        Some("ready"),
        "{states:?}"
    );
    assert!(
        states.len() >= 2,
        "the stream starts with the current state and follows: {states:?}"
    );
    drop(stream);

    // Write something in the guest, suspend, resume, read it back.
    let dir = s.desktop_dir(&id);
    let mut serial = Serial::open(&dir).await;
    serial
        .run("echo osvdi-$((40+2)) > /tmp/mark; echo written", "written")
        .await;
    drop(serial);
    let (st, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{id}/suspend"),
            Some(&user),
            None,
        )
        .await;
    assert_eq!(
        (st, body["state"].as_str()),
        (StatusCode::ACCEPTED, Some("suspending")),
        "{body}"
    );
    s.wait_state(&user, &id, "suspended", 60).await;
    assert!(dir.join("state.bin").exists(), "the state is on disk");
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{id}/suspend"),
            Some(&user),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "a suspended session cannot be suspended"
    );
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{id}/resume"),
            Some(&user),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    s.wait_state(&user, &id, "ready", 60).await;
    let mut serial = Serial::open(&dir).await;
    serial.run("cat /tmp/mark", "osvdi-42").await;
    drop(serial);

    // End: the desktop and everything it had are gone.
    let (st, body) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/sessions/{id}"),
            Some(&user),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    s.wait_state(&user, &id, "ended", 60).await;
    assert!(!dir.exists(), "nothing left of the desktop");
    let (_, history) = s
        .get(&format!("/api/v1/sessions/{id}/history"), &user)
        .await;
    let to: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        [
            "requested",
            "provisioning",
            "booting",
            "ready",
            "suspending",
            "suspended",
            "resuming",
            "ready",
            "stopping",
            "ended"
        ]
    );
    let (_, audit) = s.get("/api/v1/audit?actor=ursula", &s.admin).await;
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "session.end",
            "session.resume",
            "session.suspend",
            "session.launch",
            "login"
        ]
    );
}

crate::db_tests_with_desktops!(lifecycle_keeps_the_guest_state_across_suspend);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_qemu_fails_the_session_within_seconds() {
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let template = s.demo_template("Demo", json!({})).await;
    let (_, session) = launch(&s, &s.admin, &template).await;
    let id = session["id"].as_str().unwrap().to_owned();
    s.wait_state(&s.admin, &id, "ready", BOOT_SECS).await;
    let pid = std::fs::read_to_string(s.desktop_dir(&id).join("qemu.pid")).unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    let killed = Instant::now();
    let failed = loop {
        let (_, d) = s.get(&format!("/api/v1/sessions/{id}"), &s.admin).await;
        if d["state"] == "failed" {
            break d;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "not failed 5 s after the kill: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        failed["reason"].as_str().unwrap().contains("unexpectedly"),
        "{failed}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !s.desktop_dir(&id).exists(),
        "a failed desktop's files are released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_deletion_and_other_peoples_sessions() {
    let s = TestServer::with_desktops(Db::Sqlite, |c| c.max_desktops_per_user = 1)
        .await
        .unwrap();
    let template = s.demo_template("Demo", json!({})).await;
    let alice = s.user("alice", "user").await;
    let bob = s.user("bob", "user").await;
    let (st, session) = launch(&s, &alice, &template).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let id = session["id"].as_str().unwrap().to_owned();
    let (st, body) = launch(&s, &alice, &template).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 desktop"),
        "{body}"
    );

    let (st, body) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/templates/{template}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "a template in use cannot be deleted: {body}"
    );

    for (method, path) in [
        (Method::GET, format!("/api/v1/sessions/{id}")),
        (Method::POST, format!("/api/v1/sessions/{id}/suspend")),
        (Method::DELETE, format!("/api/v1/sessions/{id}")),
        (Method::GET, format!("/api/v1/sessions/{id}/history")),
        (Method::GET, format!("/api/v1/sessions/{id}/events")),
    ] {
        let (st, _) = s.call(method.clone(), &path, Some(&bob), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path} by another user");
    }
    let (_, mine) = s.get("/api/v1/sessions", &bob).await;
    assert_eq!(mine, json!([]));
    assert_eq!(
        s.get("/api/v1/sessions?all=true", &bob).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, all) = s.get("/api/v1/sessions?all=true", &s.admin).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Unshared and imageless templates cannot be launched.
    let private = s.template(&s.admin, "Private").await;
    assert_eq!(launch(&s, &bob, &private).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        launch(&s, &s.admin, &private).await.0,
        StatusCode::CONFLICT,
        "no image yet"
    );

    s.wait_state(&alice, &id, "ready", BOOT_SECS).await;
    s.call(
        Method::DELETE,
        &format!("/api/v1/sessions/{id}"),
        Some(&alice),
        None,
    )
    .await;
    s.wait_state(&alice, &id, "ended", 60).await;
    let (st, _) = launch(&s, &alice, &template).await;
    assert_eq!(st, StatusCode::ACCEPTED, "an ended session frees the quota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_and_maximum_lifetime_end_desktops() {
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let idle = s
        .demo_template(
            "Idle",
            json!({"idle_timeout_min": 5, "max_lifetime_min": 600}),
        )
        .await;
    let short = s
        .demo_template("Short", json!({"max_lifetime_min": 30}))
        .await;
    let (_, a) = launch(&s, &s.admin, &idle).await;
    let (_, b) = launch(&s, &s.admin, &short).await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    s.wait_state(&s.admin, &a, "ready", BOOT_SECS).await;
    s.wait_state(&s.admin, &b, "ready", BOOT_SECS).await;

    s.clock.advance(Duration::from_secs(6 * 60));
    let ended = s.wait_state(&s.admin, &a, "ended", 30).await;
    assert_eq!(ended["reason"], "Ended: idle for 5 minute(s)");
    let (_, still) = s.get(&format!("/api/v1/sessions/{b}"), &s.admin).await;
    assert_eq!(still["state"], "ready", "no idle limit on this one");

    s.clock.advance(Duration::from_secs(25 * 60));
    let ended = s.wait_state(&s.admin, &b, "ended", 30).await;
    assert_eq!(ended["reason"], "Ended: the maximum lifetime was reached");
    assert!(!s.desktop_dir(&a).exists() && !s.desktop_dir(&b).exists());
}
