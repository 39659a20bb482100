//! Single sign-on with OpenID Connect: the authorization code flow with PKCE against the
//! providers of the config file, just-in-time accounts keyed by (issuer, subject), mapping
//! rules from claims to groups and roles (evaluated at every login), RP-initiated logout, and
//! the explanation of why a person may use a template.
//!
//! Every failed login through a provider is in the audit log (`login`, object
//! `oidc:<provider>`) with its reason; the front end shows the person what to do.

mod account;
mod config;
mod explain;
mod mapping;
mod pending;
mod provider;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use osvdi_model::{AuditAction, AuditOutcome};

pub use config::{MappingRule, OidcConfig, ProviderConfig};
pub use explain::{AccessExplanation, Step};

use crate::{Caller, Core, CoreError, LoginOutcome, Session};

/// Why a login through a provider did not happen. Each is a page the person can act on.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("Unknown sign-in provider")]
    UnknownProvider,
    /// Discovery, keys, token or UserInfo endpoint did not answer (or answered nonsense).
    #[error("The sign-in provider {provider} cannot be reached")]
    Unreachable { provider: String, detail: String },
    /// The person cancelled or refused consent (`error=access_denied`).
    #[error("The sign-in at {provider} was cancelled or consent was refused")]
    Denied { provider: String, detail: String },
    /// The provider answered with another OAuth error.
    #[error("The sign-in provider {provider} refused the login ({code})")]
    ProviderError { provider: String, code: String },
    /// The state is unknown, used, expired, or from another browser.
    #[error("This sign-in link has expired or was already used")]
    UnknownState,
    /// The ID token failed a check (signature, algorithm, issuer, audience, nonce).
    #[error("The sign-in could not be verified: {reason}")]
    Rejected { reason: String },
    #[error("The sign-in has expired: {detail}")]
    Expired { detail: String },
    #[error("The clocks of osvdi and the sign-in provider disagree: {detail}")]
    ClockSkew { detail: String },
    #[error("The sign-in provider did not send the claim {claim}")]
    MissingClaim { claim: String },
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<osvdi_store::StoreError> for OidcError {
    fn from(e: osvdi_store::StoreError) -> Self {
        OidcError::Core(e.into())
    }
}

impl OidcError {
    /// A short code for pages, logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::UnknownProvider => "unknown_provider",
            OidcError::Unreachable { .. } => "provider_unreachable",
            OidcError::Denied { .. } => "access_denied",
            OidcError::ProviderError { .. } => "provider_error",
            OidcError::UnknownState => "unknown_state",
            OidcError::Rejected { .. } => "token_rejected",
            OidcError::Expired { .. } => "token_expired",
            OidcError::ClockSkew { .. } => "clock_skew",
            OidcError::MissingClaim { .. } => "missing_claim",
            OidcError::Core(_) => "internal",
        }
    }
}

/// A provider as the login page shows it.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: String,
    pub display_name: String,
}

/// A login on its way to the provider.
#[derive(Debug, Clone)]
pub struct SsoStart {
    /// Where to send the browser.
    pub url: String,
    /// The value of the browser-binding cookie (HttpOnly, short-lived).
    pub binding: String,
}

/// What the provider's redirect back brought.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The issuer, when the provider names it (RFC 9207): it must be the one asked.
    pub iss: Option<String>,
}

/// A finished login through a provider.
#[derive(Debug, Clone)]
pub struct SsoLogin {
    pub outcome: LoginOutcome,
    /// The portal path to go back to.
    pub return_to: String,
}

/// A rule as admins see it.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub number: usize,
    pub rule: MappingRule,
    pub description: String,
}

/// The single sign-on part of the core: providers, pending logins, the HTTP client.
#[derive(Debug)]
pub(crate) struct Oidc {
    config: OidcConfig,
    providers: BTreeMap<String, provider::Provider>,
    pending: pending::PendingLogins,
    http: reqwest::Client,
}

impl Oidc {
    pub(crate) fn new(config: &OidcConfig) -> Result<Self, CoreError> {
        config.validate().map_err(CoreError::Invalid)?;
        let public = config.public_url.clone().unwrap_or_default();
        let mut providers = BTreeMap::new();
        for (id, p) in &config.providers {
            let mut p = p.clone();
            if let Some(path) = p.client_secret_file.take() {
                let secret = std::fs::read_to_string(&path).map_err(|e| {
                    CoreError::Invalid(format!(
                        "oidc.providers.{id}.client_secret_file {}: {e}",
                        path.display()
                    ))
                })?;
                p.client_secret = Some(secret.trim().to_owned());
            }
            providers.insert(id.clone(), provider::Provider::new(id.clone(), p, &public));
        }
        // Redirects are never followed: a provider answers, or it is an error (SSRF guard).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| CoreError::Internal(format!("HTTP client: {e}")))?;
        Ok(Oidc {
            config: config.clone(),
            providers,
            pending: pending::PendingLogins::default(),
            http,
        })
    }
}

/// Keeps only same-site portal paths (`/`, `/#/desktops`): never another site.
fn safe_return(path: Option<&str>) -> String {
    match path {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && p.len() < 512 =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

impl Core {
    /// The providers people can log in with, for the login page.
    pub fn sso_providers(&self) -> Vec<ProviderInfo> {
        self.oidc
            .providers
            .values()
            .map(|p| ProviderInfo {
                id: p.id.clone(),
                display_name: p.config.display_name.clone(),
            })
            .collect()
    }

    fn sso_provider(&self, id: &str) -> Result<&provider::Provider, OidcError> {
        self.oidc
            .providers
            .get(id)
            .ok_or(OidcError::UnknownProvider)
    }

    /// Starts a login through `provider`: remembers state, nonce and PKCE verifier for this
    /// browser (`binding`, reused when the browser has one) and answers where to send it.
    pub async fn sso_begin(
        &self,
        provider: &str,
        binding: Option<&str>,
        return_to: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<SsoStart, OidcError> {
        let result = async {
            let p = self.sso_provider(provider)?;
            let req = p.authorize(&self.oidc.http).await?;
            let binding = match binding {
                Some(b)
                    if b.len() == 43
                        && b.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') =>
                {
                    b.to_owned()
                }
                _ => random_token(),
            };
            let now = self.now();
            self.oidc.pending.insert(
                req.state,
                pending::PendingLogin {
                    provider: provider.to_owned(),
                    binding: binding.clone(),
                    nonce: req.nonce,
                    pkce_verifier: req.pkce_verifier,
                    return_to: safe_return(return_to),
                    created: now,
                },
                now,
            );
            Ok(SsoStart {
                url: req.url,
                binding,
            })
        }
        .await;
        if let Err(e) = &result {
            self.sso_failed(provider, client, e).await;
        }
        result
    }

    /// Finishes a login when the provider sends the browser back: checks state (single use,
    /// same browser), exchanges the code, verifies the ID token, creates or updates the
    /// account, applies the mapping rules and opens a login session.
    pub async fn sso_complete(
        &self,
        provider: &str,
        binding: Option<&str>,
        callback: Callback,
        client: Option<std::net::IpAddr>,
    ) -> Result<SsoLogin, OidcError> {
        let result = self
            .sso_complete_inner(provider, binding, callback, client)
            .await;
        if let Err(e) = &result {
            self.sso_failed(provider, client, e).await;
        }
        result
    }

    async fn sso_complete_inner(
        &self,
        provider: &str,
        binding: Option<&str>,
        callback: Callback,
        client: Option<std::net::IpAddr>,
    ) -> Result<SsoLogin, OidcError> {
        let p = self.sso_provider(provider)?;
        let now = self.now();
        let state = callback.state.as_deref().ok_or(OidcError::UnknownState)?;
        let pending = self
            .oidc
            .pending
            .take(state, binding, now)
            .filter(|l| l.provider == provider)
            .ok_or(OidcError::UnknownState)?;
        if let Some(iss) = &callback.iss
            && iss.trim_end_matches('/') != p.config.issuer.trim_end_matches('/')
        {
            return Err(OidcError::Rejected {
                reason: "the answer names another issuer (mix-up)".into(),
            });
        }
        if let Some(error) = callback.error {
            let detail = callback
                .error_description
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            return Err(if error == "access_denied" {
                OidcError::Denied {
                    provider: provider.to_owned(),
                    detail,
                }
            } else {
                OidcError::ProviderError {
                    provider: provider.to_owned(),
                    code: error
                        .chars()
                        .filter(char::is_ascii_graphic)
                        .take(64)
                        .collect(),
                }
            });
        }
        let code = callback.code.ok_or_else(|| OidcError::Rejected {
            reason: "the provider sent no code".into(),
        })?;
        let verified = p
            .complete(
                &self.oidc.http,
                code,
                pending.pkce_verifier,
                pending.nonce,
                now.0,
                self.oidc.config.clock_skew(),
            )
            .await?;
        let outcome = self.sso_account(p, &verified, client).await?;
        Ok(SsoLogin {
            outcome,
            return_to: pending.return_to,
        })
    }

    async fn sso_failed(&self, provider: &str, client: Option<std::net::IpAddr>, e: &OidcError) {
        let outcome = match e {
            OidcError::Unreachable { .. } | OidcError::Core(_) => AuditOutcome::Failed,
            _ => AuditOutcome::Denied,
        };
        let detail = match e {
            OidcError::Unreachable { detail, .. } => format!("{}: {detail}", e.code()),
            other => format!("{}: {other}", other.code()),
        };
        tracing::warn!(provider, code = e.code(), error = %e, "single sign-on failed");
        let provider: String = provider.chars().take(32).collect();
        self.record_raw(
            None,
            &format!("sso:{provider}"),
            client,
            AuditAction::Login,
            format!("oidc:{provider}"),
            outcome,
            detail,
        )
        .await;
    }

    /// Ends a login session; for one opened through a provider that offers RP-initiated
    /// logout, answers the URL that ends the session there too.
    pub async fn sso_logout(
        &self,
        caller: &Caller,
        session: &Session,
    ) -> Result<Option<String>, CoreError> {
        let at_provider = self.store.provider_session(&session.token_hash).await?;
        self.logout(caller, session).await?;
        let Some((provider, id_token)) = at_provider else {
            return Ok(None);
        };
        let Some(p) = self.oidc.providers.get(&provider) else {
            return Ok(None);
        };
        let Some(endpoint) = p.end_session_endpoint(&self.oidc.http).await else {
            return Ok(None);
        };
        let Ok(mut url) = reqwest::Url::parse(&endpoint) else {
            return Ok(None);
        };
        let back = format!(
            "{}/",
            self.oidc
                .config
                .public_url
                .as_deref()
                .unwrap_or_default()
                .trim_end_matches('/')
        );
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("client_id", &p.config.client_id)
            .append_pair("post_logout_redirect_uri", &back);
        Ok(Some(url.to_string()))
    }

    /// The mapping rules, read-only, for admins.
    pub fn sso_rules(&self, caller: &Caller) -> Result<Vec<RuleView>, CoreError> {
        if !caller.who.role.is_admin() {
            return Err(CoreError::Forbidden(
                "Only admins see the mapping rules".into(),
            ));
        }
        Ok(self
            .oidc
            .config
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| RuleView {
                number: i + 1,
                rule: r.clone(),
                description: r.describe(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secrets_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut config: OidcConfig = serde_json::from_value(serde_json::json!({
            "public_url": "https://vdi.example.org",
            "providers": {"uni": {"display_name": "Uni", "issuer": "https://id.example.org",
                                  "client_id": "osvdi", "client_secret_file": file}}
        }))
        .unwrap();
        let oidc = Oidc::new(&config).unwrap();
        assert_eq!(
            oidc.providers["uni"].config.client_secret.as_deref(),
            Some("s3cret")
        );

        let p = config.providers.get_mut("uni").unwrap();
        p.client_secret_file = Some(dir.path().join("missing"));
        let e = Oidc::new(&config).unwrap_err().to_string();
        assert!(e.contains("client_secret_file"), "{e}");
        config.providers.get_mut("uni").unwrap().client_secret = Some("x".into());
        assert!(
            Oidc::new(&config)
                .unwrap_err()
                .to_string()
                .contains("both set")
        );
    }

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return(Some("/#/desktops")), "/#/desktops");
        assert_eq!(safe_return(Some("//evil.example")), "/");
        assert_eq!(safe_return(Some("https://evil.example")), "/");
        assert_eq!(safe_return(Some("/\\evil.example")), "/");
        assert_eq!(safe_return(None), "/");
    }
}
