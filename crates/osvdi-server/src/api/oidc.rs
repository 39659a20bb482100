//! Single sign-on: the provider list for the login page, the browser redirects
//! (`/auth/oidc/{provider}/login` and `/callback`), logout at the provider, the mapping rules
//! for admins and "why does this person have access to this template?".
//!
//! The redirects are pages, not API calls: what goes wrong is an HTML page in the portal's
//! style that says what to do, never a stack trace.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use osvdi_core::{Callback, OidcError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, ClientAddr, SESSION_COOKIE};
use crate::wire::parse;

/// The cookie that binds a login in flight to the browser that started it.
const BINDING_COOKIE: &str = "osvdi_oidc";
/// The error pages load only the portal's style sheet.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
                        form-action 'self'; frame-ancestors 'none'";

/// The browser redirects, outside `/api/v1`.
pub(crate) fn browser_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/auth/oidc/{provider}/login", get(login))
        .route("/auth/oidc/{provider}/callback", get(callback))
}

fn cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let c =
        format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // Values are base64url tokens (or empty) and the rest is ASCII: a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A provider on the login page.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProviderDto {
    pub id: String,
    /// "Log in with {display_name}".
    pub display_name: String,
    /// Where the button goes (a browser navigation, not an API call).
    pub login_url: String,
}

/// The single sign-on providers people can log in with (none: local accounts only).
#[utoipa::path(get, path = "/api/v1/auth/providers", tag = "auth",
    responses((status = 200, body = [ProviderDto])))]
pub(crate) async fn providers(State(s): State<AppState>) -> Json<Vec<ProviderDto>> {
    Json(
        s.core
            .sso_providers()
            .into_iter()
            .map(|p| ProviderDto {
                login_url: format!("/auth/oidc/{}/login", p.id),
                id: p.id,
                display_name: p.display_name,
            })
            .collect(),
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginParams {
    /// A portal path to return to after login.
    return_to: Option<String>,
}

/// Sends the browser to the provider, with a state and nonce remembered for this browser.
async fn login(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(provider): Path<String>,
    Query(q): Query<LoginParams>,
    headers: HeaderMap,
) -> Response {
    let binding = cookie_value(&headers, BINDING_COOKIE);
    match s
        .core
        .sso_begin(&provider, binding, q.return_to.as_deref(), client)
        .await
    {
        Ok(start) => {
            let mut res = see_other(&start.url);
            res.headers_mut().insert(
                header::SET_COOKIE,
                cookie(
                    BINDING_COOKIE,
                    &start.binding,
                    "/auth/oidc",
                    600,
                    s.http.secure_cookies,
                ),
            );
            res
        }
        Err(e) => error_page(&provider, &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// The provider sends the browser back here: on success the session cookie is set and the
/// browser goes to the portal.
async fn callback(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(provider): Path<String>,
    Query(q): Query<CallbackParams>,
    headers: HeaderMap,
) -> Response {
    let binding = cookie_value(&headers, BINDING_COOKIE);
    let cb = Callback {
        code: q.code,
        state: q.state,
        error: q.error,
        error_description: q.error_description,
        iss: q.iss,
    };
    let result = s.core.sso_complete(&provider, binding, cb, client).await;
    s.metrics
        .login(if result.is_ok() { "success" } else { "denied" });
    match result {
        Ok(done) => {
            let max_age = s.core.now().until(done.outcome.expires_at).as_secs();
            let mut res = see_other(&done.return_to);
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookie(
                    SESSION_COOKIE,
                    &done.outcome.token,
                    "/",
                    max_age,
                    s.http.secure_cookies,
                ),
            );
            h.append(
                header::SET_COOKIE,
                cookie(BINDING_COOKIE, "", "/auth/oidc", 0, s.http.secure_cookies),
            );
            res
        }
        Err(e) => error_page(&provider, &e),
    }
}

/// What went wrong, for the person, with what to do about it.
fn explain(e: &OidcError) -> (StatusCode, &'static str, String) {
    match e {
        OidcError::UnknownProvider => (
            StatusCode::NOT_FOUND,
            "Unknown sign-in provider",
            "This login link names no provider this site knows. Go back to the login page and \
             choose one of its buttons."
                .into(),
        ),
        OidcError::Unreachable { provider, .. } => (
            StatusCode::BAD_GATEWAY,
            "The sign-in service cannot be reached",
            format!(
                "osvdi could not reach the sign-in service \"{provider}\". It may be down or \
                 busy: try again in a few minutes. If it persists, tell your osvdi \
                 administrators (the time of this attempt is in their audit log)."
            ),
        ),
        OidcError::Denied { .. } => (
            StatusCode::FORBIDDEN,
            "Sign-in cancelled",
            "The sign-in was cancelled, or permission to share your details with osvdi was \
             not given. osvdi needs it to know who you are; log in again and allow it."
                .into(),
        ),
        OidcError::ProviderError { code, .. } => (
            StatusCode::BAD_GATEWAY,
            "The sign-in service refused the login",
            format!(
                "The sign-in service answered \"{code}\". Try again; if it persists, tell your \
                 osvdi administrators."
            ),
        ),
        OidcError::UnknownState => (
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "This sign-in answer is unknown, was already used, took longer than 10 minutes, \
             or was started in another browser. Start again from the login page."
                .into(),
        ),
        OidcError::Rejected { .. } => (
            StatusCode::FORBIDDEN,
            "The sign-in could not be verified",
            "The answer of the sign-in service did not pass osvdi's checks, so you were not \
             logged in. Try again; if it persists, tell your osvdi administrators."
                .into(),
        ),
        OidcError::Expired { .. } => (
            StatusCode::FORBIDDEN,
            "The sign-in has expired",
            "The sign-in service's answer was already expired when it arrived. Log in again. \
             If this keeps happening, the clock of osvdi or of the sign-in service may be wrong: \
             tell your osvdi administrators."
                .into(),
        ),
        OidcError::ClockSkew { .. } => (
            StatusCode::FORBIDDEN,
            "Clocks disagree",
            "The sign-in service's answer is dated in the future: the clocks of osvdi and of \
             the sign-in service disagree. Tell your osvdi administrators; logging in again will \
             not help until the clocks are set right."
                .into(),
        ),
        OidcError::MissingClaim { claim, .. } => (
            StatusCode::FORBIDDEN,
            "Your home organisation did not send what osvdi needs",
            format!(
                "osvdi needs \"{claim}\" from your home organisation, and it was not sent. \
                 Allow sharing it when you log in, or ask your home organisation's help desk \
                 to release it to osvdi."
            ),
        ),
        OidcError::Core(e) => {
            tracing::error!(error = %e, "single sign-on failed inside osvdi");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                "Something went wrong inside osvdi while logging you in. Try again; if it \
                 persists, tell your osvdi administrators."
                    .into(),
            )
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The error page: the portal's style sheet, a heading, what to do, a way back.
fn error_page(provider: &str, e: &OidcError) -> Response {
    let (status, title, advice) = explain(e);
    let retry = if matches!(e, OidcError::UnknownProvider) {
        String::new()
    } else {
        format!(
            r#" or <a href="/auth/oidc/{}/login">try again</a>"#,
            escape(provider)
        )
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — osvdi</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header class="top"><a class="brand" href="/">osvdi</a></header>
<main id="main">
<section class="card login sso-error">
<h1>{title}</h1>
<p class="error" role="alert" data-code="{code}">{advice}</p>
<p><a href="/">Back to the login page</a>{retry}</p>
</section>
</main>
</body>
</html>
"#,
        title = escape(title),
        code = e.code(),
        advice = escape(&advice),
    );
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The answer to a logout that may continue at the provider.
#[derive(Serialize, ToSchema)]
pub(crate) struct SsoLogoutDto {
    /// Where to send the browser to end the session at the provider too (RP-initiated
    /// logout), or null for local accounts and providers without an end-session endpoint.
    pub redirect: Option<String>,
}

/// Ends the login session, and answers where to end the provider's session too.
#[utoipa::path(post, path = "/api/v1/auth/oidc/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = SsoLogoutDto), (status = 401, body = ErrorBody)))]
pub(crate) async fn logout(State(s): State<AppState>, auth: Authed) -> Result<Response, ApiError> {
    let redirect = s.core.sso_logout(&auth.caller, &auth.session).await?;
    let mut res = Json(SsoLogoutDto { redirect }).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        cookie(SESSION_COOKIE, "", "/", 0, s.http.secure_cookies),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A mapping rule from the config file.
#[derive(Serialize, ToSchema)]
pub(crate) struct RuleDto {
    /// As numbered in the config file (from 1).
    pub number: usize,
    pub provider: Option<String>,
    pub claim: String,
    pub value: Option<String>,
    pub value_prefix: Option<String>,
    pub group: Option<String>,
    pub role: Option<String>,
    /// The rule in words.
    pub description: String,
}

/// The single sign-on mapping rules (read-only: they live in the config file).
#[utoipa::path(get, path = "/api/v1/admin/oidc/rules", tag = "accounts", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [RuleDto]), (status = 403, body = ErrorBody)))]
pub(crate) async fn rules(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<Vec<RuleDto>>, ApiError> {
    let rules = s.core.sso_rules(&auth.caller)?;
    Ok(Json(
        rules
            .into_iter()
            .map(|r| RuleDto {
                number: r.number,
                provider: r.rule.provider,
                claim: r.rule.claim,
                value: r.rule.value,
                value_prefix: r.rule.value_prefix,
                group: r.rule.group,
                role: r.rule.role.map(|r| r.to_string()),
                description: r.description,
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct AccessParams {
    /// The user name.
    user: String,
    /// The template id.
    template: String,
}

/// One link of the chain from claims to a template.
#[derive(Serialize, ToSchema)]
pub(crate) struct StepDto {
    /// `identity`, `role`, `owner`, `sharing`, `group` or `policy`.
    pub kind: String,
    pub text: String,
}

/// Why a person may (or may not) use a template.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccessDto {
    pub user: String,
    pub template: String,
    /// Whether the person sees and may launch the template (the policy's time and network
    /// conditions are in `steps`).
    pub allowed: bool,
    pub steps: Vec<StepDto>,
}

/// "Why does this person have access to this template?": claim → rule → group → sharing and
/// policy (admins).
#[utoipa::path(get, path = "/api/v1/admin/access", tag = "accounts", params(AccessParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = AccessDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn access(
    State(s): State<AppState>,
    auth: Authed,
    Query(q): Query<AccessParams>,
) -> Result<Json<AccessDto>, ApiError> {
    let template = parse(&q.template)?;
    let e = s
        .core
        .explain_access(&auth.caller, &q.user, template)
        .await?;
    Ok(Json(AccessDto {
        user: e.user,
        template: e.template,
        allowed: e.allowed,
        steps: e
            .steps
            .into_iter()
            .map(|st| StepDto {
                kind: st.kind.to_owned(),
                text: st.text,
            })
            .collect(),
    }))
}
