//! osvdi's HTTP layer: the REST API under `/api/v1`, health and metrics, the OpenAPI
//! document. Handlers translate requests into [`osvdi_core::Core`] calls and core errors into
//! JSON answers; they hold no business rules and run no SQL.

mod api;
mod client;
mod error;
mod extract;
mod metrics;
mod proxy;
mod web;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use ipnet::IpNet;
use osvdi_core::Core;
use tokio_util::sync::CancellationToken;

pub use api::openapi;
pub use error::ApiError;
pub use metrics::Metrics;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies).
    pub trusted_proxies: Vec<IpNet>,
    /// Networks allowed to read `/metrics` without logging in as an admin.
    pub metrics_networks: Vec<IpNet>,
    /// Mark the session cookie `Secure` (set when served over HTTPS, directly or by a proxy).
    pub secure_cookies: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            trusted_proxies: vec![],
            metrics_networks: vec![
                "127.0.0.0/8".parse().expect("valid"),
                "::1/128".parse().expect("valid"),
            ],
            secure_cookies: false,
        }
    }
}

/// The display engine's settings: the video encoder chosen at start-up, and what the probe
/// of encoders found (shown to admins).
#[derive(Debug, Clone)]
pub struct DisplaySettings {
    pub encoder: osvdi_display::EncoderKind,
    pub probes: Vec<osvdi_display::EncoderProbe>,
}

impl Default for DisplaySettings {
    fn default() -> Self {
        DisplaySettings {
            encoder: osvdi_display::EncoderKind::Openh264,
            probes: Vec::new(),
        }
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub metrics: Arc<Metrics>,
    pub http: Arc<HttpConfig>,
    pub display: Arc<DisplaySettings>,
}

impl AppState {
    pub fn new(core: Arc<Core>, http: HttpConfig) -> Self {
        AppState {
            core,
            metrics: Arc::new(Metrics::new()),
            http: Arc::new(http),
            display: Arc::new(DisplaySettings::default()),
        }
    }

    /// The same state with the display engine's settings.
    pub fn with_display(mut self, display: DisplaySettings) -> Self {
        self.display = Arc::new(display);
        self
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    api::router(state)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
