//! Native clients: the `.vv` connection file that remote-viewer (virt-viewer) opens.
//!
//! The file carries a one-time SPICE ticket (it must: it is the client's password) and points
//! the client at the gateway's own CONNECT proxy (`proxy=`, see `crate::proxy`), at the host
//! and port the browser used to reach osvdi. It is never logged.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use osvdi_core::SpiceFile;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Authed;

/// The `Host` header as a proxy address: a host name or IP literal with an optional port;
/// anything else (which could break the file's lines) is refused.
fn proxy_host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then_some(host)
}

/// A value as GLib's key files read it back: backslashes escaped, no line breaks.
fn key_file_value(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('\\', "\\\\")
}

/// The `.vv` file (virt-viewer's key file format).
fn vv_file(f: &SpiceFile, proxy: &str) -> String {
    format!(
        "[virt-viewer]\n\
         type=spice\n\
         host={host}\n\
         port={port}\n\
         password={password}\n\
         proxy=http://{proxy}\n\
         title={title}\n\
         delete-this-file=1\n\
         secure-attention=ctrl+alt+end\n\
         release-cursor=shift+f12\n\
         toggle-fullscreen=shift+f11\n",
        host = f.host,
        port = f.port,
        password = key_file_value(&f.ticket),
        title = key_file_value(&f.title),
    )
}

/// A connection file for remote-viewer with a one-time ticket, valid 60 s: the client connects
/// through this server's CONNECT proxy. The session must be ready and its template offer SPICE.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/spice.vv", tag = "sessions",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The .vv file", content_type = "application/x-virt-viewer", body = String),
        (status = 403, description = "The template's access policy refuses it now", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not ready, or the template offers no SPICE", body = ErrorBody)))]
pub(crate) async fn vv(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: osvdi_model::DesktopId = id.parse().map_err(|_| ApiError::not_found("Session"))?;
    let proxy = proxy_host(&headers)
        .ok_or_else(|| ApiError::bad_request("A valid Host header is needed"))?
        .to_owned();
    let file = s
        .core
        .issue_spice_ticket(&auth.caller, id, auth.caller.client)
        .await?;
    let short: String = file.desktop.to_string().chars().take(8).collect();
    let disposition = format!("attachment; filename=\"osvdi-{short}.vv\"");
    let mut res = vv_file(&file, &proxy).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-virt-viewer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_odd_characters_are_refused() {
        let host = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
            proxy_host(&h).map(str::to_owned)
        };
        assert_eq!(
            host("vdi.example.org:8080").as_deref(),
            Some("vdi.example.org:8080")
        );
        assert_eq!(host("[::1]:8080").as_deref(), Some("[::1]:8080"));
        assert_eq!(host("a b"), None);
        assert_eq!(host("x/y"), None);
        assert_eq!(host(""), None);
    }

    #[test]
    fn titles_stay_on_one_line() {
        assert_eq!(key_file_value("a\nb\\c"), "ab\\\\c");
    }
}
