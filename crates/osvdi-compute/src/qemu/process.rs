//! QEMU processes: starting a daemonized one (and surfacing its start-up errors), telling
//! whether a pid is still a desktop's QEMU, signals, waiting for an exit. No shell anywhere.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use osvdi_model::DesktopId;
use rustix::process::{Pid, Signal};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How long QEMU may take to initialise and daemonize.
const DAEMONIZE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `qemu args...` with `-daemonize` in them and waits until the daemon is initialised.
/// On failure the error is QEMU's own message: from its standard error, or from `log` (its
/// `-D` file, where the daemonizing child writes once it has opened it).
pub(crate) async fn spawn_daemon(qemu: &Path, args: &[String], log: &Path) -> Result<(), String> {
    let log_start = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut child = Command::new(qemu)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    // The daemon redirects its standard error once initialised; until then, and in the
    // foreground process that waits for it, messages arrive here.
    let mut stderr = child.stderr.take().expect("stderr was piped");
    let reader = tokio::spawn(async move {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 || text.len() > 64 * 1024 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
        }
        text
    });
    let status = match tokio::time::timeout(DAEMONIZE_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("waiting for QEMU: {e}")),
        Err(_) => {
            reader.abort();
            return Err(format!(
                "QEMU did not finish starting within {DAEMONIZE_TIMEOUT:?}"
            ));
        }
    };
    // The pipe ends when the daemon let go of it; do not wait long for that.
    let text = match tokio::time::timeout(Duration::from_millis(500), reader).await {
        Ok(Ok(text)) => String::from_utf8_lossy(&text).into_owned(),
        _ => String::new(),
    };
    if status.success() {
        if !text.trim().is_empty() {
            tracing::debug!(output = %text.trim(), "QEMU start-up messages");
        }
        return Ok(());
    }
    let logged = std::fs::read(log)
        .ok()
        .and_then(|bytes| bytes.get(log_start as usize..).map(<[u8]>::to_vec));
    let text = format!(
        "{text}\n{}",
        String::from_utf8_lossy(&logged.unwrap_or_default())
    );
    let message = clean_message(&text);
    Err(if message.is_empty() {
        format!("QEMU exited with {status}")
    } else {
        message
    })
}

/// QEMU's messages on one line, without the timestamp and program-name prefixes.
fn clean_message(text: &str) -> String {
    text.lines()
        .map(clean_line)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn clean_line(line: &str) -> &str {
    let mut line = line.trim();
    if let Some((first, rest)) = line.split_once(' ')
        && first.len() > 20
        && first.contains('T')
        && first.ends_with('Z')
    {
        line = rest;
    }
    if let Some((program, rest)) = line.split_once(": ")
        && !program.contains(' ')
        && program.contains("qemu")
    {
        line = rest;
    }
    line.trim()
}

/// Is `pid` a live QEMU of desktop `id`? Checks `/proc/PID/cmdline`, so a reused pid or a
/// zombie (whose command line is empty) counts as gone.
pub(crate) fn is_desktop_process(pid: u32, id: &DesktopId) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let id = id.to_string();
    cmdline
        .split(|&b| b == 0)
        .any(|arg| String::from_utf8_lossy(arg).contains(&id))
}

pub(crate) fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // A process that is already gone is what we wanted.
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Waits until the process is gone; false if it is still there after `limit`.
pub(crate) async fn wait_gone(pid: u32, id: &DesktopId, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !is_desktop_process(pid, id) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGKILL, then wait for the process to be gone.
pub(crate) async fn kill(pid: u32, id: &DesktopId) -> bool {
    signal(pid, Signal::KILL);
    wait_gone(pid, id, Duration::from_secs(5)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_their_prefixes() {
        let text = "2026-01-01T00:00:00.000000Z qemu-system-x86_64: -spice port=5900: Failed to start\nqemu-system-x86_64: could not open disk\n";
        assert_eq!(
            clean_message(text),
            "-spice port=5900: Failed to start; could not open disk"
        );
    }

    #[test]
    fn a_missing_pid_is_no_desktop() {
        assert!(!is_desktop_process(u32::MAX - 1, &DesktopId::random()));
        assert!(!is_desktop_process(
            std::process::id(),
            &DesktopId::random()
        ));
    }
}
