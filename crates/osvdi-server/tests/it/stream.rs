//! The desktop as H.264 video (`/ws/stream`) on a real demo guest: init message, a first
//! keyframe with SPS/PPS/IDR, no bytes while the guest is idle, pictures again after a key
//! press, back-pressure from acknowledgements, the figures, and one-time tokens.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::TestServer;

const BOOT_SECS: u64 = 120;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, login: &str) -> Result<Ws, StatusCode> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {login}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(e) => panic!("WebSocket: {e}"),
    }
}

/// The next text or binary message, within `secs`, leaving out the figures (`stats`, which
/// come once a second while anything happens); `None` on timeout.
async fn next(ws: &mut Ws, secs: u64) -> Option<Message> {
    next_with_stats(ws, secs, &mut vec![]).await
}

/// [`next`], keeping the figures it leaves out in `stats`.
async fn next_with_stats(ws: &mut Ws, secs: u64, stats: &mut Vec<Value>) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match msg.expect("the stream is open").expect("a message") {
            Message::Text(t) if t.as_str().contains(r#""type":"stats""#) => {
                stats.push(serde_json::from_str(t.as_str()).unwrap());
            }
            m @ (Message::Text(_) | Message::Binary(_)) => return Some(m),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// (keyframe, frame number, NAL unit types) of a binary picture message.
fn picture(bytes: &[u8]) -> (bool, u32, Vec<u8>) {
    assert!(bytes.len() > 16, "header and access unit");
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(bytes[14..16], [0, 0]);
    let number = u32::from_be_bytes(bytes[2..6].try_into().unwrap());
    let captured = u64::from_be_bytes(bytes[6..14].try_into().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        captured <= now && now - captured < 60_000,
        "{captured} vs {now}"
    );
    let au = &bytes[16..];
    let mut types = vec![];
    for i in 0..au.len().saturating_sub(3) {
        if au[i..i + 3] == [0, 0, 1] {
            types.push(au[i + 3] & 0x1f);
        }
    }
    (bytes[1] & 1 == 1, number, types)
}

async fn stream_token(s: &TestServer, login: &str, id: &str) -> Value {
    let (st, t) = s
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{id}/console?purpose=stream"),
            Some(login),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    t
}

async fn video_of_an_idle_and_a_typing_desktop(s: TestServer) {
    let template = s.demo_template("Demo", json!({})).await;
    let ursula = s.user("ursula", "user").await;
    let (_, d) = s
        .post(
            "/api/v1/sessions",
            &ursula,
            json!({"template_id": template}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    s.wait_state(&ursula, &id, "ready", BOOT_SECS).await;

    let t = stream_token(&s, &ursula, &id).await;
    let url = t["url"].as_str().unwrap().to_owned();
    assert!(url.contains("/ws/stream?token="), "{url}");
    let mut ws = connect(&url, &ursula).await.unwrap();

    // init, then a keyframe with SPS, PPS and an IDR slice.
    let Some(Message::Text(init)) = next(&mut ws, 20).await else {
        panic!("an init message first");
    };
    let init: Value = serde_json::from_str(init.as_str()).unwrap();
    assert_eq!(init["type"], "init");
    assert!(
        init["codec"].as_str().unwrap().starts_with("avc1."),
        "{init}"
    );
    let (w, h) = (
        init["width"].as_u64().unwrap(),
        init["height"].as_u64().unwrap(),
    );
    assert!(w >= 640 && h >= 400, "{init}");
    assert_eq!(
        init["clipboard"], true,
        "the default policy lets it through"
    );
    let Some(Message::Binary(first)) = next(&mut ws, 20).await else {
        panic!("a picture");
    };
    let (key, number, types) = picture(&first);
    assert!(key, "the first picture is a keyframe");
    assert_eq!(number, 0);
    for t in [7, 8, 5] {
        assert!(types.contains(&t), "NAL {t} in {types:?}");
    }

    // A replayed token is refused; a console token does not open a stream.
    assert_eq!(
        connect(&url, &ursula).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    let (_, console) = s
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{id}/console"),
            Some(&ursula),
            None,
        )
        .await;
    let wrong = console["url"]
        .as_str()
        .unwrap()
        .replace("/ws/console", "/ws/stream");
    assert_eq!(
        connect(&wrong, &ursula).await.err(),
        Some(StatusCode::FORBIDDEN)
    );

    // Let the screen settle, then an idle guest costs nothing.
    let settle = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(_)) = tokio::time::timeout_at(settle, next(&mut ws, 3)).await {}
    let idle = next(&mut ws, 2).await;
    assert!(idle.is_none(), "no pictures from an idle desktop: {idle:?}");

    // Typing 'a' echoes on the shell: new (P) pictures.
    for down in [true, false] {
        let key = json!({"type": "key", "down": down, "keysym": 0x61, "code": 0x1e});
        ws.send(Message::text(key.to_string())).await.unwrap();
    }
    ws.send(Message::text(
        json!({"type": "ack", "frame": 0}).to_string(),
    ))
    .await
    .unwrap();
    let Some(Message::Binary(typed)) = next(&mut ws, 10).await else {
        panic!("a picture after typing");
    };
    let (key, number, types) = picture(&typed);
    assert!(!key, "a change is not a keyframe: {types:?}");
    assert!(number > 0);
    assert!(types.contains(&1) && !types.contains(&5), "{types:?}");

    // Acknowledged pictures give round trips in the figures; beyond 3 unacknowledged ones,
    // encoding waits (about a second) however much changes.
    let (_, mut last, _) = picture(&typed);
    ws.send(Message::text(
        json!({"type": "ack", "frame": last, "decode_ms": 1.5}).to_string(),
    ))
    .await
    .unwrap();
    let mut stats = vec![];
    let typing = tokio::time::Instant::now();
    let mut sent = 0;
    while typing.elapsed() < Duration::from_millis(800) {
        for down in [true, false] {
            let key = json!({"type": "key", "down": down, "keysym": 0x61, "code": 0x1e});
            ws.send(Message::text(key.to_string())).await.unwrap();
        }
        while let Some(Message::Binary(b)) = next_with_stats(&mut ws, 0, &mut stats).await {
            last = picture(&b).1;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    assert!(
        (1..=3).contains(&sent),
        "{sent} pictures unacknowledged in 0.8 s of typing"
    );
    // Acknowledged: the changes held back come in the next picture.
    ws.send(Message::text(
        json!({"type": "ack", "frame": last}).to_string(),
    ))
    .await
    .unwrap();
    let Some(Message::Binary(more)) = next_with_stats(&mut ws, 3, &mut stats).await else {
        panic!("a picture once acknowledged");
    };
    assert!(picture(&more).1 > last);
    for _ in 0..5 {
        if stats.iter().any(|s| !s["rtt_ms"].is_null()) {
            break;
        }
        next_with_stats(&mut ws, 2, &mut stats).await;
    }
    let s = stats
        .iter()
        .find(|s| !s["rtt_ms"].is_null())
        .expect("figures with a round trip");
    assert!(s["rtt_ms"].as_f64().unwrap() >= 0.0, "{s}");
    assert!(
        s["frames"].as_u64().is_some() && s["bytes"].as_u64().is_some(),
        "{s}"
    );

    // Clipboard text and a resize request reach QEMU (the demo guest has no clipboard agent,
    // and its standard VGA refuses the size) without ending the stream; nonsense is ignored.
    for msg in [
        json!({"type": "clipboard", "text": "héllo €"}),
        json!({"type": "resize", "width": 800, "height": 600}),
        json!({"type": "pointer", "x": 5, "y": 5, "buttons": 0}),
        json!({"type": "nonsense"}),
    ] {
        ws.send(Message::text(msg.to_string())).await.unwrap();
    }
    ws.send(Message::text("not json")).await.unwrap();

    // A keyframe on request.
    ws.send(Message::text(json!({"type": "keyframe"}).to_string()))
        .await
        .unwrap();
    loop {
        let Some(Message::Binary(b)) = next(&mut ws, 10).await else {
            panic!("a keyframe on request");
        };
        if picture(&b).0 {
            break;
        }
    }
    ws.close(None).await.unwrap();
}

crate::db_tests_with_desktops!(video_of_an_idle_and_a_typing_desktop);
