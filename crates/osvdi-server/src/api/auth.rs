//! Login, logout, password change, and "who am I".

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use osvdi_core::CoreError;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Authed, ClientAddr, SESSION_COOKIE};
use crate::wire::{
    LoginRequest, LoginResponse, MeDto, PasswordChange, SessionDto, UserDto, rfc3339,
};

fn session_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    // Tokens are base64url and the rest is ASCII, so this is a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Logs in with a user name and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; also sets the osvdi_session cookie", body = LoginResponse),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody)))]
pub(crate) async fn login(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let result = s.core.login(&req.username, &req.password, client).await;
    s.metrics.login(match &result {
        Ok(_) => "success",
        Err(CoreError::RateLimited { .. }) => "rate_limited",
        Err(_) => "denied",
    });
    let ok = result?;
    // Auto-assign: a person whose only template says so gets their desktop right away.
    let caller = s.core.caller_for(&ok.user, client).await?;
    let session = match s.core.auto_assign(&caller).await {
        Ok(d) => d.as_ref().map(SessionDto::from),
        Err(e) => {
            tracing::warn!(error = %e, user = %ok.user.name, "auto-assign at login failed");
            None
        }
    };
    let max_age = s.core.now().until(ok.expires_at).as_secs();
    let body = LoginResponse {
        token: ok.token.clone(),
        expires_at: rfc3339(ok.expires_at),
        user: UserDto::from(&ok.user),
        session,
    };
    let mut res = axum::Json(body).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&ok.token, max_age, s.http.secure_cookies),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Ends the current login session (the token stops working at once).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, body = ErrorBody)))]
pub(crate) async fn logout(State(s): State<AppState>, auth: Authed) -> Result<Response, ApiError> {
    s.core.logout(&auth.caller, &auth.session).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, s.http.secure_cookies),
    );
    Ok(res)
}

/// Changes one's own password; other sessions of the account end.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Changed"), (status = 400, body = ErrorBody), (status = 403, description = "Current password wrong", body = ErrorBody)))]
pub(crate) async fn change_password(
    State(s): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    s.core
        .change_password(
            &auth.caller,
            &auth.session,
            &req.current_password,
            &req.new_password,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in account and its groups.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = MeDto), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<axum::Json<MeDto>, ApiError> {
    let (user, groups) = s.core.me(&auth.caller).await?;
    Ok(axum::Json(MeDto {
        user: UserDto::from(&user),
        groups: groups.into_iter().map(|g| g.name).collect(),
    }))
}
