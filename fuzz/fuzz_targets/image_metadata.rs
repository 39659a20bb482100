//! Fuzz target: untrusted bytes through osvdi-image's pure parsers (format sniffing, qcow2
//! header pre-flight checks, qemu-img info/check JSON). None of them may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osvdi_image::{Limits, TAIL_LEN, parse_check, parse_info, preflight, sniff};

const LIMITS: Limits = Limits {
    max_file_bytes: 1 << 40,
    max_virtual_bytes: 1 << 40,
};

fuzz_target!(|data: &[u8]| {
    // As the start of a file of some length (first 8 bytes), and as a whole small file.
    if let Some((len, header)) = data.split_first_chunk::<8>() {
        let _ = preflight(header, u64::from_le_bytes(*len), &[], &LIMITS);
    }
    let tail = &data[data.len().saturating_sub(TAIL_LEN)..];
    let _ = sniff(data, data.len() as u64, tail);
    let _ = preflight(data, data.len() as u64, tail, &LIMITS);
    // As qemu-img JSON output.
    let _ = parse_info(data);
    let _ = parse_check(data);
});
