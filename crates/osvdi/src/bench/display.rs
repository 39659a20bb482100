//! `osvdi bench display`: QEMU's VNC with Tight + JPEG as noVNC gets it (through the console
//! relay, `/ws/console`) against osvdi's H.264 stream (`/ws/stream`), on the same guest playing
//! the same scripted workload (`osvdi_demo::workload`: typing, scrolling, a panned window,
//! idle) at 1920x1080. One guest boots; the workload runs once per path, one path at a time,
//! so that each run's CPU belongs to that path alone.
//!
//! How the figures are taken (see `display_clients.rs` for the viewers):
//! - bytes: WebSocket payloads received in the phase;
//! - frames: updates with pixels (VNC) or pictures (H.264) received in the phase;
//! - server CPU per frame from `/proc` deltas between the phase's markers: QEMU's threads other
//!   than its vCPUs (its display and VNC encoding work; the guest's own work is left out) and
//!   the osvdi process less the bench's own thread (the stream's decoding and encoding, or the
//!   console relay's copying);
//! - latency, "server": H.264: the header's capture time (the server's VNC client got the
//!   change) to the picture's last byte; VNC: the later of the update request and the first
//!   guest change it carries (the workload's serial marker) to the update's last byte;
//!   "guest": from that first guest change to the last byte, for both;
//! - quality: at every still moment of the workload a Raw RFB client takes the guest's exact
//!   framebuffer; each viewer's picture (decoded after the run: Tight + JPEG with osvdi-rfb's
//!   decoder, H.264 with openh264's) is compared with it on luma (PSNR, SSIM) twice: 280 ms
//!   after the screen stopped ("stopped": what motion left behind, before osvdi's quality
//!   refresh) and at the end of the still moment ("settled": after refreshes, osvdi's at
//!   300 ms and QEMU's lossless one at 2 s).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use osvdi_core::{Caller, Core, NewTemplate, Sharing, UploadExpectation};
use osvdi_display::{Framebuffer, I420Frame, bgrx_to_i420};
use osvdi_model::{DisplayProtocol, Principal, ReadyRule, Role, TemplateSpec, Visibility};
use osvdi_rfb::{RectData, TightDecoder};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::BenchSite;
use super::display_clients::{
    CpuSample, Marker, Received, Reference, SETTLE, Serial, display_rect, stream_viewer, vnc_viewer,
};
use super::display_metrics::{Luma, percentile, psnr, psnr_detail, ssim, ssim_detail};

/// The workload template's name.
const TEMPLATE: &str = "osvdi bench display workload";
/// "stopped" is sampled this long after a still moment begins (osvdi refreshes at 300 ms).
const STOPPED_AFTER: Duration = Duration::from_millis(280);
/// The reference is taken this long into a still moment (the shortest lasts 1.5 s).
const REFERENCE_AFTER: Duration = Duration::from_millis(700);

#[derive(Args, Debug)]
pub(crate) struct DisplayArgs {
    /// Print the results as JSON (after the table).
    #[arg(long)]
    json: bool,
}

/// Which viewer a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Path2 {
    VncTight,
    OsvdiH264,
}

impl Path2 {
    fn label(self) -> &'static str {
        match self {
            Self::VncTight => "VNC tight+JPEG q6 c2 (noVNC)",
            Self::OsvdiH264 => "osvdi H.264 (openh264)",
        }
    }
}

/// One run of the workload through one path.
#[derive(Debug)]
struct Run {
    path: Path2,
    markers: Vec<(Instant, Marker, Option<CpuSample>)>,
    /// (index of the hold marker, the guest's framebuffer during that hold).
    references: Vec<(usize, Luma)>,
    received: Received,
}

/// One line of the table.
#[derive(Debug, Serialize)]
struct Row {
    phase: String,
    path: Path2,
    seconds: f64,
    bytes_per_second: f64,
    frames: usize,
    qemu_cpu_ms_per_frame: Option<f64>,
    osvdi_cpu_ms_per_frame: Option<f64>,
    server_latency_ms_p50: Option<f64>,
    server_latency_ms_p95: Option<f64>,
    guest_latency_ms_p50: Option<f64>,
    guest_latency_ms_p95: Option<f64>,
    psnr_stopped: Option<f64>,
    ssim_stopped: Option<f64>,
    psnr_settled: Option<f64>,
    ssim_settled: Option<f64>,
    /// The same on the reference's detail only (8x8 blocks that are not flat).
    detail_psnr_stopped: Option<f64>,
    detail_ssim_stopped: Option<f64>,
    detail_psnr_settled: Option<f64>,
    detail_ssim_settled: Option<f64>,
}

/// A viewer's picture against the reference.
#[derive(Debug, Clone, Copy)]
struct Quality {
    psnr: f64,
    ssim: f64,
    psnr_detail: f64,
    ssim_detail: f64,
}

pub(crate) async fn run(args: &DisplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let site = BenchSite::start(1).await?;
    // Whatever happens, the guest is stopped and the site removed.
    let result = bench(&site, args, started).await;
    let stopped = site.stop().await;
    result.and(stopped)
}

async fn bench(site: &BenchSite, args: &DisplayArgs, started: Instant) -> anyhow::Result<()> {
    let template = register_workload(&site.core, &site.data).await?;
    let (id, boot) = site.launch(&template).await?;
    let dir = site.data.join("desktops").join(&id);
    let pid: u32 = std::fs::read_to_string(dir.join("qemu.pid"))
        .context("QEMU's pid file")?
        .trim()
        .parse()?;
    let ms_per_tick = 1000.0 / clock_ticks_per_second();

    // The bench's side runs on a thread of its own: its CPU is not the server's.
    let (base, token) = (site.base.clone(), site.token.clone());
    let bench = std::thread::Builder::new()
        .name("bench-viewers".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(measure(dir, pid, base, token, id))
        })?;
    let runs = tokio::task::spawn_blocking(move || bench.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the bench thread panicked"))??;
    let measured = started.elapsed();

    let mut rows = Vec::new();
    for run in &runs {
        rows.extend(analyse(run, ms_per_tick)?);
    }
    print_table(&rows, site.accel(), boot, measured);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Builds the workload variant of the demo desktop and registers it as a template.
async fn register_workload(core: &Arc<Core>, data: &Path) -> anyhow::Result<String> {
    let owner = core
        .store()
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.role == Role::Admin)
        .context("no admin account")?;
    let caller = Caller {
        who: Principal {
            id: owner.id,
            name: owner.name.clone(),
            role: Role::Admin,
            groups: vec![],
        },
        client: None,
    };
    let image = data.join("workload.qcow2");
    let out = image.clone();
    let opts = osvdi_demo::DemoOptions {
        workload: true,
        ..osvdi_demo::DemoOptions::default()
    };
    tokio::task::spawn_blocking(move || osvdi_demo::build(&out, &opts))
        .await?
        .context("cannot build the workload desktop image")?;
    let bytes = tokio::fs::read(&image).await?;
    let spec = TemplateSpec {
        name: TEMPLATE.into(),
        description: "The demo desktop at 1920x1080 with the display bench's workload".into(),
        os: "linux-busybox".into(),
        vcpus: 1,
        memory_mb: 256,
        disk_gb: 1,
        vgpu_type: None,
        protocols: vec![DisplayProtocol::Vnc],
        tags: vec!["bench".into()],
        ready: ReadyRule::SerialMarker(osvdi_demo::READY_MARKER.into()),
        idle_timeout_min: Some(60),
        max_lifetime_min: Some(60),
        warm_pool: 0,
    };
    let sharing = Sharing {
        visibility: Visibility::Everyone,
        groups: vec![],
    };
    let template = core
        .create_template(&caller, NewTemplate { spec, sharing })
        .await?;
    let expect = UploadExpectation {
        length: Some(bytes.len() as u64),
        sha256: Some(Sha256::digest(&bytes).into()),
    };
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
    core.upload_image(&caller, template.id, expect, body)
        .await?;
    Ok(template.id.to_string())
}

/// The bench thread: both runs, one after the other.
async fn measure(
    dir: PathBuf,
    pid: u32,
    base: String,
    login: String,
    id: String,
) -> anyhow::Result<Vec<Run>> {
    let mut serial = Serial::connect(&dir.join("serial.sock"), pid).await?;
    let mut reference = Reference::connect(&dir.join("vnc.sock")).await?;
    if reference.size() != (1920, 1080) {
        tracing::warn!(size = ?reference.size(), "the guest is not at 1920x1080");
    }
    let http = reqwest::Client::new();
    let mut runs = Vec::new();
    for path in [Path2::VncTight, Path2::OsvdiH264] {
        let purpose = match path {
            Path2::VncTight => "console",
            Path2::OsvdiH264 => "stream",
        };
        let t: Value = http
            .post(format!(
                "{base}/api/v1/sessions/{id}/console?purpose={purpose}"
            ))
            .bearer_auth(&login)
            .send()
            .await?
            .json()
            .await?;
        let token = t["token"].as_str().with_context(|| format!("token: {t}"))?;
        let url = format!(
            "{}/ws/{purpose}?token={token}",
            base.replacen("http", "ws", 1)
        );
        let received = Arc::new(Mutex::new(Received::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let viewer = match path {
            Path2::VncTight => {
                tokio::spawn(vnc_viewer(url, login.clone(), received.clone(), stopped))
            }
            Path2::OsvdiH264 => {
                tokio::spawn(stream_viewer(url, login.clone(), received.clone(), stopped))
            }
        };
        tokio::time::sleep(SETTLE).await;
        while serial.markers.try_recv().is_ok() {}
        serial.run("osvdi-workload").await?;
        let mut markers = Vec::new();
        let mut references = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(120), serial.markers.recv());
            let Some((at, marker, cpu)) = next.await.context("the workload stalled")? else {
                bail!("the serial console closed");
            };
            let hold = match &marker {
                Marker::Hold(name) => !matches!(name.as_str(), "start" | "moved" | "idle"),
                Marker::Error(e) => bail!("the workload failed: {e}"),
                _ => false,
            };
            let done = marker == Marker::Done;
            markers.push((at, marker, cpu));
            if hold {
                tokio::time::sleep_until((at + REFERENCE_AFTER).into()).await;
                references.push((markers.len() - 1, reference.capture().await?));
            }
            if done {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(());
        viewer.await??;
        let received = std::mem::take(&mut *received.lock().unwrap());
        runs.push(Run {
            path,
            markers,
            references,
            received,
        });
    }
    Ok(runs)
}

/// A moment to look at a viewer's picture, and the reference to compare it with.
struct Sample<'a> {
    at: Instant,
    reference: &'a Luma,
    /// Index into the hold list; `settled` or `stopped`.
    hold: usize,
    settled: bool,
}

/// The viewer's pictures at the sample moments, as luma (same order as `samples`).
fn pictures_at(run: &Run, samples: &[Sample<'_>]) -> anyhow::Result<Vec<Option<Luma>>> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| samples[i].at);
    let mut out: Vec<Option<Luma>> = vec![None; samples.len()];
    let mut next = order.into_iter().peekable();
    match run.path {
        Path2::VncTight => {
            // The guest's size, as the reference saw it.
            let (w, h) = run
                .references
                .first()
                .map_or((1920, 1080), |(_, l)| (l.width, l.height));
            let mut fb = Framebuffer::new(u32::try_from(w)?, u32::try_from(h)?);
            let mut frame = I420Frame::new(u32::try_from(w)?, u32::try_from(h)?)?;
            let mut tight = TightDecoder::new();
            let mut luma = |fb: &Framebuffer| -> anyhow::Result<Luma> {
                bgrx_to_i420(fb, &mut frame)?;
                Ok(Luma::from_strided(w, h, w, frame.y()))
            };
            for u in &run.received.updates {
                while let Some(&i) = next.peek() {
                    if samples[i].at >= u.end {
                        break;
                    }
                    out[i] = Some(luma(&fb)?);
                    next.next();
                }
                for r in &u.rects {
                    let rect = display_rect(r);
                    match &r.data {
                        RectData::Tight(t) => {
                            let px = tight.decode(t, r.w, r.h, 4)?;
                            fb.apply_raw(rect, &px)?;
                        }
                        RectData::Raw(px) => fb.apply_raw(rect, px)?,
                        RectData::CopyRect { src_x, src_y } => {
                            fb.apply_copy_rect(rect, u32::from(*src_x), u32::from(*src_y))?;
                        }
                        _ => {}
                    }
                }
            }
            for i in next {
                out[i] = Some(luma(&fb)?);
            }
        }
        Path2::OsvdiH264 => {
            use openh264::formats::YUVSource;
            let mut decoder = openh264::decoder::Decoder::new()?;
            let mut last: Option<Luma> = None;
            for p in &run.received.pictures {
                while let Some(&i) = next.peek() {
                    if samples[i].at >= p.arrival {
                        break;
                    }
                    out[i] = last.clone();
                    next.next();
                }
                if let Some(yuv) = decoder.decode(&p.data)? {
                    let (w, h) = yuv.dimensions();
                    let (ys, _, _) = yuv.strides();
                    last = Some(Luma::from_strided(w, h, ys, yuv.y()));
                }
            }
            for i in next {
                out[i] = last.clone();
            }
        }
    }
    Ok(out)
}

/// The same size as the reference (the H.264 picture may be coded larger).
fn crop(l: &Luma, like: &Luma) -> Option<Luma> {
    if l.width < like.width || l.height < like.height {
        return None;
    }
    Some(Luma::from_strided(
        like.width,
        like.height,
        l.width,
        &l.data,
    ))
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn analyse(run: &Run, ms_per_tick: f64) -> anyhow::Result<Vec<Row>> {
    let m = &run.markers;
    // Holds with a reference: (marker index, end of the still moment, reference).
    let holds: Vec<(usize, Instant, &Luma)> = run
        .references
        .iter()
        .map(|(i, luma)| {
            // The still moment ends with the next marker, whatever it is.
            let end = m
                .get(i + 1)
                .map_or(m[*i].0 + Duration::from_secs(1), |(t, _, _)| *t);
            (*i, end, luma)
        })
        .collect();
    let mut samples = Vec::new();
    for (h, (i, end, reference)) in holds.iter().enumerate() {
        samples.push(Sample {
            at: m[*i].0 + STOPPED_AFTER,
            reference,
            hold: h,
            settled: false,
        });
        samples.push(Sample {
            at: *end - Duration::from_millis(50),
            reference,
            hold: h,
            settled: true,
        });
    }
    let pictures = pictures_at(run, &samples)?;
    // (hold index, settled) -> quality
    let mut quality = std::collections::HashMap::new();
    for (s, p) in samples.iter().zip(&pictures) {
        if let Some(p) = p.as_ref().and_then(|p| crop(p, s.reference)) {
            let r = s.reference;
            let q = Quality {
                psnr: psnr(r, &p),
                ssim: ssim(r, &p),
                psnr_detail: psnr_detail(r, &p).unwrap_or(f64::INFINITY),
                ssim_detail: ssim_detail(r, &p),
            };
            quality.insert((s.hold, s.settled), q);
        }
    }

    // Guest changes, for latencies.
    let changes: Vec<Instant> = m
        .iter()
        .filter(|(_, mk, _)| *mk == Marker::Change)
        .map(|(t, _, _)| *t)
        .collect();
    let first_change_in =
        |from: Instant, to: Instant| changes.iter().copied().find(|&c| c > from && c <= to);

    let phases: Vec<(usize, &str)> = m
        .iter()
        .enumerate()
        .filter_map(|(i, (_, mk, _))| match mk {
            Marker::Phase(p) => Some((i, p.as_str())),
            _ => None,
        })
        .collect();
    let mut rows = Vec::new();
    for (k, (i, name)) in phases.iter().enumerate() {
        let end_idx = phases
            .get(k + 1)
            .map(|p| p.0)
            .or_else(|| m.iter().position(|(_, mk, _)| *mk == Marker::Done))
            .context("no end marker")?;
        let (t0, t1) = (m[*i].0, m[end_idx].0);
        let (c0, c1) = (
            m[*i].2.unwrap_or_default(),
            m[end_idx].2.unwrap_or_default(),
        );
        let secs = (t1 - t0).as_secs_f64();
        let inside = |t: Instant| t > t0 && t <= t1;
        let bytes: usize = run
            .received
            .chunks
            .iter()
            .filter(|(t, _)| inside(*t))
            .map(|(_, n)| n)
            .sum();
        let (mut server, mut guest) = (Vec::new(), Vec::new());
        let frames = match run.path {
            Path2::VncTight => {
                let mut n = 0;
                let mut prev_start = t0;
                for u in &run.received.updates {
                    let pixels = u.rects.iter().any(|r| {
                        matches!(
                            r.data,
                            RectData::Tight(_) | RectData::Raw(_) | RectData::CopyRect { .. }
                        )
                    });
                    if inside(u.end) && pixels {
                        n += 1;
                        let change = first_change_in(prev_start, u.start);
                        let from = change.map_or(u.requested, |c| c.max(u.requested));
                        server.push((u.end - from).as_secs_f64() * 1000.0);
                        if let Some(c) = change {
                            guest.push((u.end - c).as_secs_f64() * 1000.0);
                        }
                    }
                    if pixels {
                        prev_start = u.start;
                    }
                }
                n
            }
            Path2::OsvdiH264 => {
                let mut n = 0;
                let mut prev = t0;
                for p in &run.received.pictures {
                    if inside(p.arrival) {
                        n += 1;
                        server.push(p.arrival_ms.saturating_sub(p.captured_ms) as f64);
                        if let Some(c) = first_change_in(prev, p.arrival) {
                            guest.push((p.arrival - c).as_secs_f64() * 1000.0);
                        }
                    }
                    prev = p.arrival;
                }
                n
            }
        };
        let per_frame =
            |ticks: u64| (frames > 0).then(|| ticks as f64 * ms_per_tick / frames as f64);
        let osvdi_ticks =
            (c1.process - c0.process).saturating_sub(c1.bench_thread - c0.bench_thread);
        let in_phase: Vec<usize> = holds
            .iter()
            .enumerate()
            .filter(|(_, (hi, _, _))| *hi > *i && *hi < end_idx)
            .map(|(h, _)| h)
            .collect();
        let q = |settled: bool, pick: fn(&Quality) -> f64| {
            let v: Vec<f64> = in_phase
                .iter()
                .filter_map(|h| quality.get(&(*h, settled)).map(pick))
                .collect();
            mean(&v)
        };
        rows.push(Row {
            phase: (*name).to_owned(),
            path: run.path,
            seconds: secs,
            bytes_per_second: bytes as f64 / secs,
            frames,
            qemu_cpu_ms_per_frame: per_frame(c1.qemu_display - c0.qemu_display),
            osvdi_cpu_ms_per_frame: per_frame(osvdi_ticks),
            server_latency_ms_p50: percentile(&server, 50.0),
            server_latency_ms_p95: percentile(&server, 95.0),
            guest_latency_ms_p50: percentile(&guest, 50.0),
            guest_latency_ms_p95: percentile(&guest, 95.0),
            psnr_stopped: q(false, |x| x.psnr),
            ssim_stopped: q(false, |x| x.ssim),
            psnr_settled: q(true, |x| x.psnr),
            ssim_settled: q(true, |x| x.ssim),
            detail_psnr_stopped: q(false, |x| x.psnr_detail),
            detail_ssim_stopped: q(false, |x| x.ssim_detail),
            detail_psnr_settled: q(true, |x| x.psnr_detail),
            detail_ssim_settled: q(true, |x| x.ssim_detail),
        });
    }
    Ok(rows)
}

fn print_table(rows: &[Row], accel: &str, boot: Duration, total: Duration) {
    let f = |v: Option<f64>, d: usize| v.map_or("-".to_owned(), |v| format!("{v:.d$}"));
    let db = |v: Option<f64>| match v {
        Some(v) if v.is_infinite() => "lossless".to_owned(),
        v => f(v, 1),
    };
    println!("osvdi bench display: the same guest workload through QEMU's VNC (Tight + JPEG, as");
    println!(
        "noVNC negotiates it, over /ws/console) and through osvdi's H.264 stream (/ws/stream)"
    );
    println!(
        "guest 1920x1080, accelerator {accel}, booted in {:.1} s, whole bench {:.0} s",
        boot.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "CPU: QEMU = its threads other than vCPUs; osvdi = the server process less the bench's \
         viewers; per frame delivered"
    );
    println!(
        "latency (ms, p50/p95): server = capture (H.264) or request/guest change (VNC) to last \
         byte; guest = guest change to last byte"
    );
    println!(
        "quality on luma vs the guest's framebuffer: stopped = 280 ms after the screen stopped, \
         settled = end of the still moment; PSNR and SSIM on the screen's detail (8x8 blocks \
         that are not flat), SSIM also on the whole frame"
    );
    println!();
    println!(
        "| phase | path | KB/s | frames | QEMU CPU ms/frame | osvdi CPU ms/frame | server lat. p50/p95 | guest lat. p50/p95 | detail PSNR dB stopped/settled | detail SSIM stopped/settled | frame SSIM stopped/settled |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sorted: Vec<&Row> = rows.iter().collect();
    let order = ["typing", "scrolling", "motion", "idle"];
    sorted.sort_by_key(|r| {
        (
            order.iter().position(|p| *p == r.phase).unwrap_or(9),
            r.path == Path2::OsvdiH264,
        )
    });
    for r in sorted {
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {}/{} | {}/{} | {}/{} | {}/{} | {}/{} |",
            r.phase,
            r.path.label(),
            r.bytes_per_second / 1000.0,
            r.frames,
            f(r.qemu_cpu_ms_per_frame, 1),
            f(r.osvdi_cpu_ms_per_frame, 1),
            f(r.server_latency_ms_p50, 0),
            f(r.server_latency_ms_p95, 0),
            f(r.guest_latency_ms_p50, 0),
            f(r.guest_latency_ms_p95, 0),
            db(r.detail_psnr_stopped),
            db(r.detail_psnr_settled),
            f(r.detail_ssim_stopped, 4),
            f(r.detail_ssim_settled, 4),
            f(r.ssim_stopped, 4),
            f(r.ssim_settled, 4),
        );
    }
}

#[cfg(test)]
mod tests {
    use osvdi_rfb::Rect;

    use super::super::display_clients::VncUpdate;
    use super::*;

    fn luma_of(w: u32, h: u32, bgrx: &[u8]) -> Luma {
        let mut fb = Framebuffer::new(w, h);
        fb.apply_raw(osvdi_display::Rect::new(0, 0, w, h), bgrx)
            .unwrap();
        let mut frame = I420Frame::new(w, h).unwrap();
        bgrx_to_i420(&fb, &mut frame).unwrap();
        Luma::from_strided(w as usize, h as usize, w as usize, frame.y())
    }

    /// A made-up VNC run: one phase with a change, a still moment with its reference, then
    /// idle. The figures come out of the analysis as computed by hand.
    #[test]
    fn analysis_of_a_small_vnc_run() {
        let (w, h) = (32u16, 16u16);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let cpu = |ticks: u64| CpuSample {
            qemu_display: ticks,
            qemu_vcpu: 0,
            process: 3 * ticks,
            bench_thread: ticks,
        };
        // Half grey, half white; a wrong picture (all white) comes first.
        let good: Vec<u8> = (0..usize::from(w) * usize::from(h))
            .flat_map(|i| {
                if i % 32 < 16 {
                    [90, 90, 90, 0]
                } else {
                    [255; 4]
                }
            })
            .collect();
        let white = vec![255u8; good.len()];
        let markers = vec![
            (ms(0), Marker::Phase("typing".into()), Some(cpu(0))),
            (ms(10), Marker::Change, None),
            (ms(100), Marker::Hold("typing".into()), Some(cpu(5))),
            (ms(1000), Marker::Phase("idle".into()), Some(cpu(10))),
            (ms(1500), Marker::Done, Some(cpu(10))),
        ];
        let update = |start: u64, end: u64, requested: u64, px: &[u8]| VncUpdate {
            start: ms(start),
            end: ms(end),
            requested: ms(requested),
            rects: vec![Rect {
                x: 0,
                y: 0,
                w,
                h,
                data: RectData::Raw(px.to_vec()),
            }],
        };
        let run = Run {
            path: Path2::VncTight,
            markers,
            references: vec![(2, luma_of(32, 16, &good))],
            received: Received {
                chunks: vec![(ms(15), 1000), (ms(30), 1500), (ms(1200), 500)],
                // The first update (white) answers a request sent at 5 ms after the change
                // at 10 ms; the second brings the right picture after the still moment began,
                // so "stopped" (380 ms) already sees it.
                updates: vec![update(15, 20, 5, &white), update(200, 250, 100, &good)],
                pictures: vec![],
            },
        };
        let rows = analyse(&run, 10.0).unwrap();
        assert_eq!(rows.len(), 2);
        let typing = &rows[0];
        assert_eq!((typing.phase.as_str(), typing.frames), ("typing", 2));
        assert!((typing.seconds - 1.0).abs() < 1e-9);
        assert!((typing.bytes_per_second - 2500.0).abs() < 1e-6);
        // 10 ticks of 10 ms over 2 frames; osvdi: process 30 less bench 10 = 20 ticks.
        assert_eq!(typing.qemu_cpu_ms_per_frame, Some(50.0));
        assert_eq!(typing.osvdi_cpu_ms_per_frame, Some(100.0));
        // Update 1: the change at 10 ms (later than its request) to 20 ms: 10 ms; update 2: no
        // change since, from its request at 100 ms to 250 ms: 150 ms.
        assert_eq!(typing.server_latency_ms_p50, Some(10.0));
        assert_eq!(typing.server_latency_ms_p95, Some(150.0));
        assert_eq!(typing.guest_latency_ms_p50, Some(10.0));
        assert_eq!(typing.detail_psnr_stopped, Some(f64::INFINITY));
        assert_eq!(typing.ssim_settled, Some(1.0));
        let idle = &rows[1];
        assert_eq!((idle.phase.as_str(), idle.frames), ("idle", 0));
        assert!((idle.bytes_per_second - 1000.0).abs() < 1e-6);
        assert_eq!(idle.psnr_stopped, None);
    }
}
