//! A headless X display for native clients under test: Xvfb, processes killed when dropped,
//! screenshots (`xwd` + ImageMagick's `convert`) read back as RGB pixels, and the folder test
//! artifacts are kept in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process killed (and reaped) when dropped.
pub struct Guard(pub Child);

impl Guard {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where tests leave files for people to look at: `target/test-artifacts/` of the workspace
/// (ignored by git), or `$OSVDI_TEST_ARTIFACTS`.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("OSVDI_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// The tools the native-client tests need, or what to install.
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: run scripts/install-deps.sh as root \
         (apt-get install virt-viewer xvfb x11-apps imagemagick)"
    );
}

/// An Xvfb server on a free display number.
pub struct Xvfb {
    pub display: String,
    _process: Guard,
}

impl Xvfb {
    /// Starts Xvfb on a display number it picks itself (`-displayfd`: it takes the first free
    /// one and writes it out once it accepts clients).
    pub fn start(width: u32, height: u32) -> Xvfb {
        use std::io::BufRead;
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
            ])
            .args(["-nolisten", "tcp", "-br", "-noreset"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let stdout = child.stdout.take().unwrap();
        let process = Guard(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let n: u32 = line.trim().parse().expect("Xvfb did not start");
        Xvfb {
            display: format!(":{n}"),
            _process: process,
        }
    }

    /// The whole screen as RGB pixels; also written as PNG to `png` when given.
    pub fn screenshot(&self, png: Option<&Path>) -> Rgb {
        let xwd = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display])
            .output()
            .expect("run xwd");
        assert!(xwd.status.success(), "xwd failed");
        if let Some(png) = png {
            convert(&xwd.stdout, &format!("png:{}", png.display()));
        }
        Rgb::from_ppm(&convert(&xwd.stdout, "ppm:-"))
    }
}

/// `convert xwd:- OUT` with `bytes` as input; returns its standard output.
fn convert(bytes: &[u8], out: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("convert")
        .args(["xwd:-", "-depth", "8", out])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run convert (ImageMagick)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "convert failed");
    output.stdout
}

/// An RGB picture.
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[u8; 3]>,
}

impl Rgb {
    /// Reads a binary PPM (P6, 8 bits).
    fn from_ppm(bytes: &[u8]) -> Rgb {
        let mut fields = vec![];
        let mut at = 0;
        while fields.len() < 4 {
            while bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes[at] == b'#' {
                while bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            let start = at;
            while !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
        }
        assert_eq!((fields[0].as_str(), fields[3].as_str()), ("P6", "255"));
        let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        let data = &bytes[at + 1..];
        assert_eq!(data.len(), width * height * 3, "PPM size");
        let pixels = data.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        Rgb {
            width,
            height,
            pixels,
        }
    }

    /// The bounding box (x0, y0, x1, y1; inclusive) of the pixels matching `f`, and how many.
    pub fn find(
        &self,
        f: impl Fn([u8; 3]) -> bool,
    ) -> Option<((usize, usize, usize, usize), usize)> {
        let mut bbox: Option<(usize, usize, usize, usize)> = None;
        let mut n = 0;
        for (i, p) in self.pixels.iter().enumerate() {
            if f(*p) {
                n += 1;
                let (x, y) = (i % self.width, i / self.width);
                bbox = Some(match bbox {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
        bbox.map(|b| (b, n))
    }

    /// The distinct colours in a rectangle (inclusive).
    pub fn colours_in(&self, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> usize {
        let mut seen = std::collections::HashSet::new();
        for y in y0..=y1.min(self.height - 1) {
            for x in x0..=x1.min(self.width - 1) {
                seen.insert(self.pixels[y * self.width + x]);
            }
        }
        seen.len()
    }

    /// Pixels matching `f` in a rectangle (inclusive).
    pub fn count_in(
        &self,
        (x0, y0, x1, y1): (usize, usize, usize, usize),
        f: impl Fn([u8; 3]) -> bool,
    ) -> usize {
        (y0..=y1.min(self.height - 1))
            .flat_map(|y| (x0..=x1.min(self.width - 1)).map(move |x| (x, y)))
            .filter(|&(x, y)| f(self.pixels[y * self.width + x]))
            .count()
    }
}
