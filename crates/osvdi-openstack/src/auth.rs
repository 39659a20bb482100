//! Keystone v3: the token request for a password or an application credential, the token's
//! catalogue and expiry. Pure: the HTTP call is in `client.rs`.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Credentials, Interface};
use crate::{OsError, Secret};

/// The body of `POST /v3/auth/tokens`.
pub(crate) fn token_request(c: &Credentials) -> serde_json::Value {
    match c {
        Credentials::ApplicationCredential { id, secret } => json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret.expose()}}}}),
        Credentials::Password {
            username,
            password,
            user_domain,
            project,
            project_domain,
        } => json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": user_domain}, "password": password.expose()}}},
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}}}}),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenBody {
    pub token: TokenInfo,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenInfo {
    pub expires_at: String,
    #[serde(default)]
    pub issued_at: Option<String>,
    #[serde(default)]
    pub catalog: Vec<CatalogEntry>,
    #[serde(default)]
    pub project: Option<Named>,
    #[serde(default)]
    pub user: Option<Named>,
    #[serde(default)]
    pub roles: Vec<Named>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Named {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogEntry {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Endpoint {
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

/// A Keystone token with what came with it.
#[derive(Debug)]
pub struct Token {
    pub(crate) value: Secret,
    pub(crate) issued_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) catalog: Vec<CatalogEntry>,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
}

impl Token {
    pub(crate) fn parse(value: String, body: TokenBody, now: Timestamp) -> Result<Token, OsError> {
        let t = body.token;
        let expires_at = parse_time(&t.expires_at)?;
        let issued_at = match &t.issued_at {
            Some(s) => parse_time(s)?,
            None => now,
        };
        Ok(Token {
            value: Secret::new(value),
            issued_at,
            expires_at,
            catalog: t.catalog,
            project_id: t.project.map(|p| p.id),
            user_id: t.user.map(|u| u.id),
            roles: t.roles.into_iter().map(|r| r.name).collect(),
        })
    }

    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether to get a new token before using this one at `now`: in the last tenth of its
    /// life, and at least 30 s (at most 5 min) before it expires.
    pub fn needs_renewal(&self, now: Timestamp) -> bool {
        let life = self
            .expires_at
            .as_millisecond()
            .saturating_sub(self.issued_at.as_millisecond());
        let margin = (life / 10).clamp(30_000, 300_000);
        now.as_millisecond() >= self.expires_at.as_millisecond().saturating_sub(margin)
    }

    /// The URL of `service` (a catalogue type: `compute`, `image`, `placement`) for this
    /// interface and region.
    pub(crate) fn endpoint(
        &self,
        service: &'static str,
        interface: Interface,
        region: Option<&str>,
    ) -> Result<String, OsError> {
        self.catalog
            .iter()
            .filter(|e| e.kind == service)
            .flat_map(|e| e.endpoints.iter())
            .find(|e| {
                e.interface == interface.as_str()
                    && region.is_none_or(|r| {
                        e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r)
                    })
            })
            .map(|e| e.url.trim_end_matches('/').to_owned())
            .ok_or_else(|| OsError::NoEndpoint {
                service,
                interface: interface.as_str().to_owned(),
                region: region.map(|r| format!(" in {r}")).unwrap_or_default(),
            })
    }
}

fn parse_time(s: &str) -> Result<Timestamp, OsError> {
    // Keystone writes "2026-11-21T10:00:00.000000Z"; Nova sometimes drops the zone (UTC).
    let s = s.trim();
    let with_zone = if s.ends_with('Z') || s.contains('+') {
        s.to_owned()
    } else {
        format!("{s}Z")
    };
    with_zone.parse::<Timestamp>().map_err(|e| OsError::Decode {
        service: "keystone",
        message: format!("bad time '{s}': {e}"),
    })
}

/// A time as OpenStack writes it (UTC, with or without a zone).
pub(crate) fn parse_os_time(s: &str) -> Option<Timestamp> {
    parse_time(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token answer as Keystone 26 gives it (trimmed).
    const ANSWER: &str = r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "u1", "name": "osvdi", "password_expires_at": null},
      "audit_ids": ["x"], "expires_at": "2026-11-21T10:00:00.000000Z", "issued_at": "2026-11-21T09:00:00.000000Z",
      "project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "osvdi"}, "is_domain": false,
      "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
      "catalog": [
        {"endpoints": [{"id": "e1", "interface": "public", "region_id": "RegionOne", "url": "http://127.0.0.1:8774/v2.1/", "region": "RegionOne"},
                       {"id": "e2", "interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.1:8774/v2.1", "region": "RegionOne"},
                       {"id": "e3", "interface": "public", "region_id": "RegionTwo", "url": "http://two:8774/v2.1", "region": "RegionTwo"}],
         "id": "s1", "type": "compute", "name": "nova"},
        {"endpoints": [{"id": "e4", "interface": "public", "region_id": "RegionOne", "url": "http://127.0.0.1:8778", "region": "RegionOne"}],
         "id": "s2", "type": "placement", "name": "placement"}]}}"#;

    fn token() -> Token {
        let body: TokenBody = serde_json::from_str(ANSWER).unwrap();
        Token::parse("gAAAA".into(), body, Timestamp::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn catalogue_by_interface_and_region() {
        let t = token();
        assert_eq!(t.project_id.as_deref(), Some("p1"));
        assert_eq!(t.roles, ["member", "reader"]);
        let ep = |s, i, r| t.endpoint(s, i, r);
        assert_eq!(
            ep("compute", Interface::Public, Some("RegionOne")).unwrap(),
            "http://127.0.0.1:8774/v2.1"
        );
        assert_eq!(
            ep("compute", Interface::Internal, None).unwrap(),
            "http://10.0.0.1:8774/v2.1"
        );
        assert_eq!(
            ep("compute", Interface::Public, Some("RegionTwo")).unwrap(),
            "http://two:8774/v2.1"
        );
        let e = ep("image", Interface::Public, Some("RegionOne")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The catalogue has no public endpoint for image in RegionOne"
        );
        assert!(ep("placement", Interface::Admin, None).is_err());
    }

    #[test]
    fn renewal_before_expiry() {
        let t = token();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // One hour of life: renew in the last 6 minutes, capped at 5.
        assert!(!t.needs_renewal(at("2026-11-21T09:54:59Z")));
        assert!(t.needs_renewal(at("2026-11-21T09:55:00Z")));
        assert!(t.needs_renewal(at("2026-11-21T11:00:00Z")));
        // A 60 s token (the test bed's short expiry): renew 30 s before.
        let mut short = token();
        short.issued_at = at("2026-11-21T09:59:00Z");
        assert!(!short.needs_renewal(at("2026-11-21T09:59:29Z")));
        assert!(short.needs_renewal(at("2026-11-21T09:59:30Z")));
    }

    #[test]
    fn request_bodies() {
        let pw = Credentials::Password {
            username: "osvdi".into(),
            password: Secret::new("pw"),
            user_domain: "Default".into(),
            project: "osvdi".into(),
            project_domain: "Default".into(),
        };
        let b = token_request(&pw);
        assert_eq!(b["auth"]["identity"]["methods"][0], "password");
        assert_eq!(b["auth"]["scope"]["project"]["name"], "osvdi");
        assert_eq!(b["auth"]["identity"]["password"]["user"]["password"], "pw");
        let ac = Credentials::ApplicationCredential {
            id: "ac".into(),
            secret: Secret::new("s"),
        };
        let b = token_request(&ac);
        assert_eq!(b["auth"]["identity"]["application_credential"]["id"], "ac");
        assert!(
            b["auth"].get("scope").is_none(),
            "an application credential is scoped already"
        );
    }

    #[test]
    fn nova_times_without_zone() {
        assert_eq!(
            parse_os_time("2026-11-21T09:00:01.000000").unwrap(),
            "2026-11-21T09:00:01Z".parse::<Timestamp>().unwrap()
        );
    }
}
