//! Running `qemu-img` safely (resource limits, timeout, no shell) and the inspection flow.

use std::ffi::OsString;
use std::io::SeekFrom;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};
use tokio::process::Command;

use crate::error::{ImageError, sanitize};
use crate::report::{parse_check, parse_info};
use crate::sniff::{HEADER_LEN, TAIL_LEN, preflight};
use crate::{ImageFormat, ImageInfo, Limits};

/// Address-space limit for qemu-img, as OpenStack uses for untrusted images.
const ADDRESS_SPACE_LIMIT: u64 = 1 << 30;
/// CPU-time limit for qemu-img, in seconds.
const CPU_LIMIT_SECS: u64 = 30;
/// Default wall-clock limit for one qemu-img run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most stdout kept; `info` of a qcow2 with the maximum 65536 snapshots prints about 16 MiB.
const MAX_STDOUT: usize = 64 << 20;
/// Most stderr kept (only the first lines are ever used).
const MAX_STDERR: usize = 64 << 10;

static PRLIMIT_WARNED: AtomicBool = AtomicBool::new(false);

/// A located `qemu-img` binary and how to run it.
#[derive(Debug, Clone)]
pub struct QemuImg {
    qemu_img: PathBuf,
    prlimit: Option<PathBuf>,
    timeout: Duration,
}

impl QemuImg {
    /// Finds `qemu-img` at `explicit`, or else on `PATH`, and `prlimit` on `PATH` (without it
    /// qemu-img runs without resource limits, with a warning logged once).
    pub fn locate(explicit: Option<&Path>) -> Result<Self, ImageError> {
        let qemu_img = match explicit {
            Some(p) if is_executable(p) => p.to_path_buf(),
            Some(p) => {
                return Err(ImageError::tool(format!(
                    "qemu-img is not an executable file at the configured path {}; \
                     install the qemu-utils package or fix the setting",
                    p.display()
                )));
            }
            None => find_on_path("qemu-img").ok_or_else(|| {
                ImageError::tool("qemu-img not found on PATH; install the qemu-utils package")
            })?,
        };
        let prlimit = find_on_path("prlimit");
        if prlimit.is_none() && !PRLIMIT_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "prlimit not found on PATH (util-linux); qemu-img will run on uploaded images \
                 without memory and CPU limits"
            );
        }
        Ok(Self {
            qemu_img,
            prlimit,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the wall-clock limit for each qemu-img run (default 60 s).
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// The first line of `qemu-img --version`, e.g. `qemu-img version 10.0.2 (Debian ...)`.
    pub async fn version(&self) -> Result<String, ImageError> {
        let out = self.run(vec!["--version".into()]).await?;
        if !out.status.success() {
            return Err(ImageError::tool(format!(
                "qemu-img --version failed ({})",
                describe(out.status)
            )));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| sanitize(l, 200))
            .ok_or_else(|| ImageError::tool("qemu-img --version printed nothing"))
    }

    /// Verifies the image at `path` (a regular file; the server passes an absolute path in its
    /// data directory) and describes it, or says why it is refused.
    pub async fn inspect(&self, path: &Path, limits: &Limits) -> Result<ImageInfo, ImageError> {
        // An absolute, canonical path can be neither an option ("-...") nor a qemu protocol
        // ("json:...", "nbd:..."): qemu only looks for a protocol before the first '/'.
        let path = tokio::fs::canonicalize(path).await?;
        if !path.is_absolute() {
            // canonicalize always returns an absolute path; keep the guarantee explicit.
            return Err(ImageError::tool("image path is not absolute"));
        }
        let meta = tokio::fs::metadata(&path).await?;
        if !meta.is_file() {
            return Err(ImageError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the image is not a regular file",
            )));
        }
        let file_size = meta.len();
        let (header, tail) = read_ends(&path, file_size).await?;
        let format = preflight(&header, file_size, &tail, limits)?;
        tracing::debug!(%format, file_size, "image sniffed; running qemu-img info");

        let out = self.run(self.args("info", format, &path)).await?;
        if !out.status.success() {
            return Err(self.failure("info", &out, &path));
        }
        let virtual_size = parse_info(&out.stdout)?.judge(format, limits)?;

        let leaked_clusters = match format {
            ImageFormat::Qcow2 => {
                self.check_qcow2(&path, file_size, qcow2_cluster_size(&header))
                    .await?
            }
            ImageFormat::Raw => 0,
        };
        Ok(ImageInfo {
            format,
            virtual_size,
            file_size,
            leaked_clusters,
        })
    }

    /// Runs `qemu-img check`; returns the number of leaked clusters of an acceptable image.
    ///
    /// qemu does not pad the file's last cluster, so `image-end-offset` may lie up to one
    /// cluster past the end of a complete file: only an end beyond that is a truncation.
    async fn check_qcow2(
        &self,
        path: &Path,
        file_size: u64,
        cluster_size: u64,
    ) -> Result<u64, ImageError> {
        let out = self
            .run(self.args("check", ImageFormat::Qcow2, path))
            .await?;
        // 0: clean, 2: corruptions, 3: leaks only; anything else means the check failed.
        let code = out.status.code();
        if !matches!(code, Some(0 | 2 | 3)) {
            return Err(self.failure("check", &out, path));
        }
        let check = parse_check(&out.stdout)?;
        let complete_end = file_size
            .div_ceil(cluster_size)
            .saturating_mul(cluster_size);
        if let Some(end) = check.image_end_offset.filter(|end| *end > complete_end) {
            return Err(ImageError::Truncated {
                expected: end,
                actual: file_size,
            });
        }
        if code == Some(2) || check.corruptions > 0 {
            return Err(ImageError::corrupt(format!(
                "qemu-img check found {} corruption{}",
                check.corruptions,
                plural(check.corruptions)
            )));
        }
        if check.check_errors > 0 {
            return Err(ImageError::corrupt(format!(
                "qemu-img check hit {} error{} reading it",
                check.check_errors,
                plural(check.check_errors)
            )));
        }
        if check.leaks > 0 {
            tracing::info!(leaks = check.leaks, "image accepted with leaked clusters");
        }
        Ok(check.leaks)
    }

    fn args(&self, sub: &str, format: ImageFormat, path: &Path) -> Vec<OsString> {
        vec![
            sub.into(),
            "--output=json".into(),
            "--force-share".into(),
            "-f".into(),
            format.as_str().into(),
            path.into(),
        ]
    }

    /// Turns a failed run into an error: an exit code means qemu-img judged the image
    /// unreadable (the image's fault), a signal means it was killed (ours, or the limits').
    fn failure(&self, sub: &str, out: &Output, path: &Path) -> ImageError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        tracing::warn!(
            status = %describe(out.status),
            stderr = %stderr.chars().take(2000).collect::<String>(),
            "qemu-img {sub} failed"
        );
        let detail = first_error_line(&stderr, path);
        if out.status.code().is_none() || stderr.trim_start().starts_with("prlimit:") {
            return ImageError::tool(format!(
                "qemu-img {sub} did not complete ({}){}",
                describe(out.status),
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ));
        }
        ImageError::corrupt(match detail {
            Some(d) => format!("qemu-img {sub}: {d}"),
            None => format!("qemu-img {sub} failed ({})", describe(out.status)),
        })
    }

    async fn run(&self, args: Vec<OsString>) -> Result<Output, ImageError> {
        let mut cmd = match &self.prlimit {
            Some(prlimit) => {
                let mut c = Command::new(prlimit);
                c.arg(format!("--as={ADDRESS_SPACE_LIMIT}"))
                    .arg(format!("--cpu={CPU_LIMIT_SECS}"))
                    .arg("--")
                    .arg(&self.qemu_img);
                c
            }
            None => Command::new(&self.qemu_img),
        };
        cmd.args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| ImageError::tool(format!("cannot start qemu-img: {e}")))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();

        let finished = tokio::time::timeout(self.timeout, async {
            let (stdout, stderr, status) = tokio::join!(
                read_capped(stdout, MAX_STDOUT),
                read_capped(stderr, MAX_STDERR),
                child.wait()
            );
            (stdout, stderr, status)
        })
        .await;
        let Ok((stdout, stderr, status)) = finished else {
            // Dropping the child would kill it too (kill_on_drop); do it now, explicitly.
            let _ = child.start_kill();
            return Err(ImageError::tool(format!(
                "qemu-img did not finish within {} s",
                self.timeout.as_secs_f32()
            )));
        };
        let status = status.map_err(|e| ImageError::tool(format!("waiting for qemu-img: {e}")))?;
        let (stdout, stdout_overflow) =
            stdout.map_err(|e| ImageError::tool(format!("reading qemu-img output: {e}")))?;
        if stdout_overflow {
            return Err(ImageError::tool(
                "qemu-img printed more output than expected",
            ));
        }
        let (stderr, _) = stderr.unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Reads all of `pipe` (so the child never blocks on a full pipe) but keeps at most `cap`
/// bytes; the flag says whether more came.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(mut pipe) = pipe else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut overflow = false;
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, overflow));
        }
        let room = cap - kept.len();
        if n > room {
            overflow = true;
        }
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Reads the first [`HEADER_LEN`] and last [`TAIL_LEN`] bytes (fewer for small files).
async fn read_ends(path: &Path, file_size: u64) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .await?;
    let tail_len = file_size.min(TAIL_LEN as u64);
    file.seek(SeekFrom::Start(file_size - tail_len)).await?;
    let mut tail = Vec::with_capacity(TAIL_LEN);
    file.take(tail_len).read_to_end(&mut tail).await?;
    Ok((header, tail))
}

/// The first meaningful stderr line, with qemu-img's prefixes and our path removed.
fn first_error_line(stderr: &str, path: &Path) -> Option<String> {
    let path = path.to_string_lossy();
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.replace(path.as_ref(), "IMAGE");
    let mut line = line.as_str();
    for prefix in ["qemu-img: ", "Could not open 'IMAGE': ", "IMAGE: "] {
        line = line.strip_prefix(prefix).unwrap_or(line);
    }
    Some(sanitize(line, 200))
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "unknown status".to_owned(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The cluster size a qcow2 header declares (`cluster_bits` at offset 20), 64 KiB if the
/// header is too short to say (preflight has already refused such headers).
fn qcow2_cluster_size(header: &[u8]) -> u64 {
    header
        .get(20..24)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .filter(|bits| (9..=21).contains(bits))
        .map_or(1 << 16, |bits| 1u64 << bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_hides_our_path() {
        let path = Path::new("/srv/osvdi/tmp/upload-1.part");
        let stderr = "qemu-img: Could not open '/srv/osvdi/tmp/upload-1.part': \
                      Could not read L1 table: Input/output error\n";
        assert_eq!(
            first_error_line(stderr, path).unwrap(),
            "Could not read L1 table: Input/output error"
        );
        let stderr = "\nqemu-img: /srv/osvdi/tmp/upload-1.part: odd\x1b[0m\n";
        assert_eq!(first_error_line(stderr, path).unwrap(), "odd?[0m");
        assert_eq!(first_error_line(" \n", path), None);
    }

    #[tokio::test]
    async fn capped_reader_drains_everything() {
        let data = vec![7u8; 200_000];
        let (kept, overflow) = read_capped(Some(&data[..]), 1000).await.unwrap();
        assert_eq!((kept.len(), overflow), (1000, true));
        let (kept, overflow) = read_capped(Some(&data[..10]), 1000).await.unwrap();
        assert_eq!((kept.len(), overflow), (10, false));
    }

    #[test]
    fn prlimit_is_used_when_installed() {
        let qemu_img = Path::new("/usr/bin/qemu-img");
        if is_executable(qemu_img) && find_on_path("prlimit").is_some() {
            assert!(QemuImg::locate(Some(qemu_img)).unwrap().prlimit.is_some());
        }
    }

    #[test]
    fn explicit_missing_binary_is_a_tool_error() {
        let err = QemuImg::locate(Some(Path::new("/nonexistent/qemu-img"))).unwrap_err();
        assert!(!err.is_user_error());
        assert!(err.to_string().contains("qemu-utils"), "{err}");
    }
}
