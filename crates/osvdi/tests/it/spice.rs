//! A native client's path through the real binary: `osvdi template demo` offers SPICE, the
//! `.vv` file's ticket opens the desktop through `osvdi serve`'s CONNECT proxy, and the ticket
//! never reaches the logs, even at trace level.

use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A CONNECT as spice-gtk sends it; returns the answer's status and the connection.
async fn connect(server: &Server, target: &str) -> (u16, TcpStream) {
    let mut conn = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "CONNECT {target} HTTP/1.0\r\nHost: {target}\r\nProxy-Connection: keep-alive\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).await.unwrap(), 1, "proxy closed");
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
    (status, conn)
}

#[tokio::test]
async fn the_demo_desktop_opens_through_the_proxy_and_the_ticket_stays_out_of_the_logs() {
    let dir = TempDir::with_prefix_in("osvdi-e2e-", "/tmp").unwrap();
    let data = dir.path().join("d");
    let site = site_args(&data, None);
    let _qemu = KillQemu(data.join("desktops"));
    let out = osvdi()
        .args(["template", "demo"])
        .args(&site)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .split("password '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap()
        .to_owned();
    let server = Server::start(
        &site,
        &dir.path().join("serve.log"),
        &[("RUST_LOG", "trace")],
    );
    let http = reqwest::Client::new();
    let token = token(&http, &server, "admin", &password).await;
    let api = Api {
        http: http.clone(),
        server: &server,
    };
    let id = api.launch_first_ready(&token, 120).await;

    let res = http
        .get(server.url(&format!("/api/v1/sessions/{id}/spice.vv")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let file = res.text().await.unwrap();
    let value = |key: &str| {
        file.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };
    let (ticket, port) = (value("password"), value("port"));
    assert_eq!(value("proxy"), server.base);
    assert_eq!(value("title"), "osvdi demo desktop (osvdi)");

    let (status, mut conn) = connect(&server, &format!("127.0.0.1:{port}")).await;
    assert_eq!(status, 200);
    let mut link = b"REDQ".to_vec();
    for v in [2u32, 2, 18, 0] {
        link.extend_from_slice(&v.to_le_bytes());
    }
    link.extend_from_slice(&[1, 0]);
    for v in [0u32, 0, 18] {
        link.extend_from_slice(&v.to_le_bytes());
    }
    conn.write_all(&link).await.unwrap();
    let mut magic = [0u8; 4];
    conn.read_exact(&mut magic).await.unwrap();
    assert_eq!(
        &magic, b"REDQ",
        "the SPICE server answers through the proxy"
    );
    drop(conn);
    assert_eq!(connect(&server, "127.0.0.1:22").await.0, 403);

    http.delete(server.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(server.terminate().success());
    let logs = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        logs.contains("proxy CONNECT admitted"),
        "the proxy logs what it does"
    );
    assert!(
        !logs.contains(&ticket),
        "the SPICE ticket appears in the server log"
    );
}

/// Kills the QEMU processes a failed test left behind (desktops outlive the server).
struct KillQemu(std::path::PathBuf);

impl Drop for KillQemu {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            if let Ok(pid) = std::fs::read_to_string(entry.path().join("qemu.pid")) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid.trim()])
                    .status();
            }
        }
    }
}
