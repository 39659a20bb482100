//! Integration tests of osvdi-rfb: synthetic handshakes, replays of byte streams recorded from
//! QEMU 7.2 (`tests/data/`), and live sessions against a QEMU spawned here.

mod garbage;
mod handshake;
mod live;
mod replay;
mod tight;

use osvdi_rfb::{Client, Event, Output};

/// Feeds `bytes` to `client` in chunks of `chunk` bytes; returns what it sent and its events.
pub fn feed(client: &mut Client, bytes: &[u8], chunk: usize) -> (Vec<u8>, Vec<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    for c in bytes.chunks(chunk.max(1)) {
        client.handle_input(c);
        while let Some(out) = client.poll_output() {
            match out {
                Output::Transmit(b) => sent.extend(b),
                Output::Event(e) => events.push(e),
            }
        }
    }
    (sent, events)
}
