//! The desktop as H.264 video: `GET /ws/stream?token=...` (a one-time token from
//! `POST /api/v1/sessions/{id}/console?purpose=stream`). The server is the VNC client
//! (`osvdi-rfb`), keeps the picture in an `osvdi-display` pipeline (the site's encoder,
//! openh264 by default) and sends what changed as H.264 access units; the viewer's input goes
//! back as RFB events.
//! This documentation is the protocol's reference; `web/stream.js` and `web/stream-worker.js`
//! are its viewer.
//!
//! Server → viewer:
//! - text `{"type":"init","codec":"avc1.PPCCLL","width":W,"height":H,"clipboard":bool,
//!   "resize":bool}` before the first picture and again before the first picture after a
//!   resize (a keyframe). `clipboard`: the template's policy lets the clipboard through (when
//!   false, clipboard messages are dropped both ways); `resize`: the desktop announced
//!   ExtendedDesktopSize, so resize requests are passed on (otherwise they are ignored);
//! - binary: a 16-byte header (byte 0 version 1, byte 1 flags with bit 0 = keyframe, bytes
//!   2..6 the frame number u32 BE, bytes 6..14 the capture time (first change in this picture)
//!   in ms since the Unix epoch u64 BE, bytes 14..16 zero) and one Annex B access unit;
//! - text `{"type":"cursor","x_hot","y_hot","width","height","rgba"}`: the pointer's shape
//!   (RFB Cursor pseudo-encoding, asked of the VNC server so that the pointer is not part of
//!   the video), `rgba` the pixels row by row in base64, alpha 0 or 255; 0 x 0 = no pointer;
//! - text `{"type":"clipboard","text"}`: the desktop's clipboard changed (policy permitting);
//! - text `{"type":"resize","status"}`: the desktop refused a resize request (its
//!   ExtendedDesktopSize status: 1 prohibited, 2 out of resources, 3 invalid layout, which is
//!   QEMU's answer when the display device cannot change size, as the standard VGA);
//! - text `{"type":"stats","frames","bytes","period_ms","encode_ms","rtt_ms","rtt_max_ms",
//!   "decode_ms","waits","in_flight","total_frames"}` once a second while anything happens
//!   (see [`flow::Stats`]; null where nothing was measured).
//!
//! Viewer → server (text JSON): `{"type":"keyframe"}` (the viewer lost its place: pictures
//! not acknowledged so far no longer count as on their way); `{"type":"pointer","x","y","buttons"}`
//! (framebuffer coordinates, RFB button mask: bit 0 left, 1 middle, 2 right, 3/4 wheel up/down);
//! `{"type":"key","down","keysym","code"?}` (`code`: a QEMU qnum/XT scancode, `0x80 | code`
//! for E0-prefixed keys, sent as a QEMU extended key event when given);
//! `{"type":"ack","frame","decode_ms"?}` once a picture is decoded; `{"type":"clipboard",
//! "text"}` (sent to the desktop as Latin-1, other characters as `?`);
//! `{"type":"resize","width","height"}` (RFB SetDesktopSize, sides clamped to 64..8192 and
//! made even). Unknown or malformed messages are ignored.
//!
//! Pacing: pictures are encoded only when something changed, at most every [`MIN_INTERVAL`],
//! and only when the sender can take one (at most one waits). Once the viewer acknowledges
//! pictures, at most [`flow::MAX_IN_FLIGHT`] may be unacknowledged: beyond that encoding waits
//! for an acknowledgement (or [`flow::ACK_WAIT`] after the last picture) while the changes
//! accumulate, so the next picture carries them all. H.264 pictures depend on each other, so
//! none is dropped once encoded; intermediate states are skipped instead. Text messages wait
//! in a queue of [`TEXT_QUEUE`]; figures are dropped when it is full.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use osvdi_core::{Caller, ConsoleLink};
use osvdi_display::{EncoderKind, Pipeline, Rect as DisplayRect, Update, new_encoder};
use osvdi_model::DesktopId;
use osvdi_rfb::driver::Connection;
use osvdi_rfb::{Client, Config, Event, Rect, RectData, Screen};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::AppState;
use crate::api::console::connect_display;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, refuse_cross_site};

mod flow;
mod messages;

use flow::Flow;
use messages::{
    FALLBACK_CODEC, FromViewer, Init, clamp_size, clipboard_message, codec_string, cursor_message,
    frame_message, init_message, resize_refused_message, stats_message, to_latin1,
};

/// At most one picture per this interval (about 30 per second).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(33);
/// The largest message a viewer may send (clipboard text is the big one).
const MAX_MESSAGE: usize = 1 << 20;
/// Text messages (cursor, clipboard, figures) waiting for the socket, at most.
const TEXT_QUEUE: usize = 16;

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
    let clipboard = clipboard_allowed(&s, &auth.caller, link.desktop()).await;
    let ws = ws
        .max_message_size(MAX_MESSAGE)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "stream upgrade failed"));
    let vnc = connect_display(&link).await?;
    let encoder = s.display.encoder;
    Ok(ws.on_upgrade(move |socket| run(socket, vnc, link, clipboard, encoder)))
}

/// Whether the template's policy lets the clipboard through this desktop's stream. Off when
/// the template cannot be read (nothing is passed that the policy may forbid).
async fn clipboard_allowed(s: &AppState, caller: &Caller, desktop: DesktopId) -> bool {
    let policy = async {
        let d = s.core.desktop(caller, desktop).await?;
        s.core.template(caller, d.template).await
    };
    match policy.await {
        Ok(t) => t.policy.clipboard,
        Err(e) => {
            tracing::debug!(%desktop, error = %e, "no template policy for the stream; clipboard off");
            false
        }
    }
}

/// One picture on its way to the viewer, with the init message to send before it, if any.
struct Outgoing {
    init: Option<String>,
    picture: Bytes,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sends what the stream task hands over until the viewer goes or the task ends; text
/// messages (small) before pictures.
async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut pictures: mpsc::Receiver<Outgoing>,
    mut texts: mpsc::Receiver<String>,
) {
    loop {
        let (first, second) = tokio::select! {
            biased;
            t = texts.recv() => match t {
                Some(t) => (Message::Text(t.into()), None),
                None => break,
            },
            p = pictures.recv() => match p {
                Some(Outgoing { init: Some(init), picture }) => {
                    (Message::Text(init.into()), Some(Message::Binary(picture)))
                }
                Some(Outgoing { init: None, picture }) => (Message::Binary(picture), None),
                None => break,
            },
        };
        for m in std::iter::once(first).chain(second) {
            if sink.send(m).await.is_err() {
                return;
            }
        }
    }
    let _ = sink.close().await;
}

/// Runs the stream until either side closes; the link is dropped (disconnected) at the end.
async fn run<S>(ws: WebSocket, vnc: S, link: ConsoleLink, clipboard: bool, encoder: EncoderKind)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let desktop = link.desktop();
    let (sink, source) = ws.split();
    // One picture waiting at most (plus the one being written).
    let (tx, rx) = mpsc::channel::<Outgoing>(1);
    let (texts, texts_rx) = mpsc::channel::<String>(TEXT_QUEUE);
    let writing = tokio::spawn(writer(sink, rx, texts_rx));
    if let Err(reason) = Stream::pump(source, vnc, link, clipboard, encoder, &tx, texts).await {
        tracing::info!(%desktop, %reason, "stream ended");
    }
    drop(tx);
    let _ = writing.await;
}

struct Stream<S> {
    vnc: Connection<S>,
    pipeline: Pipeline,
    link: ConsoleLink,
    texts: mpsc::Sender<String>,
    flow: Flow,
    /// The template's policy lets the clipboard through.
    clipboard: bool,
    /// The screen layout from the desktop's last ExtendedDesktopSize; `None` until one
    /// came (no resize requests before).
    screens: Option<Vec<Screen>>,
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
        clipboard: bool,
        encoder: EncoderKind,
        tx: &mpsc::Sender<Outgoing>,
        texts: mpsc::Sender<String>,
    ) -> Result<(), String> {
        let mut vnc = Connection::new(vnc, Client::new(Config::default()));
        let (width, height) = loop {
            match vnc.next_event().await.map_err(|e| e.to_string())? {
                Event::Connected { width, height, .. } => break (width, height),
                other => tracing::debug!(?other, "VNC event before connecting"),
            }
        };
        // The site's encoder (`[display] encoder`), chosen at start-up.
        let encoder = new_encoder(
            encoder,
            u32::from(width) + u32::from(width) % 2,
            u32::from(height) + u32::from(height) % 2,
        )
        .map_err(|e| e.to_string())?;
        let pipeline = Pipeline::new(encoder, u32::from(width), u32::from(height), MIN_INTERVAL)
            .map_err(|e| e.to_string())?;
        vnc.client().request_full_update(false);
        vnc.flush().await.map_err(|e| e.to_string())?;
        let mut me = Stream {
            vnc,
            pipeline,
            link,
            texts,
            flow: Flow::new(Instant::now()),
            clipboard,
            screens: None,
            dirty: true,
            captured: Some(SystemTime::now()),
            announce: true,
            frame_number: 0,
        };
        loop {
            let now = Instant::now();
            let mut due = me.pipeline.poll_timeout().unwrap_or(now);
            if me.dirty
                && let Err(at) = me.flow.may_encode(now)
            {
                due = due.max(at);
            }
            let due = tokio::time::Instant::from_std(due);
            let stats_due = me.flow.stats_due().map(tokio::time::Instant::from_std);
            let mut texts = Vec::new();
            // Every branch is cancel-safe: the RFB driver has nothing left to write when it
            // waits (requests are flushed below, outside the select), so it waits in a read.
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(Message::Text(text))) => me.on_viewer(text.as_str()).await,
                    Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
                },
                ev = me.vnc.next_event() => {
                    texts = me.on_desktop(ev.map_err(|e| e.to_string())?)?;
                }
                permit = async {
                    tokio::time::sleep_until(due).await;
                    tx.reserve().await
                }, if me.dirty => {
                    let Ok(permit) = permit else { return Ok(()) };
                    if me.flow.may_encode(Instant::now()).is_ok() {
                        let started = Instant::now();
                        if let Some((number, out)) = encode_off_the_reactor(|| me.picture())? {
                            let len = out.picture.len();
                            me.flow.on_sent(number, len, started.elapsed(), Instant::now());
                            permit.send(out);
                        }
                    }
                }
                () = async {
                    if let Some(at) = stats_due {
                        tokio::time::sleep_until(at).await;
                    }
                }, if stats_due.is_some() => {
                    if let Some(stats) = me.flow.take_stats(Instant::now()) {
                        // Figures are worth nothing late: dropped when the queue is full.
                        let _ = me.texts.try_send(stats_message(&stats));
                    }
                }
            }
            for t in texts {
                if me.texts.send(t).await.is_err() {
                    return Ok(());
                }
            }
            me.vnc.flush().await.map_err(|e| e.to_string())?;
        }
    }

    /// Encodes the next picture if it is due: its number and the message.
    fn picture(&mut self) -> Result<Option<(u32, Outgoing)>, String> {
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
            Some(init_message(Init {
                codec: codec.as_deref().unwrap_or(FALLBACK_CODEC),
                size: self.pipeline.visible_size(),
                clipboard: self.clipboard,
                resize: self.screens.is_some(),
            }))
        } else {
            None
        };
        let number = self.frame_number;
        let picture = frame_message(number, captured, &frame);
        self.frame_number = self.frame_number.wrapping_add(1);
        Ok(Some((number, Outgoing { init, picture })))
    }

    fn damaged(&mut self) {
        self.dirty = true;
        self.captured.get_or_insert_with(SystemTime::now);
    }

    /// Applies what the desktop sent; returns the text messages for the viewer.
    fn on_desktop(&mut self, ev: Event) -> Result<Vec<String>, String> {
        let rects = match ev {
            Event::FramebufferUpdate { rects } => rects,
            Event::ServerCutText(text) if self.clipboard => {
                return Ok(vec![clipboard_message(&text)]);
            }
            Event::ServerCutText(_) => {
                tracing::debug!("desktop clipboard not passed on (policy)");
                return Ok(vec![]);
            }
            _ => return Ok(vec![]),
        };
        let mut texts = Vec::new();
        for r in &rects {
            if let Some(text) = self.on_rect(r)? {
                texts.push(text);
            }
        }
        // QEMU answers an incremental request only once something changed: an idle desktop
        // sends nothing, and so do we.
        self.vnc.client().request_full_update(true);
        Ok(texts)
    }

    fn on_rect(&mut self, r: &Rect) -> Result<Option<String>, String> {
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
                let mut refused = None;
                if let RectData::ExtendedDesktopSize { screens } = &r.data {
                    // x: reason (1 = our request), y: status (0 = done).
                    if r.x == 1 && r.y != 0 {
                        tracing::debug!(status = r.y, "the desktop refused a resize");
                        refused = Some(resize_refused_message(r.y));
                    }
                    if self.screens.is_none() {
                        // Now resize requests are possible: tell the viewer.
                        self.announce = true;
                        self.pipeline.request_keyframe();
                        self.damaged();
                    }
                    self.screens = Some(screens.clone());
                }
                let size = (u32::from(r.w), u32::from(r.h));
                if size == self.pipeline.visible_size() {
                    return Ok(refused);
                }
                self.announce = true;
                Update::Resize {
                    width: size.0,
                    height: size.1,
                }
            }
            RectData::Cursor { pixels, mask } => {
                let msg = cursor_message((r.x, r.y), (r.w, r.h), pixels, mask);
                if msg.is_none() {
                    tracing::debug!(w = r.w, h = r.h, "cursor shape not forwarded");
                }
                return Ok(msg);
            }
            // QEMU's key events are known to the RFB client.
            RectData::QemuExtendedKeyEvent => return Ok(None),
            // Not asked for (the stream takes raw pixels over the local socket).
            RectData::Tight(_) => return Err("the VNC server sent Tight, not asked for".into()),
        };
        self.pipeline.on_update(update).map_err(|e| e.to_string())?;
        self.damaged();
        Ok(None)
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
                self.flow.forget_in_flight();
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
            FromViewer::Ack { frame, decode_ms } => {
                self.flow.on_ack(frame, decode_ms, Instant::now());
            }
            FromViewer::Clipboard { text } if self.clipboard => {
                self.vnc.client().client_cut_text(&to_latin1(&text));
                self.link.input_activity().await;
            }
            FromViewer::Clipboard { .. } => {
                tracing::debug!("viewer clipboard not passed on (policy)");
            }
            FromViewer::Resize { width, height } => self.resize(width, height),
        }
    }

    /// Asks the desktop for a new size (SetDesktopSize), if it takes such requests.
    fn resize(&mut self, width: u16, height: u16) {
        let Some(screens) = &self.screens else {
            tracing::debug!(
                "resize request ignored: the desktop does not announce ExtendedDesktopSize"
            );
            return;
        };
        let (w, h) = clamp_size(width, height);
        if (u32::from(w), u32::from(h)) == self.pipeline.visible_size() {
            return;
        }
        // One screen covering the desktop, keeping the first screen's id and flags.
        let first = screens.first().copied();
        let screen = Screen {
            id: first.map_or(0, |s| s.id),
            x: 0,
            y: 0,
            w,
            h,
            flags: first.map_or(0, |s| s.flags),
        };
        self.vnc.client().set_desktop_size(w, h, &[screen]);
    }
}
