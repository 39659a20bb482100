//! Nova (compute 2.79): servers, their actions and faults, flavors, remote consoles.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::OsError;
use crate::client::{Service, Session};
use crate::config::Network;

/// A server as Nova shows it (the fields osvdi reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Admins only.
    #[serde(rename = "OS-EXT-SRV-ATTR:host", default)]
    pub host: Option<String>,
    #[serde(rename = "OS-SRV-USG:launched_at", default)]
    pub launched_at: Option<String>,
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: u16,
}

impl Server {
    /// The desktop this server is, if osvdi made it.
    pub fn desktop_id(&self) -> Option<&str> {
        self.metadata.get(META_DESKTOP).map(String::as_str)
    }

    /// Why the server is in ERROR, as a person should read it.
    pub fn failure(&self) -> OsError {
        let message = self
            .fault
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| "the server went into ERROR".into());
        if message.contains("No valid host") {
            OsError::NoCapacity(
                "the cloud has no host with room for this desktop (Nova: No valid host)".into(),
            )
        } else {
            OsError::Failed(format!("Nova: {message}"))
        }
    }
}

/// Metadata keys osvdi writes on its servers.
pub const META_DESKTOP: &str = "osvdi_desktop_id";
pub const META_READY: &str = "osvdi_ready";
pub const META_TEMPLATE: &str = "osvdi_template_id";

#[derive(Debug, Deserialize)]
struct ServerBody {
    server: Server,
}

#[derive(Debug, Deserialize)]
struct ServerList {
    servers: Vec<Server>,
}

#[derive(Debug, Deserialize)]
struct Created {
    server: CreatedServer,
}

#[derive(Debug, Deserialize)]
struct CreatedServer {
    id: String,
}

/// What a new server is made of.
#[derive(Debug, Clone)]
pub struct NewServer {
    pub name: String,
    pub image: String,
    pub flavor: String,
    pub network: Network,
    pub availability_zone: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// A compute node, `hypervisor_hostname` (2.74; Nova's policy asks for the admin role).
    pub host: Option<String>,
}

impl NewServer {
    fn body(&self) -> Value {
        let networks = match &self.network {
            Network::None => json!("none"),
            Network::Auto => json!("auto"),
            Network::Uuid(u) => json!([{"uuid": u}]),
        };
        let mut server = json!({
            "name": self.name,
            "imageRef": self.image,
            "flavorRef": self.flavor,
            "networks": networks,
            "metadata": self.metadata,
        });
        if let Some(az) = &self.availability_zone {
            server["availability_zone"] = json!(az);
        }
        if let Some(h) = &self.host {
            server["hypervisor_hostname"] = json!(h);
        }
        json!({ "server": server })
    }
}

pub async fn create(s: &Session, new: &NewServer) -> Result<String, OsError> {
    let c: Created = s
        .json(
            Service::Compute,
            Method::POST,
            "/servers",
            Some(&new.body()),
        )
        .await?;
    Ok(c.server.id)
}

pub async fn get(s: &Session, id: &str) -> Result<Server, OsError> {
    let b: ServerBody = s
        .json(
            Service::Compute,
            Method::GET,
            &format!("/servers/{id}"),
            None,
        )
        .await?;
    Ok(b.server)
}

/// Servers whose name matches the regular expression `name` (Nova filters by regex).
pub async fn list(s: &Session, name: &str) -> Result<Vec<Server>, OsError> {
    let b: ServerList = s
        .json(
            Service::Compute,
            Method::GET,
            &format!("/servers/detail?name={name}&limit=1000"),
            None,
        )
        .await?;
    Ok(b.servers)
}

/// Servers booted from `image`.
pub async fn using_image(s: &Session, image: &str) -> Result<Vec<Server>, OsError> {
    let b: ServerList = s
        .json(
            Service::Compute,
            Method::GET,
            &format!("/servers/detail?image={image}"),
            None,
        )
        .await?;
    Ok(b.servers)
}

/// `POST /servers/{id}/action` with `{name: arg}`.
pub async fn action(s: &Session, id: &str, name: &str, arg: Value) -> Result<(), OsError> {
    s.call(
        Service::Compute,
        Method::POST,
        &format!("/servers/{id}/action"),
        Some(&json!({ name: arg })),
    )
    .await
}

pub async fn console_output(s: &Session, id: &str, lines: u32) -> Result<String, OsError> {
    #[derive(Deserialize)]
    struct Output {
        output: String,
    }
    let o: Output = s
        .json(
            Service::Compute,
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(&json!({"os-getConsoleOutput": {"length": lines}})),
        )
        .await?;
    Ok(o.output)
}

pub async fn delete(s: &Session, id: &str) -> Result<(), OsError> {
    match s
        .call(
            Service::Compute,
            Method::DELETE,
            &format!("/servers/{id}"),
            None,
        )
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

/// A noVNC console URL of the server's proxy (`POST /servers/{id}/remote-consoles`, 2.6).
pub async fn vnc_console(s: &Session, id: &str) -> Result<String, OsError> {
    #[derive(Deserialize)]
    struct Body {
        remote_console: Console,
    }
    #[derive(Deserialize)]
    struct Console {
        url: String,
    }
    let b: Body = s
        .json(
            Service::Compute,
            Method::POST,
            &format!("/servers/{id}/remote-consoles"),
            Some(&json!({"remote_console": {"protocol": "vnc", "type": "novnc"}})),
        )
        .await?;
    Ok(b.remote_console.url)
}

/// A flavor with its extra specs (in the listing since 2.61).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram: u32,
    pub disk: u32,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct FlavorList {
    flavors: Vec<Flavor>,
}

pub async fn flavors(s: &Session) -> Result<Vec<Flavor>, OsError> {
    let b: FlavorList = s
        .json(Service::Compute, Method::GET, "/flavors/detail", None)
        .await?;
    Ok(b.flavors)
}

/// Creates a flavor with extra specs (admin).
pub async fn create_flavor(s: &Session, f: &FlavorShape) -> Result<Flavor, OsError> {
    #[derive(Deserialize)]
    struct Body {
        flavor: Flavor,
    }
    let body = json!({"flavor": {"name": f.name(), "vcpus": f.vcpus, "ram": f.memory_mb,
                                 "disk": f.disk_gb, "os-flavor-access:is_public": true}});
    let mut created: Body = s
        .json(Service::Compute, Method::POST, "/flavors", Some(&body))
        .await?;
    let specs = f.extra_specs();
    if !specs.is_empty() {
        s.call(
            Service::Compute,
            Method::POST,
            &format!("/flavors/{}/os-extra_specs", created.flavor.id),
            Some(&json!({ "extra_specs": specs })),
        )
        .await?;
        created.flavor.extra_specs = specs;
    }
    Ok(created.flavor)
}

/// The shape a desktop needs from a flavor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlavorShape {
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    /// The Placement trait of the vGPU type (`CUSTOM_...`), or `VGPU` for any vGPU.
    pub vgpu_trait: Option<String>,
}

impl FlavorShape {
    /// The name osvdi gives a flavor it creates: `osvdi-2c-4096m-20g[-custom_vgpu_x]`.
    pub fn name(&self) -> String {
        let mut n = format!(
            "osvdi-{}c-{}m-{}g",
            self.vcpus, self.memory_mb, self.disk_gb
        );
        if let Some(t) = &self.vgpu_trait {
            n.push('-');
            n.push_str(&t.to_ascii_lowercase());
        }
        n
    }

    /// One VGPU from one provider with the type's trait (a granular request group).
    pub fn extra_specs(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if let Some(t) = &self.vgpu_trait {
            m.insert("resources1:VGPU".into(), "1".into());
            if t != "VGPU" {
                m.insert(format!("trait1:{t}"), "required".into());
            }
        }
        m
    }

    /// Whether `f` gives exactly this shape (any disk at least as large), vGPU and trait
    /// included, in either the plain (`resources:VGPU`) or the granular form.
    pub fn matches(&self, f: &Flavor) -> bool {
        if f.vcpus != self.vcpus || f.ram != self.memory_mb || f.disk < self.disk_gb {
            return false;
        }
        let vgpu_groups: Vec<&str> = f
            .extra_specs
            .iter()
            .filter(|(k, v)| {
                k.starts_with("resources") && k.ends_with(":VGPU") && v.as_str() == "1"
            })
            .map(|(k, _)| &k["resources".len()..k.len() - ":VGPU".len()])
            .collect();
        match &self.vgpu_trait {
            None => vgpu_groups.is_empty(),
            Some(t) if t == "VGPU" => vgpu_groups.len() == 1,
            Some(t) => {
                vgpu_groups.len() == 1
                    && f.extra_specs.get(&format!("trait{}:{t}", vgpu_groups[0]))
                        == Some(&"required".to_owned())
            }
        }
    }
}

/// The flavor for `shape`: the smallest-disk one that matches.
pub fn pick_flavor<'a>(flavors: &'a [Flavor], shape: &FlavorShape) -> Option<&'a Flavor> {
    flavors
        .iter()
        .filter(|f| shape.matches(f))
        .min_by_key(|f| (f.disk, f.name.clone()))
}

/// The Placement trait of an mdev type name as a template writes it: `CUSTOM_` names are
/// kept, `VGPU` means any vGPU, others become `CUSTOM_` + upper case with `_` for the rest
/// (`nvidia-35` → `CUSTOM_NVIDIA_35`).
pub fn vgpu_trait(vgpu_type: &str) -> String {
    if vgpu_type.starts_with("CUSTOM_") || vgpu_type == "VGPU" {
        return vgpu_type.to_owned();
    }
    let body: String = vgpu_type
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CUSTOM_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flavor(name: &str, vcpus: u32, ram: u32, disk: u32, specs: &[(&str, &str)]) -> Flavor {
        Flavor {
            id: name.into(),
            name: name.into(),
            vcpus,
            ram,
            disk,
            extra_specs: specs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn flavors_match_shape_and_vgpu_trait() {
        let flavors = [
            flavor("m1.small", 2, 2048, 20, &[]),
            flavor("m1.small-big", 2, 2048, 40, &[]),
            flavor(
                "vdi.vgpu-x",
                2,
                2048,
                20,
                &[
                    ("resources1:VGPU", "1"),
                    ("trait1:CUSTOM_VGPU_TYPE_X", "required"),
                ],
            ),
            flavor(
                "plain-vgpu-y",
                2,
                2048,
                20,
                &[
                    ("resources:VGPU", "1"),
                    ("trait:CUSTOM_VGPU_TYPE_Y", "required"),
                ],
            ),
        ];
        let shape = |t: Option<&str>, disk| FlavorShape {
            vcpus: 2,
            memory_mb: 2048,
            disk_gb: disk,
            vgpu_trait: t.map(str::to_owned),
        };
        let pick = |s: FlavorShape| pick_flavor(&flavors, &s).map(|f| f.name.as_str());
        assert_eq!(
            pick(shape(None, 10)),
            Some("m1.small"),
            "smallest disk that fits"
        );
        assert_eq!(pick(shape(None, 30)), Some("m1.small-big"));
        assert_eq!(pick(shape(None, 50)), None);
        assert_eq!(
            pick(shape(Some("CUSTOM_VGPU_TYPE_X"), 20)),
            Some("vdi.vgpu-x")
        );
        assert_eq!(
            pick(shape(Some("CUSTOM_VGPU_TYPE_Y"), 20)),
            Some("plain-vgpu-y")
        );
        assert_eq!(pick(shape(Some("CUSTOM_VGPU_TYPE_Z"), 20)), None);
    }

    #[test]
    fn created_flavors_match_their_shape() {
        let s = FlavorShape {
            vcpus: 1,
            memory_mb: 512,
            disk_gb: 1,
            vgpu_trait: Some(vgpu_trait("nvidia-35")),
        };
        assert_eq!(s.name(), "osvdi-1c-512m-1g-custom_nvidia_35");
        let f = Flavor {
            id: "x".into(),
            name: s.name(),
            vcpus: 1,
            ram: 512,
            disk: 1,
            extra_specs: s.extra_specs(),
        };
        assert!(s.matches(&f));
        assert_eq!(vgpu_trait("CUSTOM_VGPU_TYPE_X"), "CUSTOM_VGPU_TYPE_X");
        assert_eq!(vgpu_trait("i915-GVTg_V5_4"), "CUSTOM_I915_GVTG_V5_4");
    }

    #[test]
    fn no_valid_host_is_no_capacity() {
        let s: Server = serde_json::from_str(
            r#"{"id": "s", "name": "osvdi-x", "status": "ERROR", "metadata": {"osvdi_desktop_id": "d"},
                "fault": {"code": 500, "created": "2026-11-21T09:00:00Z", "message": "No valid host was found. There are not enough hosts available."}}"#,
        )
        .unwrap();
        assert_eq!(s.desktop_id(), Some("d"));
        assert!(matches!(s.failure(), OsError::NoCapacity(_)));
        let body = NewServer {
            name: "osvdi-d".into(),
            image: "i".into(),
            flavor: "f".into(),
            network: Network::None,
            availability_zone: Some("nova".into()),
            metadata: BTreeMap::new(),
            host: None,
        }
        .body();
        assert_eq!(body["server"]["networks"], "none");
        assert_eq!(body["server"]["availability_zone"], "nova");
        assert!(body["server"].get("hypervisor_hostname").is_none());
    }
}
