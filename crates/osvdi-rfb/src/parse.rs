//! The server-to-client message parser: pure, incremental (it says how many bytes it needs at
//! least when a message is not complete), bounded, and never panics on any input (fuzzed by
//! `fuzz/fuzz_targets/rfb_server_messages.rs`).

use crate::ProtocolError;
use crate::tight::{Tight, parse_tight};
use crate::wire::Encoding;

/// Largest rectangle side accepted (pixels).
pub const MAX_RECT_SIDE: u16 = 16384;
/// Largest payload of one server message accepted (bytes).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// One rectangle of a framebuffer update. For pseudo-encodings the fields mean what the
/// encoding says (for [`RectData::Cursor`], `x`/`y` are the hot spot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
    pub data: RectData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RectData {
    /// `w * h` pixels in the client's pixel format, row by row.
    Raw(Vec<u8>),
    /// Copy the `w * h` area at (`src_x`, `src_y`) of the current framebuffer to (`x`, `y`).
    CopyRect { src_x: u16, src_y: u16 },
    /// A new cursor shape of `w * h` pixels with hot spot (`x`, `y`); `mask` has one bit per
    /// pixel, rows padded to whole bytes, most significant bit first, 1 = visible.
    Cursor { pixels: Vec<u8>, mask: Vec<u8> },
    /// The framebuffer is now `w * h`; its content is undefined until updated.
    DesktopSize,
    /// ExtendedDesktopSize: `x` is the reason (0 server, 1 this client, 2 another client),
    /// `y` the status (0 success), `w * h` the framebuffer size.
    ExtendedDesktopSize { screens: Vec<Screen> },
    /// The server accepts [`Client::qemu_key_event`](crate::Client::qemu_key_event).
    QemuExtendedKeyEvent,
    /// A Tight rectangle, still compressed: decode it with a
    /// [`TightDecoder`](crate::TightDecoder), in order, on the client's pixel format.
    Tight(Tight),
}

/// A screen of an ExtendedDesktopSize layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub id: u32,
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
    pub flags: u32,
}

/// A complete server-to-client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    FramebufferUpdate(Vec<Rect>),
    /// Colour map entries (only sent for colour-mapped formats, which we never ask for).
    SetColourMapEntries {
        first: u16,
        colours: Vec<[u16; 3]>,
    },
    Bell,
    /// Clipboard text from the server, Latin-1 by the standard.
    ServerCutText(Vec<u8>),
}

/// Why a buffer did not give a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// The message is not complete: at least this many bytes (from the start) are needed.
    Incomplete(usize),
    Invalid(ProtocolError),
}

impl From<ProtocolError> for Parse {
    fn from(e: ProtocolError) -> Self {
        Self::Invalid(e)
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Parse> {
        let end = self.pos.saturating_add(n);
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Parse::Incomplete(end)),
        }
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Parse> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Parse> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Parse> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Parse> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

/// Parses the first message of `buf`, for a client whose pixel format has `bytes_per_pixel`
/// bytes per pixel. Returns the message and the bytes it took.
pub fn parse_server_message(
    buf: &[u8],
    bytes_per_pixel: usize,
) -> Result<(ServerMessage, usize), Parse> {
    let mut r = Reader { buf, pos: 0 };
    let msg = match r.u8()? {
        0 => {
            r.take(1)?;
            let n = r.u16()?;
            let mut rects = Vec::with_capacity(usize::from(n).min(1024));
            let mut budget = MAX_MESSAGE_BYTES;
            for _ in 0..n {
                match parse_rect(&mut r, bytes_per_pixel, &mut budget)? {
                    None => break,
                    Some(rect) => rects.push(rect),
                }
            }
            ServerMessage::FramebufferUpdate(rects)
        }
        1 => {
            r.take(1)?;
            let first = r.u16()?;
            let n = r.u16()?;
            let raw = r.take(usize::from(n) * 6)?;
            let colours = raw
                .chunks_exact(6)
                .map(|c| {
                    [
                        u16::from_be_bytes([c[0], c[1]]),
                        u16::from_be_bytes([c[2], c[3]]),
                        u16::from_be_bytes([c[4], c[5]]),
                    ]
                })
                .collect();
            ServerMessage::SetColourMapEntries { first, colours }
        }
        2 => ServerMessage::Bell,
        3 => {
            r.take(3)?;
            let len = r.u32()? as usize;
            if len > MAX_MESSAGE_BYTES {
                return Err(ProtocolError::MessageTooLarge.into());
            }
            ServerMessage::ServerCutText(r.take(len)?.to_vec())
        }
        other => return Err(ProtocolError::UnknownMessage(other).into()),
    };
    Ok((msg, r.pos))
}

/// One rectangle; `None` for the LastRect marker.
fn parse_rect(r: &mut Reader<'_>, bpp: usize, budget: &mut usize) -> Result<Option<Rect>, Parse> {
    let (x, y, w, h) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    let code = r.u32()? as i32;
    let encoding = Encoding::from_code(code).ok_or(ProtocolError::UnknownEncoding(code))?;
    let pixel_rect = matches!(encoding, Encoding::Raw | Encoding::Cursor);
    if pixel_rect && (w > MAX_RECT_SIDE || h > MAX_RECT_SIDE) {
        return Err(ProtocolError::RectTooLarge { w, h }.into());
    }
    let (w_px, h_px) = (usize::from(w), usize::from(h));
    let mut spend = |n: usize| -> Result<usize, Parse> {
        *budget = budget
            .checked_sub(n)
            .ok_or(Parse::Invalid(ProtocolError::MessageTooLarge))?;
        Ok(n)
    };
    let data = match encoding {
        Encoding::Raw => RectData::Raw(r.take(spend(w_px * h_px * bpp)?)?.to_vec()),
        Encoding::CopyRect => RectData::CopyRect {
            src_x: r.u16()?,
            src_y: r.u16()?,
        },
        Encoding::Cursor => {
            let pixels = r.take(spend(w_px * h_px * bpp)?)?.to_vec();
            let mask = r.take(spend(w_px.div_ceil(8) * h_px)?)?.to_vec();
            RectData::Cursor { pixels, mask }
        }
        Encoding::DesktopSize => RectData::DesktopSize,
        Encoding::ExtendedDesktopSize => {
            let n = r.u8()?;
            r.take(3)?;
            let mut screens = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                screens.push(Screen {
                    id: r.u32()?,
                    x: r.u16()?,
                    y: r.u16()?,
                    w: r.u16()?,
                    h: r.u16()?,
                    flags: r.u32()?,
                });
            }
            RectData::ExtendedDesktopSize { screens }
        }
        Encoding::QemuExtendedKeyEvent => RectData::QemuExtendedKeyEvent,
        Encoding::Tight => RectData::Tight(parse_tight(r, w, h, bpp, &mut spend)?),
        Encoding::LastRect => return Ok(None),
        // Pseudo-encodings the client asks with; a server never sends them as rectangles.
        Encoding::QualityLevel(_) | Encoding::CompressLevel(_) => {
            return Err(ProtocolError::UnknownEncoding(code).into());
        }
    };
    Ok(Some(Rect { x, y, w, h, data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect_header(x: u16, y: u16, w: u16, h: u16, enc: i32) -> Vec<u8> {
        let mut v = Vec::new();
        for n in [x, y, w, h] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&enc.to_be_bytes());
        v
    }

    #[test]
    fn update_with_every_rect_kind() {
        let mut m = vec![0, 0, 0, 6];
        m.extend(rect_header(1, 2, 2, 1, 0));
        m.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        m.extend(rect_header(0, 0, 4, 4, 1));
        m.extend([0, 9, 0, 10]);
        m.extend(rect_header(3, 4, 9, 1, -239));
        m.extend(vec![7; 36]);
        m.extend([0xff, 0x80]);
        m.extend(rect_header(0, 0, 800, 600, -223));
        m.extend(rect_header(1, 0, 1024, 768, -308));
        m.extend([1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 4, 0, 3, 0, 0, 0, 0, 0]);
        m.extend(rect_header(0, 0, 0, 0, -258));
        m.push(2); // a Bell after it
        let (msg, used) = parse_server_message(&m, 4).unwrap();
        assert_eq!(used, m.len() - 1);
        let ServerMessage::FramebufferUpdate(rects) = msg else {
            panic!("not an update: {msg:?}")
        };
        assert_eq!(rects.len(), 6);
        assert_eq!(rects[0].data, RectData::Raw(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(
            rects[1].data,
            RectData::CopyRect {
                src_x: 9,
                src_y: 10
            }
        );
        assert!(matches!(&rects[2].data, RectData::Cursor { pixels, mask }
            if pixels.len() == 36 && mask == &[0xff, 0x80]));
        assert_eq!(
            (rects[3].w, rects[3].h, &rects[3].data),
            (800, 600, &RectData::DesktopSize)
        );
        let RectData::ExtendedDesktopSize { screens } = &rects[4].data else {
            panic!()
        };
        assert_eq!(screens[0].id, 7);
        assert_eq!((screens[0].w, screens[0].h), (1024, 768));
        assert_eq!(rects[5].data, RectData::QemuExtendedKeyEvent);
        // Every strict prefix is incomplete, never an error, and asks for more than it has.
        for cut in 0..used {
            match parse_server_message(&m[..cut], 4) {
                Err(Parse::Incomplete(n)) => assert!(n > cut && n <= used, "{cut}: {n}"),
                other => panic!("prefix {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn last_rect_ends_update_early() {
        let mut m = vec![0, 0, 0xff, 0xff];
        m.extend(rect_header(0, 0, 1, 1, 0));
        m.extend([1, 2, 3, 4]);
        m.extend(rect_header(0, 0, 0, 0, -224));
        let (ServerMessage::FramebufferUpdate(rects), used) = parse_server_message(&m, 4).unwrap()
        else {
            panic!()
        };
        assert_eq!((rects.len(), used), (1, m.len()));
    }

    #[test]
    fn small_messages() {
        assert_eq!(parse_server_message(&[2], 4), Ok((ServerMessage::Bell, 1)));
        let m = [3, 0, 0, 0, 0, 0, 0, 2, b'h', b'i'];
        assert_eq!(
            parse_server_message(&m, 4),
            Ok((ServerMessage::ServerCutText(b"hi".to_vec()), 10))
        );
        let m = [1, 0, 0, 5, 0, 1, 0, 1, 0, 2, 0, 3];
        assert_eq!(
            parse_server_message(&m, 1),
            Ok((
                ServerMessage::SetColourMapEntries {
                    first: 5,
                    colours: vec![[1, 2, 3]]
                },
                12
            ))
        );
    }

    #[test]
    fn refuses_what_it_cannot_bound_or_understand() {
        let inv = |m: &[u8]| match parse_server_message(m, 4) {
            Err(Parse::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(inv(&[9]), ProtocolError::UnknownMessage(9));
        let mut m = vec![0, 0, 0, 1];
        m.extend(rect_header(0, 0, 1, 1, 16));
        assert_eq!(inv(&m), ProtocolError::UnknownEncoding(16));
        let mut m = vec![0, 0, 0, 1];
        m.extend(rect_header(0, 0, 16385, 1, 0));
        assert_eq!(inv(&m), ProtocolError::RectTooLarge { w: 16385, h: 1 });
        assert_eq!(
            inv(&[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            ProtocolError::MessageTooLarge
        );
        // Two 16384x16384x4 raw rects pass 256 MiB together (one is exactly 1 GiB: too big).
        let mut m = vec![0, 0, 0, 2];
        m.extend(rect_header(0, 0, 16384, 16384, 0));
        assert_eq!(inv(&m), ProtocolError::MessageTooLarge);
    }
}
