//! Placement (1.14): resource providers (compute nodes and their nested GPU providers),
//! inventories, usages, traits and a server's allocations, turned into the scheduler's hosts.

use std::collections::{BTreeMap, HashMap};

use osvdi_compute::{GpuCapacity, HostCapacity};
use reqwest::Method;
use serde::Deserialize;

use crate::OsError;
use crate::client::{Service, Session};

#[derive(Debug, Clone, Deserialize)]
pub struct Provider {
    pub uuid: String,
    pub name: String,
    #[serde(default)]
    pub parent_provider_uuid: Option<String>,
    #[serde(default)]
    pub root_provider_uuid: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Inventory {
    pub total: u64,
    #[serde(default)]
    pub reserved: u64,
    #[serde(default = "one")]
    pub allocation_ratio: f64,
}

fn one() -> f64 {
    1.0
}

impl Inventory {
    /// What can be allocated: (total − reserved) × ratio.
    pub fn capacity(&self) -> u64 {
        let free = self.total.saturating_sub(self.reserved) as f64;
        (free * self.allocation_ratio).floor() as u64
    }
}

/// Everything osvdi reads about one provider.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub provider: Provider,
    pub inventories: BTreeMap<String, Inventory>,
    pub usages: BTreeMap<String, u64>,
    pub traits: Vec<String>,
}

pub async fn providers(s: &Session) -> Result<Vec<Provider>, OsError> {
    #[derive(Deserialize)]
    struct Body {
        resource_providers: Vec<Provider>,
    }
    let b: Body = s
        .json(Service::Placement, Method::GET, "/resource_providers", None)
        .await?;
    Ok(b.resource_providers)
}

pub async fn provider_state(s: &Session, p: Provider) -> Result<ProviderState, OsError> {
    #[derive(Deserialize)]
    struct Inv {
        inventories: BTreeMap<String, Inventory>,
    }
    #[derive(Deserialize)]
    struct Use {
        usages: BTreeMap<String, u64>,
    }
    #[derive(Deserialize)]
    struct Traits {
        traits: Vec<String>,
    }
    let base = format!("/resource_providers/{}", p.uuid);
    let inv: Inv = s
        .json(
            Service::Placement,
            Method::GET,
            &format!("{base}/inventories"),
            None,
        )
        .await?;
    let usage: Use = s
        .json(
            Service::Placement,
            Method::GET,
            &format!("{base}/usages"),
            None,
        )
        .await?;
    let traits: Traits = s
        .json(
            Service::Placement,
            Method::GET,
            &format!("{base}/traits"),
            None,
        )
        .await?;
    Ok(ProviderState {
        provider: p,
        inventories: inv.inventories,
        usages: usage.usages,
        traits: traits.traits,
    })
}

/// Every provider with its state.
pub async fn read_all(s: &Session) -> Result<Vec<ProviderState>, OsError> {
    let mut out = vec![];
    for p in providers(s).await? {
        out.push(provider_state(s, p).await?);
    }
    Ok(out)
}

/// A consumer's (server's) allocations: provider UUID → resource class → amount.
pub type Allocations = BTreeMap<String, BTreeMap<String, u64>>;

pub async fn allocations(s: &Session, consumer: &str) -> Result<Allocations, OsError> {
    #[derive(Deserialize)]
    struct Body {
        allocations: BTreeMap<String, Resources>,
    }
    #[derive(Deserialize)]
    struct Resources {
        resources: BTreeMap<String, u64>,
    }
    let b: Body = s
        .json(
            Service::Placement,
            Method::GET,
            &format!("/allocations/{consumer}"),
            None,
        )
        .await?;
    Ok(b.allocations
        .into_iter()
        .map(|(rp, r)| (rp, r.resources))
        .collect())
}

/// The vGPU type a GPU provider offers: its first `CUSTOM_` trait, or `VGPU`.
fn vgpu_type(traits: &[String]) -> String {
    traits
        .iter()
        .filter(|t| t.starts_with("CUSTOM_"))
        .min()
        .cloned()
        .unwrap_or_else(|| "VGPU".into())
}

/// Where an allocation landed in the host model: host name and GPU index.
pub type Landing = (String, Option<usize>);

/// The scheduler's hosts from the providers: each root provider with VCPU / MEMORY_MB /
/// DISK_GB is a host, each provider below it with VGPU a GPU. What others use (usage not
/// in `ours`, the allocations of osvdi's servers) is taken off the room.
pub fn hosts(
    providers: &[ProviderState],
    ours: &HashMap<String, Allocations>,
) -> (Vec<HostCapacity>, HashMap<String, Landing>) {
    let mut our_use: HashMap<&str, BTreeMap<&str, u64>> = HashMap::new();
    for alloc in ours.values() {
        for (rp, res) in alloc {
            let e = our_use.entry(rp.as_str()).or_default();
            for (class, n) in res {
                *e.entry(class.as_str()).or_default() += n;
            }
        }
    }
    let room = |p: &ProviderState, class: &str| -> u64 {
        let Some(inv) = p.inventories.get(class) else {
            return 0;
        };
        let used = p.usages.get(class).copied().unwrap_or(0);
        let mine = our_use
            .get(p.provider.uuid.as_str())
            .and_then(|m| m.get(class))
            .copied()
            .unwrap_or(0);
        inv.capacity().saturating_sub(used.saturating_sub(mine))
    };
    let root_of = |p: &ProviderState| {
        p.provider
            .root_provider_uuid
            .clone()
            .unwrap_or_else(|| p.provider.uuid.clone())
    };
    let mut roots: Vec<&ProviderState> = providers
        .iter()
        .filter(|p| p.provider.parent_provider_uuid.is_none())
        .filter(|p| p.inventories.contains_key("VCPU"))
        .collect();
    roots.sort_by(|a, b| a.provider.name.cmp(&b.provider.name));
    let mut out = vec![];
    // Provider UUID → (host name, GPU index).
    let mut where_is: HashMap<&str, Landing> = HashMap::new();
    for r in roots {
        let mut gpus_of: Vec<&ProviderState> = providers
            .iter()
            .filter(|p| p.provider.uuid != r.provider.uuid && root_of(p) == r.provider.uuid)
            .filter(|p| p.inventories.contains_key("VGPU"))
            .collect();
        gpus_of.sort_by(|a, b| a.provider.name.cmp(&b.provider.name));
        let name = r.provider.name.clone();
        where_is.insert(r.provider.uuid.as_str(), (name.clone(), None));
        let mut gpus = vec![];
        for g in gpus_of {
            where_is.insert(g.provider.uuid.as_str(), (name.clone(), Some(gpus.len())));
            gpus.push(GpuCapacity {
                vgpu_type: vgpu_type(&g.traits),
                instances: u32::try_from(room(g, "VGPU")).unwrap_or(u32::MAX),
            });
        }
        out.push(HostCapacity {
            name,
            vcpus: u32::try_from(room(r, "VCPU")).unwrap_or(u32::MAX),
            memory_mb: room(r, "MEMORY_MB"),
            // Hosts on shared storage have no DISK_GB: disk is then no limit here.
            disk_gb: if r.inventories.contains_key("DISK_GB") {
                room(r, "DISK_GB")
            } else {
                1 << 40
            },
            gpus,
        });
    }
    let mut landed = HashMap::new();
    for (consumer, alloc) in ours {
        let mut host = None;
        let mut gpu = None;
        for (rp, res) in alloc {
            if let Some((h, g)) = where_is.get(rp.as_str()) {
                host = Some(h.clone());
                if res.contains_key("VGPU") && g.is_some() {
                    gpu = *g;
                }
            }
        }
        if let Some(h) = host {
            landed.insert(consumer.clone(), (h, gpu));
        }
    }
    (out, landed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(
        uuid: &str,
        name: &str,
        parent: Option<&str>,
        inv: &[(&str, u64, u64)],
        traits: &[&str],
    ) -> ProviderState {
        ProviderState {
            provider: Provider {
                uuid: uuid.into(),
                name: name.into(),
                parent_provider_uuid: parent.map(str::to_owned),
                root_provider_uuid: Some(parent.unwrap_or(uuid).to_owned()),
            },
            inventories: inv
                .iter()
                .map(|(c, total, _)| {
                    (
                        (*c).to_owned(),
                        Inventory {
                            total: *total,
                            reserved: 0,
                            allocation_ratio: 1.0,
                        },
                    )
                })
                .collect(),
            usages: inv.iter().map(|(c, _, u)| ((*c).to_owned(), *u)).collect(),
            traits: traits.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn nested_gpu_providers_become_gpus() {
        // The test bed's layout: a compute node with two pGPU children.
        let providers = vec![
            state(
                "r",
                "compute1",
                None,
                &[
                    ("VCPU", 16, 4),
                    ("MEMORY_MB", 32768, 4096),
                    ("DISK_GB", 100, 2),
                ],
                &["COMPUTE_NODE"],
            ),
            state(
                "g1",
                "compute1_pci_0000_82_00_0",
                Some("r"),
                &[("VGPU", 4, 0)],
                &["CUSTOM_VGPU_TYPE_Y", "OWNER_NOVA"],
            ),
            state(
                "g0",
                "compute1_pci_0000_81_00_0",
                Some("r"),
                &[("VGPU", 8, 1)],
                &["CUSTOM_VGPU_TYPE_X", "OWNER_NOVA"],
            ),
            state(
                "other",
                "no-gpu",
                None,
                &[("VCPU", 8, 0), ("MEMORY_MB", 8192, 0)],
                &[],
            ),
        ];
        // Our one server holds 2 VCPU, 2048 MB, 1 GB and the VGPU on g0; the rest is others'.
        let ours = HashMap::from([(
            "server-1".to_owned(),
            BTreeMap::from([
                (
                    "r".to_owned(),
                    BTreeMap::from([
                        ("VCPU".to_owned(), 2),
                        ("MEMORY_MB".to_owned(), 2048),
                        ("DISK_GB".to_owned(), 1),
                    ]),
                ),
                ("g0".to_owned(), BTreeMap::from([("VGPU".to_owned(), 1)])),
            ]),
        )]);
        let (hosts, landed) = hosts(&providers, &ours);
        assert_eq!(hosts.len(), 2);
        let h = &hosts[0];
        assert_eq!(h.name, "compute1");
        assert_eq!((h.vcpus, h.memory_mb, h.disk_gb), (14, 30720, 99));
        assert_eq!(
            h.gpus,
            [
                GpuCapacity {
                    vgpu_type: "CUSTOM_VGPU_TYPE_X".into(),
                    instances: 8
                },
                GpuCapacity {
                    vgpu_type: "CUSTOM_VGPU_TYPE_Y".into(),
                    instances: 4
                }
            ]
        );
        assert_eq!(hosts[1].name, "no-gpu");
        assert_eq!(landed["server-1"], ("compute1".to_owned(), Some(0)));
    }

    #[test]
    fn capacity_counts_reserved_and_ratio() {
        let inv = Inventory {
            total: 16,
            reserved: 2,
            allocation_ratio: 4.0,
        };
        assert_eq!(inv.capacity(), 56);
        let parsed: Inventory =
            serde_json::from_str(r#"{"total": 8, "max_unit": 8, "min_unit": 1, "step_size": 1}"#)
                .unwrap();
        assert_eq!(parsed.capacity(), 8);
    }
}
