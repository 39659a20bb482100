//! Does KVM actually work here? `/dev/kvm` existing is not enough (guests were seen to hang
//! at boot while QEMU reported KVM on), so boot a one-sector VM under KVM and wait for it to
//! say so on its serial port, timer interrupts included.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::bootsector::{Step, boot_sector};

const BOOTED: &[u8] = b"KVM-BOOT";
const PASSED: &[u8] = b"KVM-OK";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmProbe {
    /// The probe VM booted and took timer interrupts under KVM.
    Works {
        boot: Duration,
    },
    Fails {
        why: String,
    },
}

/// Boots the probe VM under KVM with `qemu`, its disk in `scratch_dir`, giving up after
/// `timeout`.
pub async fn probe_kvm(qemu: &Path, scratch_dir: &Path, timeout: Duration) -> KvmProbe {
    let image = scratch_dir.join(format!(".kvm-probe-{}.img", uuid::Uuid::new_v4()));
    let result = run_probe(qemu, &image, timeout).await;
    let _ = std::fs::remove_file(&image);
    match result {
        Ok(boot) => KvmProbe::Works { boot },
        Err(why) => KvmProbe::Fails { why },
    }
}

async fn run_probe(qemu: &Path, image: &Path, timeout: Duration) -> Result<Duration, String> {
    let program = [
        Step::Print([BOOTED, b"\r\n"].concat()),
        Step::WaitTicks(2),
        Step::Print([PASSED, b"\r\n"].concat()),
    ];
    // The program is a few dozen bytes: it fits.
    let sector = boot_sector(&program).expect("probe program fits a boot sector");
    std::fs::write(image, sector).map_err(|e| format!("cannot write the probe image: {e}"))?;
    let Some(image) = image.to_str() else {
        return Err("the probe image path is not UTF-8".into());
    };
    let started = Instant::now();
    let mut child = Command::new(qemu)
        .args([
            "-no-user-config",
            "-nodefaults",
            "-display",
            "none",
            "-machine",
            "q35",
            "-accel",
            "kvm",
        ])
        .args(["-cpu", "host", "-m", "16", "-serial", "stdio", "-no-reboot"])
        .args([
            "-drive",
            &format!(
                "file={},if=virtio,format=raw,readonly=on",
                image.replace(',', ",,")
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    let mut stdout = child.stdout.take().expect("stdout was piped");
    let mut stderr = child.stderr.take().expect("stderr was piped");
    let mut seen = Vec::new();
    let watch = async {
        let mut buf = [0u8; 256];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if contains(&seen, PASSED) {
                return true;
            }
        }
    };
    let passed = tokio::time::timeout(timeout, watch).await.unwrap_or(false);
    let boot = started.elapsed();
    let _ = child.start_kill();
    let _ = child.wait().await;
    if passed {
        return Ok(boot);
    }
    let mut errors = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(500), stderr.read_to_end(&mut errors)).await;
    let errors = String::from_utf8_lossy(&errors);
    let errors: Vec<&str> = errors
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("warning:"))
        .collect();
    Err(if !errors.is_empty() {
        errors.join("; ")
    } else if contains(&seen, BOOTED) {
        format!("the probe VM booted but took no timer interrupt within {timeout:?}")
    } else if boot < timeout {
        "QEMU exited before the probe VM booted".to_owned()
    } else {
        format!("the probe VM did not boot within {timeout:?}")
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
