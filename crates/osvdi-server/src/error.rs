//! Core errors as HTTP answers: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Internal failures are logged here with their causes and shown to the person as a short
//! message without details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use osvdi_core::{CoreError, ImageError};
use serde::Serialize;

/// An error answer. Built from a [`CoreError`] or directly for request-shape problems.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    retry_after: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, machine-readable: `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `invalid_request`, `rate_limited`, `image_rejected`, `unsupported_image_format`,
    /// `payload_too_large`, `upload_incomplete`, `internal`.
    code: String,
    /// For people.
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// The status a core error maps to, without building the answer (or logging).
    pub fn from_ref(e: &CoreError) -> StatusCode {
        status_and_code(e).0
    }

    pub fn unauthenticated() -> Self {
        Self::from(CoreError::Unauthenticated)
    }
}

fn image_status(e: &ImageError) -> (StatusCode, &'static str) {
    match e {
        ImageError::UnknownFormat | ImageError::UnsupportedFormat { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image_format",
        ),
        ImageError::TooLarge { .. } | ImageError::VirtualTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        }
        e if e.is_user_error() => (StatusCode::UNPROCESSABLE_ENTITY, "image_rejected"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn status_and_code(e: &CoreError) -> (StatusCode, &'static str) {
    match e {
        CoreError::Unauthenticated | CoreError::InvalidCredentials => {
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        }
        CoreError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        CoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        CoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        CoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        CoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        CoreError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        CoreError::UploadIncomplete(_) => (StatusCode::BAD_REQUEST, "upload_incomplete"),
        CoreError::Image(i) => image_status(i),
        CoreError::Store(_) | CoreError::Io { .. } | CoreError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let (status, code) = status_and_code(&e);
        let message = if status.is_server_error() {
            tracing::error!(error = %DisplayChain(&e), "request failed");
            "Internal error; the administrators can find the cause in the server log".to_owned()
        } else {
            e.to_string()
        };
        let retry_after = match &e {
            CoreError::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        ApiError {
            status,
            code,
            message,
            retry_after,
        }
    }
}

/// Formats an error with its chain of sources, for the log.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
