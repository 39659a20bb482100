//! First start, the admin commands beside a running server, template upload from the command
//! line, graceful shutdown, and a server killed in the middle of an upload.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

use crate::support::*;

async fn first_start_admin_cli_and_restart(db_url: Option<String>) {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let site = site_args(&data, db_url.as_deref());
    let http = reqwest::Client::new();

    let server = Server::start(&site, &dir.path().join("serve1.log"), &[]);
    let password = server
        .first_password()
        .expect("the first start prints the admin password");
    assert_eq!(password.len(), 20);
    let admin = token(&http, &server, "admin", &password).await;
    if db_url.is_none() {
        assert!(
            data.join("osvdi.db").exists(),
            "SQLite in the data dir by default"
        );
    }

    // The admin commands work against the same database while the server runs.
    let mut cmd = osvdi();
    cmd.arg("admin").args(&site).args([
        "user",
        "create",
        "stella",
        "--role",
        "steward",
        "--password-stdin",
    ]);
    let out = run_with_stdin(cmd, "stella-password-1\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for args in [
        &["group", "create", "physics"][..],
        &["group", "add", "physics", "stella"],
    ] {
        let out = osvdi()
            .arg("admin")
            .args(&site)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = osvdi()
        .arg("admin")
        .args(&site)
        .args(["group", "add", "physics", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("User not found"),
        "a clear error"
    );

    let stella = token(&http, &server, "stella", "stella-password-1").await;
    let me: Value = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&stella)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["role"].as_str(), me["groups"].clone()),
        (Some("steward"), json!(["physics"]))
    );

    // `osvdi template upload` creates the template and sends versions, with the checksum.
    let image = qcow2(dir.path(), "disk.qcow2", "64M");
    for expected in ["version 1 of 'Lab desktop'", "version 2 of 'Lab desktop'"] {
        let mut cmd = osvdi();
        cmd.args(["template", "upload"]).arg(&image).args([
            "--name",
            "Lab desktop",
            "--server",
            &server.base,
            "--username",
            "stella",
        ]);
        let out = run_with_stdin(cmd, "stella-password-1\n");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(expected),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let templates: Value = http
        .get(server.url("/api/v1/templates"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(templates[0]["current_version"], 2);
    assert_eq!(
        templates[0]["disk_gb"], 1,
        "disk size from the image's virtual size"
    );

    // The audit log names the operator for command-line actions.
    let audit: Value = http
        .get(server.url("/api/v1/audit?action=user.create"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit[0]["actor"].as_str().unwrap().starts_with("operator:"),
        "{audit}"
    );

    // SIGTERM: a clean stop.
    let status = server.terminate();
    assert!(status.success(), "{status:?}");

    // Second start: nothing printed about passwords, everything still there.
    let server = Server::start(&site, &dir.path().join("serve2.log"), &[]);
    assert_eq!(server.first_password(), None, "{:?}", server.banner);
    let admin = token(&http, &server, "admin", &password).await;
    let templates: Value = http
        .get(server.url("/api/v1/templates"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(templates[0]["name"], "Lab desktop");
    assert!(server.terminate().success());
    let log = std::fs::read_to_string(dir.path().join("serve2.log")).unwrap();
    assert!(log.contains("osvdi stopped"), "{log}");
}

#[tokio::test]
async fn first_start_admin_cli_and_restart_on_sqlite() {
    first_start_admin_cli_and_restart(None).await;
}

#[tokio::test]
async fn first_start_admin_cli_and_restart_on_postgres() {
    if let Some(url) = osvdi_store::testing::fresh_postgres_database().await {
        first_start_admin_cli_and_restart(Some(url)).await;
    }
}

#[tokio::test]
async fn a_server_killed_mid_upload_leaves_no_half_template() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let site = site_args(&data, None);
    let http = reqwest::Client::new();
    let server = Server::start(&site, &dir.path().join("serve1.log"), &[]);
    let password = server.first_password().unwrap();
    let admin = token(&http, &server, "admin", &password).await;
    let res = http
        .post(server.url("/api/v1/templates"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Interrupted", "vcpus": 1, "memory_mb": 1024, "disk_gb": 10}))
        .send()
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Announce 512 MiB, send 8 MiB, and kill the server while it waits for the rest.
    let mut tcp = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "PUT /api/v1/templates/{id}/image HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Length: {}\r\n\r\n",
        512u64 << 20
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![0u8; 8 << 20]).await.unwrap();
    let incoming = data.join("images/incoming");
    let start = Instant::now();
    let part = loop {
        let found = std::fs::read_dir(&incoming)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path());
        if let Some(p) = found.filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0)) {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no partial file appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL: no clean-up code runs
    server.child.wait().unwrap();
    assert!(part.exists(), "the partial file outlived the server");
    drop(tcp);

    let server = Server::start(&site, &dir.path().join("serve2.log"), &[]);
    assert!(!part.exists(), "removed at start");
    assert_eq!(std::fs::read_dir(&incoming).unwrap().count(), 0);
    let admin = token(&http, &server, "admin", &password).await;
    let versions: Value = http
        .get(server.url(&format!("/api/v1/templates/{id}/versions")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(versions, json!([]), "no half version");
    let t: Value = http
        .get(server.url(&format!("/api/v1/templates/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["current_version"], Value::Null);
    assert!(
        server.logs().contains("cleaned up interrupted uploads"),
        "{}",
        server.logs()
    );

    // And the template takes a new upload as version 1.
    let image = std::fs::read(qcow2(dir.path(), "ok.qcow2", "64M")).unwrap();
    let res = http
        .put(server.url(&format!("/api/v1/templates/{id}/image")))
        .bearer_auth(&admin)
        .body(image)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["version"], 1);
}
