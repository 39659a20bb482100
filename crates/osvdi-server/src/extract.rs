//! Request extractors: the authenticated caller, the client address, JSON bodies whose
//! errors come back in the API's error format.

use std::net::IpAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{Method, header, request::Parts};
use osvdi_core::{Caller, Session};

use crate::error::ApiError;
use crate::{AppState, client::client_addr};

/// The name of the login cookie.
pub(crate) const SESSION_COOKIE: &str = "osvdi_session";

/// The client address of a request (see [`crate::client`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientAddr(client_addr(parts, &state.http.trusted_proxies)))
    }
}

/// A logged-in caller: from `Authorization: Bearer ...` or the session cookie.
#[derive(Debug, Clone)]
pub(crate) struct Authed {
    pub caller: Caller,
    pub session: Session,
}

fn cookie_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Cookies ride along on cross-site requests; a state-changing request authenticated by
/// cookie must come from a page of this server. (Bearer tokens are never sent implicitly.)
fn same_origin(parts: &Parts) -> bool {
    matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        || origin_matches_host(&parts.headers)
}

/// Whether the request's `Origin` (if any) is this server as the client addressed it.
pub(crate) fn origin_matches_host(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// A WebSocket may be opened from any site's page with the person's cookie: only pages of
/// this server may open one (the one-time token is the main guard; this is the second).
pub(crate) fn refuse_cross_site(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if origin_matches_host(headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "Cross-site request refused",
        ))
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_addr(parts, &state.http.trusted_proxies);
        let (token, by_cookie) = match bearer_token(parts) {
            Some(t) => (t, false),
            None => (
                cookie_token(parts).ok_or_else(ApiError::unauthenticated)?,
                true,
            ),
        };
        if by_cookie && !same_origin(parts) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                "Cross-site request refused",
            ));
        }
        let session = state.core.authenticate(token).await?;
        Ok(Authed {
            caller: Caller {
                who: session.principal.clone(),
                client,
            },
            session,
        })
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Authed {
    type Rejection = std::convert::Infallible;

    /// `None` when the request carries no valid login.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Authed as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// `axum::Json` whose rejections are API errors.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "Invalid JSON body: {}",
                e.body_text()
            ))),
        }
    }
}
