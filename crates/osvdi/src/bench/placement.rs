//! `osvdi bench placement`: how long the scheduler takes to place one desktop among N hosts
//! (in process, no IO). The fleet is generated from a seed and can be written as JSON, so
//! bench/placement-vs-openstack.py loads the very same hosts and usage into OpenStack
//! Placement and prints both in one table.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use osvdi_scheduler::{
    DesktopRequest, Gpu, Host, Inventory, PlaceOptions, Resources, SplitMix64, Usage, place, rank,
};
use serde::Serialize;
use serde_json::json;

#[derive(Args, Debug)]
pub(crate) struct PlacementArgs {
    /// Hosts in the fleet; one in four has two GPUs (nvidia-35: 4 instances, nvidia-36: 2).
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Timed placements per query.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Seed of the fleet's sizes and usage.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the fleet (hosts, GPUs, their traits, what is in use) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    inventory_out: Option<PathBuf>,
    /// Print the timings as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A host of the fleet as the JSON file has it (Placement's vocabulary: VCPU, MEMORY_MB, one
/// child provider per GPU with VGPU inventory and a CUSTOM_ trait naming its type).
#[derive(Debug, Serialize)]
struct FleetHost {
    name: String,
    vcpus: u32,
    memory_mb: u64,
    used_vcpus: u32,
    used_memory_mb: u64,
    gpus: Vec<FleetGpu>,
}

#[derive(Debug, Serialize)]
struct FleetGpu {
    mdev: String,
    #[serde(rename = "trait")]
    trait_name: String,
    total: u32,
    used: u32,
}

fn fleet(n: usize, seed: u64) -> Vec<FleetHost> {
    let mut rng = SplitMix64::new(seed);
    let sizes = [(32, 131_072), (64, 262_144), (128, 524_288)];
    (0..n)
        .map(|i| {
            let (vcpus, memory_mb) = sizes[i % 3];
            // 0 to 8 desktops of 4 vCPUs / 8 GiB already there.
            let k = u32::try_from(rng.below(9)).unwrap_or(0);
            let gpus = if i % 4 == 1 {
                [("nvidia-35", 4), ("nvidia-36", 2)]
                    .into_iter()
                    .map(|(mdev, total)| FleetGpu {
                        mdev: mdev.into(),
                        trait_name: format!(
                            "CUSTOM_VGPU_{}",
                            mdev.replace('-', "_").to_uppercase()
                        ),
                        total,
                        used: u32::try_from(rng.below(u64::from(total) + 1)).unwrap_or(0),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            FleetHost {
                name: format!("h{i:04}"),
                vcpus,
                memory_mb,
                used_vcpus: (4 * k).min(vcpus),
                used_memory_mb: (8192 * u64::from(k)).min(memory_mb),
                gpus,
            }
        })
        .collect()
}

/// The fleet as the scheduler sees it: one one-type GPU per physical GPU.
fn scheduler_view(fleet: &[FleetHost]) -> anyhow::Result<(Inventory, Usage)> {
    let hosts = fleet
        .iter()
        .map(|h| {
            h.gpus.iter().fold(
                Host::new(
                    h.name.as_str(),
                    "bench",
                    Resources::new(h.vcpus, h.memory_mb, 0),
                ),
                |host, g| host.with_gpu(Gpu::single_type([(g.mdev.as_str(), g.total)])),
            )
        })
        .collect();
    let inv = Inventory::new(hosts).context("fleet")?;
    let mut usage = Usage::empty(&inv);
    for h in fleet {
        let i = inv
            .host_index(&h.name.as_str().into())
            .context("host index")?;
        usage.add(i, Resources::new(h.used_vcpus, h.used_memory_mb, 0), None);
        for (g, gpu) in h.gpus.iter().enumerate() {
            for _ in 0..gpu.used {
                usage.add(i, Resources::ZERO, Some((g, &gpu.mdev.as_str().into())));
            }
        }
    }
    Ok((inv, usage))
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(p * sorted.len()).div_ceil(100).clamp(1, sorted.len()) - 1]
}

fn time(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (percentile(&t, 50), percentile(&t, 95))
}

pub(crate) fn run(args: &PlacementArgs) -> anyhow::Result<()> {
    if args.hosts == 0 || args.queries == 0 {
        bail!("--hosts and --queries must be at least 1");
    }
    let fleet = fleet(args.hosts, args.seed);
    if let Some(path) = &args.inventory_out {
        let body = serde_json::to_vec_pretty(&json!({ "hosts": fleet }))?;
        std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let (inv, usage) = scheduler_view(&fleet)?;
    let queries = [
        (
            "plain desktop 4 vCPU / 8 GiB",
            DesktopRequest::new("plain", Resources::new(4, 8192, 0)),
        ),
        (
            "vGPU desktop 4 vCPU / 8 GiB + 1 nvidia-35",
            DesktopRequest::new("vgpu", Resources::new(4, 8192, 0)).with_vgpu("nvidia-35"),
        ),
    ];
    let opts = PlaceOptions::default();
    let mut rows = Vec::new();
    for (name, req) in &queries {
        let candidates = rank(&inv, &usage, req, &opts).map_or(0, |r| r.len());
        let place_t = time(args.queries, || {
            let _ = black_box(place(&inv, &usage, black_box(req), &opts));
        });
        let rank_t = time(args.queries, || {
            let _ = black_box(rank(&inv, &usage, black_box(req), &opts));
        });
        rows.push((name, candidates, place_t, rank_t));
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(name, c, p, r)| {
                json!({
                    "query": name, "candidates": c,
                    "place_p50_us": us(p.0), "place_p95_us": us(p.1),
                    "rank_p50_us": us(r.0), "rank_p95_us": us(r.1),
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "hosts": args.hosts, "queries": args.queries, "results": out })
        );
        return Ok(());
    }
    println!(
        "osvdi bench placement: {} hosts ({} with GPUs), {} placements per query, in process",
        args.hosts,
        fleet.iter().filter(|h| !h.gpus.is_empty()).count(),
        args.queries
    );
    println!();
    println!(
        "| query | hosts that fit | place p50 µs | place p95 µs | rank all p50 µs | rank all p95 µs |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, c, p, r) in &rows {
        println!(
            "| {name} | {c} | {:.1} | {:.1} | {:.1} | {:.1} |",
            us(p.0),
            us(p.1),
            us(r.0),
            us(r.1)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_is_the_same_for_both_sides() {
        let f = fleet(8, 1);
        assert_eq!(f.len(), 8);
        assert_eq!(f[1].gpus.len(), 2);
        assert_eq!(f[1].gpus[0].trait_name, "CUSTOM_VGPU_NVIDIA_35");
        assert!(f[0].gpus.is_empty() && f[5].gpus.len() == 2);
        assert!(f.iter().all(|h| h.used_vcpus <= h.vcpus));
        let (inv, usage) = scheduler_view(&f).unwrap();
        let i = inv.host_index(&"h0001".into()).unwrap();
        assert_eq!(usage.host(i).used.vcpus, f[1].used_vcpus);
        assert_eq!(usage.host(i).gpus[1].total(), f[1].gpus[1].used);
        assert_eq!(fleet(8, 1)[3].used_vcpus, f[3].used_vcpus, "seeded");
    }
}
