//! The scheduler's view of the world: hosts and their GPUs, the shape of a desktop asking for
//! room, and the allocations already made.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use osvdi_model::UnixMillis;

use crate::SlotRef;
use crate::error::SchedError;

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl $name {
            /// The key as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

key_type!(
    /// A compute host (a hypervisor, a Nova compute node). Hosts are ordered by this id, and
    /// every tie in placement is broken by it.
    HostId
);
key_type!(
    /// A desktop, as the broker names it (the text of `osvdi_model::DesktopId`).
    DesktopKey
);
key_type!(
    /// A template, as the broker names it (the text of `osvdi_model::TemplateId`).
    TemplateKey
);
key_type!(
    /// A group of people, as the broker names it (the text of `osvdi_model::GroupId`).
    GroupKey
);
key_type!(
    /// A course: a set of advance reservations made together.
    CourseId
);
key_type!(
    /// A mediated-device type, as sysfs and Nova name it: "nvidia-35", "i915-GVTg_V5_4".
    MdevType
);

/// CPU, memory and disk, as a host offers them or a desktop asks for them.
///
/// Capacities are what may be scheduled: any over-commit ratio is applied by whoever builds
/// the [`Host`]; the scheduler never over-commits beyond them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

impl Resources {
    /// Nothing at all.
    pub const ZERO: Resources = Resources {
        vcpus: 0,
        memory_mb: 0,
        disk_gb: 0,
    };

    pub const fn new(vcpus: u32, memory_mb: u64, disk_gb: u64) -> Self {
        Self {
            vcpus,
            memory_mb,
            disk_gb,
        }
    }

    /// The sum, saturating (capacities near `u64::MAX` are not meaningful anyway).
    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            vcpus: self.vcpus.saturating_add(o.vcpus),
            memory_mb: self.memory_mb.saturating_add(o.memory_mb),
            disk_gb: self.disk_gb.saturating_add(o.disk_gb),
        }
    }

    /// The difference, clamped at zero.
    pub fn minus(self, o: Resources) -> Resources {
        Resources {
            vcpus: self.vcpus.saturating_sub(o.vcpus),
            memory_mb: self.memory_mb.saturating_sub(o.memory_mb),
            disk_gb: self.disk_gb.saturating_sub(o.disk_gb),
        }
    }

    /// Whether `self` fits in `room` in every dimension.
    pub fn fits_in(&self, room: &Resources) -> bool {
        self.vcpus <= room.vcpus && self.memory_mb <= room.memory_mb && self.disk_gb <= room.disk_gb
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} vCPU, {} MB, {} GB",
            self.vcpus, self.memory_mb, self.disk_gb
        )
    }
}

/// How the instances of a physical GPU share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuSharing {
    /// NVIDIA vGPU (time-sliced): the GPU runs ONE type at a time. Once it holds an instance
    /// of type A it takes only type A, up to that type's `max_instances`, until it is empty.
    SingleType,
    /// Intel GVT-g style: types mix on one GPU. Each instance of a type uses that type's
    /// `weight` out of `budget` (the shared aperture and fence registers), and a type never
    /// has more than its `max_instances`.
    Mixed { budget: u32 },
}

/// One mdev type a GPU supports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GpuType {
    pub mdev: MdevType,
    /// The most instances of this type the GPU holds (sysfs `available_instances` when empty).
    pub max_instances: u32,
    /// The share of a [`GpuSharing::Mixed`] budget one instance uses; ignored otherwise.
    pub weight: u32,
}

/// A physical GPU of a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gpu {
    pub sharing: GpuSharing,
    pub types: Vec<GpuType>,
}

impl Gpu {
    /// A one-type-at-a-time GPU (NVIDIA) from `(type, max instances)` pairs.
    pub fn single_type<'a>(types: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        Gpu {
            sharing: GpuSharing::SingleType,
            types: types
                .into_iter()
                .map(|(t, n)| GpuType {
                    mdev: t.into(),
                    max_instances: n,
                    weight: 1,
                })
                .collect(),
        }
    }

    /// A mixed GPU (GVT-g) from its budget and `(type, max instances, weight)` triples.
    pub fn mixed<'a>(budget: u32, types: impl IntoIterator<Item = (&'a str, u32, u32)>) -> Self {
        Gpu {
            sharing: GpuSharing::Mixed { budget },
            types: types
                .into_iter()
                .map(|(t, n, w)| GpuType {
                    mdev: t.into(),
                    max_instances: n,
                    weight: w,
                })
                .collect(),
        }
    }

    /// The description of `mdev` on this GPU, if it supports it.
    pub fn supports(&self, mdev: &MdevType) -> Option<&GpuType> {
        self.types.iter().find(|t| &t.mdev == mdev)
    }
}

/// A compute host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub id: HostId,
    pub site: String,
    pub capacity: Resources,
    /// Free-form traits ("gpu", "data:cryo-em", "enclave"). A host also has the implicit
    /// trait `site:<site>`.
    pub traits: BTreeSet<String>,
    pub gpus: Vec<Gpu>,
}

impl Host {
    /// A host with no traits and no GPUs.
    pub fn new(id: impl Into<HostId>, site: impl Into<String>, capacity: Resources) -> Self {
        Host {
            id: id.into(),
            site: site.into(),
            capacity,
            traits: BTreeSet::new(),
            gpus: Vec::new(),
        }
    }

    /// The host with one more trait.
    pub fn with_trait(mut self, t: impl Into<String>) -> Self {
        self.traits.insert(t.into());
        self
    }

    /// The host with one more GPU (GPU indices follow the order they are added in).
    pub fn with_gpu(mut self, gpu: Gpu) -> Self {
        self.gpus.push(gpu);
        self
    }

    /// Whether the host has trait `t` (its own, or `site:<site>`).
    pub fn has_trait(&self, t: &str) -> bool {
        self.traits.contains(t) || t.strip_prefix("site:") == Some(self.site.as_str())
    }
}

/// How a site weighs hosts that all fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Fill the busiest host that fits: keeps whole hosts and GPUs free for big requests and
    /// lets idle hosts be powered down.
    #[default]
    Pack,
    /// Use the least busy host that fits: fewer desktops share a failure or a noisy neighbour.
    Spread,
}

/// The hosts the scheduler may place on, ordered by id, with each site's [`Strategy`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    hosts: Vec<Host>,
    strategies: BTreeMap<String, Strategy>,
}

impl Inventory {
    /// An inventory of `hosts` (any order; they are sorted by id). Refuses duplicate host ids
    /// and GPU types that can never hold an instance.
    pub fn new(mut hosts: Vec<Host>) -> Result<Self, SchedError> {
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = hosts.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(SchedError::DuplicateHost(w[0].id.clone()));
        }
        for h in &hosts {
            for (i, g) in h.gpus.iter().enumerate() {
                for t in &g.types {
                    let budget_ok = match g.sharing {
                        GpuSharing::SingleType => true,
                        GpuSharing::Mixed { budget } => t.weight > 0 && t.weight <= budget,
                    };
                    if t.max_instances == 0 || !budget_ok {
                        return Err(SchedError::InvalidGpu {
                            host: h.id.clone(),
                            gpu: i,
                            mdev: t.mdev.clone(),
                        });
                    }
                }
            }
        }
        Ok(Inventory {
            hosts,
            strategies: BTreeMap::new(),
        })
    }

    /// The inventory with `site` weighed by `strategy` (sites not named use [`Strategy::Pack`]).
    pub fn with_strategy(mut self, site: impl Into<String>, strategy: Strategy) -> Self {
        self.strategies.insert(site.into(), strategy);
        self
    }

    /// The hosts, ordered by id.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The position of `id` in [`Inventory::hosts`].
    pub fn host_index(&self, id: &HostId) -> Option<usize> {
        self.hosts.binary_search_by(|h| h.id.cmp(id)).ok()
    }

    /// How `site` weighs hosts.
    pub fn strategy(&self, site: &str) -> Strategy {
        self.strategies.get(site).copied().unwrap_or_default()
    }

    /// The sum of all hosts' capacities.
    pub fn total(&self) -> Resources {
        self.hosts
            .iter()
            .fold(Resources::ZERO, |a, h| a.plus(h.capacity))
    }
}

/// What one desktop needs: its template's resources, an optional vGPU, traits the host must
/// have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesktopRequest {
    pub template: TemplateKey,
    pub resources: Resources,
    pub vgpu: Option<MdevType>,
    /// Traits the host must have, e.g. `site:lyon`, `data:cryo-em`.
    pub traits: BTreeSet<String>,
    /// A persistent desktop belongs to one person and keeps its disk between sessions, so it
    /// is never pre-started in a warm pool. Placement and admission treat both kinds alike.
    pub persistent: bool,
}

impl DesktopRequest {
    /// A non-persistent request without vGPU or traits.
    pub fn new(template: impl Into<TemplateKey>, resources: Resources) -> Self {
        DesktopRequest {
            template: template.into(),
            resources,
            vgpu: None,
            traits: BTreeSet::new(),
            persistent: false,
        }
    }

    /// The request with a vGPU of type `mdev`.
    pub fn with_vgpu(mut self, mdev: impl Into<MdevType>) -> Self {
        self.vgpu = Some(mdev.into());
        self
    }

    /// The request with one more required trait.
    pub fn with_trait(mut self, t: impl Into<String>) -> Self {
        self.traits.insert(t.into());
        self
    }
}

/// A vGPU instance held by an allocation: which GPU of its host, and of which type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GpuSlot {
    pub index: usize,
    pub mdev: MdevType,
}

/// Room held on a host by one desktop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Allocation {
    pub desktop: DesktopKey,
    pub host: HostId,
    pub resources: Resources,
    pub gpu: Option<GpuSlot>,
    /// When the desktop is expected to stop (exclusive); `None`: it runs until stopped.
    pub end: Option<UnixMillis>,
    /// The reservation slot this desktop draws from, if any. While that slot is active the
    /// desktop counts within the slot's reserved desktops, not in addition to them.
    pub reservation: Option<SlotRef>,
}

impl Allocation {
    /// Whether the desktop still holds its room at `t`.
    pub fn runs_at(&self, t: UnixMillis) -> bool {
        self.end.is_none_or(|e| t < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_arithmetic_and_fit() {
        let a = Resources::new(4, 8192, 40);
        let b = Resources::new(2, 4096, 100);
        assert_eq!(a.plus(b), Resources::new(6, 12288, 140));
        assert_eq!(a.minus(b), Resources::new(2, 4096, 0));
        assert!(b.minus(a).fits_in(&b));
        assert!(!b.fits_in(&a));
        assert_eq!(a.to_string(), "4 vCPU, 8192 MB, 40 GB");
    }

    #[test]
    fn site_is_an_implicit_trait() {
        let h = Host::new("h1", "lyon", Resources::ZERO).with_trait("gpu");
        assert!(h.has_trait("gpu"));
        assert!(h.has_trait("site:lyon"));
        assert!(!h.has_trait("site:paris"));
        assert!(!h.has_trait("lyon"));
    }

    #[test]
    fn inventory_sorts_and_rejects_bad_input() {
        let r = Resources::new(1, 1, 1);
        let inv = Inventory::new(vec![Host::new("b", "s", r), Host::new("a", "s", r)]).unwrap();
        assert_eq!(inv.hosts()[0].id.as_str(), "a");
        assert_eq!(inv.host_index(&"b".into()), Some(1));
        assert_eq!(inv.total(), Resources::new(2, 2, 2));
        let dup = Inventory::new(vec![Host::new("a", "s", r), Host::new("a", "t", r)]);
        assert!(matches!(dup, Err(SchedError::DuplicateHost(_))));
        let bad = Host::new("a", "s", r).with_gpu(Gpu::mixed(4, [("g", 2, 5)]));
        assert!(matches!(
            Inventory::new(vec![bad]),
            Err(SchedError::InvalidGpu { .. })
        ));
    }
}
