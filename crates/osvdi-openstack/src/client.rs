//! The HTTP side: one Keystone session (token kept, renewed before expiry and once on a
//! 401), the service catalogue, microversion headers and error bodies.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::OsError;
use crate::auth::{Token, TokenBody, token_request};
use crate::config::{Credentials, Interface};
use crate::error::error_message;

/// The services osvdi talks to, with the microversion it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Nova at compute 2.79 (2.74: host hints at create; 2.6: remote consoles; 2.37:
    /// `networks: none`).
    Compute,
    /// Glance v2 (no microversions).
    Image,
    /// Placement at 1.14 (nested providers: `parent_provider_uuid`, `in_tree`).
    Placement,
    /// Keystone v3 itself (tests and tools).
    Identity,
}

pub const COMPUTE_MICROVERSION: &str = "2.79";
pub const PLACEMENT_MICROVERSION: &str = "1.14";

impl Service {
    pub fn catalog_type(self) -> &'static str {
        match self {
            Service::Compute => "compute",
            Service::Image => "image",
            Service::Placement => "placement",
            Service::Identity => "identity",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Compute => "Nova",
            Service::Image => "Glance",
            Service::Placement => "Placement",
            Service::Identity => "Keystone",
        }
    }

    fn version_header(self) -> Option<String> {
        match self {
            Service::Compute => Some(format!("compute {COMPUTE_MICROVERSION}")),
            Service::Placement => Some(format!("placement {PLACEMENT_MICROVERSION}")),
            Service::Image | Service::Identity => None,
        }
    }
}

/// A Keystone session: credentials and the current token.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    auth_url: String,
    credentials: Credentials,
    interface: Interface,
    region: Option<String>,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
}

impl Session {
    pub fn new(
        auth_url: &str,
        credentials: Credentials,
        interface: Interface,
        region: Option<String>,
    ) -> Result<Self, OsError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| OsError::Config(format!("HTTP client: {e}")))?;
        Ok(Session {
            http,
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            credentials,
            interface,
            region,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid token: the current one, or a new one when it is close to expiry.
    pub async fn token(&self) -> Result<Arc<Token>, OsError> {
        let mut current = self.token.lock().await;
        if let Some(t) = current.as_ref()
            && !t.needs_renewal(Timestamp::now())
        {
            return Ok(Arc::clone(t));
        }
        let fresh = Arc::new(self.authenticate().await?);
        tracing::debug!(expires_at = %fresh.expires_at(), "new Keystone token");
        *current = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// Forgets `stale` (refused with a 401), unless a newer token replaced it meanwhile.
    async fn invalidate(&self, stale: &Arc<Token>) {
        let mut current = self.token.lock().await;
        if current.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *current = None;
        }
    }

    async fn authenticate(&self) -> Result<Token, OsError> {
        let url = format!("{}/auth/tokens", self.auth_url);
        let resp = self
            .http
            .post(&url)
            .json(&token_request(&self.credentials))
            .send()
            .await
            .map_err(|source| OsError::Transport {
                service: "Keystone",
                source,
            })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = resp.text().await.unwrap_or_default();
            return Err(OsError::Auth(error_message(&body)));
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(OsError::Api {
                service: "Keystone",
                status,
                message: error_message(&body),
            });
        }
        let value = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| OsError::Decode {
                service: "Keystone",
                message: "no X-Subject-Token header".into(),
            })?;
        let body: TokenBody = resp.json().await.map_err(|e| OsError::Decode {
            service: "Keystone",
            message: e.to_string(),
        })?;
        Token::parse(value, body, Timestamp::now())
    }

    /// The base URL of a service from the current token's catalogue.
    pub async fn endpoint(&self, service: Service) -> Result<String, OsError> {
        let token = self.token().await?;
        token.endpoint(
            service.catalog_type(),
            self.interface,
            self.region.as_deref(),
        )
    }

    /// Sends a request built by `build` (called again for the retry) with the token and the
    /// service's microversion; on a 401 gets a new token and tries once more. Answers other
    /// than 2xx become [`OsError::Api`].
    pub async fn send(
        &self,
        service: Service,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, OsError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let base = token.endpoint(
                service.catalog_type(),
                self.interface,
                self.region.as_deref(),
            )?;
            let mut req = self
                .http
                .request(method.clone(), format!("{base}{path}"))
                .header("X-Auth-Token", token.value.expose());
            if let Some(v) = service.version_header() {
                req = req.header("OpenStack-API-Version", v);
            }
            let resp = build(req)
                .send()
                .await
                .map_err(|source| OsError::Transport {
                    service: service.name(),
                    source,
                })?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                tracing::info!(
                    service = service.name(),
                    "token refused; authenticating again"
                );
                self.invalidate(&token).await;
                retried = true;
                continue;
            }
            if status.is_success() {
                return Ok(resp);
            }
            let body = resp.text().await.unwrap_or_default();
            return Err(OsError::Api {
                service: service.name(),
                status,
                message: error_message(&body),
            });
        }
    }

    /// A JSON call: sends `body` (if any) and decodes the answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, OsError> {
        let resp = self
            .send(service, method, path, |r| match body {
                Some(b) => r.json(b),
                None => r,
            })
            .await?;
        resp.json::<T>().await.map_err(|e| OsError::Decode {
            service: service.name(),
            message: e.to_string(),
        })
    }

    /// A call whose answer body does not matter.
    pub async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(), OsError> {
        self.send(service, method, path, |r| match body {
            Some(b) => r.json(b),
            None => r,
        })
        .await
        .map(drop)
    }

    /// Revokes the current token at Keystone (tests use it to force a 401).
    pub async fn revoke_current(&self) -> Result<(), OsError> {
        let token = self.token().await?;
        let resp = self
            .http
            .delete(format!("{}/auth/tokens", self.auth_url))
            .header("X-Auth-Token", token.value.expose())
            .header("X-Subject-Token", token.value.expose())
            .send()
            .await
            .map_err(|source| OsError::Transport {
                service: "Keystone",
                source,
            })?;
        if !resp.status().is_success() {
            return Err(OsError::Api {
                service: "Keystone",
                status: resp.status(),
                message: "cannot revoke the token".into(),
            });
        }
        Ok(())
    }
}
