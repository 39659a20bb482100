//! The `[oidc]` section of the config file: providers and mapping rules.

use std::collections::BTreeMap;
use std::fmt;

use osvdi_model::{Role, validate_group_name};
use serde::Deserialize;

/// Single sign-on settings. Without providers, only local accounts log in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The address people reach osvdi at (`https://vdi.example.org`): redirect URIs are
    /// `{public_url}/auth/oidc/{provider}/callback`. Never taken from a request's Host header.
    pub public_url: Option<String>,
    /// How far the provider's clock may be off ours, in seconds (default 60).
    pub clock_skew_secs: Option<u64>,
    /// The providers by id (the id appears in URLs: `[a-z0-9-]`).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Claim values to osvdi groups and roles, evaluated at every login.
    #[serde(default)]
    pub rules: Vec<MappingRule>,
}

/// One OpenID provider.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// What the login button says: "Log in with {display_name}".
    pub display_name: String,
    /// The issuer URL; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The client secret; `None` for a public client (PKCE only).
    pub client_secret: Option<String>,
    /// A file holding the client secret (instead of `client_secret`), read at start.
    pub client_secret_file: Option<std::path::PathBuf>,
    /// Scopes to ask for (default: openid, profile, email).
    pub scopes: Option<Vec<String>>,
    /// The claim that becomes the user name (default `preferred_username`, then the e-mail's
    /// local part, then a name made from the subject).
    pub username_claim: Option<String>,
    /// Claims without which nobody logs in (e.g. `eduperson_entitlement`).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// ID-token signature algorithms accepted (default RS256, RS384, RS512, PS256, PS384,
    /// PS512, ES256, ES384, EdDSA; never `none`, never HMAC).
    pub algorithms: Option<Vec<String>>,
    /// Also read the UserInfo endpoint for claims (default true).
    pub userinfo: Option<bool>,
    /// End the osvdi session when the provider's tokens expire (default false: the site's
    /// session lifetime).
    #[serde(default)]
    pub limit_session_to_token: bool,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("display_name", &self.display_name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A mapping rule: when the claim at `claim` has `value` (or a value starting with
/// `value_prefix`), the person is in `group` and/or has at least `role`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// Only for logins through this provider (default: any).
    pub provider: Option<String>,
    /// A claim name (`groups`, `eduperson_entitlement`), a dotted path into nested claims
    /// (`realm_access.roles`) or a JSON pointer (`/realm_access/roles`).
    pub claim: String,
    pub value: Option<String>,
    pub value_prefix: Option<String>,
    pub group: Option<String>,
    #[serde(default, deserialize_with = "role_opt")]
    pub role: Option<Role>,
}

/// Roles are read by name ("user", "steward", "admin"); the model has no serde.
fn role_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

impl MappingRule {
    /// The rule in words, for admins and the explanation of access.
    pub fn describe(&self) -> String {
        let cond = match (&self.value, &self.value_prefix) {
            (Some(v), _) => format!("claim {} contains \"{v}\"", self.claim),
            (None, Some(p)) => format!("claim {} has a value starting with \"{p}\"", self.claim),
            (None, None) => format!("claim {} is present", self.claim),
        };
        let from = self
            .provider
            .as_ref()
            .map_or(String::new(), |p| format!(" (provider {p})"));
        let mut then = vec![];
        if let Some(g) = &self.group {
            then.push(format!("group {g}"));
        }
        if let Some(r) = self.role {
            then.push(format!("role {r}"));
        }
        format!("if {cond}{from} then {}", then.join(" and "))
    }
}

/// The algorithms accepted when a provider names none.
pub(crate) const DEFAULT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl OidcConfig {
    /// Checks what can be checked without the network: ids, URLs, rules. The message names
    /// the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.providers.is_empty() {
            return Ok(());
        }
        let public = self
            .public_url
            .as_deref()
            .ok_or("oidc.public_url is needed for single sign-on (the redirect URIs)")?;
        let parsed = reqwest::Url::parse(public)
            .map_err(|e| format!("oidc.public_url is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("oidc.public_url must be http(s)".into());
        }
        for (id, p) in &self.providers {
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!(
                    "oidc.providers.{id}: provider ids are 1-32 of a-z, 0-9 and -"
                ));
            }
            let issuer = reqwest::Url::parse(&p.issuer)
                .map_err(|e| format!("oidc.providers.{id}.issuer is not a URL: {e}"))?;
            if issuer.scheme() != "https" && !is_loopback(&issuer) {
                return Err(format!(
                    "oidc.providers.{id}.issuer must be https (http only on loopback)"
                ));
            }
            if p.client_secret.is_some() && p.client_secret_file.is_some() {
                return Err(format!(
                    "oidc.providers.{id}: client_secret and client_secret_file both set"
                ));
            }
            for alg in p.algorithms.iter().flatten() {
                if !DEFAULT_ALGORITHMS.contains(&alg.as_str()) {
                    return Err(format!(
                        "oidc.providers.{id}.algorithms: {alg} is not accepted (one of {})",
                        DEFAULT_ALGORITHMS.join(", ")
                    ));
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            let n = i + 1;
            if r.group.is_none() && r.role.is_none() {
                return Err(format!("oidc.rules[{n}] gives neither a group nor a role"));
            }
            if let Some(g) = &r.group {
                validate_group_name(g).map_err(|e| format!("oidc.rules[{n}]: {e}"))?;
            }
            if r.value.is_some() && r.value_prefix.is_some() {
                return Err(format!("oidc.rules[{n}] has both value and value_prefix"));
            }
            if let Some(p) = &r.provider
                && !self.providers.contains_key(p)
            {
                return Err(format!("oidc.rules[{n}] names an unknown provider {p}"));
            }
        }
        Ok(())
    }

    pub(crate) fn clock_skew(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.clock_skew_secs.unwrap_or(60))
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
        Some(openidconnect::url::Host::Ipv4(a)) => a.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config file is TOML; the same shape as JSON keeps this crate free of a TOML parser.
    fn parse(json: &str) -> OidcConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validates_ids_urls_and_rules() {
        let ok = parse(
            r#"{"public_url": "https://vdi.example.org",
                "providers": {"uni": {"display_name": "Uni", "issuer": "https://id.example.org/realms/x",
                                      "client_id": "osvdi", "client_secret": "s"}},
                "rules": [{"claim": "groups", "value": "/imaging", "group": "imaging"},
                          {"provider": "uni", "claim": "realm_access.roles", "value": "vdi-admin", "role": "admin"}]}"#,
        );
        ok.validate().unwrap();
        assert!(!format!("{:?}", ok.providers["uni"]).contains("\"s\""));

        let mut bad = ok.clone();
        bad.public_url = None;
        assert!(bad.validate().unwrap_err().contains("public_url"));
        let mut bad = ok.clone();
        bad.providers.get_mut("uni").unwrap().issuer = "http://id.example.org".into();
        assert!(bad.validate().unwrap_err().contains("https"));
        let mut bad = ok.clone();
        bad.providers.get_mut("uni").unwrap().algorithms = Some(vec!["HS256".into()]);
        assert!(bad.validate().unwrap_err().contains("HS256"));
        let mut bad = ok.clone();
        bad.rules[0].group = Some("Not A Group".into());
        assert!(bad.validate().unwrap_err().contains("rules[1]"));
        let mut bad = ok.clone();
        bad.rules[1].provider = Some("other".into());
        assert!(bad.validate().unwrap_err().contains("unknown provider"));
        let mut bad = ok;
        bad.providers
            .insert("Bad_Id".into(), bad.providers["uni"].clone());
        assert!(bad.validate().unwrap_err().contains("Bad_Id"));
    }

    /// The README's examples (Keycloak, EGI Check-in) parse and pass the checks.
    #[test]
    fn the_readme_examples_are_valid() {
        #[derive(Deserialize)]
        struct File {
            oidc: OidcConfig,
        }
        let readme = include_str!("../../../../README.md");
        let section = readme
            .split("### Single sign-on (OpenID Connect)")
            .nth(1)
            .expect("the README has the section");
        // Up to the next heading (TOML comments also start with "#", headings with "## ").
        let end = ["\n## ", "\n### "]
            .iter()
            .filter_map(|h| section.find(h))
            .min()
            .unwrap_or(section.len());
        let section = &section[..end];
        let blocks: Vec<&str> = section
            .split("```toml\n")
            .skip(1)
            .map(|b| b.split("```").next().unwrap_or(""))
            .collect();
        assert!(!blocks.is_empty());
        for block in blocks {
            let file: File = toml::from_str(block).unwrap();
            file.oidc.validate().unwrap();
            assert!(file.oidc.providers.contains_key("egi"));
            assert!(file.oidc.rules.iter().any(|r| r.value.as_deref()
                == Some("urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu")));
        }
    }

    #[test]
    fn rules_describe_themselves() {
        let r = MappingRule {
            provider: Some("egi".into()),
            claim: "eduperson_entitlement".into(),
            value: None,
            value_prefix: Some("urn:mace:egi.eu:group:vo.example.org:".into()),
            group: Some("vo-example".into()),
            role: Some(Role::Steward),
        };
        assert_eq!(
            r.describe(),
            "if claim eduperson_entitlement has a value starting with \
             \"urn:mace:egi.eu:group:vo.example.org:\" (provider egi) then group vo-example and role steward"
        );
    }
}
