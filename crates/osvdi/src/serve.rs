//! `osvdi serve`: open the site, repair what a previous run left, serve until a signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use osvdi_compute::Compute;
use osvdi_compute::qemu::{Accel, QemuBackend, QemuConfig};
use osvdi_display::EncoderKind;
use osvdi_openstack::OpenStackBackend;
use osvdi_server::{AppState, DisplaySettings, HttpConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SiteArgs;
use crate::config::Site;

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// Address to listen on (port 0 picks a free port). Default: 127.0.0.1:8080.
    #[arg(long, env = "OSVDI_LISTEN")]
    listen: Option<String>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let site = Site::resolve(&args.site)?;
    let listen = args
        .listen
        .clone()
        .or_else(|| site.file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let backend = start_backend(&site).await?;
    let mut core = site.open_core().await?;
    if let Some(b) = &backend {
        core = core.with_compute(b.compute());
    }
    let core = Arc::new(core);
    core.recover().await.context("start-up repair failed")?;
    if let Some(password) = core.bootstrap_admin().await? {
        // Printed once, to the terminal, never to the log.
        println!("Created the first account: user 'admin', password '{password}'.");
        println!("This password is not shown again; change it after logging in.");
    }

    let http = HttpConfig {
        trusted_proxies: site.file.trusted_proxies.clone().unwrap_or_default(),
        metrics_networks: site
            .file
            .metrics_networks
            .clone()
            .unwrap_or_else(|| HttpConfig::default().metrics_networks),
        secure_cookies: site.file.secure_cookies.unwrap_or(false),
    };
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %site.data_dir.display(), engine = ?core.store().engine(), "osvdi serving");
    println!("osvdi listening on http://{addr}");

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let tasks = TaskTracker::new();
    if backend.is_some() {
        tasks.spawn(
            core.clone()
                .run_reconciler(Duration::from_secs(2), shutdown.clone()),
        );
    }
    tasks.close();
    let display = video_encoder(site.file.display.encoder.as_deref()).await?;
    let state = AppState::new(core.clone(), http).with_display(display);
    let served = osvdi_server::serve(listener, state, shutdown.clone())
        .await
        .context("server failed");
    shutdown.cancel();
    tasks.wait().await;
    if let Some(b) = &backend {
        // Desktops keep running; the next start adopts them.
        b.shutdown().await;
    }
    core.store().close().await;
    served?;
    tracing::info!("osvdi stopped");
    Ok(())
}

/// The compute backend the config file chose.
enum Backend {
    Qemu(Arc<QemuBackend>),
    OpenStack(Arc<OpenStackBackend>),
}

impl Backend {
    fn compute(&self) -> Arc<dyn Compute> {
        match self {
            Backend::Qemu(b) => b.clone(),
            Backend::OpenStack(b) => b.clone(),
        }
    }

    async fn shutdown(&self) {
        if let Backend::Qemu(b) = self {
            b.shutdown().await;
        }
    }
}

/// The backend of `desktops.backend`: the cloud of `[openstack]` (which must answer), or the
/// local QEMU backend over `DATA/desktops`, or `None` (desktops disabled, said in the log)
/// when QEMU is missing or the config turns it off.
async fn start_backend(site: &Site) -> anyhow::Result<Option<Backend>> {
    let d = &site.file.desktops;
    match d.backend.as_deref() {
        Some("none") => {
            tracing::info!("desktops disabled by the config file (desktops.backend = \"none\")");
            return Ok(None);
        }
        Some("openstack") => {
            let section = site.file.openstack.clone().context(
                "desktops.backend = \"openstack\" needs an [openstack] section in the config file",
            )?;
            let config = section.resolve()?;
            let b = OpenStackBackend::new(config)
                .await
                .context("the OpenStack backend cannot start")?;
            return Ok(Some(Backend::OpenStack(Arc::new(b))));
        }
        None | Some("qemu") => {}
        Some(other) => anyhow::bail!(
            "desktops.backend must be \"qemu\", \"openstack\" or \"none\", not \"{other}\""
        ),
    }
    Ok(start_qemu(site).await.map(Backend::Qemu))
}

/// The local QEMU backend, or `None` when QEMU cannot start.
async fn start_qemu(site: &Site) -> Option<Arc<QemuBackend>> {
    let d = &site.file.desktops;
    let mut config = QemuConfig::new(site.data_dir.join("desktops"));
    config.accel = match d.accel.as_deref() {
        Some("kvm") => Accel::Kvm,
        Some("tcg") => Accel::Tcg,
        _ => Accel::Auto,
    };
    match QemuBackend::new(config).await {
        Ok(b) => Some(Arc::new(b)),
        Err(e) => {
            tracing::warn!(error = %e, "desktops are disabled: the QEMU backend cannot start (Debian package qemu-system-x86)");
            None
        }
    }
}

async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    token.cancel();
}

/// Probes the video encoders this build has and picks the configured one (`auto` by
/// default); one log line says what was found.
async fn video_encoder(configured: Option<&str>) -> anyhow::Result<DisplaySettings> {
    let requested = match configured {
        None | Some("auto") => None,
        Some(name) => Some(name.parse::<EncoderKind>().map_err(anyhow::Error::msg)?),
    };
    let probes = tokio::task::spawn_blocking(osvdi_display::probe_encoders).await?;
    let encoder = EncoderKind::choose(requested, &probes)
        .map_err(|e| anyhow::anyhow!("[display] encoder: {e}"))?;
    tracing::info!(
        "video encoders: {}",
        osvdi_display::describe(encoder, &probes)
    );
    Ok(DisplaySettings { encoder, probes })
}
