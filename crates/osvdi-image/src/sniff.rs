//! Format detection from magic numbers, and pre-flight checks of qcow2 headers.
//!
//! Everything here is pure: it looks at bytes the caller read from the file, so it can be
//! unit-tested and fuzzed without touching the file system.

use crate::error::{ImageError, sanitize};
use crate::{ImageFormat, Limits};

/// How many bytes from the start of the file [`sniff`] wants (covers the ISO 9660 volume
/// descriptor at 0x8001 and a qcow2 header with its extensions and backing file name).
pub const HEADER_LEN: usize = 64 * 1024;
/// How many bytes from the end of the file [`sniff`] wants (VHD and DMG footers).
pub const TAIL_LEN: usize = 512;

/// What the first and last bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// qcow2 (header version 2 or 3).
    Qcow2,
    /// A raw disk: whole sectors, with an MBR boot signature or a GPT header.
    Raw,
    /// A recognised format the server refuses; the name is for the error message.
    Unsupported(&'static str),
    /// Not a disk image we know.
    Unknown,
}

const QCOW_MAGIC: &[u8] = b"QFI\xfb";
const VDI_SIGNATURE: u32 = 0xbeda_107f;

/// Detects the format of a file from its first bytes (`header`, ideally [`HEADER_LEN`] long
/// or the whole file), its length, and its last bytes (`tail`, ideally [`TAIL_LEN`] long).
pub fn sniff(header: &[u8], file_len: u64, tail: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| header.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| {
        header
            .get(offset..offset.saturating_add(magic.len()))
            .is_some_and(|b| b == magic)
    };

    if starts(QCOW_MAGIC) {
        return match be_u32(header, 4) {
            Some(2 | 3) => Sniffed::Qcow2,
            Some(1) => Sniffed::Unsupported("qcow (version 1)"),
            _ => Sniffed::Unknown,
        };
    }
    if starts(b"KDMV") || starts(b"COWD") || starts(b"# Disk DescriptorFile") {
        return Sniffed::Unsupported("vmdk");
    }
    if starts(b"<<< ") && le_u32(header, 0x40) == Some(VDI_SIGNATURE) {
        return Sniffed::Unsupported("vdi");
    }
    if starts(b"vhdxfile") {
        return Sniffed::Unsupported("vhdx");
    }
    // Dynamic VHDs carry a copy of the footer at the start; fixed ones only the footer, which
    // old Virtual PC versions wrote 511 bytes long.
    if starts(b"conectix")
        || tail.starts_with(b"conectix")
        || tail.get(1..).is_some_and(|t| t.starts_with(b"conectix"))
    {
        return Sniffed::Unsupported("vhd (vpc)");
    }
    if starts(b"QED\0") {
        return Sniffed::Unsupported("qed");
    }
    if starts(b"WithoutFreeSpace") || starts(b"WithouFreSpacExt") {
        return Sniffed::Unsupported("parallels");
    }
    if starts(b"LUKS\xba\xbe") {
        return Sniffed::Unsupported("luks");
    }
    if starts(b"Bochs Virtual HD Image") {
        return Sniffed::Unsupported("bochs");
    }
    if starts(b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop") {
        return Sniffed::Unsupported("cloop");
    }
    if tail.len() >= TAIL_LEN && tail[tail.len() - TAIL_LEN..].starts_with(b"koly") {
        return Sniffed::Unsupported("dmg");
    }
    // ISO 9660 ("CD001") or UDF ("BEA01") volume descriptor. Checked before the MBR because
    // hybrid installer ISOs also carry a boot signature.
    if at(0x8001, b"CD001") || at(0x8001, b"BEA01") {
        return Sniffed::Unsupported("iso");
    }
    let whole_sectors = file_len > 0 && file_len.is_multiple_of(512);
    if whole_sectors && (at(510, &[0x55, 0xaa]) || at(512, b"EFI PART") || at(4096, b"EFI PART")) {
        return Sniffed::Raw;
    }
    Sniffed::Unknown
}

/// Everything that can be decided from the file's length and its first and last bytes,
/// before any external tool runs: size limit, format, and for qcow2 the header checks
/// (backing file, external data file, encryption, corrupt flag, virtual size limit).
pub fn preflight(
    header: &[u8],
    file_len: u64,
    tail: &[u8],
    limits: &Limits,
) -> Result<ImageFormat, ImageError> {
    if file_len > limits.max_file_bytes {
        return Err(ImageError::TooLarge {
            size: file_len,
            max: limits.max_file_bytes,
        });
    }
    match sniff(header, file_len, tail) {
        Sniffed::Qcow2 => {
            let h = check_qcow2_header(header)?;
            if h.size > limits.max_virtual_bytes {
                return Err(ImageError::VirtualTooLarge {
                    size: h.size,
                    max: limits.max_virtual_bytes,
                });
            }
            Ok(ImageFormat::Qcow2)
        }
        Sniffed::Raw => Ok(ImageFormat::Raw),
        Sniffed::Unsupported(format) => Err(ImageError::UnsupportedFormat { format }),
        Sniffed::Unknown => Err(ImageError::UnknownFormat),
    }
}

/// The facts about a qcow2 header that matter before qemu is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Qcow2Header {
    /// Virtual disk size in bytes.
    pub size: u64,
}

const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const EXT_END: u32 = 0;
const EXT_DATA_FILE: u32 = 0x4441_5441; // "DATA"
const V2_HEADER_LEN: usize = 72;

/// Refuses, from the header alone, qcow2 images that reference other files, are encrypted or
/// are marked corrupt, so that qemu never gets a chance to open anything but the upload.
/// `header` must start at offset 0 of the file (and is ideally [`HEADER_LEN`] long).
pub(crate) fn check_qcow2_header(header: &[u8]) -> Result<Qcow2Header, ImageError> {
    let field64 = |off| be_u64(header, off).ok_or_else(short_header);
    let field32 = |off| be_u32(header, off).ok_or_else(short_header);

    let version = field32(4)?;
    let backing_offset = field64(8)?;
    let backing_len = field32(16)?;
    let size = field64(24)?;
    let crypt_method = field32(32)?;

    if backing_offset != 0 {
        let name = usize::try_from(backing_offset)
            .ok()
            .and_then(|off| header.get(off..off.checked_add(usize::try_from(backing_len).ok()?)?))
            .map(display_name);
        return Err(ImageError::BackingFile { name });
    }

    let (incompatible, header_len) = if version >= 3 {
        (
            field64(72)?,
            usize::try_from(field32(100)?).unwrap_or(usize::MAX),
        )
    } else {
        (0, V2_HEADER_LEN)
    };

    if incompatible & INCOMPAT_DATA_FILE != 0 {
        let name = header_extensions(header, header_len)
            .find(|(ty, _)| *ty == EXT_DATA_FILE)
            .map(|(_, data)| display_name(data));
        return Err(ImageError::ExternalDataFile { name });
    }
    if crypt_method != 0 {
        return Err(ImageError::Encrypted);
    }
    if incompatible & INCOMPAT_CORRUPT != 0 {
        return Err(ImageError::corrupt("qemu marked the image as corrupt"));
    }
    Ok(Qcow2Header { size })
}

fn short_header() -> ImageError {
    ImageError::corrupt("the qcow2 header is incomplete")
}

/// Iterates over the (type, data) header extensions that lie inside `header`.
fn header_extensions(header: &[u8], start: usize) -> impl Iterator<Item = (u32, &[u8])> {
    let mut pos = Some(start);
    std::iter::from_fn(move || {
        let p = pos?;
        let ty = be_u32(header, p)?;
        let len = usize::try_from(be_u32(header, p.checked_add(4)?)?).ok()?;
        let data_start = p.checked_add(8)?;
        let data = header.get(data_start..data_start.checked_add(len)?)?;
        if ty == EXT_END {
            pos = None;
            return None;
        }
        // Extensions are padded to a multiple of 8 bytes.
        pos = data_start.checked_add(len.checked_next_multiple_of(8)?);
        Some((ty, data))
    })
}

fn display_name(raw: &[u8]) -> String {
    sanitize(&String::from_utf8_lossy(raw), 120)
}

fn be_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First 0x98 bytes of `qemu-img create -f qcow2 -o data_file=/tmp/qi/data.raw df.qcow2 64M`
    /// (qemu-img 10.0.2).
    const REAL_DATA_FILE_HEADER: &str = "\
        514649fb00000003000000000000000000000000000000100000000004000000\
        0000000000000001000000000003000000000000000100000000000100000000\
        0000000000000000000000000000000400000000000000000000000000000000\
        0000000400000070000000000000000044415441000000102f746d702f71692f\
        646174612e7261776803f857000001800000646972747920";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A minimal qcow2 v3 header for a `size`-byte disk, padded to 64 KiB.
    fn qcow2(size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 0x10000];
        h[..4].copy_from_slice(QCOW_MAGIC);
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&size.to_be_bytes());
        h[96..100].copy_from_slice(&4u32.to_be_bytes());
        h[100..104].copy_from_slice(&104u32.to_be_bytes());
        h
    }

    fn sniff_all(bytes: &[u8]) -> Sniffed {
        let head = &bytes[..bytes.len().min(HEADER_LEN)];
        let tail = &bytes[bytes.len().saturating_sub(TAIL_LEN)..];
        sniff(head, bytes.len() as u64, tail)
    }

    #[test]
    fn qcow2_versions() {
        let mut h = qcow2(1 << 30);
        assert_eq!(sniff_all(&h), Sniffed::Qcow2);
        h[7] = 2;
        assert_eq!(sniff_all(&h), Sniffed::Qcow2);
        h[7] = 1;
        assert_eq!(sniff_all(&h), Sniffed::Unsupported("qcow (version 1)"));
        h[7] = 9;
        assert_eq!(sniff_all(&h), Sniffed::Unknown);
        assert_eq!(sniff_all(b"QFI\xfb"), Sniffed::Unknown);
    }

    #[test]
    fn other_formats_are_named() {
        let mut vdi = vec![0u8; 1024];
        vdi[..24].copy_from_slice(b"<<< QEMU VM Virtual Disk");
        vdi[0x40..0x44].copy_from_slice(&VDI_SIGNATURE.to_le_bytes());
        let mut fixed_vhd = vec![0u8; 4096];
        fixed_vhd[510] = 0x55;
        fixed_vhd[511] = 0xaa;
        fixed_vhd[4096 - 512..4096 - 504].copy_from_slice(b"conectix");
        let mut dmg = vec![0u8; 2048];
        dmg[2048 - 512..2048 - 508].copy_from_slice(b"koly");
        let cases: [(&[u8], &str); 12] = [
            (b"KDMV\x01\0\0\0", "vmdk"),
            (b"COWD\x01\0\0\0", "vmdk"),
            (b"# Disk DescriptorFile\nversion=1\n", "vmdk"),
            (&vdi, "vdi"),
            (b"vhdxfileQ\0E\0M\0U\0", "vhdx"),
            (b"conectix\0\0\0\x02", "vhd (vpc)"),
            (&fixed_vhd, "vhd (vpc)"),
            (b"QED\0\0\0\x01\0", "qed"),
            (b"WithouFreSpacExt", "parallels"),
            (b"LUKS\xba\xbe\0\x01aes", "luks"),
            (b"Bochs Virtual HD Image\0\0", "bochs"),
            (&dmg, "dmg"),
        ];
        for (bytes, name) in cases {
            assert_eq!(sniff_all(bytes), Sniffed::Unsupported(name), "{name}");
        }
        // "<<< " without the VDI signature is just text.
        assert_eq!(sniff_all(&vdi[..0x40]), Sniffed::Unknown);
    }

    #[test]
    fn iso_is_refused_even_when_hybrid() {
        let mut iso = vec![0u8; 0x9000];
        iso[510] = 0x55;
        iso[511] = 0xaa;
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(sniff_all(&iso), Sniffed::Unsupported("iso"));
    }

    #[test]
    fn raw_needs_partition_table_and_whole_sectors() {
        let mut mbr = vec![0u8; 1 << 20];
        assert_eq!(sniff_all(&mbr), Sniffed::Unknown);
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        assert_eq!(sniff_all(&mbr), Sniffed::Raw);
        assert_eq!(sniff_all(&mbr[..(1 << 20) - 1]), Sniffed::Unknown);

        let mut gpt = vec![0u8; 1 << 20];
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(sniff_all(&gpt), Sniffed::Raw);
        let mut gpt4k = vec![0u8; 1 << 20];
        gpt4k[4096..4104].copy_from_slice(b"EFI PART");
        assert_eq!(sniff_all(&gpt4k), Sniffed::Raw);
    }

    #[test]
    fn junk_is_unknown() {
        assert_eq!(sniff(&[], 0, &[]), Sniffed::Unknown);
        assert_eq!(sniff_all(b"hello world\n"), Sniffed::Unknown);
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(sniff_all(&noise), Sniffed::Unknown);
    }

    #[test]
    fn preflight_applies_limits_and_header_checks() {
        let limits = Limits {
            max_file_bytes: 1 << 20,
            max_virtual_bytes: 1 << 30,
        };
        let h = qcow2(1 << 30);
        assert_eq!(
            preflight(&h, 1 << 16, &[], &limits).unwrap(),
            ImageFormat::Qcow2
        );
        assert!(matches!(
            preflight(&h, (1 << 20) + 1, &[], &limits),
            Err(ImageError::TooLarge { .. })
        ));
        assert!(matches!(
            preflight(&qcow2((1 << 30) + 1), 1 << 16, &[], &limits),
            Err(ImageError::VirtualTooLarge { .. })
        ));
        assert!(matches!(
            preflight(b"KDMV", 512, &[], &limits),
            Err(ImageError::UnsupportedFormat { format: "vmdk" })
        ));
        assert!(matches!(
            preflight(b"", 0, &[], &limits),
            Err(ImageError::UnknownFormat)
        ));
    }

    #[test]
    fn plain_qcow2_header_passes() {
        assert_eq!(
            check_qcow2_header(&qcow2(64 << 20)).unwrap(),
            Qcow2Header { size: 64 << 20 }
        );
        let mut v2 = qcow2(1 << 20);
        v2[7] = 2;
        v2[72..80].fill(0xff); // not a feature field in v2
        assert!(check_qcow2_header(&v2).is_ok());
    }

    #[test]
    fn backing_file_in_header_is_refused() {
        let mut h = qcow2(1 << 20);
        h[8..16].copy_from_slice(&0x200u64.to_be_bytes());
        h[16..20].copy_from_slice(&8u32.to_be_bytes());
        h[0x200..0x208].copy_from_slice(b"base.raw");
        match check_qcow2_header(&h) {
            Err(ImageError::BackingFile { name }) => assert_eq!(name.as_deref(), Some("base.raw")),
            other => panic!("{other:?}"),
        }
        // Name outside what we read, or absurd: still refused, just without a name.
        h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            check_qcow2_header(&h),
            Err(ImageError::BackingFile { name: None })
        ));
    }

    #[test]
    fn real_data_file_header_is_refused() {
        let h = hex(REAL_DATA_FILE_HEADER);
        assert_eq!(sniff(&h, 200_704, &[]), Sniffed::Qcow2);
        match check_qcow2_header(&h) {
            Err(ImageError::ExternalDataFile { name }) => {
                assert_eq!(name.as_deref(), Some("/tmp/qi/data.raw"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encrypted_and_corrupt_flags_are_refused() {
        let mut h = qcow2(1 << 20);
        h[35] = 2; // LUKS
        assert!(matches!(check_qcow2_header(&h), Err(ImageError::Encrypted)));
        let mut h = qcow2(1 << 20);
        h[79] = 0x02;
        assert!(matches!(
            check_qcow2_header(&h),
            Err(ImageError::Corrupt { .. })
        ));
        assert!(matches!(
            check_qcow2_header(&h[..50]),
            Err(ImageError::Corrupt { .. })
        ));
    }

    #[test]
    fn hostile_extension_lengths_do_not_panic() {
        let mut h = qcow2(1 << 20);
        h[79] = 0x04;
        h[104..108].copy_from_slice(&EXT_DATA_FILE.to_be_bytes());
        h[108..112].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            check_qcow2_header(&h),
            Err(ImageError::ExternalDataFile { name: None })
        ));
        h[100..104].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(check_qcow2_header(&h).is_err());
    }
}
