//! The mdev inventory as plain values, and the decisions taken on it without touching sysfs:
//! may this GPU host another instance of that type, and which GPU should.

use std::fmt;

use uuid::Uuid;

use super::MdevError;

/// Every GPU that offers mediated devices, ordered by PCI address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub gpus: Vec<PhysicalGpu>,
}

/// A physical GPU registered with the mdev core (a link in `/sys/class/mdev_bus/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalGpu {
    /// PCI address, e.g. `0000:00:02.0`.
    pub parent: String,
    pub vendor: Vendor,
    /// PCI device id (`0x5912` for an HD 630, `0x13f2` for a Tesla M60).
    pub device: u16,
    /// The GPU runs instances of one type at a time (NVIDIA time-sliced vGPU): once an instance
    /// exists, it can host only more of that type until all are removed.
    pub single_type: bool,
    /// Ordered by type id.
    pub types: Vec<MdevType>,
    /// Ordered by UUID.
    pub instances: Vec<MdevInstance>,
}

/// Who made the GPU, from its PCI vendor id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// 0x8086: GVT-g.
    Intel,
    /// 0x10de: GRID / vGPU.
    Nvidia,
    Other(u16),
}

/// One `mdev_supported_types/<id>/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    /// The folder name, `<driver>-<name>`: `i915-GVTg_V5_4`, `nvidia-22`.
    pub id: String,
    /// The `name` attribute (`GVTg_V5_4`, `GRID M60-8Q`); the id when the driver has none.
    pub name: String,
    /// The `description` attribute as the driver wrote it (may span lines); empty if none.
    pub description: String,
    /// `vfio-pci` for GPUs.
    pub device_api: String,
    /// How many more instances of this type the kernel would create now.
    pub available_instances: u32,
}

/// An existing mediated device (a link in `/sys/bus/mdev/devices/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevInstance {
    pub uuid: Uuid,
    pub type_id: String,
}

impl Vendor {
    pub fn from_pci_id(id: u16) -> Self {
        match id {
            0x8086 => Self::Intel,
            0x10de => Self::Nvidia,
            other => Self::Other(other),
        }
    }

    pub fn pci_id(self) -> u16 {
        match self {
            Self::Intel => 0x8086,
            Self::Nvidia => 0x10de,
            Self::Other(id) => id,
        }
    }

    /// Whether this vendor's GPUs run one mdev type at a time. True of NVIDIA's time-sliced
    /// vGPU (the "equal-size" mode, the only one before vGPU 17); GVT-g mixes types freely.
    pub fn single_type(self) -> bool {
        matches!(self, Self::Nvidia)
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Intel => f.write_str("Intel"),
            Self::Nvidia => f.write_str("NVIDIA"),
            Self::Other(id) => write!(f, "{id:#06x}"),
        }
    }
}

impl Inventory {
    pub fn gpu(&self, parent: &str) -> Option<&PhysicalGpu> {
        self.gpus.iter().find(|g| g.parent == parent)
    }

    /// The GPU holding the instance `uuid`, and the instance.
    pub fn instance(&self, uuid: Uuid) -> Option<(&PhysicalGpu, &MdevInstance)> {
        self.gpus
            .iter()
            .find_map(|g| g.instances.iter().find(|i| i.uuid == uuid).map(|i| (g, i)))
    }

    /// The GPU where a new `type_id` instance should go, or `None` if no GPU can host one.
    /// Deterministic: a GPU already running that type first (keeps single-type GPUs free for
    /// other types), then the one with fewest instances (spreads load), then by PCI address.
    pub fn find_free(&self, type_id: &str) -> Option<&PhysicalGpu> {
        self.gpus
            .iter()
            .filter(|g| g.check_create(type_id).is_ok())
            .min_by_key(|g| (!g.runs(type_id), g.instances.len(), g.parent.as_str()))
    }
}

impl PhysicalGpu {
    pub fn mdev_type(&self, type_id: &str) -> Option<&MdevType> {
        self.types.iter().find(|t| t.id == type_id)
    }

    /// The type all of this GPU's instances share: always the case on a single-type GPU.
    /// `None` when the GPU has no instance, or instances of several types (GVT-g).
    pub fn active_type(&self) -> Option<&str> {
        let first = self.instances.first()?.type_id.as_str();
        self.instances
            .iter()
            .all(|i| i.type_id == first)
            .then_some(first)
    }

    /// Whether at least one instance of `type_id` exists on this GPU.
    pub fn runs(&self, type_id: &str) -> bool {
        self.instances.iter().any(|i| i.type_id == type_id)
    }

    /// Whether the kernel should accept a new `type_id` instance here, and if not, why.
    pub fn check_create(&self, type_id: &str) -> Result<(), MdevError> {
        let Some(mdev_type) = self.mdev_type(type_id) else {
            return Err(MdevError::UnknownType {
                parent: self.parent.clone(),
                type_id: type_id.to_owned(),
            });
        };
        // Before the count: on NVIDIA the other types read 0 while one runs, and "no free
        // instance" would hide the reason.
        if self.single_type
            && let Some(running) = self.instances.iter().find(|i| i.type_id != type_id)
        {
            return Err(MdevError::TypeConflict {
                parent: self.parent.clone(),
                running: running.type_id.clone(),
                count: self.instances.len(),
            });
        }
        if mdev_type.available_instances == 0 {
            return Err(MdevError::NoFreeInstance {
                parent: self.parent.clone(),
                type_id: type_id.to_owned(),
            });
        }
        Ok(())
    }
}

/// Parses a PCI id attribute (`vendor`, `device`): `0x10de\n`.
pub(super) fn parse_pci_id(text: &str) -> Option<u16> {
    let hex = text.trim().strip_prefix("0x")?;
    u16::from_str_radix(hex, 16).ok()
}

/// Parses `available_instances`: a decimal count and a newline.
pub(super) fn parse_count(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(parent: &str, single_type: bool, instances: &[&str]) -> PhysicalGpu {
        let mdev_type = |id: &str, available_instances| MdevType {
            id: id.to_owned(),
            name: id.to_owned(),
            description: String::new(),
            device_api: "vfio-pci".to_owned(),
            available_instances,
        };
        PhysicalGpu {
            parent: parent.to_owned(),
            vendor: if single_type {
                Vendor::Nvidia
            } else {
                Vendor::Intel
            },
            device: 0,
            single_type,
            types: vec![mdev_type("a", 4), mdev_type("b", 4), mdev_type("full", 0)],
            instances: instances
                .iter()
                .enumerate()
                .map(|(n, t)| MdevInstance {
                    uuid: Uuid::from_u128(n as u128 + 1),
                    type_id: (*t).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn parses_pci_ids_and_counts() {
        assert_eq!(parse_pci_id("0x10de\n"), Some(0x10de));
        assert_eq!(parse_pci_id("0x8086"), Some(0x8086));
        assert_eq!(parse_pci_id("10de"), None);
        assert_eq!(parse_pci_id("0x1234567"), None);
        assert_eq!(parse_count("7\n"), Some(7));
        assert_eq!(parse_count("-1\n"), None);
        assert_eq!(parse_count(""), None);
    }

    #[test]
    fn vendors_round_trip_and_display() {
        for id in [0x8086, 0x10de, 0x1002] {
            assert_eq!(Vendor::from_pci_id(id).pci_id(), id);
        }
        assert_eq!(Vendor::from_pci_id(0x1002).to_string(), "0x1002");
        assert!(Vendor::Nvidia.single_type());
        assert!(!Vendor::Intel.single_type());
    }

    #[test]
    fn active_type_is_the_shared_type_or_none() {
        assert_eq!(gpu("g", true, &[]).active_type(), None);
        assert_eq!(gpu("g", true, &["a", "a"]).active_type(), Some("a"));
        assert_eq!(gpu("g", false, &["a", "b"]).active_type(), None);
    }

    #[test]
    fn check_create_gives_the_reason() {
        let mixed = gpu("0000:00:02.0", false, &["a"]);
        assert!(mixed.check_create("b").is_ok());
        let single = gpu("0000:3d:00.0", true, &["a", "a"]);
        assert!(single.check_create("a").is_ok());
        assert_eq!(
            single.check_create("b").unwrap_err().to_string(),
            "0000:3d:00.0 runs a; it can host only a until its 2 instance(s) are removed"
        );
        assert!(matches!(
            single.check_create("nope"),
            Err(MdevError::UnknownType { .. })
        ));
        assert!(matches!(
            mixed.check_create("full"),
            Err(MdevError::NoFreeInstance { .. })
        ));
    }

    #[test]
    fn find_free_orders_by_affinity_then_load_then_address() {
        let inv = Inventory {
            gpus: vec![
                gpu("0000:01:00.0", true, &[]),
                gpu("0000:02:00.0", true, &["a", "a"]),
                gpu("0000:03:00.0", true, &["a"]),
            ],
        };
        // Both running "a": the less loaded one, although the idle GPU has the lowest address.
        assert_eq!(
            inv.find_free("a").map(|g| g.parent.as_str()),
            Some("0000:03:00.0")
        );
        // Only the idle GPU can take "b".
        assert_eq!(
            inv.find_free("b").map(|g| g.parent.as_str()),
            Some("0000:01:00.0")
        );
        assert_eq!(inv.find_free("full"), None);
        assert_eq!(inv.find_free("nope"), None);
    }
}
