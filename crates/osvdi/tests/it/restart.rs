//! `kill -9` of `osvdi serve` while desktops boot and while one suspends: after a restart
//! every desktop is adopted or cleanly failed, and nothing is left orphaned.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::*;

async fn session(http: &reqwest::Client, s: &Server, token: &str, id: &str) -> Value {
    http.get(s.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the session's state is one of `states`; returns it.
async fn wait_for(
    http: &reqwest::Client,
    s: &Server,
    token: &str,
    id: &str,
    states: &[&str],
    secs: u64,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let d = session(http, s, token, id).await;
        if states.iter().any(|st| d["state"] == *st) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "session not in {states:?} after {secs} s: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a live QEMU process runs for this desktop (zombies have an empty command line).
fn qemu_alive(id: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read(p.path().join("cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("qemu-system") && c.contains(id)
        })
    })
}

fn kill9(server: &mut Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test]
async fn a_killed_server_adopts_or_cleanly_fails_its_desktops() {
    let dir = TempDir::with_prefix_in("osvdi-e2e-", "/tmp").unwrap();
    let data = dir.path().join("d");
    let site = site_args(&data, None);
    let out = osvdi()
        .args(["template", "demo"])
        .args(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .split("password '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    assert!(stdout.contains("Registered the demo template"), "{stdout}");
    let again = osvdi()
        .args(["template", "demo"])
        .args(&site)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("up to date"),
        "rebuilding changes nothing"
    );

    let http = reqwest::Client::new();
    let mut server = Server::start(&site, &dir.path().join("serve1.log"), &[]);
    let token = token(&http, &server, "admin", &password).await;
    let templates: Value = http
        .get(server.url("/api/v1/templates"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let template = templates[0]["id"].as_str().unwrap().to_owned();
    let launch = |server: &Server| {
        http.post(server.url("/api/v1/sessions"))
            .bearer_auth(&token)
            .json(&json!({"template_id": template}))
            .send()
    };

    // 1. Killed while the desktop boots: the next run adopts it and sees it become ready.
    let booting: Value = launch(&server).await.unwrap().json().await.unwrap();
    let a = booting["id"].as_str().unwrap().to_owned();
    wait_for(&http, &server, &token, &a, &["booting"], 60).await;
    kill9(&mut server);
    assert!(qemu_alive(&a), "desktops outlive the server");
    let mut server = Server::start(&site, &dir.path().join("serve2.log"), &[]);
    let d = wait_for(&http, &server, &token, &a, &["ready", "failed"], 120).await;
    assert_eq!(d["state"], "ready", "adopted: {d}");

    // 2. Killed right after asking for a suspend: suspended or still ready, never stuck.
    let res = http
        .post(server.url(&format!("/api/v1/sessions/{a}/suspend")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    kill9(&mut server);
    let server = Server::start(&site, &dir.path().join("serve3.log"), &[]);
    let d = wait_for(
        &http,
        &server,
        &token,
        &a,
        &["suspended", "ready", "failed"],
        60,
    )
    .await;
    let desktop_dir = data.join("desktops").join(&a);
    match d["state"].as_str().unwrap() {
        "suspended" => {
            assert!(!qemu_alive(&a), "a suspended desktop has no process");
            assert!(desktop_dir.join("state.bin").exists());
        }
        "ready" => assert!(qemu_alive(&a), "a ready desktop has its process"),
        other => panic!("suspend interrupted by a crash should not fail the desktop: {other} {d}"),
    }

    // 3. Ending it leaves nothing behind.
    http.delete(server.url(&format!("/api/v1/sessions/{a}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    wait_for(&http, &server, &token, &a, &["ended"], 60).await;
    assert!(!qemu_alive(&a), "no orphan process");
    assert!(!desktop_dir.exists(), "no orphan files");
    assert_eq!(std::fs::read_dir(data.join("desktops")).unwrap().count(), 0);
    let logs = server.logs();
    assert!(
        logs.contains("accelerator:"),
        "the accelerator choice is logged once: {logs}"
    );
    assert!(server.terminate().success());
    cleanup(&data);
}

/// Kills whatever QEMU a failed assertion left behind.
fn cleanup(data: &Path) {
    for e in std::fs::read_dir(data.join("desktops"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(pid) = std::fs::read_to_string(e.path().join("qemu.pid")) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
        }
    }
}
