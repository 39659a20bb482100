//! Sessions: a person's desktops. Launch, watch (server-sent events), suspend, resume, end.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use osvdi_model::DesktopId;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Authed};
use crate::wire::{LaunchRequest, SessionDto, SessionEventDto, rfc3339};

fn session_id(s: &str) -> Result<DesktopId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found("Session"))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct ListParams {
    /// Admins: everyone's sessions.
    #[serde(default)]
    all: bool,
    /// Only sessions that are not ended or failed.
    #[serde(default)]
    live: bool,
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(ListParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<SessionDto>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    auth: Authed,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<SessionDto>>, ApiError> {
    let ds = s.core.desktops(&auth.caller, p.all, p.live).await?;
    Ok(Json(
        ds.iter().map(|d| SessionDto::live(d, &s.core)).collect(),
    ))
}

/// Launches a desktop of a template; answers at once while it is created and booted (watch
/// `/events` or poll until `ready`).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = LaunchRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 202, body = SessionDto), (status = 404, body = ErrorBody),
        (status = 409, description = "Too many desktops, or no image yet", body = ErrorBody)))]
pub(crate) async fn launch(
    State(s): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let template = req
        .template_id
        .parse()
        .map_err(|_| ApiError::not_found("Template"))?;
    let d = s.core.launch(&auth.caller, template).await?;
    Ok((StatusCode::ACCEPTED, Json(SessionDto::live(&d, &s.core))))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])), responses((status = 200, body = SessionDto), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<SessionDto>, ApiError> {
    let d = s.core.desktop(&auth.caller, session_id(&id)?).await?;
    Ok(Json(SessionDto::live(&d, &s.core)))
}

/// Ends a session: the desktop stops and is destroyed.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 202, body = SessionDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn end(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let d = s.core.end(&auth.caller, session_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(SessionDto::live(&d, &s.core))))
}

/// Suspends a ready session (its state is saved to disk; it can be resumed later).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/suspend", tag = "sessions", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 202, body = SessionDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn suspend(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let d = s.core.suspend(&auth.caller, session_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(SessionDto::live(&d, &s.core))))
}

/// Resumes a suspended session.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/resume", tag = "sessions", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 202, body = SessionDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn resume(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let d = s.core.resume(&auth.caller, session_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(SessionDto::live(&d, &s.core))))
}

/// A session's recorded state changes, oldest first.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/history", tag = "sessions", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<SessionEventDto>), (status = 404, body = ErrorBody)))]
pub(crate) async fn history(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<Vec<SessionEventDto>>, ApiError> {
    let events = s
        .core
        .desktop_history(&auth.caller, session_id(&id)?)
        .await?;
    Ok(Json(events.iter().map(SessionEventDto::from).collect()))
}

/// State changes as server-sent events (`event: state`, data: the session as JSON): the
/// current state first, then each change; the stream ends when the session ends or fails.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/events", tag = "sessions", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "text/event-stream of SessionDto"), (status = 404, body = ErrorBody)))]
pub(crate) async fn events(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = session_id(&id)?;
    // Subscribe before reading the current state, so that no change falls in between.
    let rx = s.core.subscribe_changes();
    let first = s.core.desktop(&auth.caller, id).await?;
    let core = s.core.clone();
    let caller = auth.caller;
    let state = (Some(first), rx, false);
    let stream = futures_util::stream::unfold(state, move |(pending, mut rx, done)| {
        let core = core.clone();
        let caller = caller.clone();
        async move {
            if done {
                return None;
            }
            let d = match pending {
                Some(d) => d,
                None => loop {
                    match rx.recv().await {
                        Ok(c) if c.desktop == id => match core.desktop(&caller, id).await {
                            Ok(d) => break d,
                            Err(_) => return None,
                        },
                        Ok(_) => {}
                        // Missed changes: the current state tells all that matters.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            match core.desktop(&caller, id).await {
                                Ok(d) => break d,
                                Err(_) => return None,
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                },
            };
            let last = d.state.is_terminal();
            let json = serde_json::to_string(&SessionDto::live(&d, &core)).unwrap_or_default();
            let event = Event::default()
                .event("state")
                .id(rfc3339(d.state_since))
                .data(json);
            Some((Ok(event), (None, rx, last)))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
