//! The gateway's HTTP CONNECT proxy for native SPICE clients, on the API's own listener, so
//! that desktops' SPICE ports never need to be reachable from outside.
//!
//! remote-viewer (spice-gtk, through GLib's `GHttpProxy`) opens one TCP connection per SPICE
//! channel and sends on each `CONNECT 127.0.0.1:PORT HTTP/1.0` (with `Host:` and
//! `Proxy-Connection: keep-alive`), waits for a `200` status line and the empty line, then
//! speaks SPICE. Every CONNECT is decided by [`osvdi_core::Core::admit_connect`]: only the
//! SPICE address of a desktop whose ticket was issued and is in its admission window, from the
//! client that spent it. Anything else is refused with 403: this is not an open proxy.
//!
//! axum's `Router` routes by path and a CONNECT's authority-form target has none, so the
//! proxy is a middleware on the whole router (fallback included) that takes CONNECT requests
//! before routing and lets everything else through.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use osvdi_core::SpiceLink;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::AppState;
use crate::error::ApiError;

/// SPICE's channel type of the inputs channel (keys, pointer).
const SPICE_CHANNEL_INPUTS: u8 = 3;

/// Takes CONNECT requests to the proxy; passes every other request on.
pub(crate) async fn intercept(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::CONNECT {
        return next.run(req).await;
    }
    connect(state, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The target of a CONNECT: an authority-form `IP:PORT` (names are not resolved).
fn target(uri: &Uri) -> Option<SocketAddr> {
    if uri.scheme().is_some() || uri.path_and_query().is_some() {
        return None;
    }
    let authority = uri.authority()?.as_str();
    authority.parse().ok()
}

async fn connect(state: AppState, mut req: Request) -> Result<Response, ApiError> {
    // The proxy answers the connection's peer (never X-Forwarded-For: reverse proxies do not
    // pass CONNECT on).
    let peer: Option<IpAddr> = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(client) = peer else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "CONNECT refused",
        ));
    };
    let Some(target) = target(req.uri()) else {
        tracing::info!(%client, "proxy CONNECT refused: not an IP:PORT target");
        return Err(ApiError::bad_request(
            "CONNECT needs an IP:PORT target (the host and port of a .vv file)",
        ));
    };
    let link = state.core.admit_connect(target, client).await?;
    // Connected before answering, so that the client sees 502 rather than a dead tunnel.
    let upstream = TcpStream::connect(target).await.map_err(|e| {
        tracing::warn!(%target, error = %e, "cannot reach a SPICE server");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "The desktop's display does not answer",
        )
    })?;
    let _ = upstream.set_nodelay(true);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => relay(TokioIo::new(upgraded), upstream, link).await,
            Err(e) => tracing::debug!(error = %e, "proxy CONNECT not upgraded"),
        }
    });
    // GHttpProxy reads the status code and accepts 200 only.
    Ok(Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::OK.into_response()))
}

/// Copies bytes both ways until both directions have ended. Client input on the SPICE inputs
/// channel counts as the desktop's activity.
async fn relay<C>(client: C, server: TcpStream, mut link: SpiceLink)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let desktop = link.desktop();
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_server, mut to_server) = server.into_split();
    let down = async {
        let n = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
        n
    };
    let up = async {
        let mut sniffer = ChannelSniffer::default();
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0u64;
        loop {
            let n = from_client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            to_server.write_all(&buf[..n]).await?;
            total += n as u64;
            if sniffer.feed(&buf[..n]) == Some(SPICE_CHANNEL_INPUTS) {
                link.input().await;
            }
        }
        to_server.shutdown().await?;
        std::io::Result::Ok((total, sniffer.channel()))
    };
    let (down, up) = tokio::join!(down, up);
    let channel = up.as_ref().ok().and_then(|u| u.1);
    tracing::debug!(%desktop, ?channel, down = ?down.ok(), up = ?up.ok().map(|u| u.0), "proxy connection closed");
}

/// Learns a SPICE connection's channel type from the client's first bytes: a
/// `SpiceLinkHeader` (magic `REDQ`, major and minor version, size: 16 bytes) followed by a
/// `SpiceLinkMess` (connection id: 4 bytes, then the channel type). Sans-IO.
#[derive(Debug, Default)]
struct ChannelSniffer {
    head: Vec<u8>,
    /// `Some(None)`: decided, not SPICE.
    decided: Option<Option<u8>>,
}

impl ChannelSniffer {
    const TYPE_AT: usize = 20;

    /// Feeds client bytes; returns the channel type once known.
    fn feed(&mut self, bytes: &[u8]) -> Option<u8> {
        if self.decided.is_none() {
            let want = Self::TYPE_AT + 1 - self.head.len();
            self.head.extend_from_slice(&bytes[..want.min(bytes.len())]);
            if self.head.len() > Self::TYPE_AT {
                let spice = self.head.starts_with(b"REDQ");
                self.decided = Some(spice.then(|| self.head[Self::TYPE_AT]));
                self.head = Vec::new();
            }
        }
        self.channel()
    }

    fn channel(&self) -> Option<u8> {
        self.decided.flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_authority_form_ip_and_port() {
        let t = |s: &str| target(&s.parse::<Uri>().unwrap());
        assert_eq!(
            t("127.0.0.1:5900"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5900)))
        );
        assert_eq!(t("[::1]:5900").map(|a| a.port()), Some(5900));
        assert_eq!(t("localhost:5900"), None, "names are not resolved");
        assert_eq!(t("127.0.0.1"), None, "a port is needed");
        assert_eq!(t("http://127.0.0.1:5900/"), None);
        assert_eq!(t("/api/v1/me"), None);
    }

    #[test]
    fn the_sniffer_reads_the_channel_type_of_a_link_message_in_pieces() {
        let mut link = b"REDQ".to_vec();
        link.extend_from_slice(&2u32.to_le_bytes()); // major
        link.extend_from_slice(&2u32.to_le_bytes()); // minor
        link.extend_from_slice(&18u32.to_le_bytes()); // size
        link.extend_from_slice(&7u32.to_le_bytes()); // connection id
        link.extend_from_slice(&[SPICE_CHANNEL_INPUTS, 0]); // channel type and id
        let mut s = ChannelSniffer::default();
        assert_eq!(s.feed(&link[..7]), None);
        assert_eq!(s.feed(&link[7..]), Some(SPICE_CHANNEL_INPUTS));
        assert_eq!(s.feed(b"more input"), Some(SPICE_CHANNEL_INPUTS));
        let mut not = ChannelSniffer::default();
        assert_eq!(not.feed(&[0u8; 64]), None);
        assert_eq!(not.feed(&link), None, "decided on the first bytes");
    }
}
