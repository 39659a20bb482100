//! The configuration file and how it combines with command-line options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ipnet::IpNet;
use osvdi_core::{CoreConfig, ImageLimits, LoginLimits};
use osvdi_store::Store;
use serde::Deserialize;

use crate::SiteArgs;

/// The TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub session_ttl_hours: Option<u64>,
    /// Set when users reach osvdi over HTTPS (directly or through a proxy).
    pub secure_cookies: Option<bool>,
    /// Reverse proxies whose X-Forwarded-For is believed (CIDR list).
    pub trusted_proxies: Option<Vec<IpNet>>,
    /// Networks that may read /metrics without logging in (CIDR list).
    pub metrics_networks: Option<Vec<IpNet>>,
    pub qemu_img: Option<PathBuf>,
    #[serde(default)]
    pub login_limits: LoginLimitsFile,
    #[serde(default)]
    pub images: ImagesFile,
    #[serde(default)]
    pub desktops: DesktopsFile,
    #[serde(default)]
    pub display: DisplayFile,
    /// Named client networks for template policies: `campus = ["10.0.0.0/8", "2001:db8::/32"]`.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, Vec<IpNet>>,
    /// Single sign-on: `[oidc]` with `public_url`, `[oidc.providers.ID]` and `[[oidc.rules]]`.
    pub oidc: Option<osvdi_core::OidcConfig>,
    /// The cloud of `desktops.backend = "openstack"`: Keystone, credentials, flavors...
    pub openstack: Option<osvdi_openstack::OpenStackFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DesktopsFile {
    /// `qemu` (default), `openstack` (the `[openstack]` section) or `none`.
    pub backend: Option<String>,
    /// `auto` (default: KVM if a probe VM boots, else TCG), `kvm` or `tcg`.
    pub accel: Option<String>,
    /// Live desktops one person may have at once.
    pub max_per_user: Option<u32>,
    /// Seconds a desktop may take to become ready.
    pub boot_timeout_secs: Option<u64>,
    /// Where sysfs is, for the mdev inventory (default /sys).
    pub sysfs_root: Option<PathBuf>,
    /// The host's capacity as the scheduler counts it.
    pub host_vcpus: Option<u32>,
    pub host_memory_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisplayFile {
    /// The H.264 encoder of the browser stream: `auto` (default: NVENC, then libx264 where this
    /// build has them — cargo feature `ffmpeg` —, else openh264), `openh264`, `x264`, `nvenc`.
    pub encoder: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginLimitsFile {
    pub per_user: Option<u32>,
    pub per_address: Option<u32>,
    pub window_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImagesFile {
    /// Largest image file accepted, in GiB.
    pub max_file_gb: Option<u64>,
    /// Largest virtual disk accepted, in GiB.
    pub max_virtual_gb: Option<u64>,
}

/// The resolved settings of a site.
#[derive(Debug)]
pub(crate) struct Site {
    pub file: FileConfig,
    pub data_dir: PathBuf,
    pub database_url: String,
}

impl Site {
    pub(crate) fn resolve(args: &SiteArgs) -> anyhow::Result<Site> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("data"));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .context("cannot resolve the data directory")?;
        let database_url = match args
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
        {
            Some(url) => url,
            None => Store::sqlite_url(&data_dir.join("osvdi.db")),
        };
        Ok(Site {
            file,
            data_dir,
            database_url,
        })
    }

    pub(crate) fn core_config(&self) -> CoreConfig {
        let mut c = CoreConfig::new(self.data_dir.clone());
        let f = &self.file;
        if let Some(h) = f.session_ttl_hours {
            c.session_ttl = Duration::from_secs(h * 3600);
        }
        let d = LoginLimits::default();
        c.login_limits = LoginLimits {
            per_user: f.login_limits.per_user.unwrap_or(d.per_user),
            per_address: f.login_limits.per_address.unwrap_or(d.per_address),
            window: f
                .login_limits
                .window_secs
                .map_or(d.window, Duration::from_secs),
        };
        let gib = |g: u64| g.saturating_mul(1 << 30);
        c.image_limits = ImageLimits {
            max_file_bytes: f
                .images
                .max_file_gb
                .map_or(c.image_limits.max_file_bytes, gib),
            max_virtual_bytes: f
                .images
                .max_virtual_gb
                .map_or(c.image_limits.max_virtual_bytes, gib),
        };
        c.qemu_img = f.qemu_img.clone();
        if let Some(n) = f.desktops.max_per_user {
            c.max_desktops_per_user = n;
        }
        if let Some(s) = f.desktops.boot_timeout_secs {
            c.boot_timeout = Duration::from_secs(s);
        }
        if let Some(root) = &f.desktops.sysfs_root {
            c.sysfs_root = root.clone();
        }
        c.networks = f.networks.clone();
        c.oidc = f.oidc.clone().unwrap_or_default();
        if let Some(v) = f.desktops.host_vcpus {
            c.host_vcpus = v;
        }
        if let Some(m) = f.desktops.host_memory_mb {
            c.host_memory_mb = m;
        }
        c
    }

    /// Opens the database (running migrations) and builds the core.
    pub(crate) async fn open_core(&self) -> anyhow::Result<osvdi_core::Core> {
        // The URL may hold a password: it is never printed.
        let store = Store::open(&self.database_url)
            .await
            .context("cannot open the database")?;
        let core = osvdi_core::Core::new(
            store,
            self.core_config(),
            std::sync::Arc::new(osvdi_core::SystemClock),
        )?;
        Ok(core)
    }
}

fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_refuses_unknown_keys() {
        let f: FileConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:8443"
            session_ttl_hours = 8
            trusted_proxies = ["10.0.0.0/8"]
            [login_limits]
            per_user = 3
            [images]
            max_file_gb = 10
            "#,
        )
        .unwrap();
        assert_eq!(f.session_ttl_hours, Some(8));
        assert_eq!(f.login_limits.per_user, Some(3));
        assert!(toml::from_str::<FileConfig>("listne = \"x\"").is_err());
    }
}
