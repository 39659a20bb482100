//! The demo's initramfs: busybox, an `/init` script and the few files busybox init reads.
//!
//! Boot sequence inside the guest: the kernel runs `/init`, which installs the busybox applet
//! links, mounts proc, sysfs, devtmpfs and devpts, sets the hostname and hands over to busybox
//! init. Its inittab keeps one shell on the screen (tty1, which shows [`BANNER`]) and one on the
//! serial port (ttyS0); the serial one prints [`READY_MARKER`] once per boot, after the screen's
//! shell has started. The root file system is the initramfs itself, so it is writable.

use crate::cpio::Newc;

/// The line the guest prints on its serial port once both shells are up.
pub const READY_MARKER: &str = "OSVDI-READY";

/// The guest's hostname, also shown in its shell prompt.
pub const HOSTNAME: &str = "osvdi-demo";

/// The first line on the guest's screen. ASCII only: the console font lacks most of Unicode.
pub const BANNER: &str = "osvdi demo desktop - type commands here";

/// Written by the screen's shell wrapper once the banner is shown; the serial one waits for it.
const SCREEN_UP_FLAG: &str = "/run/osvdi-screen-up";
/// Created by the serial shell wrapper when it prints the marker, so a respawn does not repeat it.
const READY_FLAG: &str = "/run/osvdi-ready";

/// The kernel's first process.
pub(crate) fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
# osvdi demo desktop: prepares the system, then hands over to busybox init (/etc/inittab).
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
hostname {HOSTNAME}
# Keep kernel messages from writing over the shells.
dmesg -n 1
exec /bin/busybox init
"#
    )
}

/// What busybox init runs: a respawning shell on each console.
pub(crate) fn inittab() -> String {
    "# osvdi demo desktop: one shell on the screen, one on the serial port, both respawned.\n\
     tty1::respawn:/etc/osvdi/shell tty1\n\
     ttyS0::respawn:/etc/osvdi/shell ttyS0\n\
     ::ctrlaltdel:/bin/reboot\n\
     ::shutdown:/bin/sync\n"
        .to_owned()
}

/// The wrapper init starts on each console, named by its first argument.
pub(crate) fn shell_script() -> String {
    format!(
        r#"#!/bin/sh
# Starts the shell of one console; $1 names it (tty1 or ttyS0).
case "$1" in
tty1)
    # A steady cursor: an idle desktop's screen does not change (and streams no video).
    echo 0 > /sys/class/graphics/fbcon/cursor_blink 2>/dev/null
    clear
    cat /etc/motd
    touch {SCREEN_UP_FLAG}
    ;;
ttyS0)
    if mkdir {READY_FLAG} 2>/dev/null; then
        # Wait (at most five seconds) for the screen's shell, then announce both.
        i=0
        while [ ! -e {SCREEN_UP_FLAG} ] && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        echo "{HOSTNAME}: up $(cut -d ' ' -f 1 /proc/uptime) s"
        echo {READY_MARKER}
    fi
    ;;
esac
cd /root
exec sh -l
"#
    )
}

/// Read by the login shells.
pub(crate) fn profile() -> String {
    "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
     export HOME=/root\n\
     export PS1='\\h:\\w\\$ '\n"
        .to_owned()
}

/// Shown on the screen above its shell.
pub(crate) fn motd() -> String {
    format!("{BANNER}\n(a busybox shell; 'poweroff -f' stops this desktop)\n\n")
}

/// Builds the uncompressed initramfs around a static busybox (checked by the caller), with
/// the bench's workload program when given.
pub(crate) fn build(busybox: &[u8], workload: Option<&[u8]>) -> Vec<u8> {
    let mut a = Newc::new();
    for dir in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "etc/osvdi",
    ] {
        a.dir(dir, 0o755);
    }
    for dir in ["dev", "proc", "sys", "run"] {
        a.dir(dir, 0o755);
    }
    a.dir("root", 0o700);
    a.dir("tmp", 0o1777);
    a.char_device("dev/console", 0o600, 5, 1);
    a.file("bin/busybox", 0o755, busybox);
    a.symlink("bin/sh", "busybox");
    if let Some(program) = workload {
        a.file(&crate::workload::GUEST_PATH[1..], 0o755, program);
    }
    a.file("init", 0o755, init_script().as_bytes());
    a.file("etc/inittab", 0o644, inittab().as_bytes());
    a.file("etc/osvdi/shell", 0o755, shell_script().as_bytes());
    a.file("etc/profile", 0o644, profile().as_bytes());
    a.file("etc/motd", 0o644, motd().as_bytes());
    a.file("etc/hostname", 0o644, format!("{HOSTNAME}\n").as_bytes());
    a.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    a.file("etc/group", 0o644, b"root:x:0:\n");
    a.finish()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn init_mounts_names_the_host_and_execs_busybox_init() {
        let init = init_script();
        assert!(init.starts_with("#!/bin/busybox sh\n"));
        for line in [
            "/bin/busybox --install -s",
            "mount -t proc proc /proc",
            "mount -t sysfs sysfs /sys",
            "mount -t devtmpfs devtmpfs /dev",
            "mount -t devpts devpts /dev/pts",
            "hostname osvdi-demo",
        ] {
            assert!(
                init.lines().any(|l| l == line),
                "missing {line:?} in\n{init}"
            );
        }
        assert_eq!(init.lines().last(), Some("exec /bin/busybox init"));
    }

    #[test]
    fn inittab_keeps_a_shell_on_screen_and_serial() {
        let tab = inittab();
        let entries: Vec<_> = tab.lines().filter(|l| l.contains(":respawn:")).collect();
        assert_eq!(
            entries,
            [
                "tty1::respawn:/etc/osvdi/shell tty1",
                "ttyS0::respawn:/etc/osvdi/shell ttyS0"
            ]
        );
    }

    #[test]
    fn serial_shell_prints_the_marker_alone_on_a_line_once() {
        let script = shell_script();
        assert_eq!(script.matches("echo OSVDI-READY\n").count(), 1);
        let (before, _) = script.split_once("echo OSVDI-READY").unwrap();
        assert!(before.contains("ttyS0)") && before.contains("mkdir /run/osvdi-ready"));
        assert!(script.contains("cat /etc/motd\n    touch /run/osvdi-screen-up"));
        assert!(script.ends_with("exec sh -l\n"));
    }

    #[test]
    fn banner_is_ascii_and_on_the_screen() {
        assert!(BANNER.is_ascii());
        assert!(motd().starts_with(&format!("{BANNER}\n")));
    }

    /// Parses each script with the host's busybox shell, which is the one the guest runs.
    #[test]
    fn scripts_parse() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("init", init_script()),
            ("shell", shell_script()),
            ("profile", profile()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let out = Command::new("busybox")
                .args(["sh", "-n"])
                .arg(&path)
                .output();
            let out = out.expect("busybox (busybox-static) is installed");
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn archive_holds_init_busybox_and_console() {
        let archive = build(b"\x7fELF fake busybox", None);
        let text = String::from_utf8_lossy(&archive);
        for name in [
            "init\0",
            "bin/busybox\0",
            "bin/sh\0",
            "dev/console\0",
            "etc/inittab\0",
        ] {
            assert!(text.contains(name), "{name:?} is in the archive");
        }
        assert!(text.contains("\x7fELF fake busybox"));
        assert!(text.contains("TRAILER!!!\0"));
    }
}
