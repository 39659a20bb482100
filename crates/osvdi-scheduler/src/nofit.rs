//! Why no host fits a request: counts of what each host lacks, said in one sentence.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{MdevType, Resources};

/// Why a request could not be placed. Counts are over the inventory's hosts; resource and GPU
/// counts only look at hosts that have the required traits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoFit {
    pub resources: Resources,
    pub vgpu: Option<MdevType>,
    pub required_traits: Vec<String>,
    /// Hosts in the inventory.
    pub hosts: usize,
    /// Hosts lacking at least one required trait.
    pub missing_traits: usize,
    /// Hosts (with the traits) without enough free vCPUs, memory, disk.
    pub short_vcpus: usize,
    pub short_memory: usize,
    pub short_disk: usize,
    /// The GPU situation, for vGPU requests.
    pub gpu: Option<Box<GpuShortage>>,
}

/// The state of the GPUs (on hosts with the required traits) for one mdev type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuShortage {
    pub mdev: MdevType,
    /// GPUs offering the type.
    pub offering: usize,
    /// GPUs that could take one more instance (their hosts lack something else).
    pub with_room: usize,
    /// GPUs whose instances of the type are all taken.
    pub full: usize,
    /// Mixed GPUs whose shared budget is used up by other instances.
    pub budget_used: usize,
    /// One-type GPUs running another type, per type.
    pub running_other: BTreeMap<MdevType, usize>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "No host fits {}", self.resources)?;
        if let Some(t) = &self.vgpu {
            write!(f, " + {t}")?;
        }
        f.write_str(": ")?;
        let mut parts = Vec::new();
        if self.hosts == 0 {
            parts.push("the inventory has no hosts".to_owned());
        }
        if self.missing_traits > 0 {
            parts.push(format!(
                "{} traits {}",
                plural(self.missing_traits, "host lacks", "hosts lack"),
                self.required_traits.join(", ")
            ));
        }
        for (n, what) in [
            (self.short_vcpus, "vCPUs"),
            (self.short_memory, "memory"),
            (self.short_disk, "disk"),
        ] {
            if n > 0 {
                parts.push(format!("{} {what}", plural(n, "host lacks", "hosts lack")));
            }
        }
        if let Some(g) = &self.gpu
            && g.with_room == 0
        {
            if g.offering == 0 {
                parts.push(format!("no GPU offers {}", g.mdev));
            } else {
                parts.push(format!("no GPU with a free {} instance", g.mdev));
            }
            for (other, n) in &g.running_other {
                let verb = if *n == 1 { "runs" } else { "run" };
                parts.push(format!("{} {verb} {other}", plural(*n, "GPU", "GPUs")));
            }
            if g.full > 0 {
                let verb = if g.full == 1 { "has" } else { "have" };
                parts.push(format!(
                    "{} {verb} all {} instances taken",
                    plural(g.full, "GPU", "GPUs"),
                    g.mdev
                ));
            }
            if g.budget_used > 0 {
                let verb = if g.budget_used == 1 { "has" } else { "have" };
                parts.push(format!(
                    "{} {verb} no budget left",
                    plural(g.budget_used, "mixed GPU", "mixed GPUs")
                ));
            }
        }
        if parts.is_empty() {
            parts.push("every host lacks room".to_owned());
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_is_missing() {
        let nf = NoFit {
            resources: Resources::new(4, 8192, 40),
            vgpu: Some("nvidia-35".into()),
            required_traits: vec!["site:lyon".into()],
            hosts: 5,
            missing_traits: 1,
            short_vcpus: 0,
            short_memory: 2,
            short_disk: 0,
            gpu: Some(Box::new(GpuShortage {
                mdev: "nvidia-35".into(),
                offering: 3,
                with_room: 0,
                full: 1,
                budget_used: 0,
                running_other: [("nvidia-36".into(), 2)].into_iter().collect(),
            })),
        };
        assert_eq!(
            nf.to_string(),
            "No host fits 4 vCPU, 8192 MB, 40 GB + nvidia-35: 1 host lacks traits site:lyon; \
             2 hosts lack memory; no GPU with a free nvidia-35 instance; 2 GPUs run nvidia-36; \
             1 GPU has all nvidia-35 instances taken"
        );
    }
}
