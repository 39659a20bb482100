//! The core's error type: what went wrong, in terms a front end can map to its own answers.

use std::time::Duration;

use osvdi_image::ImageError;
use osvdi_store::StoreError;

/// Why a core operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No valid login session.
    #[error("Not logged in, or the session has expired")]
    Unauthenticated,
    #[error("Wrong user name or password")]
    InvalidCredentials,
    #[error("Too many failed logins; try again in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or the caller may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// An upload was larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// An upload ended early, or its length or checksum did not match what was announced.
    #[error("{0}")]
    UploadIncomplete(String),
    /// The uploaded image was refused (or could not be checked).
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("Storage error")]
    Store(#[source] StoreError),
    #[error("File system error: {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CoreError {
        let context = context.into();
        move |source| CoreError::Io { context, source }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => CoreError::NotFound("Object"),
            e => CoreError::Store(e),
        }
    }
}
