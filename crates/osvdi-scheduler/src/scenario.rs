//! A sample site and teaching week for the simulator: what `osvdi simulate` and the tests run
//! when given nothing else.

use std::collections::{BTreeMap, BTreeSet};

use crate::calendar::{Course, Schedule, Weekly};
use crate::civil::{DAY_MS, Date, Weekday};
use crate::model::{DesktopRequest, Gpu, Host, Inventory, Resources};
use crate::sim::{Arrivals, CourseAttendance, Rate, SimConfig};

fn weekly(days: &[Weekday], start_minute: u32, minutes: u32) -> Schedule {
    // Fixed, valid dates: the week of Monday 2025-03-03.
    let first = Date::from_days(20_150);
    let last = Date::from_days(20_156);
    Schedule::Weekly(Weekly {
        first,
        last,
        days: days.iter().copied().collect(),
        start_minute,
        minutes,
        except: BTreeSet::new(),
    })
}

impl SimConfig {
    /// One week (Monday 2025-03-03, UTC+1) at a site with 6 CPU hosts, 4 hosts with two
    /// NVIDIA GPUs each (nvidia-35: 4 per GPU, nvidia-36: 2 per GPU) and one GVT-g host; four
    /// courses offered (the last too big to fit beside the others) and three on-demand streams.
    pub fn teaching_week(seed: u64) -> SimConfig {
        let mut hosts = Vec::new();
        for i in 1..=6 {
            hosts.push(Host::new(
                format!("cpu-{i:02}"),
                "main",
                Resources::new(64, 262_144, 2000),
            ));
        }
        for i in 1..=4 {
            let gpu = || Gpu::single_type([("nvidia-35", 4), ("nvidia-36", 2)]);
            hosts.push(
                Host::new(
                    format!("gpu-{i:02}"),
                    "main",
                    Resources::new(64, 524_288, 4000),
                )
                .with_trait("gpu")
                .with_gpu(gpu())
                .with_gpu(gpu()),
            );
        }
        hosts.push(
            Host::new("igpu-01", "main", Resources::new(32, 131_072, 1000))
                .with_gpu(Gpu::mixed(8, [("gvtg-4", 2, 4), ("gvtg-8", 4, 2)])),
        );
        // Host ids are unique and every GPU type can hold an instance.
        let inventory = Inventory::new(hosts).unwrap_or_default();
        let office = DesktopRequest::new("office", Resources::new(2, 4096, 20));
        let fiji =
            DesktopRequest::new("fiji", Resources::new(4, 16_384, 50)).with_vgpu("nvidia-35");
        let dl = DesktopRequest::new("dl", Resources::new(8, 32_768, 100)).with_vgpu("nvidia-36");
        let course = |id: &str, shape: &DesktopRequest, count, schedule| Course {
            id: id.into(),
            group: format!("{id}-students").into(),
            shape: shape.clone(),
            count,
            schedule,
            utc_offset_minutes: 60,
        };
        use Weekday::*;
        let courses = vec![
            course("linux", &office, 80, weekly(&[Mon, Wed], 9 * 60, 120)),
            course("imaging", &fiji, 16, weekly(&[Tue, Thu], 14 * 60, 180)),
            course("deep-learning", &dl, 8, weekly(&[Wed], 10 * 60, 120)),
            course("too-big", &fiji, 24, weekly(&[Thu], 15 * 60, 60)),
        ];
        let stream = |request: &DesktopRequest, per_hour, mean_minutes| Arrivals {
            request: request.clone(),
            rate: Rate::PerHour(per_hour),
            mean_minutes,
            groups: vec!["staff".into()],
        };
        SimConfig {
            // 2025-03-03 00:00 at UTC+1.
            start: Date::from_days(20_150).at(0, 60),
            duration_ms: 7 * DAY_MS,
            inventory,
            courses,
            attendance: CourseAttendance {
                percent: 90,
                spread_minutes: 20,
            },
            arrivals: vec![
                stream(&office, 12, 180),
                stream(&fiji, 3, 120),
                stream(&dl, 1, 240),
            ],
            boot_times: BTreeMap::new(),
            warm: None,
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate;

    #[test]
    fn the_week_starts_on_a_monday() {
        let cfg = SimConfig::teaching_week(1);
        assert_eq!(cfg.inventory.hosts().len(), 11);
        assert_eq!(crate::format_local(cfg.start, 60), "2025-03-03 00:00");
        assert_eq!(Date::from_days(20_150).weekday(), Weekday::Mon);
    }

    #[test]
    fn a_teaching_week_keeps_every_reservation() {
        let cfg = SimConfig::teaching_week(7);
        let r = simulate(&cfg);
        assert_eq!(r.courses_admitted, 3, "{r}");
        assert_eq!(r.courses_refused, 1, "{r}");
        assert_eq!(r.guarantees_broken, 0, "{r}");
        assert_eq!(r.reservation_checks_failed, 0, "{r}");
        // 90% of 2x80 + 2x16 + 1x8 reserved desktops.
        assert_eq!(r.members.requests, 144 + 28 + 7, "{r}");
        assert_eq!(r.members.admitted, r.members.requests, "{r}");
        assert!(r.on_demand.requests > 1000, "{r}");
        assert!(r.on_demand.refused + r.on_demand.shortened > 0, "{r}");
        assert_eq!(simulate(&cfg), r, "same seed, same report");
        assert_ne!(simulate(&SimConfig::teaching_week(8)), r);
    }
}
