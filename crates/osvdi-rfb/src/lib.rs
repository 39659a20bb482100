//! osvdi-rfb: a sans-IO RFB 3.8 (VNC) client engine for talking to QEMU's VNC server, plus a
//! small tokio driver ([`driver::Connection`]).
//!
//! The engine takes bytes in ([`Client::handle_input`]) and hands out bytes to send and events
//! ([`Client::poll_output`]); it never touches a socket or the clock, in the style of str0m.
//! Requests ([`Client::request_update`], [`Client::key_event`]...) only queue bytes; made before
//! the handshake ends, they are held and sent after it.
//!
//! Supported: protocol versions 3.3, 3.7 and 3.8; security types None and VNC Authentication
//! (a DES of our own, [`des`]); SetPixelFormat (BGRX by default), SetEncodings, (incremental)
//! update requests; the Raw and CopyRect encodings, LastRect; the pseudo-encodings
//! DesktopSize, ExtendedDesktopSize, Cursor and QEMU Extended Key Event; key, pointer and QEMU
//! physical key events; cut text both ways; Tight with JPEG (parsed here, decoded by a
//! [`TightDecoder`] the caller keeps, see [`tight`]). Not (yet): ZRLE, colour-mapped formats.
//!
//! Why not the `vnc-rs` crate: it owns the socket and runs inside tokio tasks, decodes into its
//! own image events and hides the rectangle stream. The session engine needs the damage
//! rectangles as the server sent them (CopyRect included), the pseudo-encodings, and QEMU's
//! extended key events with physical key codes, all under its own control and testable
//! without sockets; that is this crate.

mod client;
pub mod des;
pub mod driver;
mod parse;
pub mod tight;
mod wire;

pub use client::{Client, Config, Event, Output};
pub use parse::{
    MAX_MESSAGE_BYTES, MAX_RECT_SIDE, Parse, Rect, RectData, Screen, ServerMessage,
    parse_server_message,
};
pub use tight::{TightDecoder, TightError};
pub use wire::{Encoding, PixelFormat};

/// The server broke the protocol or refused us; the connection is useless after this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Not an RFB server (greeting {0:?})")]
    NotRfb(String),
    #[error("Server refused the connection: {0}")]
    Refused(String),
    #[error("No security type in common (server offers {0:?})")]
    NoCommonSecurity(Vec<u8>),
    #[error("Server requires a VNC password and none is configured")]
    PasswordRequired,
    #[error("Authentication failed: {0}")]
    AuthFailed(String),
    #[error("Unknown server message type {0}")]
    UnknownMessage(u8),
    #[error("Server used encoding {0}, which was not requested")]
    UnknownEncoding(i32),
    #[error("Rectangle of {w}x{h} pixels is too large")]
    RectTooLarge { w: u16, h: u16 },
    #[error("Server message too large")]
    MessageTooLarge,
    #[error("Unsupported pixel format ({0} bits per pixel)")]
    PixelFormat(u8),
    #[error("Invalid Tight rectangle: {0}")]
    Tight(String),
}
