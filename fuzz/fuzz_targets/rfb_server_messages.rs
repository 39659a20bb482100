//! Fuzz target: untrusted bytes from a VNC server through osvdi-rfb: the server-message
//! parser at each pixel size, the Tight decoder (zlib streams and JPEG) on every Tight
//! rectangle the parser accepts, and the whole client, from the greeting and after a
//! handshake. None of it may panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osvdi_rfb::{Client, Config, RectData, ServerMessage, TightDecoder, parse_server_message};

/// RFB 3.8, security None, a 64x64 BGRX framebuffer named "f".
const HANDSHAKE: &[u8] = b"RFB 003.008\n\x01\x01\x00\x00\x00\x00\x00\x40\x00\x40\
\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x10\x08\x00\x00\x00\x00\x00\x00\x00\x01f";

fuzz_target!(|data: &[u8]| {
    for bpp in [1, 2, 4] {
        let _ = parse_server_message(data, bpp);
    }
    // Every message in the input, Tight rectangles decoded in order on one decoder.
    let mut tight = TightDecoder::new();
    let mut rest = data;
    while let Ok((msg, used)) = parse_server_message(rest, 4) {
        if let ServerMessage::FramebufferUpdate(rects) = msg {
            for r in &rects {
                if let RectData::Tight(t) = &r.data {
                    let _ = tight.decode(t, r.w, r.h, 4);
                }
            }
        }
        rest = &rest[used..];
    }
    let mut fresh = Client::new(Config::default());
    fresh.handle_input(data);
    while fresh.poll_output().is_some() {}

    let mut client = Client::new(Config::default());
    client.handle_input(HANDSHAKE);
    // Split the input where its first byte says, to exercise partial messages.
    let at = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    client.handle_input(&data[..at]);
    client.handle_input(&data[at..]);
    while client.poll_output().is_some() {}
});
