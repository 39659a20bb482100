//! Shared helpers: building the image into a temporary directory and running QEMU on it.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use osvdi_demo::{DemoImage, DemoOptions};

/// Builds the demo image as `demo.qcow2` in `dir`.
pub fn build_in(dir: &Path) -> Result<DemoImage> {
    let started = Instant::now();
    let image = osvdi_demo::build(&dir.join("demo.qcow2"), &DemoOptions::default())?;
    let size = std::fs::metadata(&image.path)?.len();
    println!(
        "built {} ({size} bytes of qcow2) in {:?}",
        image.path.display(),
        started.elapsed()
    );
    Ok(image)
}

/// Runs a command and returns its standard output, failing with its standard error.
pub fn output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

/// A QEMU process with its serial port, monitor and VNC server on Unix sockets; killed on drop.
pub struct Qemu {
    child: Child,
    pub dir: PathBuf,
}

impl Qemu {
    /// The options the demo is known to boot with under TCG. The serial socket waits for a
    /// client before the guest starts, so no output is lost.
    pub fn args(image: &Path, dir: &Path) -> Vec<String> {
        let sock = |name: &str| dir.join(name).display().to_string();
        [
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nodefaults",
            "-display",
            "none",
            "-drive",
            &format!(
                "file={},if=virtio,format=qcow2,snapshot=on",
                image.display()
            ),
            "-chardev",
            &format!("socket,id=s,path={},server=on,wait=on", sock("serial")),
            "-serial",
            "chardev:s",
            "-monitor",
            &format!("unix:{},server=on,wait=off", sock("monitor")),
            "-vga",
            "std",
            "-vnc",
            &format!("unix:{}", sock("vnc")),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub fn start(image: &Path, dir: &Path) -> Result<Self> {
        let log = std::fs::File::create(dir.join("qemu.log"))?;
        let child = Command::new("qemu-system-x86_64")
            .args(Self::args(image, dir))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting qemu-system-x86_64 (Debian package qemu-system-x86)")?;
        Ok(Self {
            child,
            dir: dir.to_owned(),
        })
    }

    /// Connects to one of QEMU's sockets, waiting for QEMU to create it.
    pub fn connect(&mut self, name: &str) -> Result<UnixStream> {
        let path = self.dir.join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match UnixStream::connect(&path) {
                Ok(stream) => return Ok(stream),
                Err(e) if Instant::now() > deadline => {
                    return Err(e).with_context(|| {
                        format!("connecting to {}: {}", path.display(), self.log())
                    });
                }
                Err(_) => {
                    if let Some(status) = self.child.try_wait()? {
                        bail!("qemu exited ({status}): {}", self.log());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line-oriented view of a byte stream (the guest's serial console, QEMU's monitor).
pub struct Lines {
    stream: UnixStream,
    /// Everything read so far, for error messages.
    pub seen: Vec<u8>,
    /// Where the next search starts in `seen`.
    from: usize,
}

impl Lines {
    pub fn new(stream: UnixStream) -> Result<Self> {
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(Self {
            stream,
            seen: Vec::new(),
            from: 0,
        })
    }

    pub fn send(&mut self, text: &str) -> Result<()> {
        self.stream.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Waits for a complete line (carriage returns trimmed) that `want` accepts and returns it;
    /// later searches start after it.
    pub fn wait_line(&mut self, timeout: Duration, want: impl Fn(&str) -> bool) -> Result<String> {
        self.wait(timeout, |text| {
            let mut at = 0;
            for line in text.split_inclusive('\n') {
                at += line.len();
                let line = line.strip_suffix('\n')?.trim_end_matches('\r');
                if want(line) {
                    return Some((at, line.to_owned()));
                }
            }
            None
        })
    }

    /// Waits until the unread text contains `needle`; returns the text up to its end.
    pub fn wait_for(&mut self, timeout: Duration, needle: &str) -> Result<String> {
        self.wait(timeout, |text| {
            text.find(needle)
                .map(|i| (i + needle.len(), text[..i].to_owned()))
        })
    }

    fn wait(
        &mut self,
        timeout: Duration,
        mut find: impl FnMut(&str) -> Option<(usize, String)>,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.seen[self.from..]).into_owned();
            if let Some((end, found)) = find(&text) {
                // `end` counts bytes of the lossy text; serial output here is ASCII.
                self.from += end;
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {timeout:?}; got {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            match self.stream.read(&mut buf) {
                Ok(0) => bail!(
                    "stream closed; got {:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
