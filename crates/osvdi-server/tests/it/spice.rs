//! Native clients: `.vv` files with one-time SPICE tickets, the gateway's CONNECT proxy that
//! admits only ticketed desktops, and the real thing: remote-viewer under Xvfb showing the
//! demo guest through the proxy.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{Db, Serial, TestServer};
use crate::x11::{Guard, Xvfb, artifacts_dir, require_tools};

const BOOT_SECS: u64 = 120;

async fn launch(s: &TestServer, token: &str, template: &str) -> String {
    let (st, body) = s
        .post("/api/v1/sessions", token, json!({"template_id": template}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// `GET /api/v1/sessions/{id}/spice.vv`: status, headers, body.
async fn vv(
    s: &TestServer,
    token: Option<&str>,
    id: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = s
        .http
        .get(s.url(&format!("/api/v1/sessions/{id}/spice.vv")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (
        res.status(),
        res.headers().clone(),
        res.text().await.unwrap(),
    )
}

/// The `[virt-viewer]` keys of a `.vv` file.
fn keys(file: &str) -> BTreeMap<String, String> {
    let mut lines = file.lines();
    assert_eq!(lines.next(), Some("[virt-viewer]"), "{file}");
    lines
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn api_addr(s: &TestServer) -> SocketAddr {
    s.base.strip_prefix("http://").unwrap().parse().unwrap()
}

/// Sends a CONNECT as GLib's HTTP proxy client (spice-gtk's) does, from `from` (any loopback
/// address), and reads the answer's head. Returns the status and the connection.
async fn connect(s: &TestServer, from: IpAddr, target: &str) -> (u16, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut conn = socket.connect(api_addr(s)).await.unwrap();
    let request = format!(
        "CONNECT {target} HTTP/1.0\r\nHost: {target}\r\nProxy-Connection: keep-alive\r\n\
         User-Agent: GLib/2.74\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut byte))
            .await
            .expect("proxy answer")
            .unwrap();
        assert!(n == 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1."), "{head}");
    let status = head[9..12].parse().unwrap();
    (status, conn)
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
/// Another client address (all of 127/8 is this host's).
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Opens a SPICE channel (1: main, 3: inputs) on `conn` and returns the first 4 bytes of the
/// server's reply (`REDQ`, the link reply's magic).
async fn spice_link(conn: &mut TcpStream, channel: u8) -> [u8; 4] {
    let mut link = b"REDQ".to_vec();
    for v in [2u32, 2, 18, 0] {
        // major, minor, size of the message, connection id
        link.extend_from_slice(&v.to_le_bytes());
    }
    link.extend_from_slice(&[channel, 0]); // channel type, id 0
    for v in [0u32, 0, 18] {
        // common caps, channel caps, caps offset
        link.extend_from_slice(&v.to_le_bytes());
    }
    conn.write_all(&link).await.unwrap();
    let mut magic = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut magic))
        .await
        .expect("SPICE reply")
        .unwrap();
    magic
}

/// The audit lines of `action`, newest first.
async fn audit(s: &TestServer, action: &str) -> Vec<Value> {
    let (st, body) = s
        .get(&format!("/api/v1/audit?action={action}"), &s.admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn vv_files_tickets_and_the_proxy(s: TestServer) {
    let spicy = s
        .demo_template("Spicy", json!({"protocols": ["vnc", "spice"]}))
        .await;
    let plain = s.demo_template("Plain", json!({})).await;
    let alice = s.user("alice", "user").await;
    let bob = s.user("bob", "user").await;
    let id = launch(&s, &alice, &spicy).await;

    // Not ready yet: no ticket.
    let (st, _, body) = vv(&s, Some(&alice), &id).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("once it is ready"), "{body}");
    // A template without SPICE: a clear 409 whatever the state.
    let other = launch(&s, &alice, &plain).await;
    let (st, _, body) = vv(&s, Some(&alice), &other).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("offers no SPICE"), "{body}");
    s.call(
        Method::DELETE,
        &format!("/api/v1/sessions/{other}"),
        Some(&alice),
        None,
    )
    .await;

    s.wait_state(&alice, &id, "ready", BOOT_SECS).await;
    // Only its owner (and admins) get one; others do not learn that it exists.
    assert_eq!(vv(&s, Some(&bob), &id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(vv(&s, None, &id).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        vv(&s, Some(&alice), "not-a-session").await.0,
        StatusCode::NOT_FOUND
    );

    let (_, doc) = s.get("/api/v1/openapi.json", &alice).await;
    assert!(doc["paths"]["/api/v1/sessions/{id}/spice.vv"]["get"].is_object());

    let (st, headers, file) = vv(&s, Some(&alice), &id).await;
    assert_eq!(st, StatusCode::OK, "{file}");
    assert_eq!(headers["content-type"], "application/x-virt-viewer");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"osvdi-{}.vv\"", &id[..8])
    );
    let k = keys(&file);
    let host_port = s.base.strip_prefix("http://").unwrap();
    assert_eq!(k["type"], "spice");
    assert_eq!(k["host"], "127.0.0.1");
    assert_eq!(k["proxy"], format!("http://{host_port}"));
    assert_eq!(k["title"], "Spicy (osvdi)");
    assert_eq!(k["delete-this-file"], "1");
    assert_eq!(k["secure-attention"], "ctrl+alt+end");
    assert_eq!(k["release-cursor"], "shift+f12");
    assert_eq!(k["toggle-fullscreen"], "shift+f11");
    assert_eq!(k["password"].len(), 24);
    let spice = format!("127.0.0.1:{}", k["port"]);
    let port: u16 = k["port"].parse().unwrap();
    assert_ne!(port, api_addr(&s).port());

    // Never an open proxy: no ticket for these addresses, names are not resolved.
    let api = api_addr(&s).to_string();
    for target in ["127.0.0.1:22", api.as_str(), "10.1.2.3:5900"] {
        assert_eq!(connect(&s, LOCAL, target).await.0, 403, "CONNECT {target}");
    }
    assert_eq!(
        connect(&s, LOCAL, &format!("localhost:{port}")).await.0,
        400
    );

    // The ticket's first CONNECT reaches the SPICE server; further channels of the same
    // client follow within the window; another address does not.
    let (st, mut main) = connect(&s, LOCAL, &spice).await;
    assert_eq!(st, 200);
    assert_eq!(&spice_link(&mut main, 1).await, b"REDQ");
    let (st, mut display) = connect(&s, LOCAL, &spice).await;
    assert_eq!(st, 200, "a second channel within the window");
    assert_eq!(&spice_link(&mut display, 1).await, b"REDQ");
    assert_eq!(connect(&s, OTHER, &spice).await.0, 403, "another client");
    // After the window the ticket is spent: a replay is refused.
    s.clock
        .advance(osvdi_core::ADMISSION_WINDOW + Duration::from_secs(1));
    assert_eq!(connect(&s, LOCAL, &spice).await.0, 403, "replayed ticket");
    drop((main, display));

    // A ticket unused until it expires is refused too; a new one works again.
    let (st, _, _) = vv(&s, Some(&alice), &id).await;
    assert_eq!(st, StatusCode::OK);
    s.clock
        .advance(osvdi_core::SPICE_TICKET_TTL + Duration::from_secs(1));
    assert_eq!(connect(&s, LOCAL, &spice).await.0, 403, "expired ticket");
    let (st, _, file) = vv(&s, Some(&s.admin), &id).await;
    assert_eq!(st, StatusCode::OK, "admins get one too: {file}");
    let (st, mut inputs) = connect(&s, LOCAL, &spice).await;
    assert_eq!(st, 200);

    // Input on the SPICE inputs channel is the desktop's activity (for idle timeouts).
    assert_eq!(&spice_link(&mut inputs, 3).await, b"REDQ");
    let activity = || async {
        let (_, d) = s.get(&format!("/api/v1/sessions/{id}"), &alice).await;
        d["last_activity"].as_str().unwrap().to_owned()
    };
    let before = activity().await;
    s.clock.advance(Duration::from_secs(40));
    inputs.write_all(&[0u8; 128]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while activity().await == before {
        assert!(Instant::now() < deadline, "input did not count as activity");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(inputs);

    // Someone else's ticket opens their own desktop only.
    let bobs = launch(&s, &bob, &spicy).await;
    s.wait_state(&bob, &bobs, "ready", BOOT_SECS).await;
    let (st, _, file) = vv(&s, Some(&bob), &bobs).await;
    assert_eq!(st, StatusCode::OK);
    let theirs = format!("127.0.0.1:{}", keys(&file)["port"]);
    assert_ne!(theirs, spice);
    s.clock
        .advance(osvdi_core::ADMISSION_WINDOW + Duration::from_secs(1));
    assert_eq!(connect(&s, LOCAL, &spice).await.0, 403, "alice's desktop");
    assert_eq!(connect(&s, LOCAL, &theirs).await.0, 200, "bob's desktop");

    // The audit log has the tickets, the admitted client and the refusals, never a ticket.
    let tickets = audit(&s, "session.spice").await;
    assert_eq!(tickets.len(), 4, "{tickets:?}");
    assert_eq!(tickets[0]["actor"], "bob");
    assert_eq!(tickets[1]["actor"], "admin");
    assert!(
        tickets[1..]
            .iter()
            .all(|e| e["object"] == format!("session:{id}"))
    );
    let proxy = audit(&s, "proxy.connect").await;
    let outcomes: Vec<(&str, &str)> = proxy
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|(o, _)| *o == "success").count(),
        3,
        "{outcomes:?}"
    );
    for expected in [
        "the ticket was already used",
        "the ticket expired unused",
        "the ticket is in use by another client address",
        "no SPICE ticket for this address",
    ] {
        assert!(
            outcomes.contains(&("denied", expected)),
            "{expected}: {outcomes:?}"
        );
    }
    let everything = serde_json::to_string(&audit(&s, "proxy.connect").await).unwrap()
        + &serde_json::to_string(&tickets).unwrap();
    assert!(!everything.contains(&k["password"]));
}

crate::db_tests_with_desktops!(vv_files_tickets_and_the_proxy);

/// Established TCP connections to `port` on this host (the proxy's to the SPICE server).
fn connections_to(port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-Htn", "state", "established", &format!("dport = :{port}")])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn remote_viewer(display: &str, vv: &std::path::Path, log: &std::path::Path) -> Guard {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new("remote-viewer")
        .arg(vv)
        .env("DISPLAY", display)
        // No accessibility bus, no desktop session: nothing to talk to under Xvfb.
        .env("NO_AT_BRIDGE", "1")
        .env("GDK_BACKEND", "x11")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start remote-viewer");
    Guard(child)
}

/// The guest's console as drawn in remote-viewer: red text background (VGA red, 170/0/0 or
/// so), as the guest paints it below.
fn guest_red(p: [u8; 3]) -> bool {
    p[0] >= 140 && p[1] <= 40 && p[2] <= 40
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_viewer_shows_the_guest_through_the_proxy_once() {
    require_tools(&["remote-viewer", "Xvfb", "xwd", "convert", "ss"]);
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let template = s
        .demo_template("Spicy", json!({"protocols": ["vnc", "spice"]}))
        .await;
    let alice = s.user("alice", "user").await;
    let id = launch(&s, &alice, &template).await;
    s.wait_state(&alice, &id, "ready", BOOT_SECS).await;

    // Paint something unmistakable on the guest's screen (tty1), through its serial shell.
    let mut serial = Serial::open(&s.desktop_dir(&id)).await;
    serial
        .run(
            "for i in 1 2 3 4 5 6 7 8; do \
             printf '\\033[1;37;41m  OSVDI SPICE THROUGH THE PROXY  \\033[0m\\n' > /dev/tty1; \
             done; echo painted",
            "painted",
        )
        .await;
    drop(serial);

    let artifacts = artifacts_dir();
    let (st, _, file) = vv(&s, Some(&alice), &id).await;
    assert_eq!(st, StatusCode::OK, "{file}");
    let port: u16 = keys(&file)["port"].parse().unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let first = dir.path().join("first.vv");
    let replay = dir.path().join("replay.vv");
    std::fs::write(&first, &file).unwrap();
    std::fs::write(&replay, &file).unwrap();

    let x = Xvfb::start(1280, 800);
    let shot = artifacts.join("spice-remote-viewer.png");
    let mut viewer = remote_viewer(&x.display, &first, &artifacts.join("remote-viewer.log"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let (region, red) = loop {
        assert!(
            viewer.running(),
            "remote-viewer exited; see remote-viewer.log"
        );
        let screen = x.screenshot(None);
        if let Some((bbox, n)) = screen.find(guest_red)
            && n > 5000
        {
            break (bbox, n);
        }
        if Instant::now() > deadline {
            let last = artifacts.join("spice-remote-viewer-timeout.png");
            x.screenshot(Some(&last));
            panic!("no guest console on screen after 90 s: {}", last.display());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // The guest is on screen, so the ticket's first CONNECT was before this.
    let shown = Instant::now();
    // Let the rest of the frame arrive, then keep the picture.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let screen = x.screenshot(Some(&shot));
    println!("screenshot: {}", shot.display());
    // The red region holds text: white glyph pixels and several colours.
    let white = screen.count_in(region, |p| p.iter().all(|&c| c >= 200));
    let colours = screen.colours_in(region);
    println!("guest console region {region:?}: {red} red, {white} white pixels, {colours} colours");
    assert!(
        white > 1000 && colours >= 2,
        "no text in the guest's console"
    );
    assert!(
        !first.exists(),
        "delete-this-file=1: remote-viewer removed the file"
    );
    let channels = connections_to(port);
    println!("SPICE connections through the proxy: {channels}");
    assert!(channels >= 2, "remote-viewer opens several channels");
    let admitted = audit(&s, "proxy.connect").await;
    assert_eq!(
        admitted
            .iter()
            .filter(|e| e["outcome"] == "success")
            .count(),
        1,
        "one ticket use: {admitted:?}"
    );
    drop(viewer);

    // The same file again, after the admission window: the proxy refuses it.
    s.clock
        .advance(osvdi_core::ADMISSION_WINDOW + Duration::from_secs(1));
    let denied_before = audit(&s, "proxy.connect").await.len();
    let again = remote_viewer(
        &x.display,
        &replay,
        &artifacts.join("remote-viewer-replay.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let refusals = loop {
        let lines = audit(&s, "proxy.connect").await;
        let new: Vec<Value> = lines[..lines.len() - denied_before].to_vec();
        if !new.is_empty() {
            break new;
        }
        assert!(Instant::now() < deadline, "remote-viewer did not try again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        refusals
            .iter()
            .all(|e| e["outcome"] == "denied" && e["detail"] == "the ticket was already used"),
        "{refusals:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    x.screenshot(Some(&artifacts.join("spice-remote-viewer-replay.png")));
    assert!(
        audit(&s, "proxy.connect")
            .await
            .iter()
            .filter(|e| e["outcome"] == "success")
            .count()
            == 1,
        "nothing more was admitted"
    );
    drop(again);

    // Not even directly from the gateway, bypassing the proxy: with its admission window, the
    // ticket's SPICE password was replaced by one nobody knows.
    let direct = dir.path().join("direct.vv");
    let without_proxy: Vec<&str> = file.lines().filter(|l| !l.starts_with("proxy=")).collect();
    std::fs::write(&direct, without_proxy.join("\n") + "\n").unwrap();
    let retired = shown + osvdi_core::ADMISSION_WINDOW + Duration::from_secs(3);
    tokio::time::sleep_until(retired.into()).await;
    let _direct = remote_viewer(
        &x.display,
        &direct,
        &artifacts.join("remote-viewer-direct.log"),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let screen = x.screenshot(Some(&artifacts.join("spice-remote-viewer-direct.png")));
    assert!(
        screen.find(guest_red).is_none_or(|(_, n)| n < 100),
        "the retired ticket still opens the SPICE server"
    );
    assert_eq!(
        connections_to(port),
        0,
        "the SPICE server refused the retired ticket"
    );
}
