//! What is in use on each host and GPU of an inventory, and the rules that say whether a GPU
//! can take one more vGPU instance.

use crate::error::SchedError;
use crate::model::{Allocation, Gpu, GpuSharing, Inventory, MdevType, Resources};

/// Instances running on one physical GPU, per mdev type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuUsage {
    /// `(type, instances)`, instances > 0, in the order the types first appeared.
    counts: Vec<(MdevType, u32)>,
}

impl GpuUsage {
    /// Instances of `mdev` running.
    pub fn count(&self, mdev: &MdevType) -> u32 {
        self.counts
            .iter()
            .find(|(t, _)| t == mdev)
            .map_or(0, |(_, n)| *n)
    }

    /// Whether no instance runs.
    pub fn is_idle(&self) -> bool {
        self.counts.is_empty()
    }

    /// All instances, whatever their type.
    pub fn total(&self) -> u32 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// The types running, with their instance counts.
    pub fn running(&self) -> impl Iterator<Item = (&MdevType, u32)> {
        self.counts.iter().map(|(t, n)| (t, *n))
    }

    /// The share of a mixed budget in use (types the GPU does not know weigh nothing).
    fn weight(&self, gpu: &Gpu) -> u64 {
        self.counts
            .iter()
            .map(|(t, n)| u64::from(*n) * u64::from(gpu.supports(t).map_or(0, |g| g.weight)))
            .sum()
    }

    fn add(&mut self, mdev: &MdevType) {
        match self.counts.iter_mut().find(|(t, _)| t == mdev) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((mdev.clone(), 1)),
        }
    }

    fn remove(&mut self, mdev: &MdevType) {
        if let Some(i) = self.counts.iter().position(|(t, _)| t == mdev) {
            self.counts[i].1 -= 1;
            if self.counts[i].1 == 0 {
                self.counts.remove(i);
            }
        }
    }
}

/// Why a GPU cannot take one more instance of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuBlock {
    /// The GPU does not offer the type at all.
    Unsupported,
    /// A one-type GPU already runs another type.
    OtherType(MdevType),
    /// The type's instances are all taken.
    Full,
    /// A mixed GPU's shared budget is used up by other instances.
    BudgetUsed,
}

/// Whether `gpu`, with `usage` on it, can take one more instance of `mdev`.
pub fn gpu_room(gpu: &Gpu, usage: &GpuUsage, mdev: &MdevType) -> Result<(), GpuBlock> {
    let Some(ty) = gpu.supports(mdev) else {
        return Err(GpuBlock::Unsupported);
    };
    if let GpuSharing::SingleType = gpu.sharing
        && let Some((other, _)) = usage.running().find(|(t, _)| *t != mdev)
    {
        return Err(GpuBlock::OtherType(other.clone()));
    }
    if usage.count(mdev) >= ty.max_instances {
        return Err(GpuBlock::Full);
    }
    if let GpuSharing::Mixed { budget } = gpu.sharing
        && usage.weight(gpu) + u64::from(ty.weight) > u64::from(budget)
    {
        return Err(GpuBlock::BudgetUsed);
    }
    Ok(())
}

/// What is in use on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUsage {
    pub used: Resources,
    /// One entry per GPU of the host, same order.
    pub gpus: Vec<GpuUsage>,
}

impl HostUsage {
    /// Records a desktop (and its vGPU on GPU `gpu.0`). Panics if the GPU index is out of
    /// range: callers take it from the same host.
    pub fn add(&mut self, resources: Resources, gpu: Option<(usize, &MdevType)>) {
        self.used = self.used.plus(resources);
        if let Some((g, t)) = gpu {
            self.gpus[g].add(t);
        }
    }

    /// Forgets a desktop recorded with [`HostUsage::add`].
    pub fn remove(&mut self, resources: Resources, gpu: Option<(usize, &MdevType)>) {
        self.used = self.used.minus(resources);
        if let Some((g, t)) = gpu {
            self.gpus[g].remove(t);
        }
    }
}

/// What is in use on every host of an inventory (indexed like [`Inventory::hosts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    hosts: Vec<HostUsage>,
}

impl Usage {
    /// Nothing in use.
    pub fn empty(inv: &Inventory) -> Self {
        Usage {
            hosts: inv
                .hosts()
                .iter()
                .map(|h| HostUsage {
                    used: Resources::ZERO,
                    gpus: vec![GpuUsage::default(); h.gpus.len()],
                })
                .collect(),
        }
    }

    /// The use of `allocations`. They are counted as recorded, even past a host's capacity (a
    /// host may have shrunk); an allocation on a host or GPU the inventory lacks is an error.
    pub fn from_allocations<'a>(
        inv: &Inventory,
        allocations: impl IntoIterator<Item = &'a Allocation>,
    ) -> Result<Self, SchedError> {
        let mut u = Usage::empty(inv);
        for a in allocations {
            let i = inv
                .host_index(&a.host)
                .ok_or_else(|| SchedError::UnknownHost(a.host.clone()))?;
            if let Some(g) = &a.gpu
                && g.index >= u.hosts[i].gpus.len()
            {
                return Err(SchedError::UnknownGpu {
                    host: a.host.clone(),
                    gpu: g.index,
                });
            }
            u.add(i, a.resources, a.gpu.as_ref().map(|g| (g.index, &g.mdev)));
        }
        Ok(u)
    }

    /// The use of host `index`.
    pub fn host(&self, index: usize) -> &HostUsage {
        &self.hosts[index]
    }

    /// All hosts' use, indexed like [`Inventory::hosts`].
    pub fn hosts(&self) -> &[HostUsage] {
        &self.hosts
    }

    /// Records a desktop on host `index` (and GPU `gpu.0` with type `gpu.1`). Panics if the
    /// host or GPU index is out of range: callers take indices from the same inventory.
    pub fn add(&mut self, index: usize, resources: Resources, gpu: Option<(usize, &MdevType)>) {
        self.hosts[index].add(resources, gpu);
    }

    /// The busiest moment of several: per host, the most of each resource in use in any of
    /// `usages`, and per GPU the use with the most instances (empty if `usages` is).
    pub(crate) fn peak(usages: &[Usage]) -> Usage {
        let mut out = match usages.first() {
            Some(u) => u.clone(),
            None => return Usage { hosts: Vec::new() },
        };
        for u in &usages[1..] {
            for (o, h) in out.hosts.iter_mut().zip(&u.hosts) {
                o.used = Resources {
                    vcpus: o.used.vcpus.max(h.used.vcpus),
                    memory_mb: o.used.memory_mb.max(h.used.memory_mb),
                    disk_gb: o.used.disk_gb.max(h.used.disk_gb),
                };
                for (og, g) in o.gpus.iter_mut().zip(&h.gpus) {
                    if g.total() > og.total() {
                        *og = g.clone();
                    }
                }
            }
        }
        out
    }

    /// Forgets a desktop recorded with [`Usage::add`].
    pub fn remove(&mut self, index: usize, resources: Resources, gpu: Option<(usize, &MdevType)>) {
        self.hosts[index].remove(resources, gpu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GpuSlot, Host};

    fn t(s: &str) -> MdevType {
        s.into()
    }

    #[test]
    fn single_type_gpu_takes_one_type_until_empty() {
        let gpu = Gpu::single_type([("a", 2), ("b", 4)]);
        let mut u = GpuUsage::default();
        assert_eq!(gpu_room(&gpu, &u, &t("c")), Err(GpuBlock::Unsupported));
        assert_eq!(gpu_room(&gpu, &u, &t("b")), Ok(()));
        u.add(&t("a"));
        assert_eq!(
            gpu_room(&gpu, &u, &t("b")),
            Err(GpuBlock::OtherType(t("a")))
        );
        u.add(&t("a"));
        assert_eq!(gpu_room(&gpu, &u, &t("a")), Err(GpuBlock::Full));
        u.remove(&t("a"));
        u.remove(&t("a"));
        assert!(u.is_idle());
        assert_eq!(gpu_room(&gpu, &u, &t("b")), Ok(()));
    }

    #[test]
    fn mixed_gpu_shares_a_budget() {
        // Budget 4: "big" uses 2, "small" uses 1.
        let gpu = Gpu::mixed(4, [("big", 2, 2), ("small", 4, 1)]);
        let mut u = GpuUsage::default();
        u.add(&t("big"));
        u.add(&t("small"));
        assert_eq!(gpu_room(&gpu, &u, &t("small")), Ok(()));
        assert_eq!(gpu_room(&gpu, &u, &t("big")), Err(GpuBlock::BudgetUsed));
        u.add(&t("small"));
        assert_eq!(gpu_room(&gpu, &u, &t("small")), Err(GpuBlock::BudgetUsed));
        assert_eq!(u.total(), 3);
    }

    #[test]
    fn usage_from_allocations_checks_hosts() {
        let inv = Inventory::new(vec![
            Host::new("h", "s", Resources::new(8, 8, 8)).with_gpu(Gpu::single_type([("a", 2)])),
        ])
        .unwrap();
        let mut a = Allocation {
            desktop: "d".into(),
            host: "h".into(),
            resources: Resources::new(2, 2, 2),
            gpu: Some(GpuSlot {
                index: 0,
                mdev: t("a"),
            }),
            end: None,
            reservation: None,
        };
        let u = Usage::from_allocations(&inv, [&a, &a]).unwrap();
        assert_eq!(u.host(0).used, Resources::new(4, 4, 4));
        assert_eq!(u.host(0).gpus[0].count(&t("a")), 2);
        a.gpu = Some(GpuSlot {
            index: 1,
            mdev: t("a"),
        });
        assert!(Usage::from_allocations(&inv, [&a]).is_err());
        a.host = "nope".into();
        assert!(Usage::from_allocations(&inv, [&a]).is_err());
    }
}
