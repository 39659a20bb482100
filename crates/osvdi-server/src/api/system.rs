//! Health, metrics and the audit log.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use osvdi_store::AuditQuery;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, ClientAddr};
use crate::wire::{AuditDto, GpuDto, parse};

/// Liveness and database reachability.
pub(crate) async fn healthz(State(s): State<AppState>) -> Response {
    match s.core.store().ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "database unreachable"})),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics, for the networks in `metrics_networks` or a logged-in admin.
pub(crate) async fn metrics(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    auth: Option<Authed>,
) -> Response {
    let from_allowed_net =
        client.is_some_and(|c| s.http.metrics_networks.iter().any(|n| n.contains(&c)));
    let admin = auth.is_some_and(|a| a.caller.who.role.is_admin());
    if !from_allowed_net && !admin {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Metrics are served to the monitoring network and admins",
        )
        .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct AuditParams {
    /// At most this many entries (1-1000, default 100).
    limit: Option<u32>,
    /// Only entries with an id below this, for paging.
    before: Option<i64>,
    /// Only this action, e.g. `login` or `template.upload`.
    action: Option<String>,
    /// Only entries by this actor name.
    actor: Option<String>,
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "system", params(AuditParams), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<AuditDto>), (status = 403, body = ErrorBody)))]
pub(crate) async fn audit(
    State(s): State<AppState>,
    auth: Authed,
    Query(p): Query<AuditParams>,
) -> Result<Json<Vec<AuditDto>>, ApiError> {
    let query = AuditQuery {
        limit: p.limit.unwrap_or(100),
        before: p.before,
        action: p.action.as_deref().map(parse).transpose()?,
        actor_name: p.actor,
    };
    let entries = s.core.audit_log(&auth.caller, &query).await?;
    Ok(Json(entries.iter().map(AuditDto::from).collect()))
}

/// The host's mediated GPUs (mdev/vGPU types, free instances, instances in use), for admins.
#[utoipa::path(get, path = "/api/v1/admin/gpus", tag = "system", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<GpuDto>), (status = 403, body = ErrorBody)))]
pub(crate) async fn gpus(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<Vec<GpuDto>>, ApiError> {
    let inventory = s.core.gpu_inventory(&auth.caller).await?;
    Ok(Json(inventory.gpus.iter().map(GpuDto::from).collect()))
}

/// The display engine's video encoders: the one in use and what the start-up probe found
/// (libx264, NVENC and VA-API need a build with the `ffmpeg` feature and, for the last two,
/// the GPU).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DisplayDto {
    /// `openh264`, `x264` or `nvenc`.
    encoder: &'static str,
    encoders: Vec<EncoderProbeDto>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct EncoderProbeDto {
    /// `openh264`, `libx264`, `h264_nvenc`, `h264_vaapi`.
    name: &'static str,
    usable: bool,
    /// What was found, or why it cannot be used.
    detail: String,
}

/// The video encoders of the display engine, for admins.
#[utoipa::path(get, path = "/api/v1/admin/display", tag = "system", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = DisplayDto), (status = 403, body = ErrorBody)))]
pub(crate) async fn display(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<DisplayDto>, ApiError> {
    if !auth.caller.who.role.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only admins see the display engine's encoders",
        ));
    }
    Ok(Json(DisplayDto {
        encoder: s.display.encoder.as_str(),
        encoders: s
            .display
            .probes
            .iter()
            .map(|p| EncoderProbeDto {
                name: p.name,
                usable: p.usable,
                detail: p.detail.clone(),
            })
            .collect(),
    }))
}
