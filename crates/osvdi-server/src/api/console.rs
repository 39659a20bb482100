//! Browser consoles: a one-time token (`POST /api/v1/sessions/{id}/console`), then a WebSocket
//! (`GET /ws/console?token=...`) that relays the bytes of RFB between the viewer (noVNC) and
//! the desktop's VNC socket. The token rides in the query string, which is why requests are
//! logged by route only.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use osvdi_core::ConsoleLink;
use osvdi_model::DesktopId;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, refuse_cross_site};
use crate::wire::{ConsoleDto, rfc3339};

/// The WebSocket subprotocol noVNC asks for.
const SUBPROTOCOL: &str = "binary";
/// The largest message a viewer may send (clipboard text is the big one).
const MAX_MESSAGE: usize = 4 << 20;

/// What a token is for: the browser console (RFB relay, the default) or the H.264 video
/// stream (`/ws/stream`).
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenPurpose {
    #[default]
    Console,
    Stream,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct OpenParams {
    /// `console` (default): a token for `/ws/console`; `stream`: for `/ws/stream`.
    #[serde(default)]
    #[param(inline)]
    purpose: TokenPurpose,
}

/// A one-time token for the session's browser console, valid for 60 s: open
/// `GET /ws/console?token=...` (WebSocket, subprotocol `binary`, with the same login) with it.
/// With `?purpose=stream`, the token is for `GET /ws/stream?token=...` (H.264 video) instead.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/console", tag = "sessions", params(("id" = String, Path), OpenParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = ConsoleDto), (status = 403, description = "Not allowed now (policy)", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The session is not ready", body = ErrorBody)))]
pub(crate) async fn open(
    State(s): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<OpenParams>, QueryRejection>,
) -> Result<Json<ConsoleDto>, ApiError> {
    let id: DesktopId = id.parse().map_err(|_| ApiError::not_found("Session"))?;
    let Ok(Query(params)) = params else {
        return Err(ApiError::bad_request(
            "purpose must be \"console\" or \"stream\"",
        ));
    };
    let (t, route) = match params.purpose {
        TokenPurpose::Console => (s.core.console_token(&auth.caller, id).await?, "console"),
        TokenPurpose::Stream => (s.core.stream_token(&auth.caller, id).await?, "stream"),
    };
    let path = format!("/ws/{route}?token={}", t.token);
    let url = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => {
            let scheme = if s.http.secure_cookies { "wss" } else { "ws" };
            format!("{scheme}://{host}{path}")
        }
        None => path,
    };
    Ok(Json(ConsoleDto {
        token: t.token,
        url,
        expires_at: rfc3339(t.expires_at),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct ConsoleParams {
    /// The one-time token from `POST /api/v1/sessions/{id}/console`.
    token: String,
}

/// The browser console: a WebSocket (subprotocol `binary`) relaying RFB to the desktop. Needs
/// the login that asked for the token, and the token, once.
#[utoipa::path(get, path = "/ws/console", tag = "sessions", params(ConsoleParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 101, description = "Switching to the WebSocket relay"),
        (status = 403, description = "Token used, expired, someone else's, or refused by policy", body = ErrorBody),
        (status = 409, description = "The session is not ready", body = ErrorBody)))]
pub(crate) async fn relay(
    State(s): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    params: Result<Query<ConsoleParams>, QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers)?;
    let Ok(Query(params)) = params else {
        return Err(ApiError::bad_request("A console token is needed"));
    };
    let link = s.core.open_console(&auth.caller, &params.token).await?;
    let ws = ws
        .protocols([SUBPROTOCOL])
        .max_message_size(MAX_MESSAGE)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "console upgrade failed"));
    let vnc = connect_display(&link).await?;
    Ok(ws.on_upgrade(move |socket| pump(socket, vnc, link)))
}

/// A connection to the desktop's display (RFB), for the console relay and the video stream:
/// whatever the backend said (a unix socket, TCP, or a cloud console proxy's WebSocket).
pub(crate) type Display = osvdi_compute::VncStream;

/// Connects to the display of the desktop a redeemed token opened.
pub(crate) async fn connect_display(link: &ConsoleLink) -> Result<Display, ApiError> {
    osvdi_compute::connect_vnc(link.vnc()).await.map_err(|e| {
        tracing::warn!(desktop = %link.desktop(), error = %e, "cannot reach the desktop's display");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "internal",
            "The desktop's display cannot be reached; try again",
        )
    })
}

/// Relays until either side closes; the link is dropped (disconnected) at the end.
async fn pump<S>(mut ws: WebSocket, vnc: S, mut link: ConsoleLink)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut from_desktop, mut to_desktop) = tokio::io::split(vnc);
    let mut buf = vec![0u8; 64 * 1024];
    let reason = loop {
        tokio::select! {
            msg = ws.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    link.from_viewer(&b).await;
                    if to_desktop.write_all(&b).await.is_err() {
                        break Some("The desktop closed the console");
                    }
                }
                // RFB is binary; pings are answered by the WebSocket layer.
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
            },
            n = from_desktop.read(&mut buf) => match n {
                Ok(0) | Err(_) => break Some("The desktop closed the console"),
                Ok(n) => {
                    let bytes = Bytes::copy_from_slice(&buf[..n]);
                    if ws.send(Message::Binary(bytes)).await.is_err() {
                        break None;
                    }
                }
            },
        }
    };
    if let Some(reason) = reason {
        let _ = ws
            .send(Message::Close(Some(CloseFrame {
                code: close_code::NORMAL,
                reason: reason.into(),
            })))
            .await;
    }
    let _ = to_desktop.shutdown().await;
    drop(link);
}
