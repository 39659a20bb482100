//! A desktop's display as one byte stream, wherever it is: a unix or TCP socket (local QEMU),
//! or RFB inside WebSocket binary messages (a cloud's console proxy, such as
//! nova-novncproxy), unwrapped by a small pump task.

use std::io;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::VncEndpoint;

/// A byte stream to a display.
pub trait VncIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> VncIo for T {}

/// A connection to a desktop's display (RFB bytes both ways).
pub type VncStream = Box<dyn VncIo>;

/// Connects to `endpoint`. Errors never contain the endpoint (a WebSocket URL holds a token).
pub async fn connect_vnc(endpoint: &VncEndpoint) -> io::Result<VncStream> {
    match endpoint {
        VncEndpoint::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        VncEndpoint::Tcp(addr) => {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            Ok(Box::new(tcp))
        }
        VncEndpoint::WebSocket(url) => connect_websocket(url).await,
    }
}

async fn connect_websocket(url: &str) -> io::Result<VncStream> {
    let mut request = url
        .into_client_request()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    // websockify (behind nova-novncproxy) speaks the `binary` subprotocol.
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("binary"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))?;
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    tokio::spawn(pump(ws, theirs));
    Ok(Box::new(ours))
}

/// Moves bytes between the WebSocket and our end of the pipe until either closes.
async fn pump<S>(ws: tokio_tungstenite::WebSocketStream<S>, pipe: tokio::io::DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut pipe_rx, mut pipe_tx) = tokio::io::split(pipe);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            msg = ws_rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if pipe_tx.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if pipe_tx.write_all(t.as_bytes()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            n = pipe_rx.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = bytes_of(&buf[..n]);
                    if ws_tx.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = ws_tx.close().await;
    let _ = pipe_tx.shutdown().await;
}

fn bytes_of(b: &[u8]) -> tokio_tungstenite::tungstenite::Bytes {
    tokio_tungstenite::tungstenite::Bytes::copy_from_slice(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WebSocket server that answers like a VNC server's first bytes, then echoes.
    #[tokio::test]
    #[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
    async fn rfb_through_a_websocket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_hdr_async(
                tcp,
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    assert_eq!(req.headers()["sec-websocket-protocol"], "binary");
                    resp.headers_mut()
                        .insert("sec-websocket-protocol", "binary".parse().unwrap());
                    Ok(resp)
                },
            )
            .await
            .unwrap();
            ws.send(Message::Binary(bytes_of(b"RFB 003.008\n")))
                .await
                .unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Binary(b) = m {
                    ws.send(Message::Binary(b)).await.unwrap();
                }
            }
        });
        let url = format!("ws://{addr}/?token=abc");
        let mut s = connect_vnc(&VncEndpoint::WebSocket(url)).await.unwrap();
        let mut hello = [0u8; 12];
        s.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"RFB 003.008\n");
        s.write_all(b"RFB 003.008\n").await.unwrap();
        let mut back = [0u8; 12];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"RFB 003.008\n");
    }
}
