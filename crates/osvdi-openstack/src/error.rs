//! The one error type of the OpenStack client.

use reqwest::StatusCode;

/// Why a call to the cloud failed.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    #[error("OpenStack configuration: {0}")]
    Config(String),
    #[error("Cannot reach {service}")]
    Transport {
        service: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("Keystone refused the credentials: {0}")]
    Auth(String),
    #[error("The catalogue has no {interface} endpoint for {service}{region}")]
    NoEndpoint {
        service: &'static str,
        interface: String,
        region: String,
    },
    #[error("{service} answered {status}: {message}")]
    Api {
        service: &'static str,
        status: StatusCode,
        message: String,
    },
    #[error("Unexpected answer from {service}: {message}")]
    Decode {
        service: &'static str,
        message: String,
    },
    #[error("No capacity for this desktop now: {0}")]
    NoCapacity(String),
    #[error("Timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
    #[error("I/O error: {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl OsError {
    /// The HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            OsError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

/// The human part of an OpenStack error body: Nova's `{"itemNotFound": {"message": ...}}`,
/// Placement's `{"errors": [{"detail": ...}]}`, Keystone's `{"error": {"message": ...}}`, or
/// the start of whatever text came (Glance answers HTML).
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(errors) = v.get("errors").and_then(|e| e.as_array())
            && let Some(first) = errors.first()
        {
            let detail = first
                .get("detail")
                .or_else(|| first.get("title"))
                .and_then(|d| d.as_str());
            if let Some(d) = detail {
                return clean(d);
            }
        }
        if let Some(obj) = v.as_object() {
            for inner in obj.values() {
                if let Some(m) = inner.get("message").and_then(|m| m.as_str()) {
                    return clean(m);
                }
            }
        }
    }
    clean(body)
}

/// One line, no markup, at most 300 characters.
fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if in_tag => {
                let _ = c;
            }
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &joined[..i]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_each_service() {
        assert_eq!(
            error_message(
                r#"{"itemNotFound": {"message": "Instance x could not be found.", "code": 404}}"#
            ),
            "Instance x could not be found."
        );
        assert_eq!(
            error_message(
                r#"{"errors": [{"status": 409, "title": "Conflict", "detail": "There was a conflict when trying to complete your request.\n\n Unable to allocate", "request_id": "req-1"}]}"#
            ),
            "There was a conflict when trying to complete your request. Unable to allocate"
        );
        assert_eq!(
            error_message(
                r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(
                "<html>\n <head><title>404 Not Found</title></head>\n <body><h1>404 Not Found</h1>Image x not found</body></html>"
            ),
            "404 Not Found 404 Not Found Image x not found"
        );
        assert_eq!(error_message(&"x".repeat(400)).len(), 303);
    }
}
