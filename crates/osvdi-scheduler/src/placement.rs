//! Placement of one desktop: filter the hosts that fit, then weigh them (vGPU type affinity,
//! GPU hosts kept for GPU desktops, fragmentation, pack or spread, host id).

use std::cmp::Reverse;

use crate::model::{DesktopRequest, Host, HostId, Inventory, Resources, Strategy};
use crate::nofit::{GpuShortage, NoFit};
use crate::usage::{GpuBlock, HostUsage, Usage, gpu_room};

/// Where a desktop goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placement {
    pub host: HostId,
    /// The host's position in [`Inventory::hosts`].
    pub host_index: usize,
    /// The GPU of the host that takes the vGPU instance (vGPU requests only).
    pub gpu: Option<usize>,
}

/// Knobs for one placement.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlaceOptions<'a> {
    /// Prefer hosts that stay able to take this shape (the largest one still wanted by
    /// reservations) after the placement. Ignored when placing that very shape.
    pub keep_room_for: Option<&'a DesktopRequest>,
    /// Weigh every host this way instead of by its site's strategy.
    pub strategy: Option<Strategy>,
}

/// The weigh key of a fitting host: smaller is better, compared field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// 0: the GPU already runs the type; 1: a mixed GPU already in use; 2: an idle GPU.
    gpu_rank: u8,
    /// For desktops without vGPU: 1 on hosts with GPUs (keep them for vGPU desktops).
    gpu_host: u8,
    /// 1 when the host could take the kept shape before and cannot after.
    fragments: u8,
    /// Dominant and summed share of the host in use after placement (parts per million),
    /// negated for pack.
    load: (i64, i64),
    index: usize,
}

/// The best host (and GPU) for `req`, or why there is none.
pub fn place(
    inv: &Inventory,
    usage: &Usage,
    req: &DesktopRequest,
    opts: &PlaceOptions<'_>,
) -> Result<Placement, NoFit> {
    let mut best: Option<(Key, Option<usize>)> = None;
    for i in 0..inv.hosts().len() {
        if let Some((k, gpu)) = weigh(inv, Views::same(usage), i, req, opts)
            && best.as_ref().is_none_or(|(b, _)| k < *b)
        {
            best = Some((k, gpu));
        }
    }
    match best {
        Some((k, gpu)) => Ok(Placement {
            host: inv.hosts()[k.index].id.clone(),
            host_index: k.index,
            gpu,
        }),
        None => Err(no_fit(inv, usage, req)),
    }
}

/// Every host that fits `req`, best first (the first is what [`place`] returns).
pub fn rank(
    inv: &Inventory,
    usage: &Usage,
    req: &DesktopRequest,
    opts: &PlaceOptions<'_>,
) -> Result<Vec<Placement>, NoFit> {
    rank_views(inv, Views::same(usage), req, opts)
}

/// What placement looks at: `fit` says whether a host has room, `weigh` how busy it looks.
/// They differ only in the admission check, which fills hosts in an order of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Views<'u> {
    pub fit: &'u Usage,
    pub weigh: &'u Usage,
}

impl<'u> Views<'u> {
    pub fn same(usage: &'u Usage) -> Self {
        Views {
            fit: usage,
            weigh: usage,
        }
    }
}

/// [`rank`], filtering on `views.fit` and weighing on `views.weigh`.
pub(crate) fn rank_views(
    inv: &Inventory,
    views: Views<'_>,
    req: &DesktopRequest,
    opts: &PlaceOptions<'_>,
) -> Result<Vec<Placement>, NoFit> {
    let mut fits: Vec<(Key, Option<usize>)> = (0..inv.hosts().len())
        .filter_map(|i| weigh(inv, views, i, req, opts))
        .collect();
    if fits.is_empty() {
        return Err(no_fit(inv, views.fit, req));
    }
    fits.sort_by_key(|(k, _)| *k);
    Ok(fits
        .into_iter()
        .map(|(k, gpu)| Placement {
            host: inv.hosts()[k.index].id.clone(),
            host_index: k.index,
            gpu,
        })
        .collect())
}

/// Whether `host` with `hu` in use can take `req` at all.
pub fn host_fits(host: &Host, hu: &HostUsage, req: &DesktopRequest) -> bool {
    has_traits(host, req)
        && hu.used.plus(req.resources).fits_in(&host.capacity)
        && (req.vgpu.is_none() || pick_gpu(host, hu, hu, req, Strategy::Pack).is_some())
}

/// Whether `host` with `hu` in use can take `req` on GPU `gpu` (none for requests without
/// vGPU).
pub(crate) fn fits_on(
    host: &Host,
    hu: &HostUsage,
    req: &DesktopRequest,
    gpu: Option<usize>,
) -> bool {
    let gpu_ok = match (&req.vgpu, gpu) {
        (None, None) => true,
        (Some(t), Some(g)) => match (host.gpus.get(g), hu.gpus.get(g)) {
            (Some(gpu), Some(u)) => gpu_room(gpu, u, t).is_ok(),
            _ => false,
        },
        _ => false,
    };
    gpu_ok && has_traits(host, req) && hu.used.plus(req.resources).fits_in(&host.capacity)
}

fn has_traits(host: &Host, req: &DesktopRequest) -> bool {
    req.traits.iter().all(|t| host.has_trait(t))
}

/// The GPU of the host for a vGPU request and its affinity rank, or `None` if none has room.
fn pick_gpu(
    host: &Host,
    fit: &HostUsage,
    view: &HostUsage,
    req: &DesktopRequest,
    strategy: Strategy,
) -> Option<(usize, u8)> {
    let mdev = req.vgpu.as_ref()?;
    host.gpus
        .iter()
        .zip(&fit.gpus)
        .zip(&view.gpus)
        .enumerate()
        .filter(|(_, ((g, f), _))| gpu_room(g, f, mdev).is_ok())
        .map(|(i, (_, u))| {
            let rank = if u.count(mdev) > 0 {
                0
            } else if !u.is_idle() {
                1
            } else {
                2
            };
            let load = i64::from(u.total());
            let load = match strategy {
                Strategy::Pack => -load,
                Strategy::Spread => load,
            };
            (rank, load, i)
        })
        .min()
        .map(|(rank, _, i)| (i, rank))
}

/// The weigh key of host `i` for `req`, or `None` if it does not fit.
fn weigh(
    inv: &Inventory,
    views: Views<'_>,
    i: usize,
    req: &DesktopRequest,
    opts: &PlaceOptions<'_>,
) -> Option<(Key, Option<usize>)> {
    let host = &inv.hosts()[i];
    let hu = views.fit.host(i);
    let view = views.weigh.host(i);
    if !has_traits(host, req) {
        return None;
    }
    if !hu.used.plus(req.resources).fits_in(&host.capacity) {
        return None;
    }
    let after = view.used.plus(req.resources);
    let strategy = opts.strategy.unwrap_or_else(|| inv.strategy(&host.site));
    let (gpu, gpu_rank) = match &req.vgpu {
        Some(_) => {
            let (g, r) = pick_gpu(host, hu, view, req, strategy)?;
            (Some(g), r)
        }
        None => (None, 0),
    };
    let gpu_host = u8::from(req.vgpu.is_none() && !host.gpus.is_empty());
    let fragments = match opts.keep_room_for {
        Some(keep) if keep != req && host_fits(host, hu, keep) => {
            let mut hu_after = hu.clone();
            hu_after.add(req.resources, gpu.zip(req.vgpu.as_ref()));
            u8::from(!host_fits(host, &hu_after, keep))
        }
        _ => 0,
    };
    let load = share(&after, host);
    let load = match strategy {
        Strategy::Pack => (-load.0, -load.1),
        Strategy::Spread => load,
    };
    Some((
        Key {
            gpu_rank,
            gpu_host,
            fragments,
            load,
            index: i,
        },
        gpu,
    ))
}

/// The dominant and the summed share of `host` that `used` takes, in parts per million.
fn share(used: &Resources, host: &Host) -> (i64, i64) {
    let dims = [
        (u128::from(used.vcpus), u128::from(host.capacity.vcpus)),
        (
            u128::from(used.memory_mb),
            u128::from(host.capacity.memory_mb),
        ),
        (u128::from(used.disk_gb), u128::from(host.capacity.disk_gb)),
    ];
    let mut max = 0i64;
    let mut sum = 0i64;
    for (u, c) in dims {
        // Dimensions the host has none of are left out; u <= c for the others, so the
        // share is at most 1_000_000 and fits an i64.
        if let Some(s) = (u * 1_000_000).checked_div(c) {
            let s = i64::try_from(s).unwrap_or(i64::MAX);
            max = max.max(s);
            sum += s;
        }
    }
    (max, sum)
}

/// Counts what each host lacks for `req`.
pub(crate) fn no_fit(inv: &Inventory, usage: &Usage, req: &DesktopRequest) -> NoFit {
    let mut nf = NoFit {
        resources: req.resources,
        vgpu: req.vgpu.clone(),
        required_traits: req.traits.iter().cloned().collect(),
        hosts: inv.hosts().len(),
        missing_traits: 0,
        short_vcpus: 0,
        short_memory: 0,
        short_disk: 0,
        gpu: req.vgpu.as_ref().map(|t| {
            Box::new(GpuShortage {
                mdev: t.clone(),
                offering: 0,
                with_room: 0,
                full: 0,
                budget_used: 0,
                running_other: Default::default(),
            })
        }),
    };
    for (host, hu) in inv.hosts().iter().zip(usage.hosts()) {
        if !has_traits(host, req) {
            nf.missing_traits += 1;
            continue;
        }
        let free = host.capacity.minus(hu.used);
        let r = req.resources;
        nf.short_vcpus += usize::from(r.vcpus > free.vcpus);
        nf.short_memory += usize::from(r.memory_mb > free.memory_mb);
        nf.short_disk += usize::from(r.disk_gb > free.disk_gb);
        if let Some(g) = &mut nf.gpu {
            for (gpu, gu) in host.gpus.iter().zip(&hu.gpus) {
                match gpu_room(gpu, gu, &g.mdev) {
                    Ok(()) => {
                        g.offering += 1;
                        g.with_room += 1;
                    }
                    Err(GpuBlock::Unsupported) => {}
                    Err(GpuBlock::OtherType(o)) => {
                        g.offering += 1;
                        *g.running_other.entry(o).or_default() += 1;
                    }
                    Err(GpuBlock::Full) => {
                        g.offering += 1;
                        g.full += 1;
                    }
                    Err(GpuBlock::BudgetUsed) => {
                        g.offering += 1;
                        g.budget_used += 1;
                    }
                }
            }
        }
    }
    nf
}

/// The order in which a set of desktops is packed: vGPU desktops first, then by memory,
/// vCPUs and disk, largest first.
pub(crate) fn largest_first(req: &DesktopRequest) -> impl Ord + use<> {
    Reverse((
        req.vgpu.is_some(),
        req.resources.memory_mb,
        req.resources.vcpus,
        req.resources.disk_gb,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Gpu;

    fn r(c: u32, m: u64) -> Resources {
        Resources::new(c, m, 10)
    }

    fn cap(c: u32, m: u64) -> Resources {
        Resources::new(c, m, 1000)
    }

    fn inv(hosts: Vec<Host>) -> Inventory {
        Inventory::new(hosts).unwrap()
    }

    #[test]
    fn pack_fills_the_busiest_host_and_spread_the_emptiest() {
        let i = inv(vec![
            Host::new("a", "s", cap(8, 8000)),
            Host::new("b", "s", cap(8, 8000)),
        ]);
        let mut u = Usage::empty(&i);
        u.add(1, r(2, 2000), None);
        let req = DesktopRequest::new("t", r(2, 2000));
        let p = place(&i, &u, &req, &PlaceOptions::default()).unwrap();
        assert_eq!(p.host.as_str(), "b");
        let spread = i.with_strategy("s", Strategy::Spread);
        let p = place(&spread, &u, &req, &PlaceOptions::default()).unwrap();
        assert_eq!(p.host.as_str(), "a");
    }

    #[test]
    fn ties_go_to_the_smallest_host_id() {
        let i = inv(vec![
            Host::new("z", "s", cap(8, 8000)),
            Host::new("m", "s", cap(8, 8000)),
        ]);
        let p = place(
            &i,
            &Usage::empty(&i),
            &DesktopRequest::new("t", r(1, 1)),
            &PlaceOptions::default(),
        )
        .unwrap();
        assert_eq!(p.host.as_str(), "m");
    }

    #[test]
    fn vgpu_prefers_a_gpu_already_running_the_type() {
        let g = || Gpu::single_type([("n35", 4), ("n36", 2)]);
        // Host a is busier (pack would pick it) but its GPU is idle; b's GPU runs n35.
        let i = inv(vec![
            Host::new("a", "s", cap(16, 16000)).with_gpu(g()),
            Host::new("b", "s", cap(16, 16000))
                .with_gpu(g())
                .with_gpu(g()),
        ]);
        let mut u = Usage::empty(&i);
        u.add(0, r(8, 8000), None);
        u.add(1, r(2, 2000), Some((1, &"n35".into())));
        let req = DesktopRequest::new("t", r(2, 2000)).with_vgpu("n35");
        let p = place(&i, &u, &req, &PlaceOptions::default()).unwrap();
        assert_eq!((p.host.as_str(), p.gpu), ("b", Some(1)));
    }

    #[test]
    fn desktops_without_vgpu_avoid_gpu_hosts() {
        let i = inv(vec![
            Host::new("a", "s", cap(16, 16000)).with_gpu(Gpu::single_type([("n35", 4)])),
            Host::new("b", "s", cap(16, 16000)),
        ]);
        let mut u = Usage::empty(&i);
        u.add(0, r(8, 8000), None);
        let p = place(
            &i,
            &u,
            &DesktopRequest::new("t", r(1, 1)),
            &PlaceOptions::default(),
        )
        .unwrap();
        assert_eq!(p.host.as_str(), "b");
    }

    #[test]
    fn keeps_room_for_the_largest_wanted_shape() {
        // a is busier (pack picks it) but taking 4 vCPUs there leaves no room for an 8.
        let i = inv(vec![
            Host::new("a", "s", cap(12, 12000)),
            Host::new("b", "s", cap(16, 16000)),
        ]);
        let mut u = Usage::empty(&i);
        u.add(0, r(4, 4000), None);
        u.add(1, r(4, 4000), None);
        let small = DesktopRequest::new("s", r(4, 4000));
        let big = DesktopRequest::new("b", r(8, 8000));
        let plain = place(&i, &u, &small, &PlaceOptions::default()).unwrap();
        assert_eq!(plain.host.as_str(), "a");
        let opts = PlaceOptions {
            keep_room_for: Some(&big),
            ..Default::default()
        };
        assert_eq!(place(&i, &u, &small, &opts).unwrap().host.as_str(), "b");
        let ranked = rank(&i, &u, &small, &opts).unwrap();
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].host.as_str(), "b");
    }

    #[test]
    fn refusal_names_the_gpu_types_in_the_way() {
        let i = inv(vec![
            Host::new("a", "s", cap(16, 16000))
                .with_gpu(Gpu::single_type([("nvidia-35", 4), ("nvidia-36", 2)]))
                .with_gpu(Gpu::single_type([("nvidia-35", 4), ("nvidia-36", 2)])),
        ]);
        let mut u = Usage::empty(&i);
        u.add(0, r(1, 1), Some((0, &"nvidia-36".into())));
        u.add(0, r(1, 1), Some((1, &"nvidia-36".into())));
        let req = DesktopRequest::new("t", r(1, 1)).with_vgpu("nvidia-35");
        let e = place(&i, &u, &req, &PlaceOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No host fits 1 vCPU, 1 MB, 10 GB + nvidia-35: no GPU with a free nvidia-35 \
             instance; 2 GPUs run nvidia-36"
        );
        assert!(rank(&i, &u, &req, &PlaceOptions::default()).is_err());
    }

    #[test]
    fn filters_on_traits_and_capacity() {
        let i = inv(vec![
            Host::new("a", "lyon", cap(4, 4000)),
            Host::new("b", "paris", cap(64, 64000)).with_trait("gpu"),
        ]);
        let u = Usage::empty(&i);
        let req = DesktopRequest::new("t", r(8, 8000)).with_trait("site:lyon");
        let e = place(&i, &u, &req, &PlaceOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No host fits 8 vCPU, 8000 MB, 10 GB: 1 host lacks traits site:lyon; \
             1 host lacks vCPUs; 1 host lacks memory"
        );
    }
}
