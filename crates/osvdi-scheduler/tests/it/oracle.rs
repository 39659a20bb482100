//! An independent reference for the properties: the capacity and GPU rules written again
//! from scratch, and an exact (exhaustive, budgeted) bin packer.

use std::collections::BTreeMap;

use osvdi_scheduler::{Allocation, DesktopRequest, Gpu, GpuSharing, Host, Inventory};

type Counts = BTreeMap<String, u32>;

/// Whether `gpu` holding `counts` obeys its rules.
fn gpu_valid(gpu: &Gpu, counts: &Counts) -> Result<(), String> {
    let live: Vec<(&String, u32)> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| (t, *n))
        .collect();
    let mut weight = 0u64;
    for (t, n) in &live {
        let ty = gpu
            .types
            .iter()
            .find(|x| x.mdev.as_str() == t.as_str())
            .ok_or_else(|| format!("type {t} not offered"))?;
        if *n > ty.max_instances {
            return Err(format!("{n} instances of {t}, max {}", ty.max_instances));
        }
        weight += u64::from(*n) * u64::from(ty.weight);
    }
    match gpu.sharing {
        GpuSharing::SingleType if live.len() > 1 => Err(format!("one-type GPU runs {live:?}")),
        GpuSharing::Mixed { budget } if weight > u64::from(budget) => {
            Err(format!("weight {weight} over budget {budget}"))
        }
        _ => Ok(()),
    }
}

#[derive(Clone)]
struct HostState {
    cpu: u64,
    mem: u64,
    disk: u64,
    gpus: Vec<Counts>,
}

fn load<'a>(
    inv: &Inventory,
    allocations: impl IntoIterator<Item = &'a Allocation>,
) -> Vec<HostState> {
    let mut s: Vec<HostState> = inv
        .hosts()
        .iter()
        .map(|h| HostState {
            cpu: 0,
            mem: 0,
            disk: 0,
            gpus: vec![Counts::new(); h.gpus.len()],
        })
        .collect();
    for a in allocations {
        let i = inv
            .hosts()
            .iter()
            .position(|h| h.id == a.host)
            .expect("allocation on a known host");
        s[i].cpu += u64::from(a.resources.vcpus);
        s[i].mem += a.resources.memory_mb;
        s[i].disk += a.resources.disk_gb;
        if let Some(g) = &a.gpu {
            *s[i].gpus[g.index].entry(g.mdev.to_string()).or_default() += 1;
        }
    }
    s
}

fn host_valid(h: &Host, s: &HostState) -> Result<(), String> {
    if s.cpu > u64::from(h.capacity.vcpus)
        || s.mem > h.capacity.memory_mb
        || s.disk > h.capacity.disk_gb
    {
        return Err(format!("host {} over capacity", h.id));
    }
    for (g, c) in h.gpus.iter().zip(&s.gpus) {
        gpu_valid(g, c).map_err(|e| format!("host {}: {e}", h.id))?;
    }
    Ok(())
}

/// Whether `allocations` keep every host and GPU within its rules.
pub fn valid(inv: &Inventory, allocations: &[Allocation]) -> Result<(), String> {
    let s = load(inv, allocations);
    inv.hosts()
        .iter()
        .zip(&s)
        .try_for_each(|(h, s)| host_valid(h, s))
}

/// Whether `items` can all be placed beside `fixed`, by exhaustive search: `Some(answer)`, or
/// `None` when the search took more than `budget` steps.
pub fn fits<'a>(
    inv: &Inventory,
    fixed: impl IntoIterator<Item = &'a Allocation>,
    items: &[&DesktopRequest],
    budget: u64,
) -> Option<bool> {
    let mut items = items.to_vec();
    items.sort_by_key(|r| {
        std::cmp::Reverse((
            r.vgpu.is_some(),
            r.resources.memory_mb,
            r.resources.vcpus,
            r.resources.disk_gb,
        ))
    });
    let mut state = load(inv, fixed);
    let mut budget = budget;
    dfs(inv, &mut state, &items, 0, (0, 0), &mut budget)
}

fn dfs(
    inv: &Inventory,
    state: &mut [HostState],
    items: &[&DesktopRequest],
    i: usize,
    prev: (usize, usize),
    budget: &mut u64,
) -> Option<bool> {
    let Some(req) = items.get(i) else {
        return Some(true);
    };
    // Identical items go in non-decreasing (host, gpu) order: no search of permutations.
    let from = if i > 0 && items[i - 1] == *req {
        prev
    } else {
        (0, 0)
    };
    let mut unknown = false;
    for (h, host) in inv.hosts().iter().enumerate().skip(from.0) {
        if !req.traits.iter().all(|t| host.has_trait(t)) {
            continue;
        }
        let r = req.resources;
        let s = &state[h];
        if s.cpu + u64::from(r.vcpus) > u64::from(host.capacity.vcpus)
            || s.mem + r.memory_mb > host.capacity.memory_mb
            || s.disk + r.disk_gb > host.capacity.disk_gb
        {
            continue;
        }
        let gpus: Vec<Option<usize>> = match &req.vgpu {
            None => vec![None],
            Some(_) => (0..host.gpus.len()).map(Some).collect(),
        };
        for g in gpus {
            if h == from.0 && g.unwrap_or(0) < from.1 {
                continue;
            }
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            let st = &mut state[h];
            if let (Some(g), Some(t)) = (g, &req.vgpu) {
                let mut c = st.gpus[g].clone();
                *c.entry(t.to_string()).or_default() += 1;
                if gpu_valid(&host.gpus[g], &c).is_err() {
                    continue;
                }
                st.gpus[g] = c;
            }
            st.cpu += u64::from(r.vcpus);
            st.mem += r.memory_mb;
            st.disk += r.disk_gb;
            let res = dfs(inv, state, items, i + 1, (h, g.unwrap_or(0)), budget);
            let st = &mut state[h];
            st.cpu -= u64::from(r.vcpus);
            st.mem -= r.memory_mb;
            st.disk -= r.disk_gb;
            if let (Some(g), Some(t)) = (g, &req.vgpu) {
                *st.gpus[g].get_mut(t.as_str()).expect("just added") -= 1;
            }
            match res {
                Some(true) => return Some(true),
                None => unknown = true,
                Some(false) => {}
            }
        }
    }
    if unknown { None } else { Some(false) }
}
