//! `osvdi simulate SCENARIO.toml`: a site over weeks (hosts and GPUs, a course timetable,
//! on-demand arrivals by hour of the week, session lengths, boot times) run through the real
//! scheduler (`osvdi_scheduler::simulate`), printed as a table; `--sweep-hosts A..B` runs it
//! once per number of GPU hosts and names the smallest that meets the targets. `file` reads
//! the TOML, `scenario` maps it onto `SimConfig`.

mod file;
mod scenario;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use osvdi_scheduler::{SimReport, simulate};

use scenario::{Overrides, Scenario, Summary};

#[derive(Args, Debug)]
pub(crate) struct SimulateArgs {
    /// The scenario (TOML; the format is in examples/README.md).
    scenario: PathBuf,
    /// Simulate this many weeks instead of the file's `site.weeks`.
    #[arg(long, conflicts_with = "days")]
    weeks: Option<u32>,
    /// Simulate this many days instead (a quick look; the timetable stays the file's).
    #[arg(long)]
    days: Option<u32>,
    /// Seed of the random arrivals, instead of the file's `site.seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Run once per number of GPU hosts from A to B, both included ("4..10"). The GPU host
    /// groups share each number in proportion to their counts in the file; hosts without GPUs
    /// stay as they are.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    sweep_hosts: Option<(u32, u32)>,
    /// What the sweep looks for: at least this share of requests get a desktop (percent),
    /// and every reservation is kept.
    #[arg(long, default_value_t = 99.0, value_name = "PERCENT")]
    target_acceptance: f64,
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected A..B with A <= B, e.g. 4..10, not '{s}'");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let path = &args.scenario;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scenario {}", path.display()))?;
    let scenario =
        Scenario::parse(&text).with_context(|| format!("invalid scenario {}", path.display()))?;
    let o = Overrides {
        weeks: args.weeks,
        days: args.days,
        seed: args.seed,
        gpu_hosts: None,
    };
    match args.sweep_hosts {
        None => {
            let (cfg, summary) = scenario.build(o)?;
            println!("{}", header(&summary));
            print!("{}", simulate(&cfg));
            Ok(())
        }
        Some((a, b)) => sweep(&scenario, o, a, b, args.target_acceptance),
    }
}

fn header(s: &Summary) -> String {
    format!(
        "osvdi simulate: site {}, {} hosts ({} with {} GPUs), {} courses, {} from {}, warm \
         pools {}",
        s.name,
        s.hosts,
        s.gpu_hosts,
        s.gpus,
        s.courses,
        span(s.days),
        s.start,
        if s.warm { "on" } else { "off" }
    )
}

/// One simulation per GPU host count, run on every core.
fn sweep(scenario: &Scenario, o: Overrides, a: u32, b: u32, target: f64) -> anyhow::Result<()> {
    if !(0.0..=100.0).contains(&target) {
        bail!("--target-acceptance is a percentage (0 to 100)");
    }
    let mut runs = Vec::new();
    for n in a..=b {
        let (cfg, summary) = scenario.build(Overrides {
            gpu_hosts: Some(n),
            ..o
        })?;
        runs.push((n, cfg, summary));
    }
    let (_, _, first) = &runs[0];
    println!(
        "osvdi simulate --sweep-hosts {a}..{b}: site {}, {} courses, {} from {} (the file has \
         {} GPU hosts)",
        first.name,
        first.courses,
        span(first.days),
        first.start,
        scenario.gpu_hosts()
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut reports: Vec<Option<SimReport>> = vec![None; runs.len()];
    for (chunk, out) in runs.chunks(threads).zip(reports.chunks_mut(threads)) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(_, cfg, _)| s.spawn(move || simulate(cfg)))
                .collect();
            for (h, slot) in handles.into_iter().zip(out.iter_mut()) {
                // A panic in the simulator is a bug; carry it on.
                *slot = Some(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
        });
    }
    println!();
    println!(
        "| GPU hosts | GPUs | acceptance | reservations kept | courses refused | mean vGPU use \
         | peak GPU hosts | p95 time to desktop, members / on demand |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut smallest = None;
    for ((n, _, summary), r) in runs.iter().zip(reports.iter().flatten()) {
        let accepted = accepted_percent(r);
        let all_kept = r.reservations_kept == r.reservations_offered;
        if smallest.is_none() && accepted >= target && all_kept {
            smallest = Some(*n);
        }
        println!(
            "| {n} | {} | {accepted:.1}% | {} / {} ({:.1}%) | {} | {:.1}% | {} | {} / {} |",
            summary.gpus,
            r.reservations_kept,
            r.reservations_offered,
            f64::from(r.kept_permille()) / 10.0,
            r.courses_refused,
            f64::from(r.mean_vgpu_permille) / 10.0,
            r.peak_gpu_hosts,
            seconds(r.members_wait.p95_ms),
            seconds(r.on_demand_wait.p95_ms),
        );
    }
    println!();
    match smallest {
        Some(n) => println!(
            "smallest number of GPU hosts with at least {target}% acceptance and every \
             reservation kept: {n}"
        ),
        None => println!(
            "no number of GPU hosts in {a}..{b} gives at least {target}% acceptance with every \
             reservation kept"
        ),
    }
    Ok(())
}

/// The share of requests (members and on demand) that got a desktop, in percent.
fn accepted_percent(r: &SimReport) -> f64 {
    let requests = r.members.requests + r.on_demand.requests;
    if requests == 0 {
        return 100.0;
    }
    let got =
        r.members.admitted + r.members.shortened + r.on_demand.admitted + r.on_demand.shortened;
    100.0 * f64::from(got) / f64::from(requests)
}

/// "15 weeks", "1 week", "3 days".
fn span(days: u32) -> String {
    match (days % 7, days / 7) {
        (0, 1) => "1 week".into(),
        (0, w) => format!("{w} weeks"),
        _ if days == 1 => "1 day".into(),
        _ => format!("{days} days"),
    }
}

fn seconds(ms: i64) -> String {
    format!("{:.0} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("4..10"), Ok((4, 10)));
        assert_eq!(parse_range("4..=10"), Ok((4, 10)));
        assert_eq!(parse_range("6..6"), Ok((6, 6)));
        assert!(parse_range("10..4").is_err());
        assert!(parse_range("4-10").is_err());
        assert!(parse_range("a..b").is_err());
    }

    #[test]
    fn acceptance_counts_both_kinds() {
        let mut r = SimReport::default();
        assert_eq!(accepted_percent(&r), 100.0);
        r.members.requests = 10;
        r.members.admitted = 10;
        r.on_demand.requests = 10;
        r.on_demand.admitted = 7;
        r.on_demand.shortened = 1;
        assert_eq!(accepted_percent(&r), 90.0);
    }
}
