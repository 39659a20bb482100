//! Browser consoles on a real demo guest: one-time tokens (used, expired, someone else's),
//! the RFB handshake through the WebSocket relay, connected/disconnected and activity, the
//! portal's pages and their headers.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Db, TestServer};

const BOOT_SECS: u64 = 120;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An RFB client over the WebSocket relay, just enough for the handshake.
struct Rfb {
    ws: Ws,
    buf: Vec<u8>,
}

impl Rfb {
    async fn read(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("the relay answers")
                .expect("the relay is open")
                .expect("a WebSocket message");
            match msg {
                Message::Binary(b) => self.buf.extend_from_slice(&b),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
        self.buf.drain(..n).collect()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).await.unwrap();
    }

    /// ProtocolVersion, security None, ClientInit; returns the framebuffer size.
    async fn handshake(&mut self) -> (u16, u16) {
        assert_eq!(self.read(12).await, b"RFB 003.008\n");
        self.send(b"RFB 003.008\n").await;
        let n = self.read(1).await[0];
        let types = self.read(usize::from(n)).await;
        assert!(types.contains(&1), "security None offered: {types:?}");
        self.send(&[1]).await;
        assert_eq!(self.read(4).await, [0, 0, 0, 0], "security result OK");
        self.send(&[1]).await;
        let init = self.read(24).await;
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
        self.read(name_len as usize).await;
        (
            u16::from_be_bytes([init[0], init[1]]),
            u16::from_be_bytes([init[2], init[3]]),
        )
    }
}

/// Opens the console WebSocket as `login` (a bearer token), with extra headers.
async fn connect(
    url: &str,
    login: &str,
    extra: &[(&'static str, &str)],
) -> Result<(Rfb, Option<String>), StatusCode> {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("authorization", format!("Bearer {login}").parse().unwrap());
    h.insert("sec-websocket-protocol", "binary".parse().unwrap());
    for (k, v) in extra {
        h.insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, res)) => {
            let protocol = res
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            Ok((Rfb { ws, buf: vec![] }, protocol))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(e) => panic!("WebSocket: {e}"),
    }
}

async fn console(s: &TestServer, login: &str, id: &str) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        &format!("/api/v1/sessions/{id}/console"),
        Some(login),
        None,
    )
    .await
}

async fn session(s: &TestServer, login: &str, id: &str) -> Value {
    s.get(&format!("/api/v1/sessions/{id}"), login).await.1
}

async fn wait_connected(s: &TestServer, login: &str, id: &str, connected: bool) {
    for _ in 0..50 {
        if session(s, login, id).await["connected"] == connected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("session never connected={connected}");
}

async fn console_actions(s: &TestServer, actor: &str) -> Vec<(String, String, String)> {
    let (_, audit) = s
        .get(
            &format!("/api/v1/audit?actor={actor}&action=session.console"),
            &s.admin,
        )
        .await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap().to_owned(),
                e["object"].as_str().unwrap().to_owned(),
            )
        })
        .rev()
        .collect()
}

async fn tokens_relay_and_connection_state(s: TestServer) {
    let template = s.demo_template("Demo", json!({})).await;
    let ursula = s.user("ursula", "user").await;
    let bob = s.user("bob", "user").await;
    let (_, d) = s
        .post(
            "/api/v1/sessions",
            &ursula,
            json!({"template_id": template}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["connected"], false);
    let (st, body) = console(&s, &ursula, &id).await;
    assert_eq!(st, StatusCode::CONFLICT, "not ready yet: {body}");
    s.wait_state(&ursula, &id, "ready", BOOT_SECS).await;

    // Only the owner (and admins) get a token.
    assert_eq!(console(&s, &bob, &id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(console(&s, &s.admin, &id).await.0, StatusCode::OK);
    let (st, t) = console(&s, &ursula, &id).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let url = t["url"].as_str().unwrap().to_owned();
    let token = t["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    assert_eq!(
        url,
        format!(
            "{}/ws/console?token={token}",
            s.base.replace("http://", "ws://")
        )
    );

    // The RFB greeting and handshake come through the relay; the session shows connected.
    let before = session(&s, &ursula, &id).await["last_activity"].clone();
    let (mut rfb, protocol) = connect(&url, &ursula, &[]).await.unwrap();
    assert_eq!(protocol.as_deref(), Some("binary"), "noVNC's subprotocol");
    let (w, h) = rfb.handshake().await;
    assert!(w >= 640 && h >= 400, "{w}x{h}");
    wait_connected(&s, &ursula, &id, true).await;

    // Typing is activity (written down at most every 30 s); refreshing the screen is not.
    s.clock.advance(Duration::from_secs(45));
    rfb.send(&[3, 1, 0, 0, 0, 0, 2, 128, 1, 144]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connected_at = session(&s, &ursula, &id).await["last_activity"].clone();
    assert_ne!(connected_at, before, "connecting is activity");
    rfb.send(&[4, 1, 0, 0, 0, 0, 0, 0x61]).await;
    let mut typed = connected_at.clone();
    for _ in 0..50 {
        typed = session(&s, &ursula, &id).await["last_activity"].clone();
        if typed != connected_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        typed.as_str() > connected_at.as_str(),
        "a key press is activity: {connected_at} -> {typed}"
    );

    // Used once: a replay is refused, while the first connection goes on.
    assert_eq!(
        connect(&url, &ursula, &[]).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    rfb.send(&[3, 1, 0, 0, 0, 0, 0, 16, 0, 16]).await;
    assert_eq!(rfb.read(1).await, [0], "a framebuffer update still comes");

    // A second viewer at once (another browser), then both close: disconnected.
    let (_, t2) = console(&s, &ursula, &id).await;
    let (mut rfb2, _) = connect(t2["url"].as_str().unwrap(), &ursula, &[])
        .await
        .unwrap();
    rfb2.handshake().await;
    rfb.ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(session(&s, &ursula, &id).await["connected"], true);
    drop(rfb2);
    wait_connected(&s, &ursula, &id, false).await;

    // Someone else's token is refused (and spent).
    let (_, t3) = console(&s, &ursula, &id).await;
    let url3 = t3["url"].as_str().unwrap();
    assert_eq!(
        connect(url3, &bob, &[]).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        connect(url3, &ursula, &[]).await.err(),
        Some(StatusCode::FORBIDDEN)
    );

    // Expired after 60 s.
    let (_, t4) = console(&s, &ursula, &id).await;
    s.clock.advance(Duration::from_secs(61));
    assert_eq!(
        connect(t4["url"].as_str().unwrap(), &ursula, &[])
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );

    // Other sites cannot open it with the person's credentials; made-up and absent tokens.
    let (_, t5) = console(&s, &ursula, &id).await;
    let url5 = t5["url"].as_str().unwrap();
    assert_eq!(
        connect(url5, &ursula, &[("origin", "http://evil.example")])
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    let base = s.base.replace("http://", "ws://");
    assert_eq!(
        connect(&format!("{base}/ws/console?token=made-up"), &ursula, &[])
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        connect(&format!("{base}/ws/console"), &ursula, &[])
            .await
            .err(),
        Some(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        connect(url5, "osvdi_not-a-login", &[]).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    // A cookie-authenticated token request from another site is refused.
    let res = s
        .http
        .post(s.url(&format!("/api/v1/sessions/{id}/console")))
        .header(header::COOKIE, format!("osvdi_session={ursula}"))
        .header(header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Every issue and refusal is in the audit log.
    let details: Vec<_> = console_actions(&s, "ursula")
        .await
        .into_iter()
        .map(|(o, d, obj)| {
            assert!(obj == format!("session:{id}") || obj == "console", "{obj}");
            format!("{o}: {d}")
        })
        .collect();
    assert_eq!(
        details,
        [
            "success: console token issued",
            "denied: console token used again",
            "success: console token issued",
            "success: console token issued",
            "denied: console token used again",
            "success: console token issued",
            "denied: expired console token",
            "success: console token issued",
            "denied: unknown console token",
        ]
    );
    let bobs = console_actions(&s, "bob").await;
    assert_eq!(
        bobs,
        [(
            "denied".to_owned(),
            "console token of another person".to_owned(),
            format!("session:{id}")
        )]
    );

    // No console for a suspended desktop.
    s.call(
        Method::POST,
        &format!("/api/v1/sessions/{id}/suspend"),
        Some(&ursula),
        None,
    )
    .await;
    s.wait_state(&ursula, &id, "suspended", 60).await;
    assert_eq!(console(&s, &ursula, &id).await.0, StatusCode::CONFLICT);
}

crate::db_tests_with_desktops!(tokens_relay_and_connection_state);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspend_closes_the_console() {
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let template = s.demo_template("Demo", json!({})).await;
    let (_, d) = s
        .post(
            "/api/v1/sessions",
            &s.admin,
            json!({"template_id": template}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    s.wait_state(&s.admin, &id, "ready", BOOT_SECS).await;
    let (_, t) = console(&s, &s.admin, &id).await;
    let (mut rfb, _) = connect(t["url"].as_str().unwrap(), &s.admin, &[])
        .await
        .unwrap();
    rfb.handshake().await;
    s.call(
        Method::POST,
        &format!("/api/v1/sessions/{id}/suspend"),
        Some(&s.admin),
        None,
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match rfb.ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the relay closes when the desktop goes");
    wait_connected(&s, &s.admin, &id, false).await;
}

#[tokio::test]
async fn the_portal_is_served_with_a_strict_policy() {
    let s = TestServer::start(Db::Sqlite, |_| {}).await.unwrap();
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/console", "text/html; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        (
            "/static/vendor/novnc/core/rfb.js",
            "text/javascript; charset=utf-8",
        ),
        ("/static/style.css", "text/css; charset=utf-8"),
    ] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h[header::CONTENT_TYPE], kind, "{path}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self';") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        let again = s
            .http
            .get(s.url(path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    for path in [
        "/static/../Cargo.toml",
        "/static/nothing.js",
        "/static/%2e%2e/Cargo.toml",
    ] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (_, doc) = s
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert!(doc["paths"]["/api/v1/sessions/{id}/console"]["post"].is_object());
    assert!(doc["paths"]["/ws/console"]["get"].is_object());
}
