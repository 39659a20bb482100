//! The `[openstack]` section of the config file: where the cloud is, who osvdi is there, and
//! how desktops map onto it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::OsError;

/// A password or secret: never printed, not even by `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which endpoint of the catalogue to use.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// How a desktop is suspended: Nova `suspend` (state kept on the host, the host stays
/// booked) or `shelve` (snapshot, the host is freed; resuming may land elsewhere).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SuspendMode {
    #[default]
    Suspend,
    Shelve,
}

/// Who osvdi is in Keystone: an application credential, or a user with a password scoped to
/// a project.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    ApplicationCredential {
        id: String,
        secret: Secret,
    },
    Password {
        username: String,
        password: Secret,
        user_domain: String,
        project: String,
        project_domain: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ApplicationCredential { id, .. } => {
                write!(f, "ApplicationCredential({id})")
            }
            Credentials::Password {
                username, project, ..
            } => write!(f, "Password({username} in {project})"),
        }
    }
}

/// The `[openstack]` section as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenStackFile {
    /// Keystone v3, e.g. `https://keystone.example.org:5000/v3`.
    pub auth_url: String,
    pub region: Option<String>,
    #[serde(default)]
    pub interface: Interface,
    pub application_credential_id: Option<String>,
    pub application_credential_secret: Option<Secret>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub user_domain: Option<String>,
    pub project: Option<String>,
    pub project_domain: Option<String>,
    /// An admin account (in the same cloud) for reading Placement, creating flavors and host
    /// hints. Without it osvdi reads Placement with its own credentials.
    pub admin_username: Option<String>,
    pub admin_password: Option<Secret>,
    pub admin_project: Option<String>,
    /// A network UUID, `auto`, or `none` (default): desktops reached only by console.
    pub network: Option<String>,
    pub availability_zone: Option<String>,
    /// Template name → flavor name. Templates not named here get a flavor that matches their
    /// shape (found, or created when `create_flavors`).
    #[serde(default)]
    pub flavors: BTreeMap<String, String>,
    /// Create `osvdi-...` flavors for shapes no flavor matches (needs the admin account).
    pub create_flavors: Option<bool>,
    #[serde(default)]
    pub suspend: SuspendMode,
    /// How long a server may take to become ACTIVE (default 300 s).
    pub active_timeout_secs: Option<u64>,
    /// Pass the scheduler's host to Nova (`hypervisor_hostname`, compute 2.74); osvdi's
    /// account then needs the admin role in its project.
    pub host_hints: Option<bool>,
}

/// The resolved settings of the OpenStack backend.
#[derive(Debug, Clone)]
pub struct OpenStackConfig {
    pub auth_url: String,
    pub region: Option<String>,
    pub interface: Interface,
    pub credentials: Credentials,
    pub admin: Option<Credentials>,
    pub network: Network,
    pub availability_zone: Option<String>,
    pub flavors: BTreeMap<String, String>,
    pub create_flavors: bool,
    pub suspend: SuspendMode,
    pub active_timeout: Duration,
    pub host_hints: bool,
}

/// Where desktops' network interfaces go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    None,
    Auto,
    Uuid(String),
}

impl Network {
    fn parse(s: Option<&str>) -> Self {
        match s {
            None | Some("none") => Network::None,
            Some("auto") => Network::Auto,
            Some(uuid) => Network::Uuid(uuid.to_owned()),
        }
    }
}

impl OpenStackFile {
    /// Checks the section and resolves defaults.
    pub fn resolve(self) -> Result<OpenStackConfig, OsError> {
        let bad = |m: &str| Err(OsError::Config(m.to_owned()));
        if !(self.auth_url.starts_with("http://") || self.auth_url.starts_with("https://")) {
            return bad("auth_url must be an http(s) URL of Keystone v3");
        }
        let credentials = match (
            self.application_credential_id,
            self.application_credential_secret,
            self.username,
            self.password,
        ) {
            (Some(id), Some(secret), None, None) => {
                Credentials::ApplicationCredential { id, secret }
            }
            (None, None, Some(username), Some(password)) => {
                let Some(project) = self.project else {
                    return bad("project is needed with username and password");
                };
                Credentials::Password {
                    username,
                    password,
                    user_domain: self.user_domain.unwrap_or_else(|| "Default".into()),
                    project,
                    project_domain: self
                        .project_domain
                        .clone()
                        .unwrap_or_else(|| "Default".into()),
                }
            }
            _ => {
                return bad(
                    "give either application_credential_id and application_credential_secret, \
                     or username and password (with project)",
                );
            }
        };
        let admin = match (self.admin_username, self.admin_password) {
            (Some(username), Some(password)) => Some(Credentials::Password {
                username,
                password,
                user_domain: "Default".into(),
                project: self.admin_project.unwrap_or_else(|| "admin".into()),
                project_domain: "Default".into(),
            }),
            (None, None) => None,
            _ => return bad("admin_username and admin_password go together"),
        };
        let create_flavors = self.create_flavors.unwrap_or(admin.is_some());
        Ok(OpenStackConfig {
            auth_url: self.auth_url.trim_end_matches('/').to_owned(),
            region: self.region,
            interface: self.interface,
            credentials,
            admin,
            network: Network::parse(self.network.as_deref()),
            availability_zone: self.availability_zone,
            flavors: self.flavors,
            create_flavors,
            suspend: self.suspend,
            active_timeout: Duration::from_secs(self.active_timeout_secs.unwrap_or(300)),
            host_hints: self.host_hints.unwrap_or(false),
        })
    }
}

impl OpenStackConfig {
    /// The settings from the usual `OS_*` variables (password or application credential),
    /// plus `OSVDI_OS_ADMIN_USERNAME`/`_PASSWORD`/`_PROJECT_NAME` for the admin account.
    /// `None` without
    /// `OS_AUTH_URL`.
    pub fn from_env() -> Option<Result<OpenStackConfig, OsError>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let auth_url = var("OS_AUTH_URL")?;
        let file = OpenStackFile {
            auth_url,
            region: var("OS_REGION_NAME"),
            interface: match var("OS_INTERFACE").as_deref() {
                Some("internal") => Interface::Internal,
                Some("admin") => Interface::Admin,
                _ => Interface::Public,
            },
            application_credential_id: None,
            application_credential_secret: None,
            username: var("OS_USERNAME"),
            password: var("OS_PASSWORD").map(Secret),
            user_domain: var("OS_USER_DOMAIN_NAME"),
            project: var("OS_PROJECT_NAME"),
            project_domain: var("OS_PROJECT_DOMAIN_NAME"),
            admin_username: var("OSVDI_OS_ADMIN_USERNAME"),
            admin_password: var("OSVDI_OS_ADMIN_PASSWORD").map(Secret),
            admin_project: var("OSVDI_OS_ADMIN_PROJECT_NAME"),
            network: var("OSVDI_OS_NETWORK"),
            availability_zone: None,
            flavors: BTreeMap::new(),
            create_flavors: None,
            suspend: SuspendMode::Suspend,
            active_timeout_secs: Some(120),
            host_hints: None,
        };
        Some(file.resolve())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<OpenStackConfig, OsError> {
        let file: OpenStackFile = serde_json::from_value(toml_like(toml_text)).unwrap();
        file.resolve()
    }

    /// `key = "value"` lines as a JSON object (enough for these tests).
    fn toml_like(text: &str) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').unwrap();
            let v = v.trim();
            let value = if v == "true" || v == "false" {
                serde_json::Value::Bool(v == "true")
            } else {
                serde_json::Value::String(v.trim_matches('"').to_owned())
            };
            m.insert(k.trim().to_owned(), value);
        }
        serde_json::Value::Object(m)
    }

    #[test]
    fn application_credential_or_password() {
        let c = parse(
            "auth_url = \"http://ks:5000/v3/\"\napplication_credential_id = \"abc\"\napplication_credential_secret = \"s3cret\"",
        )
        .unwrap();
        assert_eq!(c.auth_url, "http://ks:5000/v3");
        assert!(
            matches!(c.credentials, Credentials::ApplicationCredential { ref id, .. } if id == "abc")
        );
        assert_eq!(c.network, Network::None);
        assert!(!c.create_flavors, "no admin, no flavors of our own");
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets are not printed"
        );

        let c = parse(
            "auth_url = \"https://ks/v3\"\nusername = \"osvdi\"\npassword = \"pw\"\nproject = \"osvdi\"\nadmin_username = \"admin\"\nadmin_password = \"apw\"\nsuspend = \"shelve\"\nnetwork = \"auto\"",
        )
        .unwrap();
        assert!(
            matches!(c.credentials, Credentials::Password { ref user_domain, .. } if user_domain == "Default")
        );
        assert!(c.admin.is_some() && c.create_flavors);
        assert_eq!(c.suspend, SuspendMode::Shelve);
        assert_eq!(c.network, Network::Auto);
        assert!(!format!("{c:?}").contains("apw"));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e =
            parse("auth_url = \"ks:5000\"\nusername = \"u\"\npassword = \"p\"\nproject = \"x\"")
                .unwrap_err();
        assert!(e.to_string().contains("http(s) URL"), "{e}");
        let e =
            parse("auth_url = \"http://ks/v3\"\nusername = \"u\"\npassword = \"p\"").unwrap_err();
        assert!(e.to_string().contains("project is needed"), "{e}");
        let e = parse("auth_url = \"http://ks/v3\"\nusername = \"u\"").unwrap_err();
        assert!(
            e.to_string().contains("either application_credential_id"),
            "{e}"
        );
    }
}
