//! Boots the image under TCG and talks to its serial shell, its screen and its VNC server.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use osvdi_demo::READY_MARKER;

use crate::support::{Lines, Qemu, build_in};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn boots_to_a_serial_shell_a_framebuffer_console_and_vnc() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let image = build_in(dir.path())?;
    let mut qemu = Qemu::start(&image.path, dir.path())?;
    // QEMU starts the guest once the serial client is connected.
    let mut serial = Lines::new(qemu.connect("serial")?)?;
    let started = Instant::now();

    serial.wait_line(BOOT_TIMEOUT, |l| l == READY_MARKER)?;
    println!(
        "booted to {READY_MARKER} in {:?} under TCG",
        started.elapsed()
    );

    serial.send("echo $((6*7))\n")?;
    serial
        .wait_line(REPLY_TIMEOUT, |l| l == "42")
        .context("arithmetic in the serial shell")?;
    serial.send("echo hello > /tmp/x; cat /tmp/x\n")?;
    serial
        .wait_line(REPLY_TIMEOUT, |l| l == "hello")
        .context("writing to the root file system")?;
    serial.send("hostname; cat /proc/cmdline\n")?;
    serial.wait_line(REPLY_TIMEOUT, |l| l == "osvdi-demo")?;
    serial.wait_line(REPLY_TIMEOUT, |l| l.ends_with(osvdi_demo::CMDLINE))?;
    // The screen's shell runs too: one `sh` on tty1 and one on ttyS0.
    serial.send("for p in /proc/[0-9]*; do readlink $p/fd/0; done | sort | uniq -c\n")?;
    let tty1 = serial.wait_line(REPLY_TIMEOUT, |l| l.trim_start().ends_with("/dev/tty1"))?;
    ensure!(
        tty1.trim_start().starts_with(|c: char| c.is_ascii_digit()),
        "{tty1}"
    );

    let mut vnc = qemu.connect("vnc")?;
    vnc.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut greeting = [0u8; 12];
    vnc.read_exact(&mut greeting)?;
    assert_eq!(&greeting, b"RFB 003.008\n");

    let (width, height, lit) = screendump(&mut qemu)?;
    assert_eq!(
        (width, height),
        (1024, 768),
        "the VESA mode vga=0x318 is in use"
    );
    assert!(lit > 1000, "text on the screen ({lit} lit pixels)");
    Ok(())
}

/// Takes a screenshot through the monitor; returns its size and how many pixels are not black.
fn screendump(qemu: &mut Qemu) -> Result<(usize, usize, usize)> {
    let mut monitor = Lines::new(qemu.connect("monitor")?)?;
    monitor.wait_for(REPLY_TIMEOUT, "(qemu) ")?;
    let ppm = qemu.dir.join("screen.ppm");
    monitor.send(&format!("screendump {}\n", ppm.display()))?;
    monitor.wait_for(REPLY_TIMEOUT, "(qemu) ")?;
    let data = std::fs::read(&ppm)?;
    // "P6\n1024 768\n255\n" then RGB triples.
    let header: Vec<&[u8]> = data.splitn(4, |&b| b == b'\n').collect();
    ensure!(
        header.len() == 4 && header[0] == b"P6" && header[2] == b"255",
        "not a PPM screenshot"
    );
    let size = std::str::from_utf8(header[1])?;
    let (w, h) = size.split_once(' ').context("PPM size")?;
    let (w, h): (usize, usize) = (w.parse()?, h.parse()?);
    let pixels = header[3];
    ensure!(
        pixels.len() == w * h * 3,
        "PPM holds {} bytes for {w}x{h}",
        pixels.len()
    );
    let lit = pixels
        .chunks(3)
        .filter(|p| p.iter().any(|&c| c > 0))
        .count();
    Ok((w, h, lit))
}
