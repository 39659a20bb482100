//! Live sessions against a QEMU 7.2 spawned by the test (no disk: SeaBIOS draws its boot
//! screen and "No bootable device"). Skipped when `qemu-system-x86_64` is not installed.
//! With `OSVDI_RFB_RECORD=1` the server bytes are saved to `tests/data/` for the replays.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use osvdi_rfb::driver::{Connection, DriveError};
use osvdi_rfb::{
    Client, Config, Event, ProtocolError, Rect, RectData, ServerMessage, parse_server_message,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::time::timeout;

/// A QEMU with a VNC unix socket; killed on drop.
struct Qemu {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu(vnc_password: Option<&str>) -> Result<Option<Qemu>> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("qemu-system-x86_64 not found; skipping");
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("vnc.sock");
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "64",
        "-nodefaults",
        "-vga",
        "std",
        "-display",
        "none",
    ]);
    let mut vnc = format!("unix:{}", socket.display());
    if let Some(pw) = vnc_password {
        cmd.args(["-object", &format!("secret,id=vncpw,data={pw}")]);
        vnc.push_str(",password-secret=vncpw");
    }
    cmd.args(["-vnc", &vnc])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let child = cmd.spawn().context("spawn qemu")?;
    let q = Qemu {
        child,
        socket,
        _dir: dir,
    };
    for _ in 0..100 {
        if q.socket.exists() {
            return Ok(Some(q));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("no VNC socket after 10 s")
}

/// Keeps a copy of every byte read (the server's half of the stream).
struct Recorder<S> {
    inner: S,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = buf.filled()[before..].to_vec();
        self.seen.lock().unwrap().extend(new);
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Conn = Connection<Recorder<UnixStream>>;

async fn connect(q: &Qemu, config: Config) -> Result<(Conn, Arc<Mutex<Vec<u8>>>)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stream = UnixStream::connect(&q.socket).await?;
    let rec = Recorder {
        inner: stream,
        seen: seen.clone(),
    };
    Ok((Connection::new(rec, Client::new(config)), seen))
}

async fn event(conn: &mut Conn) -> Result<Event, DriveError> {
    match timeout(Duration::from_secs(10), conn.next_event()).await {
        Ok(r) => r,
        Err(_) => panic!("no event from QEMU in 10 s"),
    }
}

/// Reads until an update with pixel rectangles; returns its rectangles.
async fn pixel_update(conn: &mut Conn) -> Result<Vec<Rect>> {
    loop {
        if let Event::FramebufferUpdate { rects } = event(conn).await?
            && rects.iter().any(|r| matches!(r.data, RectData::Raw(_)))
        {
            return Ok(rects);
        }
    }
}

/// Saves the server's bytes for the replays, less the framebuffer updates over 8 KiB (QEMU
/// sends the whole 720x400 screen, 1.1 MB raw, first): whole messages are left out, so the
/// rest is still a valid stream. `auth`: VNC Authentication was used (16-byte challenge).
fn record(name: &str, seen: &Mutex<Vec<u8>>, auth: bool) -> Result<()> {
    if std::env::var_os("OSVDI_RFB_RECORD").is_none() {
        return Ok(());
    }
    let seen = seen.lock().unwrap();
    let types = usize::from(seen[12]);
    let init = 12 + 1 + types + if auth { 16 } else { 0 } + 4;
    let name_len = u32::from_be_bytes(seen[init + 20..init + 24].try_into()?) as usize;
    let mut pos = init + 24 + name_len;
    let mut kept = seen[..pos].to_vec();
    while pos < seen.len() {
        let (msg, n) = parse_server_message(&seen[pos..], 4)
            .map_err(|e| anyhow::anyhow!("recorded stream: {e:?}"))?;
        if n <= 8 << 10 || !matches!(msg, ServerMessage::FramebufferUpdate(_)) {
            kept.extend_from_slice(&seen[pos..pos + n]);
        }
        pos += n;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::write(path, kept)?;
    Ok(())
}

/// Asks for a `w`x`h` corner until an update holds only that: the first ones are the whole
/// screen (at connection, and again when the guest changes video mode).
async fn small_update(conn: &mut Conn, w: u16, h: u16) -> Result<Vec<Rect>> {
    // QEMU tracks damage in columns of 16 pixels.
    let max_x = w.next_multiple_of(16);
    for _ in 0..20 {
        conn.client().request_update(false, 0, 0, w, h);
        let rects = pixel_update(conn).await?;
        if rects.iter().all(|r| r.x + r.w <= max_x && r.y + r.h <= h) {
            return Ok(rects);
        }
    }
    bail!("QEMU kept sending more than the {w}x{h} asked for")
}

#[tokio::test]
async fn full_screen_and_key_events() -> Result<()> {
    let Some(q) = qemu(None)? else { return Ok(()) };
    let (mut conn, seen) = connect(&q, Config::default()).await?;
    let Event::Connected {
        width,
        height,
        name,
    } = event(&mut conn).await?
    else {
        bail!("not connected first")
    };
    assert!(width > 0 && height > 0, "{width}x{height}");
    assert_eq!(name, "QEMU");

    // The whole screen, until SeaBIOS has drawn something.
    let mut lit = false;
    for _ in 0..40 {
        conn.client().request_full_update(false);
        let rects = pixel_update(&mut conn).await?;
        let (mut area, mut lit_now) = (0usize, false);
        for r in &rects {
            if let RectData::Raw(px) = &r.data {
                assert_eq!(px.len(), usize::from(r.w) * usize::from(r.h) * 4);
                area += usize::from(r.w) * usize::from(r.h);
                lit_now |= px.iter().any(|&b| b != 0);
            }
        }
        // Smaller updates (damage, or a mode change in between) do not count.
        let (w, h) = conn.client().size();
        if lit_now && area == usize::from(w) * usize::from(h) {
            lit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(lit, "the screen stayed black");
    assert!(conn.client().supports_qemu_key_events());
    // A small region now that the text is there (tests/data/qemu72_none.bin).
    small_update(&mut conn, 16, 8).await?;
    record("qemu72_none.bin", &seen, false)?;

    // Keys: QEMU's extended event ('a', scan code 0x1e) and a plain one ('b'); the server
    // keeps answering afterwards.
    conn.client().qemu_key_event(true, 0x61, 0x1e);
    conn.client().qemu_key_event(false, 0x61, 0x1e);
    conn.client().key_event(true, 0x62);
    conn.client().key_event(false, 0x62);
    conn.client().pointer_event(0, 5, 5);
    conn.client().client_cut_text(b"hello");
    conn.client().request_update(false, 0, 0, 8, 8);
    pixel_update(&mut conn).await?;
    Ok(())
}

#[tokio::test]
async fn vnc_authentication() -> Result<()> {
    let Some(q) = qemu(Some("s3cret"))? else {
        return Ok(());
    };
    let config = Config {
        password: Some("s3cret".into()),
        ..Config::default()
    };
    let (mut conn, seen) = connect(&q, config).await?;
    assert!(matches!(event(&mut conn).await?, Event::Connected { .. }));
    small_update(&mut conn, 4, 4).await?;
    record("qemu72_vnc_auth.bin", &seen, true)?;

    let config = Config {
        password: Some("wrong".into()),
        ..Config::default()
    };
    let (mut conn, _) = connect(&q, config).await?;
    match event(&mut conn).await {
        Err(DriveError::Protocol(ProtocolError::AuthFailed(_))) => {}
        other => panic!("wrong password accepted? {other:?}"),
    }
    let (mut conn, _) = connect(&q, Config::default()).await?;
    match event(&mut conn).await {
        Err(DriveError::Protocol(ProtocolError::PasswordRequired)) => {}
        other => panic!("{other:?}"),
    }
    Ok(())
}

/// Applies every update to `fb` (resized to the client's size) until one covers the whole
/// screen; Tight rectangles go through `tight`, in order (its zlib streams span updates).
/// Returns how many Tight rectangles that last update had.
async fn whole_screen(
    conn: &mut Conn,
    fb: &mut Vec<u8>,
    mut tight: Option<&mut osvdi_rfb::TightDecoder>,
) -> Result<usize> {
    conn.client().request_full_update(false);
    loop {
        let Event::FramebufferUpdate { rects } = event(conn).await? else {
            continue;
        };
        let (w, h) = conn.client().size();
        let (w, h) = (usize::from(w), usize::from(h));
        fb.resize(w * h * 4, 0);
        let (mut area, mut n_tight) = (0, 0);
        for r in &rects {
            let px = match (&r.data, tight.as_deref_mut()) {
                (RectData::Raw(px), _) => px.clone(),
                (RectData::Tight(t), Some(dec)) => {
                    n_tight += 1;
                    dec.decode(t, r.w, r.h, 4)?
                }
                _ => continue,
            };
            let (x, y, rw) = (usize::from(r.x), usize::from(r.y), usize::from(r.w));
            for (row, line) in px.chunks_exact(rw * 4).enumerate() {
                let at = ((y + row) * w + x) * 4;
                fb[at..at + rw * 4].copy_from_slice(line);
            }
            area += rw * usize::from(r.h);
        }
        if area == w * h {
            return Ok(n_tight);
        }
    }
}

/// Tight as noVNC asks for it (JPEG quality 6, compression 2) and Raw, on the same SeaBIOS
/// screen: once the screen is still, both clients see the same colours (QEMU codes text
/// losslessly).
#[tokio::test]
async fn tight_decodes_to_the_raw_picture() -> Result<()> {
    let Some(q) = qemu(None)? else { return Ok(()) };
    let (mut raw, _) = connect(&q, Config::default()).await?;
    let novnc = Config {
        encodings: osvdi_rfb::Encoding::novnc(),
        ..Config::default()
    };
    let (mut tight, _) = connect(&q, novnc).await?;
    for conn in [&mut raw, &mut tight] {
        assert!(matches!(event(conn).await?, Event::Connected { .. }));
    }
    let mut decoder = osvdi_rfb::TightDecoder::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..40 {
        whole_screen(&mut raw, &mut a, None).await?;
        let n_tight = whole_screen(&mut tight, &mut b, Some(&mut decoder)).await?;
        let colours =
            |v: &[u8]| -> Vec<u8> { v.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect() };
        let lit = a.iter().any(|&x| x != 0);
        if lit && raw.client().size() == tight.client().size() && colours(&a) == colours(&b) {
            assert!(n_tight > 0, "QEMU did not answer with Tight");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("the Tight client never saw the Raw client's picture")
}
