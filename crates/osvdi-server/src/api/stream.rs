//! The desktop as H.264 video: `GET /ws/stream?token=...` (a one-time token from
//! `POST /api/v1/sessions/{id}/console?purpose=stream`). The server is the VNC client
//! (`osvdi-rfb`), keeps the picture in an `osvdi-display` pipeline (openh264, camera mode) and
//! sends what changed as H.264 access units; the viewer's input goes back as RFB events.
//!
//! Server → viewer:
//! - text `{"type":"init","codec":"avc1.PPCCLL","width":W,"height":H}`, before the first
//!   picture and again before the first picture after a resize;
//! - binary: a 16-byte header (byte 0 version 1, byte 1 flags with bit 0 = keyframe, bytes
//!   2..6 the frame number u32 BE, bytes 6..14 the capture time in ms since the Unix epoch u64
//!   BE, bytes 14..16 zero) and one Annex B access unit.
//!
//! Viewer → server (text JSON): `{"type":"keyframe"}`, `{"type":"pointer","x","y","buttons"}`,
//! `{"type":"key","down","keysym","code"?}` (`code`: a QEMU qnum/XT scancode, sent as a QEMU
//! extended key event when given) and `{"type":"ack","frame"}` (accepted, not used yet).
//!
//! Pictures are encoded only when something changed, at most every [`MIN_INTERVAL`], and only
//! when the previous picture has left: a slow viewer gets fewer pictures, each carrying all the
//! changes since the last (H.264 pictures depend on each other, so none is ever dropped once
//! encoded), and at most one waits to be sent.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use osvdi_core::ConsoleLink;
use osvdi_display::nal::{NAL_SPS, nal_type, split_annex_b};
use osvdi_display::{
    EncodedFrame, OpenH264Config, OpenH264Encoder, Pipeline, Rect as DisplayRect, Update,
};
use osvdi_rfb::driver::Connection;
use osvdi_rfb::{Client, Config, Event, RectData};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::AppState;
use crate::api::console::connect_display;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, refuse_cross_site};

/// At most one picture per this interval (about 30 per second).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(33);
/// The largest message a viewer may send (its messages are small JSON).
const MAX_MESSAGE: usize = 64 << 10;
/// The header in front of each access unit.
pub(crate) const HEADER_LEN: usize = 16;
/// Used when the SPS cannot be read: Constrained Baseline, level 3.1.
const FALLBACK_CODEC: &str = "avc1.42E01F";

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct StreamParams {
    /// The one-time token from `POST /api/v1/sessions/{id}/console?purpose=stream`.
    token: String,
}

/// The desktop as H.264 video over a WebSocket (see the module documentation of the server for
/// the messages). Needs the login that asked for the token, and the token, once.
#[utoipa::path(get, path = "/ws/stream", tag = "sessions", params(StreamParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 101, description = "Switching to the video stream"),
        (status = 403, description = "Token used, expired, someone else's, or refused by policy", body = ErrorBody),
        (status = 409, description = "The session is not ready", body = ErrorBody)))]
pub(crate) async fn stream(
    State(s): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers)?;
    let Ok(Query(params)) = params else {
        return Err(ApiError::bad_request("A stream token is needed"));
    };
    let link = s.core.open_stream(&auth.caller, &params.token).await?;
    let ws = ws
        .max_message_size(MAX_MESSAGE)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "stream upgrade failed"));
    let vnc = connect_display(&link).await?;
    Ok(ws.on_upgrade(move |socket| run(socket, vnc, link)))
}

/// What the viewer may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum FromViewer {
    Keyframe,
    Pointer {
        x: u16,
        y: u16,
        #[serde(default)]
        buttons: u8,
    },
    Key {
        down: bool,
        keysym: u32,
        #[serde(default)]
        code: Option<u32>,
    },
    /// The viewer decoded picture `frame`. Not used yet (for latency figures and finer
    /// back-pressure later).
    Ack {
        #[allow(dead_code)]
        frame: u32,
    },
}

/// One picture on its way to the viewer, with the init message to send before it, if any.
struct Outgoing {
    init: Option<String>,
    picture: Bytes,
}

/// The `avc1.PPCCLL` codec string of the first SPS in `annex_b`, if there is one.
pub(crate) fn codec_string(annex_b: &[u8]) -> Option<String> {
    let sps = split_annex_b(annex_b)
        .into_iter()
        .find(|n| nal_type(n) == NAL_SPS)?;
    let [_, profile, constraints, level, ..] = *sps else {
        return None;
    };
    Some(format!("avc1.{profile:02X}{constraints:02X}{level:02X}"))
}

/// The 16-byte header and the access unit, as one binary message.
pub(crate) fn frame_message(number: u32, captured_ms: u64, frame: &EncodedFrame) -> Bytes {
    let mut out = Vec::with_capacity(HEADER_LEN + frame.data.len());
    out.push(1);
    out.push(u8::from(frame.keyframe));
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&captured_ms.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&frame.data);
    Bytes::from(out)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn init_message(codec: &str, (width, height): (u32, u32)) -> String {
    serde_json::json!({"type": "init", "codec": codec, "width": width, "height": height})
        .to_string()
}

/// Sends what the stream task hands over until the viewer goes or the task ends.
async fn writer(mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some(out) = rx.recv().await {
        if let Some(init) = out.init
            && sink.send(Message::Text(init.into())).await.is_err()
        {
            return;
        }
        if sink.send(Message::Binary(out.picture)).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Runs the stream until either side closes; the link is dropped (disconnected) at the end.
async fn run<S>(ws: WebSocket, vnc: S, link: ConsoleLink)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let desktop = link.desktop();
    let (sink, source) = ws.split();
    // One picture waiting at most (plus the one being written).
    let (tx, rx) = mpsc::channel::<Outgoing>(1);
    let writing = tokio::spawn(writer(sink, rx));
    if let Err(reason) = Stream::pump(source, vnc, link, &tx).await {
        tracing::info!(%desktop, %reason, "stream ended");
    }
    drop(tx);
    let _ = writing.await;
}

struct Stream<S> {
    vnc: Connection<S>,
    pipeline: Pipeline,
    link: ConsoleLink,
    /// Something changed (or a keyframe was asked for) since the last picture.
    dirty: bool,
    /// When the first change since the last picture arrived.
    captured: Option<SystemTime>,
    /// The viewer needs an init message before the next picture (start, resize).
    announce: bool,
    frame_number: u32,
}

/// Runs CPU-heavy work (colour conversion and encoding: milliseconds per frame, more at 1080p)
/// without stalling the other tasks of this worker: on the multi-threaded runtime the worker
/// hands its other tasks over first.
fn encode_off_the_reactor<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream<S> {
    async fn pump(
        mut source: SplitStream<WebSocket>,
        vnc: S,
        link: ConsoleLink,
        tx: &mpsc::Sender<Outgoing>,
    ) -> Result<(), String> {
        let mut vnc = Connection::new(vnc, Client::new(Config::default()));
        let (width, height) = loop {
            match vnc.next_event().await.map_err(|e| e.to_string())? {
                Event::Connected { width, height, .. } => break (width, height),
                other => tracing::debug!(?other, "VNC event before connecting"),
            }
        };
        let encoder = OpenH264Encoder::new(
            OpenH264Config::default(),
            u32::from(width) + u32::from(width) % 2,
            u32::from(height) + u32::from(height) % 2,
        )
        .map_err(|e| e.to_string())?;
        let pipeline = Pipeline::new(
            Box::new(encoder),
            u32::from(width),
            u32::from(height),
            MIN_INTERVAL,
        )
        .map_err(|e| e.to_string())?;
        vnc.client().request_full_update(false);
        vnc.flush().await.map_err(|e| e.to_string())?;
        let mut me = Stream {
            vnc,
            pipeline,
            link,
            dirty: true,
            captured: Some(SystemTime::now()),
            announce: true,
            frame_number: 0,
        };
        loop {
            let due = me
                .pipeline
                .poll_timeout()
                .map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
            // Every branch is cancel-safe: the RFB driver has nothing left to write when it
            // waits (requests are flushed below, outside the select), so it waits in a read.
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(Message::Text(text))) => me.on_viewer(text.as_str()).await,
                    Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
                },
                ev = me.vnc.next_event() => me.on_desktop(ev.map_err(|e| e.to_string())?)?,
                permit = async {
                    tokio::time::sleep_until(due).await;
                    tx.reserve().await
                }, if me.dirty => {
                    let Ok(permit) = permit else { return Ok(()) };
                    if let Some(out) = encode_off_the_reactor(|| me.picture())? {
                        permit.send(out);
                    }
                }
            }
            me.vnc.flush().await.map_err(|e| e.to_string())?;
        }
    }

    /// Encodes the next picture if it is due.
    fn picture(&mut self) -> Result<Option<Outgoing>, String> {
        let Some(frame) = self
            .pipeline
            .next_frame(Instant::now())
            .map_err(|e| e.to_string())?
        else {
            // Not yet due, or nothing changed after all.
            self.dirty = self.pipeline.poll_timeout().is_some();
            return Ok(None);
        };
        self.dirty = false;
        let captured = unix_ms(self.captured.take().unwrap_or_else(SystemTime::now));
        let init = if self.announce && frame.keyframe {
            self.announce = false;
            let codec = codec_string(&frame.data);
            Some(init_message(
                codec.as_deref().unwrap_or(FALLBACK_CODEC),
                self.pipeline.visible_size(),
            ))
        } else {
            None
        };
        let picture = frame_message(self.frame_number, captured, &frame);
        self.frame_number = self.frame_number.wrapping_add(1);
        Ok(Some(Outgoing { init, picture }))
    }

    fn damaged(&mut self) {
        self.dirty = true;
        self.captured.get_or_insert_with(SystemTime::now);
    }

    fn on_desktop(&mut self, ev: Event) -> Result<(), String> {
        let Event::FramebufferUpdate { rects } = ev else {
            return Ok(());
        };
        for r in rects {
            let rect = DisplayRect::new(
                u32::from(r.x),
                u32::from(r.y),
                u32::from(r.w),
                u32::from(r.h),
            );
            let update = match &r.data {
                RectData::Raw(bytes) => Update::Raw { rect, bytes },
                RectData::CopyRect { src_x, src_y } => Update::CopyRect {
                    dst: rect,
                    src_x: u32::from(*src_x),
                    src_y: u32::from(*src_y),
                },
                RectData::DesktopSize | RectData::ExtendedDesktopSize { .. } => {
                    self.announce = true;
                    Update::Resize {
                        width: u32::from(r.w),
                        height: u32::from(r.h),
                    }
                }
                // The cursor travels separately (not yet); QEMU's key events are known to
                // the RFB client.
                // Tight is never asked for here.
                RectData::Cursor { .. } | RectData::QemuExtendedKeyEvent | RectData::Tight(_) => {
                    continue;
                }
            };
            self.pipeline.on_update(update).map_err(|e| e.to_string())?;
            self.damaged();
        }
        // QEMU answers an incremental request only once something changed: an idle desktop
        // sends nothing, and so do we.
        self.vnc.client().request_full_update(true);
        Ok(())
    }

    async fn on_viewer(&mut self, text: &str) {
        let msg = match serde_json::from_str::<FromViewer>(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a stream message");
                return;
            }
        };
        match msg {
            FromViewer::Keyframe => {
                self.pipeline.request_keyframe();
                self.damaged();
            }
            FromViewer::Pointer { x, y, buttons } => {
                self.vnc.client().pointer_event(buttons, x, y);
                self.link.input_activity().await;
            }
            FromViewer::Key { down, keysym, code } => {
                let client = self.vnc.client();
                match code {
                    Some(code) if client.supports_qemu_key_events() => {
                        client.qemu_key_event(down, keysym, code);
                    }
                    _ => client.key_event(down, keysym),
                }
                self.link.input_activity().await;
            }
            FromViewer::Ack { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_codec() {
        let frame = EncodedFrame {
            keyframe: true,
            data: vec![0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, 9, 0, 0, 1, 0x68, 1],
        };
        assert_eq!(codec_string(&frame.data).as_deref(), Some("avc1.42C01F"));
        assert_eq!(codec_string(&[0, 0, 1, 0x65, 1]), None);
        let m = frame_message(0x0102_0304, 0x0A0B, &frame);
        assert_eq!(m.len(), HEADER_LEN + frame.data.len());
        assert_eq!(
            m[..HEADER_LEN],
            [1, 1, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0x0A, 0x0B, 0, 0]
        );
        assert_eq!(m[HEADER_LEN..], frame.data[..]);
    }

    #[test]
    fn viewer_messages() {
        let key: FromViewer =
            serde_json::from_str(r#"{"type":"key","down":true,"keysym":97,"code":30}"#).unwrap();
        assert!(matches!(
            key,
            FromViewer::Key {
                down: true,
                keysym: 97,
                code: Some(30)
            }
        ));
        assert!(serde_json::from_str::<FromViewer>(r#"{"type":"ack","frame":3}"#).is_ok());
        assert!(serde_json::from_str::<FromViewer>(r#"{"type":"nope"}"#).is_err());
    }
}
