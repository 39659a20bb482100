//! Properties: hosts and GPUs never over capacity, one type per GPU, admitted courses always
//! placeable, on-demand admissions never take a reservation's room, determinism.

use osvdi_model::UnixMillis;
use osvdi_scheduler::{
    Allocation, Arrivals, Calendar, Course, CourseAttendance, Decision, DesktopRequest, Gpu,
    GpuSlot, Host, Inventory, OnDemand, PlaceOptions, Rate, Resources, Schedule, SimConfig, Slot,
    Strategy as Weigh, Usage, admit_course, admit_on_demand, place, simulate,
};
use proptest::prelude::*;

use crate::oracle;

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// Exhaustive search steps before the oracle gives up (the case is then skipped).
const BUDGET: u64 = 200_000;

fn arb_gpu() -> impl Strategy<Value = Gpu> {
    prop_oneof![
        (1u32..=4, 1u32..=2).prop_map(|(a, b)| Gpu::single_type([("A", a), ("B", b)])),
        (4u32..=8, 1u32..=4, 1u32..=4, 1u32..=4, 1u32..=4).prop_map(|(budget, ma, wa, mb, wb)| {
            Gpu::mixed(budget, [("A", ma, wa), ("B", mb, wb)])
        }),
    ]
}

fn arb_inventory() -> impl Strategy<Value = Inventory> {
    let host = (
        2u32..=16,
        1u64..=16,
        50u64..=400,
        prop::collection::vec(arb_gpu(), 0..=2),
        any::<bool>(),
        any::<bool>(),
    );
    (prop::collection::vec(host, 1..=4), any::<bool>()).prop_map(|(hosts, spread)| {
        let hosts = hosts
            .into_iter()
            .enumerate()
            .map(|(i, (cpu, mem, disk, gpus, fast, site2))| {
                let site = if site2 { "s2" } else { "s1" };
                let mut h = Host::new(format!("h{i}"), site, Resources::new(cpu, mem * 1024, disk));
                if fast {
                    h = h.with_trait("fast");
                }
                h.gpus = gpus;
                h
            })
            .collect();
        let inv = Inventory::new(hosts).expect("valid hosts");
        if spread {
            inv.with_strategy("s2", Weigh::Spread)
        } else {
            inv
        }
    })
}

fn arb_request(gpu_share: u32) -> impl Strategy<Value = DesktopRequest> {
    let vgpu = prop_oneof![
        (100 - gpu_share) => Just(None),
        gpu_share => prop_oneof![Just(Some("A")), Just(Some("B"))],
    ];
    (1u32..=6, 1u64..=8, 10u64..=100, vgpu, 0u8..6).prop_map(|(cpu, mem, disk, vgpu, tr)| {
        let mut r = DesktopRequest::new("t", Resources::new(cpu, mem * 512, disk));
        r.vgpu = vgpu.map(Into::into);
        match tr {
            0 => r.with_trait("fast"),
            1 => r.with_trait("site:s2"),
            _ => r,
        }
    })
}

/// Places or removes desktops; after each step every rule holds, and a refusal means that no
/// host could take the desktop.
fn placements_hold(
    inv: &Inventory,
    ops: &[(DesktopRequest, bool, usize)],
) -> Result<(), TestCaseError> {
    let mut allocs: Vec<Allocation> = Vec::new();
    for (n, (req, remove, idx)) in ops.iter().enumerate() {
        if *remove && !allocs.is_empty() {
            allocs.remove(idx % allocs.len());
            continue;
        }
        let usage = Usage::from_allocations(inv, &allocs).expect("known hosts");
        match place(inv, &usage, req, &PlaceOptions::default()) {
            Ok(p) => {
                let host = &inv.hosts()[p.host_index];
                prop_assert_eq!(&host.id, &p.host);
                prop_assert!(req.traits.iter().all(|t| host.has_trait(t)));
                prop_assert_eq!(p.gpu.is_some(), req.vgpu.is_some());
                allocs.push(Allocation {
                    desktop: format!("d{n}").into(),
                    host: p.host,
                    resources: req.resources,
                    gpu: p
                        .gpu
                        .zip(req.vgpu.clone())
                        .map(|(index, mdev)| GpuSlot { index, mdev }),
                    end: None,
                    reservation: None,
                });
                if let Err(e) = oracle::valid(inv, &allocs) {
                    return Err(TestCaseError::fail(e));
                }
            }
            Err(nf) => {
                prop_assert_eq!(
                    oracle::fits(inv, &allocs, &[req], BUDGET),
                    Some(false),
                    "{}",
                    nf
                );
            }
        }
    }
    Ok(())
}

fn arb_course(i: usize) -> impl Strategy<Value = Course> {
    (arb_request(30), 1u32..=3, 0i64..8, 1i64..=4).prop_map(
        move |(mut shape, count, from, hours)| {
            // Courses of one group never share a template (c0 and c1 share t0, for g0 and g1).
            shape.template = format!("t{}", i / 2).into();
            course(i, shape, count, from, hours)
        },
    )
}

fn course(i: usize, shape: DesktopRequest, count: u32, from: i64, hours: i64) -> Course {
    Course {
        id: format!("c{i}").into(),
        group: format!("g{}", i % 2).into(),
        shape,
        count,
        schedule: Schedule::Once(Slot {
            start: UnixMillis(from * H),
            end: UnixMillis((from + hours) * H),
        }),
        utc_offset_minutes: 0,
    }
}

fn arb_courses() -> impl Strategy<Value = Vec<Course>> {
    (0usize..=5).prop_flat_map(|n| (0..n).map(arb_course).collect::<Vec<_>>())
}

fn admit_all(inv: &Inventory, courses: &[Course]) -> Calendar {
    courses.iter().fold(Calendar::new(), |cal, c| {
        admit_course(&cal, inv, c).unwrap_or(cal)
    })
}

/// At `t`: do the reserved desktops not yet started fit beside what runs, by exhaustive search?
fn reservations_fit(
    inv: &Inventory,
    cal: &Calendar,
    allocs: &[Allocation],
    t: UnixMillis,
) -> Option<bool> {
    let running: Vec<&Allocation> = allocs.iter().filter(|a| a.runs_at(t)).collect();
    let mut items = Vec::new();
    for r in cal
        .reservations()
        .iter()
        .filter(|r| r.start <= t && t < r.end)
    {
        let started = running
            .iter()
            .filter(|a| a.reservation.as_ref() == Some(&r.slot))
            .count();
        let missing = (r.count as usize).saturating_sub(started);
        items.extend(std::iter::repeat_n(&r.shape, missing));
    }
    oracle::fits(inv, running, &items, BUDGET)
}

// 256 cases each by default; `PROPTEST_CASES=5000` for a longer hunt.
proptest! {
    #[test]
    fn no_host_or_gpu_is_ever_over_capacity(
        inv in arb_inventory(),
        ops in prop::collection::vec((arb_request(40), prop::bool::weighted(0.2), any::<usize>()), 1..40),
    ) {
        placements_hold(&inv, &ops)?;
    }

    #[test]
    fn one_type_per_gpu_is_never_violated(
        inv in arb_inventory(),
        ops in prop::collection::vec((arb_request(100), prop::bool::weighted(0.3), any::<usize>()), 1..40),
    ) {
        placements_hold(&inv, &ops)?;
    }

    #[test]
    fn admitted_courses_are_always_placeable(inv in arb_inventory(), courses in arb_courses()) {
        let cal = admit_all(&inv, &courses);
        for r in cal.reservations() {
            let fit = reservations_fit(&inv, &cal, &[], r.start);
            prop_assume!(fit.is_some());
            prop_assert_eq!(fit, Some(true), "at {:?}", r.start);
        }
    }

    #[test]
    fn on_demand_never_takes_a_reservations_room(
        inv in arb_inventory(),
        courses in arb_courses(),
        asks in prop::collection::vec(
            (0i64..20, arb_request(30), prop::option::of(10i64..300), 0u8..3, 0u8..4),
            1..16,
        ),
    ) {
        let cal = admit_all(&inv, &courses);
        let mut allocs: Vec<Allocation> = Vec::new();
        let mut now = UnixMillis(0);
        for (n, (gap, mut request, life, who, template)) in asks.into_iter().enumerate() {
            if template > 0 {
                // A member asking for a course's template draws from its reservation.
                request.template = format!("t{}", template - 1).into();
            }
            now = UnixMillis(now.0 + gap * 30 * MIN);
            let groups = if who > 0 { vec![format!("g{}", who - 1).into()] } else { vec![] };
            let ask = OnDemand {
                desktop: format!("d{n}").into(),
                request,
                groups,
                end: life.map(|m| UnixMillis(now.0 + m * MIN)),
            };
            let d = admit_on_demand(now, &cal, &inv, &allocs, &ask).expect("valid input");
            let Some(a) = d.allocation() else { continue };
            if let Decision::Shortened { allocation, .. } = &d {
                prop_assert!(allocation.end > Some(now));
                prop_assert!(ask.end.is_none_or(|e| allocation.end < Some(e)));
            }
            allocs.push(a.clone());
            let live: Vec<Allocation> = allocs.iter().filter(|a| a.runs_at(now)).cloned().collect();
            prop_assert!(oracle::valid(&inv, &live).is_ok());
            let points = std::iter::once(now)
                .chain(cal.reservations().iter().map(|r| r.start).filter(|s| *s > now));
            for t in points {
                let fit = reservations_fit(&inv, &cal, &allocs, t);
                prop_assume!(fit.is_some());
                prop_assert_eq!(fit, Some(true), "after {:?} at {:?}", d, t);
            }
        }
    }

    #[test]
    fn same_input_same_output(
        inv in arb_inventory(),
        courses in arb_courses(),
        req in arb_request(50),
        seed in any::<u64>(),
    ) {
        let usage = Usage::empty(&inv);
        prop_assert_eq!(
            place(&inv, &usage, &req, &PlaceOptions::default()),
            place(&inv, &usage, &req, &PlaceOptions::default())
        );
        prop_assert_eq!(admit_all(&inv, &courses), admit_all(&inv, &courses));
        let ask = OnDemand { desktop: "d".into(), request: req.clone(), groups: vec!["g0".into()], end: None };
        let cal = admit_all(&inv, &courses);
        prop_assert_eq!(
            admit_on_demand(UnixMillis(H), &cal, &inv, &[], &ask),
            admit_on_demand(UnixMillis(H), &cal, &inv, &[], &ask)
        );
        let cfg = SimConfig {
            start: UnixMillis(0),
            duration_ms: 12 * H,
            inventory: inv,
            courses,
            attendance: CourseAttendance { percent: 100, spread_minutes: 10 },
            arrivals: vec![Arrivals { request: req, rate: Rate::PerHour(4), mean_minutes: 60, groups: vec![] }],
            boot_times: Default::default(),
            warm: None,
            seed,
        };
        let report = simulate(&cfg);
        prop_assert_eq!(&report, &simulate(&cfg));
        prop_assert_eq!(report.guarantees_broken, 0, "{}", report);
        prop_assert_eq!(report.reservation_checks_failed, 0, "{}", report);
    }
}
