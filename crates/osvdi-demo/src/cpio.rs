//! A writer for the newc ("070701") cpio format that the Linux kernel unpacks as an initramfs.
//!
//! Only what an initramfs needs: directories, regular files, symlinks and character devices,
//! owned by root, with a fixed modification time so the same inputs give the same bytes.
//! Writing device nodes here is what lets the image be built without root.

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// The largest file the format can describe (its size field is eight hex digits).
pub(crate) const MAX_FILE: usize = u32::MAX as usize;

/// An archive being written in memory.
#[derive(Debug, Default)]
pub(crate) struct Newc {
    buf: Vec<u8>,
    next_ino: u32,
}

/// The fields of one header that differ between entry kinds.
struct Entry<'a> {
    path: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

impl Newc {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a directory; `path` is relative to the archive root, such as `usr/bin`.
    pub(crate) fn dir(&mut self, path: &str, perm: u32) {
        self.entry(Entry {
            path,
            mode: S_IFDIR | perm,
            nlink: 2,
            rdev: (0, 0),
            data: &[],
        });
    }

    /// Adds a regular file. `data` must be at most [`MAX_FILE`] bytes.
    pub(crate) fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(Entry {
            path,
            mode: S_IFREG | perm,
            nlink: 1,
            rdev: (0, 0),
            data,
        });
    }

    /// Adds a symbolic link to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        let data = target.as_bytes();
        self.entry(Entry {
            path,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
            data,
        });
    }

    /// Adds a character device node.
    pub(crate) fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        let rdev = (major, minor);
        self.entry(Entry {
            path,
            mode: S_IFCHR | perm,
            nlink: 1,
            rdev,
            data: &[],
        });
    }

    /// Appends the trailer and returns the archive.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.header(
            0,
            &Entry {
                path: TRAILER,
                mode: 0,
                nlink: 1,
                rdev: (0, 0),
                data: &[],
            },
        );
        self.buf
    }

    fn entry(&mut self, entry: Entry<'_>) {
        self.next_ino += 1;
        self.header(self.next_ino, &entry);
        self.buf.extend_from_slice(entry.data);
        self.pad();
    }

    fn header(&mut self, ino: u32, e: &Entry<'_>) {
        // Callers pass inputs checked against MAX_FILE (busybox) or small built-in texts.
        let size = u32::try_from(e.data.len()).expect("cpio entries are at most MAX_FILE bytes");
        // Paths are short literals from this crate; the name size counts the trailing NUL.
        let namesize = u32::try_from(e.path.len() + 1).expect("cpio paths are short");
        let (rmajor, rminor) = e.rdev;
        let fields = [
            ino, e.mode, 0, 0, e.nlink, 0, size, 0, 0, rmajor, rminor, namesize, 0,
        ];
        self.buf.extend_from_slice(MAGIC.as_bytes());
        for field in fields {
            self.buf
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.buf.extend_from_slice(e.path.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    /// One parsed entry: name, mode, rdev major and minor, data.
    type Parsed = (String, u32, u32, u32, Vec<u8>);

    /// Reads an archive back, checking the alignment rules on the way.
    fn parse(mut buf: &[u8]) -> Vec<Parsed> {
        let total = buf.len();
        let mut out = Vec::new();
        loop {
            assert_eq!(&buf[..6], MAGIC.as_bytes());
            let field = |i: usize| {
                let hex = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            let (mode, size, rmajor, rminor, namesize) = (
                field(1),
                field(6) as usize,
                field(9),
                field(10),
                field(11) as usize,
            );
            let name = std::str::from_utf8(&buf[110..110 + namesize - 1])
                .unwrap()
                .to_owned();
            assert_eq!(
                buf[110 + namesize - 1],
                0,
                "name of {name} is NUL-terminated"
            );
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = buf[data_at..data_at + size].to_vec();
            let next = (data_at + size).next_multiple_of(4);
            if name == TRAILER {
                assert_eq!(next, buf.len(), "nothing follows the trailer");
                assert!(total.is_multiple_of(4));
                return out;
            }
            out.push((name, mode, rmajor, rminor, data));
            buf = &buf[next..];
        }
    }

    fn sample() -> Vec<u8> {
        let mut a = Newc::new();
        a.dir("bin", 0o755);
        a.file("bin/hello", 0o755, b"hi!\n\x00");
        a.symlink("bin/sh", "hello");
        a.char_device("dev/console", 0o600, 5, 1);
        a.finish()
    }

    #[test]
    fn first_header_is_byte_exact() {
        let mut a = Newc::new();
        a.dir("dd", 0o755);
        let got = String::from_utf8(a.finish()[..116].to_vec()).unwrap();
        let want = concat!(
            "070701",
            "00000001",
            "000041ED",
            "00000000",
            "00000000",
            "00000002",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000003",
            "00000000",
            "dd\0\0\0\0"
        );
        assert_eq!(got, want);
    }

    #[test]
    fn entries_round_trip() {
        let entries = parse(&sample());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/hello", "bin/sh", "dev/console"]);
        assert_eq!(entries[0].1, 0o040_755);
        assert_eq!(
            (entries[1].1, entries[1].4.as_slice()),
            (0o100_755, &b"hi!\n\x00"[..])
        );
        assert_eq!(
            (entries[2].1, entries[2].4.as_slice()),
            (0o120_777, &b"hello"[..])
        );
        assert_eq!(
            (entries[3].1, entries[3].2, entries[3].3),
            (0o020_600, 5, 1)
        );
    }

    /// GNU cpio, where installed, must list the same entries (it is not a prerequisite).
    #[test]
    fn gnu_cpio_reads_it() {
        let Ok(mut child) = Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("cpio is not installed; skipping the cross-check");
            return;
        };
        child.stdin.take().unwrap().write_all(&sample()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "bin\nbin/hello\nbin/sh\ndev/console\n"
        );
    }
}
