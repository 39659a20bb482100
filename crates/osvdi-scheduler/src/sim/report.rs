//! The simulation report as a table a person reads.

use std::fmt;

use super::{SimReport, Waits};
use crate::civil::DAY_MS;

/// Per mille as "12.3%".
pub fn percent(pm: u32) -> String {
    format!("{}.{}%", pm / 10, pm % 10)
}

/// A wait as "0 s", "45 s" or "3.5 min".
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) as f64 / 1000.0;
    if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

fn waits(w: &Waits) -> String {
    if w.desktops == 0 {
        return "-".into();
    }
    format!("p50 {}, p95 {}", duration(w.p50_ms), duration(w.p95_ms))
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = self.duration_ms.max(0) * 10 / DAY_MS;
        writeln!(
            f,
            "simulation: {}.{} days, {} hosts, seed {}",
            tenths / 10,
            tenths % 10,
            self.hosts,
            self.seed
        )?;
        writeln!(
            f,
            "{:<16}{:>10}{:>10}{:>11}{:>9}",
            "", "requests", "admitted", "shortened", "refused"
        )?;
        for (name, o) in [
            ("course members", self.members),
            ("on demand", self.on_demand),
        ] {
            writeln!(
                f,
                "{:<16}{:>10}{:>10}{:>11}{:>9}",
                name, o.requests, o.admitted, o.shortened, o.refused
            )?;
        }
        let rows = [
            (
                "courses admitted / refused",
                format!("{} / {}", self.courses_admitted, self.courses_refused),
            ),
            (
                "reservation guarantees broken",
                self.guarantees_broken.to_string(),
            ),
            (
                "reservation checks failed",
                self.reservation_checks_failed.to_string(),
            ),
            ("peak vCPU use", percent(self.peak_vcpu_permille)),
            ("peak memory use", percent(self.peak_memory_permille)),
            ("peak GPUs in use", percent(self.peak_gpu_permille)),
            ("GPU type switches", self.gpu_type_switches.to_string()),
            (
                "acceptance (got a desktop)",
                percent(self.accepted_permille()),
            ),
            (
                "reservations kept",
                format!(
                    "{} / {} ({})",
                    self.reservations_kept,
                    self.reservations_offered,
                    percent(self.kept_permille())
                ),
            ),
            (
                "mean vGPU capacity in use",
                percent(self.mean_vgpu_permille),
            ),
            (
                "peak hosts in use",
                format!("{} of {}", self.peak_hosts, self.hosts),
            ),
            (
                "peak GPU hosts in use",
                format!("{} of {}", self.peak_gpu_hosts, self.gpu_hosts),
            ),
            ("time to desktop, members", waits(&self.members_wait)),
            ("time to desktop, on demand", waits(&self.on_demand_wait)),
            (
                "warm desktops started / used",
                format!("{} / {}", self.warm_started, self.warm_used),
            ),
        ];
        for (k, v) in rows {
            writeln!(f, "{k:<31}{v:>25}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(44_600), "45 s");
        assert_eq!(duration(210_000), "3.5 min");
        assert_eq!(percent(999), "99.9%");
    }
}
