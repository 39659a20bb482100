//! The bench variant of the demo desktop (`DemoOptions::workload`): the same guest at
//! 1920x1080, with `/bin/osvdi-workload`, the scripted screen workload of `osvdi bench display`
//! (`workload.c`: typing, scrolling, a panned window, idle; markers on the serial port).
//!
//! The program is freestanding C (raw system calls, no libc), compiled here by the host's `cc`
//! (Debian package gcc) into a static binary; only this variant needs a compiler.

use std::path::Path;

use crate::DemoError;
use crate::tools::{Host, Tool};

/// The program's source.
pub const SOURCE: &str = include_str!("workload.c");

/// Where the program lies in the guest; run it from the serial shell.
pub const GUEST_PATH: &str = "/bin/osvdi-workload";

/// The kernel's VESA mode for this variant: 0x192 (1920x1080, 32 bits a pixel, a mode of
/// SeaBIOS's VGA BIOS for QEMU's standard VGA), as Linux's `vga=` spells it (0x200 + mode).
pub const VGA_1080P: &str = "vga=0x392";

/// Serial markers the program prints (one per line).
pub mod marker {
    /// `OSVDI-PHASE <name>`: a phase starts (typing, scrolling, motion, idle).
    pub const PHASE: &str = "OSVDI-PHASE ";
    /// `OSVDI-HOLD <name>`: the screen stays still for a while from now.
    pub const HOLD: &str = "OSVDI-HOLD ";
    /// The screen just changed.
    pub const CHANGE: &str = "E";
    /// The run is over; the screen is cleared.
    pub const DONE: &str = "OSVDI-DONE";
    /// The program failed; the reason follows.
    pub const ERROR: &str = "OSVDI-ERROR ";
}

/// The compiler flags: static, no libc, no calls the compiler would invent (memcpy...), no
/// build id, so the same compiler gives the same bytes.
const CFLAGS: &[&str] = &[
    "-static",
    "-nostdlib",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-fno-stack-protector",
    "-fno-pie",
    "-no-pie",
    "-O2",
    "-s",
    "-Wl,--build-id=none",
];

/// The host's C compiler, or the package that provides it.
pub(crate) fn find_compiler(host: &Host) -> Result<Tool, DemoError> {
    host.find_tool("cc")
        .map(|path| Tool {
            name: "cc",
            package: "gcc",
            path,
        })
        .ok_or(DemoError::MissingPackages(vec!["gcc"]))
}

/// Compiles the program in `work`; returns the static binary.
pub(crate) fn compile(cc: &Tool, work: &Path) -> Result<Vec<u8>, DemoError> {
    let source = work.join("workload.c");
    let binary = work.join("osvdi-workload");
    std::fs::write(&source, SOURCE).map_err(|source_err| DemoError::Write {
        path: source.clone(),
        source: source_err,
    })?;
    let mut args: Vec<&std::ffi::OsStr> = CFLAGS.iter().map(|f| f.as_ref()).collect();
    args.extend(["-o".as_ref(), binary.as_os_str(), source.as_os_str()]);
    cc.run(args)?;
    std::fs::read(&binary).map_err(|source| DemoError::Read {
        path: binary,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two compilations give the same static x86-64 binary, which prints its markers.
    #[test]
    fn compiles_deterministically_to_a_static_binary() {
        let Ok(cc) = find_compiler(&Host::system()) else {
            eprintln!("no cc; skipping");
            return;
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let one = compile(&cc, a.path()).unwrap();
        let two = compile(&cc, b.path()).unwrap();
        assert_eq!(one, two);
        assert!(crate::tools::is_static_x86_64(&one));
        let text = String::from_utf8_lossy(&one);
        for m in [marker::PHASE, marker::HOLD, marker::DONE, marker::ERROR] {
            assert!(text.contains(m.trim_end()), "{m}");
        }
    }

    /// On a host without a framebuffer console the program says why and exits 1.
    #[test]
    fn fails_clearly_without_a_framebuffer() {
        let Ok(cc) = find_compiler(&Host::system()) else {
            return;
        };
        if Path::new("/dev/fb0").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = compile(&cc, dir.path()).unwrap();
        let path = dir.path().join("w");
        std::fs::write(&path, bin).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let out = std::process::Command::new(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.starts_with(marker::ERROR), "{stdout}");
    }
}
