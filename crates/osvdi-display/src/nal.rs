//! Reading H.264 Annex B streams: enough to check what an encoder produced and to split it
//! into NAL units for framing.

/// NAL unit types used here (ITU-T H.264 Table 7-1).
pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

/// The NAL units of an Annex B byte stream, without their start codes (3 or 4 bytes).
/// Bytes before the first start code are ignored.
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, body)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&(code, _)| code);
        // A four-byte start code's leading zero belongs to the next code, not to this unit.
        while end > body && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        out.push(&data[body..end]);
    }
    out
}

/// The type of a NAL unit (its first byte's low five bits); 0 for an empty unit.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let nals = split_annex_b(&stream);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 0][..]]
        );
        let types: Vec<u8> = nals.iter().map(|n| nal_type(n)).collect();
        assert_eq!(types, [NAL_SPS, NAL_PPS, NAL_IDR]);
        assert!(split_annex_b(&[1, 2, 3]).is_empty());
    }
}
