//! Benchmarks: one placement among 100, 1,000 and 10,000 hosts with GPUs; admitting a course
//! into a calendar of 200 reservations; admitting a whole 16-week timetable of 500 course
//! slots. `cargo bench -p osvdi-scheduler`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use osvdi_scheduler::{
    Calendar, Course, Date, DesktopRequest, Gpu, Host, Inventory, OnDemand, PlaceOptions,
    Resources, Schedule, Slot, SplitMix64, UnixMillis, Usage, Weekday, Weekly, admit_course,
    admit_on_demand, place,
};

const H: i64 = 3_600_000;

/// `n` hosts; three in four have two NVIDIA GPUs. About half their room is in use.
fn fleet(n: usize, rng: &mut SplitMix64) -> (Inventory, Usage) {
    let hosts = (0..n)
        .map(|i| {
            let h = Host::new(
                format!("h{i:04}"),
                "main",
                Resources::new(64, 262_144, 2000),
            );
            if i % 4 == 0 {
                h
            } else {
                let gpu = || Gpu::single_type([("nvidia-35", 4), ("nvidia-36", 2)]);
                h.with_trait("gpu").with_gpu(gpu()).with_gpu(gpu())
            }
        })
        .collect();
    let inv = Inventory::new(hosts).expect("unique hosts");
    let mut usage = Usage::empty(&inv);
    for i in 0..n {
        let k = rng.below(8) as u32;
        usage.add(
            i,
            Resources::new(4 * k, 16_384 * u64::from(k), 50 * u64::from(k)),
            None,
        );
        if i % 4 != 0 && rng.below(2) == 0 {
            let t = if rng.below(3) == 0 {
                "nvidia-36"
            } else {
                "nvidia-35"
            };
            usage.add(i, Resources::ZERO, Some((0, &t.into())));
        }
    }
    (inv, usage)
}

fn placement_scaling(c: &mut Criterion) {
    let vgpu = DesktopRequest::new("fiji", Resources::new(4, 16_384, 50)).with_vgpu("nvidia-35");
    let mut group = c.benchmark_group("place vgpu desktop");
    for n in [100, 1_000, 10_000] {
        let (inv, usage) = fleet(n, &mut SplitMix64::new(1));
        group.bench_with_input(BenchmarkId::new("hosts", n), &n, |b, _| {
            b.iter(|| place(&inv, &usage, black_box(&vgpu), &PlaceOptions::default()));
        });
    }
    group.finish();
}

/// A semester: 16 weeks of weekly courses (31 courses, one weekday each, 8:00 to 18:00),
/// 496 slots, plus 4 one-off exam slots: 500 slots of 2 to 12 desktops.
fn timetable(rng: &mut SplitMix64) -> Vec<Course> {
    let shapes = [
        DesktopRequest::new("office", Resources::new(2, 4096, 20)),
        DesktopRequest::new("fiji", Resources::new(4, 16_384, 50)).with_vgpu("nvidia-35"),
    ];
    let first: Date = "2027-03-01".parse().expect("date");
    let last: Date = "2027-06-20".parse().expect("date");
    let mut courses: Vec<Course> = (0..31)
        .map(|i| {
            let hour = 8 + rng.below(8) as u32;
            Course {
                id: format!("w{i}").into(),
                group: format!("g{i}").into(),
                shape: shapes[rng.below(2) as usize].clone(),
                count: 2 + rng.below(11) as u32,
                schedule: Schedule::Weekly(Weekly {
                    first,
                    last,
                    days: [[
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri,
                    ][(i % 5) as usize]]
                    .into_iter()
                    .collect(),
                    start_minute: hour * 60,
                    minutes: 120,
                    except: Default::default(),
                }),
                utc_offset_minutes: 60,
            }
        })
        .collect();
    for i in 0..4 {
        let start = first.at(9 * 60, 60).0 + (100 + i) * 24 * H;
        courses.push(Course {
            id: format!("exam{i}").into(),
            group: format!("x{i}").into(),
            shape: shapes[0].clone(),
            count: 10,
            schedule: Schedule::Once(Slot {
                start: UnixMillis(start),
                end: UnixMillis(start + 3 * H),
            }),
            utc_offset_minutes: 60,
        });
    }
    courses
}

fn semester(c: &mut Criterion) {
    let mut rng = SplitMix64::new(3);
    let (inv, _) = fleet(100, &mut rng);
    let courses = timetable(&mut rng);
    let slots: usize = courses
        .iter()
        .map(|c| c.slots().expect("valid").len())
        .sum();
    assert_eq!(slots, 500);
    let mut group = c.benchmark_group("admit a 16-week timetable");
    group.sample_size(10);
    group.bench_function("500 slots, 100 hosts", |b| {
        b.iter(|| {
            let mut cal = Calendar::new();
            for course in &courses {
                cal = admit_course(&cal, &inv, black_box(course)).expect("the timetable fits");
            }
            cal
        });
    });
    group.finish();
}

fn placement(c: &mut Criterion) {
    let (inv, usage) = fleet(1000, &mut SplitMix64::new(1));
    let vgpu = DesktopRequest::new("fiji", Resources::new(4, 16_384, 50)).with_vgpu("nvidia-35");
    let plain = DesktopRequest::new("office", Resources::new(2, 4096, 20));
    let keep = DesktopRequest::new("dl", Resources::new(16, 65_536, 100)).with_vgpu("nvidia-36");
    c.bench_function("place vgpu desktop, 1000 hosts", |b| {
        b.iter(|| place(&inv, &usage, black_box(&vgpu), &PlaceOptions::default()));
    });
    c.bench_function("place plain desktop, 1000 hosts", |b| {
        b.iter(|| place(&inv, &usage, black_box(&plain), &PlaceOptions::default()));
    });
    let opts = PlaceOptions {
        keep_room_for: Some(&keep),
        strategy: None,
    };
    c.bench_function("place vgpu desktop keeping room, 1000 hosts", |b| {
        b.iter(|| place(&inv, &usage, black_box(&vgpu), &opts));
    });
}

/// 200 one-off reservations over a week (8:00 to 20:00), 2 to 20 desktops each.
fn calendar(inv: &Inventory, rng: &mut SplitMix64) -> Calendar {
    let shapes = [
        DesktopRequest::new("office", Resources::new(2, 4096, 20)),
        DesktopRequest::new("fiji", Resources::new(4, 16_384, 50)).with_vgpu("nvidia-35"),
        DesktopRequest::new("dl", Resources::new(8, 32_768, 100)).with_vgpu("nvidia-36"),
    ];
    let mut cal = Calendar::new();
    let mut n = 0;
    while cal.reservations().len() < 200 {
        let day = rng.below(7) as i64;
        let start = day * 24 * H + (8 + rng.below(10) as i64) * H;
        let course = Course {
            id: format!("c{n}").into(),
            group: format!("g{n}").into(),
            shape: shapes[rng.below(3) as usize].clone(),
            count: 2 + rng.below(19) as u32,
            schedule: Schedule::Once(Slot {
                start: UnixMillis(start),
                end: UnixMillis(start + (1 + rng.below(3) as i64) * H),
            }),
            utc_offset_minutes: 0,
        };
        n += 1;
        if let Ok(c) = admit_course(&cal, inv, &course) {
            cal = c;
        }
        assert!(n < 10_000, "the calendar never fills");
    }
    cal
}

fn admission(c: &mut Criterion) {
    let mut rng = SplitMix64::new(2);
    let (inv, _) = fleet(100, &mut rng);
    let cal = calendar(&inv, &mut rng);
    let course = Course {
        id: "new".into(),
        group: "new".into(),
        shape: DesktopRequest::new("fiji", Resources::new(4, 16_384, 50)).with_vgpu("nvidia-35"),
        count: 30,
        schedule: Schedule::Once(Slot {
            start: UnixMillis(2 * 24 * H + 10 * H),
            end: UnixMillis(2 * 24 * H + 12 * H),
        }),
        utc_offset_minutes: 0,
    };
    c.bench_function(
        "admit course of 30 beside 200 reservations, 100 hosts",
        |b| b.iter(|| admit_course(&cal, &inv, black_box(&course))),
    );
    let ask = OnDemand {
        desktop: "d".into(),
        request: DesktopRequest::new("office", Resources::new(2, 4096, 20)),
        groups: vec![],
        end: Some(UnixMillis(2 * 24 * H + 13 * H)),
    };
    c.bench_function(
        "admit on-demand desktop beside 200 reservations, 100 hosts",
        |b| {
            let now = UnixMillis(2 * 24 * H + 9 * H);
            b.iter(|| admit_on_demand(now, &cal, &inv, &[], black_box(&ask)));
        },
    );
}

criterion_group!(benches, placement, placement_scaling, admission, semester);
criterion_main!(benches);
