//! RFB wire types shared by both directions: pixel formats, encodings, and the encoders of
//! the client-to-server messages.

/// How pixels are laid out on the wire (RFB 7.4 PIXEL_FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    /// 32 bits per pixel, little-endian, bytes in memory B, G, R, unused: what the
    /// damage-tracking and encoding side of osvdi works on.
    pub const BGRX: Self = Self {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// Bytes per pixel on the wire (1, 2 or 4 for the formats RFB allows).
    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel).div_ceil(8)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.bits_per_pixel,
            self.depth,
            u8::from(self.big_endian),
            u8::from(self.true_colour),
        ]);
        out.extend_from_slice(&self.red_max.to_be_bytes());
        out.extend_from_slice(&self.green_max.to_be_bytes());
        out.extend_from_slice(&self.blue_max.to_be_bytes());
        out.extend_from_slice(&[self.red_shift, self.green_shift, self.blue_shift, 0, 0, 0]);
    }

    pub(crate) fn decode(b: &[u8; 16]) -> Self {
        Self {
            bits_per_pixel: b[0],
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour: b[3] != 0,
            red_max: u16::from_be_bytes([b[4], b[5]]),
            green_max: u16::from_be_bytes([b[6], b[7]]),
            blue_max: u16::from_be_bytes([b[8], b[9]]),
            red_shift: b[10],
            green_shift: b[11],
            blue_shift: b[12],
        }
    }
}

/// The encodings and pseudo-encodings this client can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Raw,
    CopyRect,
    /// Pseudo: the server may end an update early with a last-rectangle marker.
    LastRect,
    /// Pseudo: the cursor shape as pixels and a bit mask (RFB "Cursor", -239).
    Cursor,
    /// Pseudo: the framebuffer changed size.
    DesktopSize,
    /// Pseudo: size changes with screen layout, reason and status (-308).
    ExtendedDesktopSize,
    /// Pseudo: QEMU accepts key events with physical key codes (-258).
    QemuExtendedKeyEvent,
    /// Tight (7): zlib-compressed fills, palettes and pixels, and JPEG (see [`crate::tight`]).
    /// Not in [`Encoding::ALL`]: only clients that decode it with a
    /// [`TightDecoder`](crate::TightDecoder) ask for it.
    Tight,
    /// Pseudo: the JPEG quality level 0..=9 a Tight server should use (-32 + level); without
    /// it, a Tight server sends no JPEG.
    QualityLevel(u8),
    /// Pseudo: the zlib compression level 0..=9 for Tight (-256 + level).
    CompressLevel(u8),
}

impl Encoding {
    /// The number on the wire.
    pub fn code(self) -> i32 {
        match self {
            Self::Raw => 0,
            Self::CopyRect => 1,
            Self::LastRect => -224,
            Self::Cursor => -239,
            Self::DesktopSize => -223,
            Self::ExtendedDesktopSize => -308,
            Self::QemuExtendedKeyEvent => -258,
            Self::Tight => 7,
            Self::QualityLevel(l) => -32 + i32::from(l.min(9)),
            Self::CompressLevel(l) => -256 + i32::from(l.min(9)),
        }
    }

    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            7 => Some(Self::Tight),
            // The ranges make the casts lossless.
            -32..=-23 => Some(Self::QualityLevel((code + 32) as u8)),
            -256..=-247 => Some(Self::CompressLevel((code + 256) as u8)),
            _ => Self::ALL.into_iter().find(|e| e.code() == code),
        }
    }

    /// What noVNC asks of QEMU, as far as QEMU acts on it: Tight first (so QEMU encodes with
    /// Tight), JPEG quality 6 and compression level 2 (noVNC's defaults), Raw as the fallback,
    /// and the pseudo-encodings that shape the picture stream. noVNC also lists encodings QEMU
    /// never picks after Tight (TightPNG, ZRLE, Hextile...) and extensions that carry no pixels
    /// (LED state, extended clipboard...); they change nothing in what is measured.
    pub fn novnc() -> Vec<Self> {
        vec![
            Self::CopyRect,
            Self::Tight,
            Self::Raw,
            Self::QualityLevel(6),
            Self::CompressLevel(2),
            Self::DesktopSize,
            Self::LastRect,
            Self::QemuExtendedKeyEvent,
            Self::ExtendedDesktopSize,
            Self::Cursor,
        ]
    }

    /// Everything this client understands, in order of preference.
    pub const ALL: [Self; 7] = [
        Self::CopyRect,
        Self::Raw,
        Self::DesktopSize,
        Self::ExtendedDesktopSize,
        Self::Cursor,
        Self::QemuExtendedKeyEvent,
        Self::LastRect,
    ];
}

pub(crate) fn set_pixel_format(pf: &PixelFormat, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0, 0]);
    pf.encode(out);
}

pub(crate) fn set_encodings(encodings: &[Encoding], out: &mut Vec<u8>) {
    // The list length is a u16; we never have more than a handful.
    let n = encodings.len().min(usize::from(u16::MAX)) as u16;
    out.extend_from_slice(&[2, 0]);
    out.extend_from_slice(&n.to_be_bytes());
    for e in &encodings[..usize::from(n)] {
        out.extend_from_slice(&e.code().to_be_bytes());
    }
}

pub(crate) fn update_request(incremental: bool, x: u16, y: u16, w: u16, h: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[3, u8::from(incremental)]);
    for v in [x, y, w, h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

pub(crate) fn key_event(down: bool, keysym: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[4, u8::from(down), 0, 0]);
    out.extend_from_slice(&keysym.to_be_bytes());
}

/// QEMU client message 255, sub-type 0: a key event with both the keysym and the QEMU key
/// number (PC scan code set 1, with 0xe0-prefixed codes as 0x80 | code).
pub(crate) fn qemu_key_event(down: bool, keysym: u32, keycode: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[255, 0]);
    out.extend_from_slice(&u16::from(down).to_be_bytes());
    out.extend_from_slice(&keysym.to_be_bytes());
    out.extend_from_slice(&keycode.to_be_bytes());
}

pub(crate) fn pointer_event(buttons: u8, x: u16, y: u16, out: &mut Vec<u8>) {
    out.push(5);
    out.push(buttons);
    out.extend_from_slice(&x.to_be_bytes());
    out.extend_from_slice(&y.to_be_bytes());
}

pub(crate) fn client_cut_text(text: &[u8], out: &mut Vec<u8>) {
    // Longer text is cut at 4 GiB - 1; nobody sends that through a clipboard.
    let len = text.len().min(u32::MAX as usize);
    out.extend_from_slice(&[6, 0, 0, 0]);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&text[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgrx_round_trips_and_is_little_endian_32() {
        let mut out = Vec::new();
        PixelFormat::BGRX.encode(&mut out);
        assert_eq!(
            out,
            [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]
        );
        let arr: [u8; 16] = out.try_into().unwrap();
        assert_eq!(PixelFormat::decode(&arr), PixelFormat::BGRX);
        assert_eq!(PixelFormat::BGRX.bytes_per_pixel(), 4);
    }

    #[test]
    fn client_messages_have_rfb_layout() {
        let mut out = Vec::new();
        qemu_key_event(true, 0x61, 0x1e, &mut out);
        assert_eq!(out, [255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
        out.clear();
        update_request(true, 1, 2, 3, 4, &mut out);
        assert_eq!(out, [3, 1, 0, 1, 0, 2, 0, 3, 0, 4]);
        out.clear();
        set_encodings(&[Encoding::Raw, Encoding::ExtendedDesktopSize], &mut out);
        assert_eq!(out, [2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xfe, 0xcc]);
        for e in Encoding::ALL.into_iter().chain(Encoding::novnc()) {
            assert_eq!(Encoding::from_code(e.code()), Some(e));
        }
        assert_eq!(Encoding::QualityLevel(6).code(), -26);
        assert_eq!(Encoding::CompressLevel(2).code(), -254);
        assert_eq!(Encoding::from_code(-22), None);
    }
}
