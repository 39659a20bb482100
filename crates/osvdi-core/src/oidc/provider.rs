//! One OpenID provider: discovery and its signing keys (cached, refetched when a token names
//! a key we do not know: key rotation), the authorization URL, the code exchange and the
//! ID-token checks.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde_json::Value;
use tokio::sync::Mutex;

use super::OidcError;
use super::config::{DEFAULT_ALGORITHMS, ProviderConfig};

/// How long discovery is trusted before it is read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Keys are refetched for an unknown `kid` at most this often (a forged token cannot make
/// us hammer the provider).
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Cached {
    metadata: ProviderMetadataWithLogout,
    fetched: Instant,
    jwks_fetched: Instant,
}

/// What the authorization request leaves to check the answer with.
#[derive(Debug)]
pub(crate) struct AuthRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A verified login: every claim of the ID token (and UserInfo), and what logout needs.
#[derive(Debug)]
pub(crate) struct Verified {
    pub claims: Value,
    pub issuer: String,
    pub subject: String,
    pub id_token: String,
    /// When the ID token (or, if it says, the access token) expires, in ms since the epoch.
    pub token_expires_at: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct Provider {
    pub id: String,
    pub config: ProviderConfig,
    redirect_uri: String,
    cache: Mutex<Option<Cached>>,
}

fn unreachable(provider: &str, what: &str, e: impl std::fmt::Display) -> OidcError {
    OidcError::Unreachable {
        provider: provider.to_owned(),
        detail: format!("{what}: {e}"),
    }
}

impl Provider {
    pub(crate) fn new(id: String, config: ProviderConfig, public_url: &str) -> Self {
        let redirect_uri = format!(
            "{}/auth/oidc/{id}/callback",
            public_url.trim_end_matches('/')
        );
        Provider {
            id,
            config,
            redirect_uri,
            cache: Mutex::new(None),
        }
    }

    /// The provider's metadata, from the cache or discovery.
    async fn metadata(
        &self,
        http: &reqwest::Client,
    ) -> Result<ProviderMetadataWithLogout, OidcError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && c.fetched.elapsed() < METADATA_TTL
        {
            return Ok(c.metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| unreachable(&self.id, "issuer URL", e))?;
        let metadata = match ProviderMetadataWithLogout::discover_async(issuer, http).await {
            Ok(m) => m,
            Err(e) => {
                // The provider is away for a moment: what it said an hour ago still holds.
                if let Some(c) = cache.as_mut() {
                    // Asked again in a minute, not at every login.
                    c.fetched = Instant::now()
                        .checked_sub(METADATA_TTL - Duration::from_secs(60))
                        .unwrap_or(c.fetched);
                    tracing::warn!(provider = %self.id, error = %error_chain(&e), "discovery failed; using the last answer");
                    return Ok(c.metadata.clone());
                }
                return Err(unreachable(&self.id, "discovery", error_chain(&e)));
            }
        };
        let now = Instant::now();
        *cache = Some(Cached {
            metadata: metadata.clone(),
            fetched: now,
            jwks_fetched: now,
        });
        Ok(metadata)
    }

    /// Reads the signing keys again (a token named a key we do not have). Returns the new
    /// metadata, or `None` when they were read too recently to try again.
    async fn refresh_keys(
        &self,
        http: &reqwest::Client,
    ) -> Result<Option<ProviderMetadataWithLogout>, OidcError> {
        let mut cache = self.cache.lock().await;
        let Some(c) = cache.as_mut() else {
            return Ok(None);
        };
        if c.jwks_fetched.elapsed() < JWKS_MIN_REFRESH {
            return Ok(None);
        }
        let jwks = JsonWebKeySet::fetch_async(c.metadata.jwks_uri(), http)
            .await
            .map_err(|e| unreachable(&self.id, "signing keys", error_chain(&e)))?;
        c.metadata = c.metadata.clone().set_jwks(jwks);
        c.jwks_fetched = Instant::now();
        tracing::info!(provider = %self.id, "refetched the provider's signing keys");
        Ok(Some(c.metadata.clone()))
    }

    /// The provider's end-session endpoint, if its discovery names one.
    pub(crate) async fn end_session_endpoint(&self, http: &reqwest::Client) -> Option<String> {
        let m = self.metadata(http).await.ok()?;
        m.additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().to_string())
    }

    fn client(&self, metadata: ProviderMetadataWithLogout) -> Result<OidcClient, OidcError> {
        let redirect =
            RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| OidcError::Rejected {
                reason: format!("redirect URI: {e}"),
            })?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a login: the URL to send the browser to, with a fresh state, nonce and PKCE
    /// challenge (S256).
    pub(crate) async fn authorize(&self, http: &reqwest::Client) -> Result<AuthRequest, OidcError> {
        let client = self.client(self.metadata(http).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        let default_scopes = ["openid", "profile", "email"].map(String::from).to_vec();
        for s in self.config.scopes.as_ref().unwrap_or(&default_scopes) {
            if s != "openid" {
                req = req.add_scope(Scope::new(s.clone()));
            }
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(AuthRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code, checks the ID token (signature with an allowed algorithm, issuer,
    /// audience, expiry and issue time within `skew`, nonce) and reads UserInfo.
    pub(crate) async fn complete(
        &self,
        http: &reqwest::Client,
        code: String,
        pkce_verifier: String,
        nonce: String,
        now_ms: i64,
        skew: Duration,
    ) -> Result<Verified, OidcError> {
        let metadata = self.metadata(http).await?;
        let userinfo_endpoint = metadata.userinfo_endpoint().map(|u| u.url().clone());
        let token = self
            .exchange(http, metadata.clone(), code, pkce_verifier)
            .await?;
        let id_token = token.id_token().ok_or_else(|| OidcError::Rejected {
            reason: "the token response has no ID token".into(),
        })?;
        let nonce = Nonce::new(nonce);
        let verify = |m: &ProviderMetadataWithLogout| -> Result<(), ClaimsVerificationError> {
            let verifier = self.verifier(m.jwks().clone(), now_ms, skew)?;
            id_token.claims(&verifier, &nonce).map(|_| ())
        };
        let checked = match verify(&metadata) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => match self.refresh_keys(http).await? {
                Some(m) => verify(&m),
                None => verify(&metadata),
            },
            other => other,
        };
        checked.map_err(|e| verification_error(&e))?;
        let raw = id_token.to_string();
        let mut claims = payload(&raw)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Rejected {
                reason: "no subject".into(),
            })?
            .to_owned();
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let id_exp = claims.get("exp").and_then(Value::as_i64).map(|s| s * 1000);
        let access_exp = token
            .expires_in()
            .map(|d| now_ms + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
        if self.config.userinfo.unwrap_or(true)
            && let Some(endpoint) = userinfo_endpoint
        {
            let info = self
                .userinfo(http, endpoint, token.access_token().secret())
                .await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(OidcError::Rejected {
                    reason: "UserInfo is about another subject".into(),
                });
            }
            if let (Value::Object(c), Value::Object(i)) = (&mut claims, info) {
                c.extend(i);
            }
        }
        Ok(Verified {
            claims,
            issuer,
            subject,
            id_token: raw,
            token_expires_at: access_exp.or(id_exp),
        })
    }

    /// The token request: the code and the PKCE verifier for the tokens.
    async fn exchange(
        &self,
        http: &reqwest::Client,
        metadata: ProviderMetadataWithLogout,
        code: String,
        pkce_verifier: String,
    ) -> Result<openidconnect::core::CoreTokenResponse, OidcError> {
        self.client(metadata)?
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unreachable(&self.id, "token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => OidcError::ProviderError {
                    provider: self.id.clone(),
                    code: r.error().to_string(),
                },
                other => unreachable(&self.id, "token request", error_chain(&other)),
            })
    }

    fn verifier(
        &self,
        jwks: openidconnect::core::CoreJsonWebKeySet,
        now_ms: i64,
        skew: Duration,
    ) -> Result<CoreIdTokenVerifier<'static>, ClaimsVerificationError> {
        let names: Vec<String> = match &self.config.algorithms {
            Some(a) => a.clone(),
            None => DEFAULT_ALGORITHMS.iter().map(|s| (*s).to_owned()).collect(),
        };
        let algs: Vec<CoreJwsSigningAlgorithm> = names
            .into_iter()
            .filter_map(|n| serde_json::from_value(Value::String(n)).ok())
            .collect();
        let skew = chrono::Duration::from_std(skew).unwrap_or_default();
        let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| ClaimsVerificationError::Other(e.to_string()))?;
        Ok(CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.config.client_id.clone()),
            issuer,
            jwks,
        )
        .set_allowed_algs(algs)
        // Expiry with the skew allowance: the token counts as valid until exp + skew.
        .set_time_fn(move || now - skew)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > now + skew {
                Err(format!("issued in the future ({iat}; now {now})"))
            } else {
                Ok(())
            }
        }))
    }

    async fn userinfo(
        &self,
        http: &reqwest::Client,
        endpoint: reqwest::Url,
        access_token: &str,
    ) -> Result<Value, OidcError> {
        let res = http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(&self.id, "UserInfo", error_chain(&e)))?;
        if !res.status().is_success() {
            return Err(unreachable(&self.id, "UserInfo", res.status()));
        }
        let body = res
            .bytes()
            .await
            .map_err(|e| unreachable(&self.id, "UserInfo", error_chain(&e)))?;
        serde_json::from_slice(&body).map_err(|e| OidcError::Rejected {
            reason: format!("UserInfo is not JSON: {e}"),
        })
    }
}

type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The claims of a JWT whose signature has been checked.
fn payload(jwt: &str) -> Result<Value, OidcError> {
    let bad = |reason: &str| OidcError::Rejected {
        reason: reason.into(),
    };
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| bad("malformed ID token"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| bad("malformed ID token"))?;
    serde_json::from_slice(&bytes).map_err(|_| bad("malformed ID token"))
}

fn verification_error(e: &ClaimsVerificationError) -> OidcError {
    match e {
        ClaimsVerificationError::Expired(d) if d.contains("issued in the future") => {
            OidcError::ClockSkew { detail: d.clone() }
        }
        ClaimsVerificationError::Expired(d) => OidcError::Expired { detail: d.clone() },
        other => OidcError::Rejected {
            reason: error_chain(other),
        },
    }
}

/// An error with its sources, for logs and the audit log (never shown with secrets: these
/// errors hold URLs and reasons, not tokens).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
