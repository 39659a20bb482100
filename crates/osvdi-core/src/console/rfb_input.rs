//! Which bytes a VNC viewer sends are a person's input. A scanner of the client half of RFB
//! (RFC 6143, plus the extensions noVNC and QEMU speak) that finds key, pointer and clipboard
//! messages in the byte stream, so that an open but untouched console does not count as use.
//!
//! Sans-IO: bytes in, "input seen" out. It never fails: a stream it does not understand (an
//! unknown message, a security type with its own exchange) turns it opaque, and every byte
//! after that counts as input, which errs on the side of keeping a desktop alive.

/// The client-to-server message types (RFC 6143 §7.5 and registered extensions).
mod msg {
    pub const SET_PIXEL_FORMAT: u8 = 0;
    pub const SET_ENCODINGS: u8 = 2;
    pub const UPDATE_REQUEST: u8 = 3;
    pub const KEY_EVENT: u8 = 4;
    pub const POINTER_EVENT: u8 = 5;
    pub const CLIENT_CUT_TEXT: u8 = 6;
    pub const ENABLE_CONTINUOUS_UPDATES: u8 = 150;
    pub const CLIENT_FENCE: u8 = 248;
    pub const XVP: u8 = 250;
    pub const SET_DESKTOP_SIZE: u8 = 251;
    pub const QEMU: u8 = 255;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The 12-byte ProtocolVersion.
    Version,
    /// The one-byte security type the client picks (3.7 and 3.8).
    Security,
    /// The one-byte ClientInit.
    ClientInit,
    Messages,
    /// Not understood: everything is input from here on.
    Opaque,
}

/// How much of a message its first bytes say it has.
enum Length {
    /// At least this many bytes are needed to know.
    AtLeast(usize),
    /// The message is this long; `input` if it is a person's doing.
    Exactly {
        len: usize,
        input: bool,
    },
    Unknown,
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn be32(b: &[u8], at: usize) -> usize {
    // Extended clipboard messages carry a negative length; the size is its magnitude.
    let v = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    usize::try_from(v.unsigned_abs()).unwrap_or(usize::MAX)
}

fn message_length(b: &[u8]) -> Length {
    let fixed = |len: usize, input: bool| Length::Exactly { len, input };
    match b[0] {
        msg::SET_PIXEL_FORMAT => fixed(20, false),
        msg::UPDATE_REQUEST | msg::ENABLE_CONTINUOUS_UPDATES => fixed(10, false),
        msg::KEY_EVENT => fixed(8, true),
        msg::POINTER_EVENT => fixed(6, true),
        msg::XVP => fixed(4, false),
        msg::SET_ENCODINGS if b.len() >= 4 => fixed(4 + 4 * be16(b, 2), false),
        msg::CLIENT_CUT_TEXT if b.len() >= 8 => fixed(8usize.saturating_add(be32(b, 4)), true),
        msg::CLIENT_FENCE if b.len() >= 9 => fixed(9 + usize::from(b[8]), false),
        msg::SET_DESKTOP_SIZE if b.len() >= 8 => fixed(8 + 16 * usize::from(b[6]), false),
        msg::QEMU if b.len() >= 2 => match b[1] {
            // Extended key event.
            0 => fixed(12, true),
            // Audio: enable, disable (4 bytes) or set format (10).
            1 if b.len() >= 4 => match be16(b, 2) {
                0 | 1 => fixed(4, false),
                2 => fixed(10, false),
                _ => Length::Unknown,
            },
            1 => Length::AtLeast(4),
            _ => Length::Unknown,
        },
        msg::SET_ENCODINGS => Length::AtLeast(4),
        msg::CLIENT_CUT_TEXT => Length::AtLeast(8),
        msg::CLIENT_FENCE => Length::AtLeast(9),
        msg::SET_DESKTOP_SIZE => Length::AtLeast(8),
        msg::QEMU => Length::AtLeast(2),
        _ => Length::Unknown,
    }
}

/// Finds a person's input in what a viewer sends.
#[derive(Debug)]
pub(crate) struct InputScanner {
    state: State,
    /// The start of a message (or handshake step) not complete yet. Small: long messages
    /// (clipboard text) are skipped, not kept.
    pending: Vec<u8>,
    /// Bytes of the current message still to skip.
    skip: usize,
}

impl Default for InputScanner {
    fn default() -> Self {
        InputScanner {
            state: State::Version,
            pending: Vec::with_capacity(32),
            skip: 0,
        }
    }
}

impl InputScanner {
    /// Takes the next bytes from the viewer; true if they hold (the start of) a key, pointer or
    /// clipboard message.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> bool {
        let mut input = false;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let need = match self.state {
                State::Opaque => return true,
                State::Version => 12,
                State::Security | State::ClientInit => 1,
                State::Messages => {
                    if self.pending.is_empty() {
                        self.pending.push(data[0]);
                        data = &data[1..];
                    }
                    match message_length(&self.pending) {
                        Length::AtLeast(n) => n,
                        Length::Exactly { len, input: i } => {
                            // Decided by its head: skip the rest without keeping it.
                            input |= i;
                            self.skip = len - self.pending.len();
                            self.pending.clear();
                            continue;
                        }
                        Length::Unknown => {
                            self.state = State::Opaque;
                            return true;
                        }
                    }
                }
            };
            let n = need.saturating_sub(self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() >= need {
                self.step();
            }
        }
        input
    }

    /// A handshake step (or a message head) is complete in `pending`.
    fn step(&mut self) {
        match self.state {
            State::Version => {
                // 3.3 has the server pick the security type, with exchanges we cannot follow.
                self.state = if self.pending.starts_with(b"RFB 003.00")
                    && &self.pending[..] != b"RFB 003.003\n"
                {
                    State::Security
                } else {
                    State::Opaque
                };
                self.pending.clear();
            }
            State::Security => {
                self.state = match self.pending[0] {
                    // None.
                    1 => State::ClientInit,
                    // VNC authentication: a 16-byte response, then ClientInit.
                    2 => {
                        self.skip = 16;
                        State::ClientInit
                    }
                    _ => State::Opaque,
                };
                self.pending.clear();
            }
            State::ClientInit => {
                self.state = State::Messages;
                self.pending.clear();
            }
            // A message head is long enough now: the next round measures it.
            State::Messages | State::Opaque => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDSHAKE: &[u8] = b"RFB 003.008\n\x01\x01";

    fn set_encodings(n: u16) -> Vec<u8> {
        let mut m = vec![msg::SET_ENCODINGS, 0];
        m.extend_from_slice(&n.to_be_bytes());
        for i in 0..n {
            m.extend_from_slice(&i32::from(i).to_be_bytes());
        }
        m
    }

    const UPDATE: &[u8] = &[3, 1, 0, 0, 0, 0, 2, 128, 1, 224];
    const KEY: &[u8] = &[4, 1, 0, 0, 0, 0, 0, 0x61];
    const POINTER: &[u8] = &[5, 0, 0, 10, 0, 20];

    #[test]
    fn housekeeping_is_not_input() {
        let mut s = InputScanner::default();
        let mut stream = HANDSHAKE.to_vec();
        stream.extend([0u8; 20]); // SetPixelFormat
        stream.extend(set_encodings(12));
        stream.extend(UPDATE);
        stream.extend([150, 1, 0, 0, 0, 0, 2, 128, 1, 224]); // EnableContinuousUpdates
        stream.extend([248, 0, 0, 0, 0, 0, 0, 3, 2, 9, 9]); // ClientFence with 2 bytes
        stream.extend([255, 1, 0, 0]); // QEMU audio enable
        stream.extend([251, 0, 2, 128, 1, 224, 1, 0]); // SetDesktopSize, one screen ...
        stream.extend([0u8; 16]);
        assert!(!s.feed(&stream));
        for _ in 0..100 {
            assert!(!s.feed(UPDATE));
        }
        assert_eq!(s.state, State::Messages);
    }

    #[test]
    fn keys_pointer_and_clipboard_are_input() {
        for m in [
            KEY,
            POINTER,
            &[255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e][..],
        ] {
            let mut s = InputScanner::default();
            assert!(!s.feed(HANDSHAKE));
            assert!(s.feed(m), "{m:?}");
            assert!(!s.feed(UPDATE), "{m:?} is over");
        }
        let mut s = InputScanner::default();
        s.feed(HANDSHAKE);
        let mut cut = vec![6, 0, 0, 0];
        cut.extend(5000u32.to_be_bytes());
        cut.extend(vec![b'x'; 5000]);
        cut.extend(UPDATE);
        assert!(s.feed(&cut));
        assert!(
            s.pending.capacity() < 64,
            "clipboard text is skipped, not kept"
        );
        assert!(!s.feed(UPDATE));
    }

    #[test]
    fn messages_split_anywhere() {
        let mut stream = HANDSHAKE.to_vec();
        stream.extend(set_encodings(3));
        stream.extend(UPDATE);
        let quiet = stream.len();
        stream.extend(KEY);
        stream.extend(UPDATE);
        for cut in 0..stream.len() {
            let mut s = InputScanner::default();
            let first = s.feed(&stream[..cut]);
            let second = s.feed(&stream[cut..]);
            assert_eq!(first, cut > quiet, "cut at {cut}");
            assert_eq!(second, cut <= quiet, "cut at {cut}");
        }
        // One byte at a time.
        let mut s = InputScanner::default();
        let seen: Vec<usize> = stream
            .iter()
            .enumerate()
            .filter(|(_, b)| s.feed(&[**b]))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(seen, [quiet]);
    }

    #[test]
    fn what_it_cannot_follow_counts_as_input() {
        let mut s = InputScanner::default();
        assert!(!s.feed(HANDSHAKE));
        assert!(s.feed(&[77, 0, 0]), "unknown message");
        assert!(s.feed(UPDATE), "opaque from then on");

        let mut s = InputScanner::default();
        s.feed(b"RFB 003.008\n\x13");
        assert!(s.feed(&[0, 2]), "VeNCrypt");
        let mut s = InputScanner::default();
        assert!(!s.feed(b"RFB 003.008\n\x02"));
        assert!(!s.feed(&[7u8; 16]), "the VNC authentication response");
        assert!(!s.feed(&[1]), "ClientInit");
        assert!(!s.feed(UPDATE));
        assert!(s.feed(KEY));
    }
}
