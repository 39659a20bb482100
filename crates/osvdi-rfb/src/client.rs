//! [`Client`], the RFB client state machine: handshake, then server messages.

use std::collections::VecDeque;

use crate::parse::{Parse, Rect, RectData, Screen, ServerMessage, parse_server_message};
use crate::wire::{self, Encoding, PixelFormat};
use crate::{ProtocolError, des};

/// Longest server name or refusal reason kept (bytes); longer ones are an error.
const MAX_STRING: usize = 64 << 10;

#[derive(Debug, Clone)]
pub struct Config {
    /// Let other clients stay connected (ClientInit shared flag).
    pub shared: bool,
    pub pixel_format: PixelFormat,
    /// Sent in SetEncodings, in order of preference.
    pub encodings: Vec<Encoding>,
    /// For VNC Authentication; only its first eight bytes count.
    pub password: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shared: true,
            pixel_format: PixelFormat::BGRX,
            encodings: Encoding::ALL.to_vec(),
            password: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes to write to the server, in order.
    Transmit(Vec<u8>),
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Handshake done; our pixel format and encodings are sent. `name` is the desktop name.
    Connected {
        width: u16,
        height: u16,
        name: String,
    },
    /// The rectangles of one update, in the server's order (apply them in order).
    FramebufferUpdate {
        rects: Vec<Rect>,
    },
    /// Colour map entries (only for colour-mapped formats).
    ColourMap {
        first: u16,
        colours: Vec<[u16; 3]>,
    },
    Bell,
    ServerCutText(Vec<u8>),
    /// The connection is broken; the client ignores further input.
    Error(ProtocolError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Version,
    SecurityTypes,
    /// RFB 3.3: the server picks the type alone.
    SecurityType33,
    VncChallenge,
    SecurityResult,
    ServerInit,
    Normal,
    Failed,
}

/// The sans-IO RFB client. See the crate documentation.
#[derive(Debug)]
pub struct Client {
    config: Config,
    state: State,
    /// Minor protocol version agreed (3, 7 or 8).
    minor: u8,
    input: Vec<u8>,
    /// Parse again only once the input reaches this length.
    need: usize,
    transmit: Vec<u8>,
    /// Requests made before the handshake ended.
    held: Vec<u8>,
    events: VecDeque<Event>,
    width: u16,
    height: u16,
    server_format: Option<PixelFormat>,
    qemu_keys: bool,
}

impl Client {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state: State::Version,
            minor: 8,
            input: Vec::new(),
            need: 0,
            transmit: Vec::new(),
            held: Vec::new(),
            events: VecDeque::new(),
            width: 0,
            height: 0,
            server_format: None,
            qemu_keys: false,
        }
    }

    /// Current framebuffer size (after `Connected`, following DesktopSize changes).
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// The server's native pixel format from ServerInit (we ask for our own).
    pub fn server_pixel_format(&self) -> Option<PixelFormat> {
        self.server_format
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Normal
    }

    /// Whether the server acknowledged QEMU extended key events.
    pub fn supports_qemu_key_events(&self) -> bool {
        self.qemu_keys
    }

    /// Bytes from the server. Parses all complete messages; keeps the rest.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.state == State::Failed {
            return;
        }
        self.input.extend_from_slice(bytes);
        if self.input.len() < self.need {
            return;
        }
        let input = std::mem::take(&mut self.input);
        let mut used = 0;
        loop {
            match self.step(&input[used..], used) {
                Ok(Some(n)) => used += n,
                Ok(None) => break,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        self.input = input;
        self.input.drain(..used);
        self.need = self.need.saturating_sub(used);
    }

    /// The next thing to do: bytes to send first, then events.
    pub fn poll_output(&mut self) -> Option<Output> {
        if !self.transmit.is_empty() {
            return Some(Output::Transmit(std::mem::take(&mut self.transmit)));
        }
        self.events.pop_front().map(Output::Event)
    }

    /// FramebufferUpdateRequest for an area (clipped by the server to the framebuffer).
    pub fn request_update(&mut self, incremental: bool, x: u16, y: u16, w: u16, h: u16) {
        wire::update_request(incremental, x, y, w, h, self.out());
    }

    /// Request for the whole framebuffer as known now.
    pub fn request_full_update(&mut self, incremental: bool) {
        let (w, h) = (self.width, self.height);
        self.request_update(incremental, 0, 0, w, h);
    }

    /// A key event by X11 keysym.
    pub fn key_event(&mut self, down: bool, keysym: u32) {
        wire::key_event(down, keysym, self.out());
    }

    /// A key event with QEMU's physical key number (scan code set 1, extended keys as
    /// 0x80 | code) besides the keysym; a plain key event if the server has not acknowledged
    /// the extension (it does so in the first update after SetEncodings).
    pub fn qemu_key_event(&mut self, down: bool, keysym: u32, keycode: u32) {
        if self.qemu_keys {
            wire::qemu_key_event(down, keysym, keycode, self.out());
        } else {
            self.key_event(down, keysym);
        }
    }

    /// Pointer position and button mask (bit 0 left, 1 middle, 2 right, 3/4 wheel).
    pub fn pointer_event(&mut self, buttons: u8, x: u16, y: u16) {
        wire::pointer_event(buttons, x, y, self.out());
    }

    /// Clipboard text to the server (Latin-1 by the standard).
    pub fn client_cut_text(&mut self, text: &[u8]) {
        wire::client_cut_text(text, self.out());
    }

    /// SetDesktopSize (the ExtendedDesktopSize extension): asks for a `width` x `height`
    /// framebuffer laid out as `screens` (at most 255 are sent). Only for servers that sent an
    /// ExtendedDesktopSize rectangle; the answer is another one (reason 1, with a status).
    pub fn set_desktop_size(&mut self, width: u16, height: u16, screens: &[Screen]) {
        let screens = &screens[..screens.len().min(255)];
        let out = self.out();
        out.extend_from_slice(&[251, 0]);
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&height.to_be_bytes());
        // At most 255 by the slice above.
        out.extend_from_slice(&[screens.len() as u8, 0]);
        for s in screens {
            out.extend_from_slice(&s.id.to_be_bytes());
            for v in [s.x, s.y, s.w, s.h] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&s.flags.to_be_bytes());
        }
    }

    /// Replaces the encoding list (sent now, or at the end of the handshake).
    pub fn set_encodings(&mut self, encodings: &[Encoding]) {
        self.config.encodings = encodings.to_vec();
        if self.state == State::Normal {
            wire::set_encodings(encodings, &mut self.transmit);
        }
    }

    fn out(&mut self) -> &mut Vec<u8> {
        match self.state {
            State::Normal => &mut self.transmit,
            _ => &mut self.held,
        }
    }

    fn fail(&mut self, e: ProtocolError) {
        self.state = State::Failed;
        self.input = Vec::new();
        self.held = Vec::new();
        self.events.push_back(Event::Error(e));
    }

    /// One step on `buf` (the unread input): `Ok(Some(bytes used))`, or `Ok(None)` when more
    /// input is needed (`self.need` then says how much).
    fn step(&mut self, buf: &[u8], offset: usize) -> Result<Option<usize>, ProtocolError> {
        let res = match self.state {
            State::Failed => return Ok(None),
            State::Normal => self.message(buf),
            _ => self.handshake(buf),
        };
        match res {
            Ok(n) => {
                self.need = 0;
                Ok(Some(n))
            }
            Err(Parse::Incomplete(n)) => {
                // `buf` starts at `offset` of the input; make `need` absolute.
                self.need = offset + n;
                Ok(None)
            }
            Err(Parse::Invalid(e)) => Err(e),
        }
    }

    fn message(&mut self, buf: &[u8]) -> Result<usize, Parse> {
        let bpp = self.config.pixel_format.bytes_per_pixel();
        let (msg, n) = parse_server_message(buf, bpp)?;
        let event = match msg {
            ServerMessage::FramebufferUpdate(rects) => {
                for r in &rects {
                    match &r.data {
                        RectData::DesktopSize => (self.width, self.height) = (r.w, r.h),
                        RectData::ExtendedDesktopSize { .. } if r.y == 0 => {
                            (self.width, self.height) = (r.w, r.h);
                        }
                        RectData::QemuExtendedKeyEvent => self.qemu_keys = true,
                        _ => {}
                    }
                }
                Event::FramebufferUpdate { rects }
            }
            ServerMessage::SetColourMapEntries { first, colours } => {
                Event::ColourMap { first, colours }
            }
            ServerMessage::Bell => Event::Bell,
            ServerMessage::ServerCutText(t) => Event::ServerCutText(t),
        };
        self.events.push_back(event);
        Ok(n)
    }

    fn handshake(&mut self, buf: &[u8]) -> Result<usize, Parse> {
        let take = |n: usize| buf.get(..n).ok_or(Parse::Incomplete(n));
        match self.state {
            State::Version => {
                let v = take(12)?;
                let text = String::from_utf8_lossy(v).into_owned();
                let minor = parse_version(v).ok_or(ProtocolError::NotRfb(text))?;
                self.minor = minor;
                self.transmit
                    .extend_from_slice(format!("RFB 003.00{minor}\n").as_bytes());
                self.state = if minor >= 7 {
                    State::SecurityTypes
                } else {
                    State::SecurityType33
                };
                Ok(12)
            }
            State::SecurityTypes => {
                let n = usize::from(take(1)?[0]);
                if n == 0 {
                    let (reason, _) = string_at(buf, 1)?;
                    return Err(ProtocolError::Refused(reason).into());
                }
                let types = &take(1 + n)?[1..];
                let chosen = self.choose_security(types)?;
                self.transmit.push(chosen);
                self.after_security_type(chosen);
                Ok(1 + n)
            }
            State::SecurityType33 => {
                let t = u32::from_be_bytes(array(take(4)?));
                match t {
                    0 => {
                        let (reason, _) = string_at(buf, 4)?;
                        Err(ProtocolError::Refused(reason).into())
                    }
                    1 | 2 => {
                        if t == 2 && self.config.password.is_none() {
                            return Err(ProtocolError::PasswordRequired.into());
                        }
                        self.after_security_type(t as u8);
                        Ok(4)
                    }
                    _ => Err(ProtocolError::NoCommonSecurity(vec![t as u8]).into()),
                }
            }
            State::VncChallenge => {
                let challenge: [u8; 16] = array(take(16)?);
                let pw = self.config.password.as_deref().unwrap_or_default();
                let response = des::vnc_auth_response(pw.as_bytes(), &challenge);
                self.transmit.extend_from_slice(&response);
                self.state = State::SecurityResult;
                Ok(16)
            }
            State::SecurityResult => {
                let status = u32::from_be_bytes(array(take(4)?));
                if status == 0 {
                    self.client_init();
                    return Ok(4);
                }
                let reason = if self.minor >= 8 {
                    string_at(buf, 4)?.0
                } else {
                    "no reason given".to_owned()
                };
                Err(ProtocolError::AuthFailed(reason).into())
            }
            State::ServerInit => self.server_init(buf),
            State::Normal | State::Failed => Ok(0),
        }
    }

    fn choose_security(&self, types: &[u8]) -> Result<u8, ProtocolError> {
        let has_pw = self.config.password.is_some();
        if has_pw && types.contains(&2) {
            Ok(2)
        } else if types.contains(&1) {
            Ok(1)
        } else if types.contains(&2) {
            Err(ProtocolError::PasswordRequired)
        } else {
            Err(ProtocolError::NoCommonSecurity(types.to_vec()))
        }
    }

    fn after_security_type(&mut self, chosen: u8) {
        self.state = match (chosen, self.minor) {
            (2, _) => State::VncChallenge,
            // Security type None has a SecurityResult only from 3.8 on.
            (_, 8) => State::SecurityResult,
            _ => {
                self.client_init();
                State::ServerInit
            }
        };
    }

    fn client_init(&mut self) {
        self.transmit.push(u8::from(self.config.shared));
        self.state = State::ServerInit;
    }

    fn server_init(&mut self, buf: &[u8]) -> Result<usize, Parse> {
        let head = buf.get(..24).ok_or(Parse::Incomplete(24))?;
        let (width, height) = (
            u16::from_be_bytes([head[0], head[1]]),
            u16::from_be_bytes([head[2], head[3]]),
        );
        let (name, used) = string_at(buf, 20)?;
        let pf = self.config.pixel_format;
        if !matches!(pf.bits_per_pixel, 8 | 16 | 32) {
            return Err(ProtocolError::PixelFormat(pf.bits_per_pixel).into());
        }
        (self.width, self.height) = (width, height);
        self.server_format = Some(PixelFormat::decode(&array(&head[4..20])));
        wire::set_pixel_format(&pf, &mut self.transmit);
        wire::set_encodings(&self.config.encodings, &mut self.transmit);
        self.transmit.append(&mut self.held);
        self.state = State::Normal;
        self.events.push_back(Event::Connected {
            width,
            height,
            name,
        });
        Ok(used)
    }
}

/// "RFB 003.008\n" -> 8. Versions between 3.3 and 3.7 are spoken as 3.3, newer as 3.8.
fn parse_version(v: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(v).ok()?;
    let rest = s.strip_prefix("RFB ")?.strip_suffix('\n')?;
    let (major, minor) = rest.split_once('.')?;
    let (major, minor): (u32, u32) = (major.parse().ok()?, minor.parse().ok()?);
    match (major, minor) {
        (3, 8..) | (4.., _) => Some(8),
        (3, 7) => Some(7),
        (3, 3..=6) => Some(3),
        _ => None,
    }
}

/// A u32-length-prefixed string at `at`; returns it (lossy UTF-8) and the end offset.
fn string_at(buf: &[u8], at: usize) -> Result<(String, usize), Parse> {
    let len_bytes = buf.get(at..at + 4).ok_or(Parse::Incomplete(at + 4))?;
    let len = u32::from_be_bytes(array(len_bytes)) as usize;
    if len > MAX_STRING {
        return Err(ProtocolError::MessageTooLarge.into());
    }
    let end = at + 4 + len;
    let s = buf.get(at + 4..end).ok_or(Parse::Incomplete(end))?;
    Ok((String::from_utf8_lossy(s).into_owned(), end))
}

/// The first `N` bytes of `s`; callers pass slices of exactly `N` bytes (a shorter one is a
/// bug and panics).
fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_desktop_size_bytes() {
        let mut c = Client::new(Config {
            encodings: vec![Encoding::Raw],
            ..Config::default()
        });
        let mut server = b"RFB 003.008\n".to_vec();
        server.extend([1, 1, 0, 0, 0, 0]);
        server.extend([
            0, 8, 0, 4, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        ]);
        server.extend([0, 0, 0, 0]);
        c.handle_input(&server);
        assert!(c.is_connected());
        while c.poll_output().is_some() {}
        let screen = Screen {
            id: 7,
            x: 0,
            y: 0,
            w: 8,
            h: 4,
            flags: 0,
        };
        c.set_desktop_size(1024, 768, &[screen]);
        let Some(Output::Transmit(bytes)) = c.poll_output() else {
            panic!("bytes to send");
        };
        assert_eq!(
            bytes,
            [
                251, 0, 4, 0, 3, 0, 1, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 8, 0, 4, 0, 0, 0, 0
            ]
        );
    }
}
