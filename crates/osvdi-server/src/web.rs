//! The portal and the browser console: the files of `web/`, embedded at compile time (see
//! `build.rs`), served at `/` (the portal), `/console` (the noVNC viewer), `/stream` (the
//! H.264 viewer) and `/static/...`, with their content type, an ETag, and a strict
//! Content-Security-Policy (no inline script).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// Relative to `web/`, with `/`.
    path: &'static str,
    body: &'static [u8],
    etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Scripts, workers and styles only from this server; WebSockets and fetches to it; no
/// frames, no plugins. Images may be `data:`/`blob:` (cursors, noVNC's JPEG rectangles).
const CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; \
                   img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
                   manifest-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve("index.html", &h) }),
        )
        .route(
            "/console",
            get(|h: HeaderMap| async move { serve("viewer.html", &h) }),
        )
        .route(
            "/stream",
            get(|h: HeaderMap| async move { serve("stream.html", &h) }),
        )
        .route(
            "/static/{*path}",
            get(|Path(p): Path<String>, h: HeaderMap| async move { serve(&p, &h) }),
        )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn serve(path: &str, req: &HeaderMap) -> Response {
    let Some(asset) = find(path) else {
        return ApiError::not_found("Page").into_response();
    };
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(asset.path))],
            asset.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    // Revalidated each time (cheap with the ETag): a new release is picked up at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_their_scripts_are_embedded() {
        for p in [
            "index.html",
            "viewer.html",
            "app.js",
            "viewer.js",
            "stream.html",
            "stream.js",
            "stream-worker.js",
            "style.css",
            "vendor/novnc/core/rfb.js",
            "vendor/novnc/LICENSE.txt",
        ] {
            assert!(find(p).is_some(), "{p} is not embedded");
        }
        assert!(find("../Cargo.toml").is_none());
        assert_eq!(
            content_type("vendor/novnc/core/rfb.js"),
            "text/javascript; charset=utf-8"
        );
    }

    #[test]
    fn no_inline_script_in_the_pages() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".html")) {
            let html = std::str::from_utf8(a.body).unwrap();
            for tag in html.split("<script").skip(1) {
                let open = &tag[..tag.find('>').unwrap()];
                assert!(open.contains("src="), "inline script in {}", a.path);
            }
            assert!(!html.contains(" style="), "inline style in {}", a.path);
            let handler = html.match_indices(" on").any(|(i, _)| {
                let rest = &html[i + 3..];
                let name = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(0);
                name > 0 && rest[name..].starts_with('=')
            });
            assert!(!handler, "inline event handler in {}", a.path);
        }
    }
}
