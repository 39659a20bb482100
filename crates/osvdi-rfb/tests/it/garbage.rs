//! A cheap stand-in for the fuzz target on stable: recorded QEMU streams with bytes flipped,
//! cut and repeated go through the client in odd chunks; nothing may panic.

use osvdi_rfb::{Client, Config, parse_server_message};

use crate::feed;

const NONE: &[u8] = include_bytes!("../data/qemu72_none.bin");

#[test]
fn mutated_streams_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut bytes = NONE.to_vec();
        for _ in 0..(next() % 8 + 1) {
            let i = (next() as usize) % bytes.len();
            bytes[i] = next() as u8;
        }
        bytes.truncate((next() as usize) % (bytes.len() + 1));
        let chunk = (next() % 64 + 1) as usize;
        let mut client = Client::new(Config::default());
        feed(&mut client, &bytes, chunk);
        for start in [0, 12, 14, 50] {
            let tail = bytes.get(start..).unwrap_or_default();
            for bpp in [1, 2, 4] {
                let _ = parse_server_message(tail, bpp);
            }
        }
    }
}
