//! The bench's own side of `osvdi bench display`: the guest's serial console (workload start,
//! markers, CPU samples at each marker), the reference picture (a Raw RFB client on QEMU's VNC
//! socket), and the two viewers under test, which only record what arrives and when (decoding
//! comes after the run, so that it costs the run nothing):
//! - noVNC's path: RFB over `GET /ws/console` with noVNC's encodings (Tight, JPEG quality 6,
//!   compression 2), an incremental update request after each update, as noVNC does;
//! - osvdi's path: `GET /ws/stream`, H.264 pictures with a 16-byte header.
//!
//! All of it runs on one thread of its own (`bench_thread_cpu` is that thread's CPU), so the
//! process's other threads are the server's.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use osvdi_display::{Framebuffer, I420Frame, Rect as DisplayRect, bgrx_to_i420};
use osvdi_rfb::driver::Connection;
use osvdi_rfb::{Client, Config, Encoding, Event, Output, Rect, RectData};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::display_metrics::Luma;

/// CPU time so far, in clock ticks: QEMU's threads other than its vCPUs (display, VNC
/// encoding, I/O), QEMU's vCPUs, this whole process, and the bench's own thread.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSample {
    pub qemu_display: u64,
    pub qemu_vcpu: u64,
    pub process: u64,
    pub bench_thread: u64,
}

/// utime + stime of a `/proc/.../stat` line.
fn stat_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn read_ticks(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| stat_ticks(&s))
        .unwrap_or(0)
}

/// Samples the CPU counters; call it on the bench thread.
pub(crate) fn cpu_sample(qemu_pid: u32) -> CpuSample {
    let mut s = CpuSample {
        process: read_ticks(Path::new("/proc/self/stat")),
        bench_thread: read_ticks(Path::new("/proc/thread-self/stat")),
        ..CpuSample::default()
    };
    let tasks = format!("/proc/{qemu_pid}/task");
    for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let ticks = read_ticks(&task.path().join("stat"));
        // With `-name ...,debug-threads=on` vCPU threads are "CPU n/TCG" or "CPU n/KVM".
        if comm.starts_with("CPU ") {
            s.qemu_vcpu += ticks;
        } else {
            s.qemu_display += ticks;
        }
    }
    s
}

/// A line from the guest's serial port, as the workload prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Marker {
    Phase(String),
    Hold(String),
    Change,
    Done,
    Error(String),
}

pub(crate) fn parse_marker(line: &str) -> Option<Marker> {
    use osvdi_demo::workload::marker;
    let line = line.trim_end_matches(['\r', '\n']);
    if line == marker::CHANGE {
        Some(Marker::Change)
    } else if line == marker::DONE {
        Some(Marker::Done)
    } else if let Some(p) = line.strip_prefix(marker::PHASE) {
        Some(Marker::Phase(p.to_owned()))
    } else if let Some(h) = line.strip_prefix(marker::HOLD) {
        Some(Marker::Hold(h.to_owned()))
    } else {
        line.strip_prefix(marker::ERROR)
            .map(|e| Marker::Error(e.to_owned()))
    }
}

/// The guest's serial console: markers with their arrival time and a CPU sample for each
/// marker other than a change.
#[derive(Debug)]
pub(crate) struct Serial {
    writer: OwnedWriteHalf,
    pub markers: mpsc::UnboundedReceiver<(Instant, Marker, Option<CpuSample>)>,
}

impl Serial {
    pub async fn connect(socket: &Path, qemu_pid: u32) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("serial console {}", socket.display()))?;
        let (read, writer) = stream.into_split();
        let (tx, markers) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let at = Instant::now();
                if let Some(m) = parse_marker(&line) {
                    let cpu = (m != Marker::Change).then(|| cpu_sample(qemu_pid));
                    if tx.send((at, m, cpu)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Self { writer, markers })
    }

    /// Types a command line into the serial shell.
    pub async fn run(&mut self, command: &str) -> anyhow::Result<()> {
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        Ok(())
    }
}

/// A Raw RFB client on QEMU's VNC socket: the guest's framebuffer, exactly.
#[derive(Debug)]
pub(crate) struct Reference {
    conn: Connection<UnixStream>,
    fb: Framebuffer,
    frame: I420Frame,
}

impl Reference {
    pub async fn connect(socket: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(socket).await?;
        let config = Config {
            encodings: vec![
                Encoding::Raw,
                Encoding::DesktopSize,
                Encoding::ExtendedDesktopSize,
                Encoding::LastRect,
            ],
            ..Config::default()
        };
        let mut conn = Connection::new(stream, Client::new(config));
        let (w, h) = loop {
            if let Event::Connected { width, height, .. } = conn.next_event().await? {
                break (u32::from(width), u32::from(height));
            }
        };
        Ok(Self {
            conn,
            fb: Framebuffer::new(w, h),
            frame: I420Frame::new(w, h)?,
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (self.fb.width(), self.fb.height())
    }

    /// The whole screen now, as luma.
    pub async fn capture(&mut self) -> anyhow::Result<Luma> {
        self.conn.client().request_full_update(false);
        loop {
            let Event::FramebufferUpdate { rects } = self.conn.next_event().await? else {
                continue;
            };
            let mut pixels = false;
            for r in &rects {
                if let RectData::Raw(bytes) = &r.data {
                    self.fb.apply_raw(display_rect(r), bytes)?;
                    pixels = true;
                }
            }
            if pixels {
                break;
            }
        }
        bgrx_to_i420(&self.fb, &mut self.frame)?;
        let (w, h) = self.size();
        Ok(Luma::from_strided(
            w as usize,
            h as usize,
            w as usize,
            self.frame.y(),
        ))
    }
}

pub(crate) fn display_rect(r: &Rect) -> DisplayRect {
    DisplayRect::new(
        u32::from(r.x),
        u32::from(r.y),
        u32::from(r.w),
        u32::from(r.h),
    )
}

/// One FramebufferUpdate as noVNC's path received it.
#[derive(Debug)]
pub(crate) struct VncUpdate {
    /// The first bytes of it arrived.
    pub start: Instant,
    /// Its last byte arrived.
    pub end: Instant,
    /// The update request it answers was sent.
    pub requested: Instant,
    pub rects: Vec<Rect>,
}

/// One picture as osvdi's path received it.
#[derive(Debug)]
pub(crate) struct Picture {
    pub arrival: Instant,
    pub arrival_ms: u64,
    pub captured_ms: u64,
    pub data: Vec<u8>,
}

/// What a viewer received: every WebSocket payload (time, bytes) and what it carried.
#[derive(Debug, Default)]
pub(crate) struct Received {
    pub chunks: Vec<(Instant, usize)>,
    pub updates: Vec<VncUpdate>,
    pub pictures: Vec<Picture>,
}

pub(crate) type Shared = Arc<Mutex<Received>>;

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn ws_connect(
    url: &str,
    login: &str,
    subprotocol: Option<&str>,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut req = url.into_client_request()?;
    let h = req.headers_mut();
    h.insert("authorization", format!("Bearer {login}").parse()?);
    if let Some(p) = subprotocol {
        h.insert("sec-websocket-protocol", p.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("WebSocket {}", url.split('?').next().unwrap_or(url)))?;
    Ok(ws)
}

/// noVNC's path: runs until `stop` fires, recording into `out`.
pub(crate) async fn vnc_viewer(
    url: String,
    login: String,
    out: Shared,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut ws = ws_connect(&url, &login, Some("binary")).await?;
    let config = Config {
        encodings: Encoding::novnc(),
        ..Config::default()
    };
    let mut client = Client::new(config);
    let mut requested = Instant::now();
    let mut start: Option<Instant> = None;
    loop {
        // Send what the client has to say; act on its events (which may queue requests,
        // sent on the next turn).
        let mut events = Vec::new();
        while let Some(o) = client.poll_output() {
            match o {
                Output::Transmit(b) => ws.send(Message::Binary(b.into())).await?,
                Output::Event(e) => events.push(e),
            }
        }
        if !events.is_empty() {
            let now = Instant::now();
            for e in events {
                match e {
                    Event::Connected { .. } => {
                        client.request_full_update(false);
                        requested = now;
                    }
                    Event::FramebufferUpdate { rects } => {
                        out.lock().unwrap().updates.push(VncUpdate {
                            start: start.take().unwrap_or(now),
                            end: now,
                            requested,
                            rects,
                        });
                        // noVNC asks for the next update as soon as one is complete.
                        client.request_full_update(true);
                        requested = now;
                    }
                    Event::Error(e) => bail!("noVNC path: {e}"),
                    _ => {}
                }
            }
            continue;
        }
        let msg = tokio::select! {
            _ = &mut stop => return Ok(()),
            m = ws.next() => m,
        };
        match msg {
            Some(Ok(Message::Binary(b))) => {
                let at = Instant::now();
                start.get_or_insert(at);
                out.lock().unwrap().chunks.push((at, b.len()));
                client.handle_input(&b);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the console WebSocket closed"),
        }
    }
}

/// osvdi's path: runs until `stop` fires, recording into `out`.
pub(crate) async fn stream_viewer(
    url: String,
    login: String,
    out: Shared,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut ws = ws_connect(&url, &login, None).await?;
    loop {
        let msg = tokio::select! {
            _ = &mut stop => return Ok(()),
            m = ws.next() => m,
        };
        let at = Instant::now();
        match msg {
            Some(Ok(Message::Binary(b))) => {
                if b.len() < 16 || b[0] != 1 {
                    bail!("unexpected stream message ({} bytes)", b.len());
                }
                let captured_ms = u64::from_be_bytes(b[6..14].try_into()?);
                let mut r = out.lock().unwrap();
                r.chunks.push((at, b.len()));
                r.pictures.push(Picture {
                    arrival: at,
                    arrival_ms: unix_ms(SystemTime::now()),
                    captured_ms,
                    data: b[16..].to_vec(),
                });
            }
            Some(Ok(Message::Text(t))) => out.lock().unwrap().chunks.push((at, t.len())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the stream WebSocket closed"),
        }
    }
}

/// How long to wait for the first picture before starting the workload.
pub(crate) const SETTLE: Duration = Duration::from_millis(2500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let line = "1234 (qemu (x) y) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0";
        assert_eq!(stat_ticks(line), Some(280));
        assert_eq!(stat_ticks("garbage"), None);
    }

    #[test]
    fn markers() {
        assert_eq!(parse_marker("E\r"), Some(Marker::Change));
        assert_eq!(
            parse_marker("OSVDI-PHASE typing\r"),
            Some(Marker::Phase("typing".into()))
        );
        assert_eq!(
            parse_marker("OSVDI-HOLD motion"),
            Some(Marker::Hold("motion".into()))
        );
        assert_eq!(parse_marker("OSVDI-DONE"), Some(Marker::Done));
        assert_eq!(parse_marker("osvdi-demo:~# osvdi-workload"), None);
    }
}
