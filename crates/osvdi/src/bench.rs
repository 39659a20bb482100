//! `osvdi bench launch`: time to desktop. Starts a throwaway site (temp data dir, SQLite, the
//! local QEMU backend, the demo template) on a loopback port and measures, over HTTP, the time
//! from `POST /api/v1/sessions` to the session being `ready` (the guest's ready marker seen).
//! `osvdi bench placement` (in `bench/placement.rs`): the scheduler's placement among N hosts.
//! `osvdi bench display` (in `bench/display.rs`): QEMU's VNC (Tight + JPEG, as noVNC gets it)
//! against osvdi's H.264 stream on one scripted guest workload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use osvdi_compute::qemu::{QemuBackend, QemuConfig};
use osvdi_core::{Core, CoreConfig, SystemClock};
use osvdi_server::{AppState, HttpConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod display;
mod display_clients;
mod display_metrics;
mod placement;

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Time from launch request to ready desktop, for N desktops.
    Launch(LaunchArgs),
    /// Time the scheduler's placement of one desktop among N hosts (in process).
    Placement(placement::PlacementArgs),
    /// QEMU's VNC (Tight + JPEG, as noVNC gets it) against osvdi's H.264 stream, on one guest
    /// playing a scripted workload at 1920x1080 (about 2 minutes).
    Display(display::DisplayArgs),
}

#[derive(Args, Debug)]
pub(crate) struct LaunchArgs {
    /// How many desktops.
    #[arg(short = 'n', long, default_value_t = 1)]
    n: usize,
    /// Launch them all at once instead of one after the other.
    #[arg(long)]
    concurrent: bool,
}

pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    let args = match command {
        BenchCommand::Launch(args) => args,
        BenchCommand::Placement(args) => return placement::run(&args),
        BenchCommand::Display(args) => return display::run(&args).await,
    };
    if args.n == 0 {
        bail!("-n must be at least 1");
    }
    let site = BenchSite::start(args.n).await?;
    crate::demo::register(&site.core, &site.data).await?;
    let templates: Value = site
        .http
        .get(format!("{}/api/v1/templates", site.base))
        .bearer_auth(&site.token)
        .send()
        .await?
        .json()
        .await?;
    let template = templates[0]["id"]
        .as_str()
        .context("no demo template")?
        .to_owned();

    let wall = Instant::now();
    let results = if args.concurrent {
        let jobs = (0..args.n).map(|_| site.launch(&template));
        futures_util::future::join_all(jobs).await
    } else {
        let mut out = vec![];
        for _ in 0..args.n {
            out.push(site.launch(&template).await);
        }
        out
    };
    let wall = wall.elapsed();
    let mut ok = vec![];
    for r in results {
        let (id, t) = r?;
        ok.push(t);
        site.http
            .delete(format!("{}/api/v1/sessions/{id}", site.base))
            .bearer_auth(&site.token)
            .send()
            .await?;
    }
    print_table(&args, site.accel(), &ok, wall);
    site.stop().await
}

/// A throwaway site for a bench: temp data dir, SQLite, the local QEMU backend, the server on
/// a loopback port, logged in as the first admin.
pub(crate) struct BenchSite {
    _dir: tempfile::TempDir,
    pub data: std::path::PathBuf,
    pub core: Arc<Core>,
    backend: Arc<QemuBackend>,
    cancel: CancellationToken,
    pub http: reqwest::Client,
    pub base: String,
    /// The admin's bearer token.
    pub token: String,
    accel: String,
}

impl BenchSite {
    pub async fn start(max_desktops: usize) -> anyhow::Result<Self> {
        // Unix socket paths are short: keep the data dir near the root.
        let dir = tempfile::Builder::new()
            .prefix("osvdi-bench-")
            .tempdir_in("/tmp")?;
        let data = dir.path().to_path_buf();
        let store =
            osvdi_store::Store::open(&osvdi_store::Store::sqlite_url(&data.join("osvdi.db")))
                .await?;
        let mut config = CoreConfig::new(data.clone());
        config.max_desktops_per_user = u32::try_from(max_desktops).unwrap_or(u32::MAX);
        let backend = Arc::new(QemuBackend::new(QemuConfig::new(data.join("desktops"))).await?);
        let accel = format!("{:?}", backend.accel()).to_lowercase();
        let core = Arc::new(
            Core::new(store, config, Arc::new(SystemClock))?.with_compute(backend.clone()),
        );
        let password = core
            .bootstrap_admin()
            .await?
            .context("fresh site without admin")?;
        let cancel = CancellationToken::new();
        tokio::spawn(
            core.clone()
                .run_reconciler(Duration::from_millis(100), cancel.clone()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(osvdi_server::serve(
            listener,
            AppState::new(core.clone(), HttpConfig::default()),
            cancel.clone(),
        ));
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"].as_str().context("login failed")?.to_owned();
        Ok(Self {
            _dir: dir,
            data,
            core,
            backend,
            cancel,
            http,
            base,
            token,
            accel,
        })
    }

    /// The accelerator QEMU uses (kvm or tcg).
    pub fn accel(&self) -> &str {
        &self.accel
    }

    /// Launches a desktop of `template`; returns its id and the time to ready.
    pub async fn launch(&self, template: &str) -> anyhow::Result<(String, Duration)> {
        let (http, base, token) = (&self.http, &self.base, &self.token);
        let start = Instant::now();
        let s: Value = http
            .post(format!("{base}/api/v1/sessions"))
            .bearer_auth(token)
            .json(&json!({"template_id": template}))
            .send()
            .await?
            .json()
            .await?;
        let id = s["id"]
            .as_str()
            .with_context(|| format!("launch refused: {s}"))?
            .to_owned();
        loop {
            let s: Value = http
                .get(format!("{base}/api/v1/sessions/{id}"))
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            match s["state"].as_str() {
                Some("ready") => return Ok((id, start.elapsed())),
                Some("failed" | "ended") => bail!("desktop {id} {}: {}", s["state"], s["reason"]),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("desktop {id} not ready after 600 s");
            }
        }
    }

    /// Ends every desktop, stops the server and QEMU, and removes the site.
    pub async fn stop(self) -> anyhow::Result<()> {
        let live: Value = self
            .http
            .get(format!("{}/api/v1/sessions?live=true", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .json()
            .await?;
        for s in live.as_array().into_iter().flatten() {
            if let Some(id) = s["id"].as_str() {
                self.http
                    .delete(format!("{}/api/v1/sessions/{id}", self.base))
                    .bearer_auth(&self.token)
                    .send()
                    .await?;
            }
        }
        // Give the deletions a moment, then stop everything.
        for _ in 0..100 {
            let live: Value = self
                .http
                .get(format!("{}/api/v1/sessions?live=true", self.base))
                .bearer_auth(&self.token)
                .send()
                .await?
                .json()
                .await?;
            if live.as_array().is_some_and(Vec::is_empty) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.cancel.cancel();
        self.backend.shutdown().await;
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn print_table(args: &LaunchArgs, accel: &str, times: &[Duration], wall: Duration) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let s = |d: Duration| format!("{:.2}", d.as_secs_f64());
    println!(
        "osvdi bench launch: time from POST /api/v1/sessions to ready (guest's ready marker seen)"
    );
    println!(
        "desktops {}, {}, accelerator {accel}, demo template",
        args.n,
        if args.concurrent {
            "concurrent"
        } else {
            "one after another"
        }
    );
    println!();
    println!("| n | mode | p50 s | p95 s | min s | max s | wall s |");
    println!("|---|------|-------|-------|-------|-------|--------|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        args.n,
        if args.concurrent {
            "concurrent"
        } else {
            "sequential"
        },
        s(percentile(&sorted, 50.0)),
        s(percentile(&sorted, 95.0)),
        s(sorted[0]),
        s(sorted[sorted.len() - 1]),
        s(wall)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let d: Vec<_> = (1..=20).map(Duration::from_secs).collect();
        assert_eq!(percentile(&d, 50.0), Duration::from_secs(10));
        assert_eq!(percentile(&d, 95.0), Duration::from_secs(19));
        assert_eq!(percentile(&d[..1], 95.0), Duration::from_secs(1));
    }
}
