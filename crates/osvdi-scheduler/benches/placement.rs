//! Benchmarks: one placement among 1,000 hosts with GPUs, and admitting a course into a
//! calendar of 200 reservations. `cargo bench -p osvdi-scheduler`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use osvdi_scheduler::{
    Calendar, Course, DesktopRequest, Gpu, Host, Inventory, OnDemand, PlaceOptions, Resources,
    Schedule, Slot, SplitMix64, UnixMillis, Usage, admit_course, admit_on_demand, place,
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

criterion_group!(benches, placement, admission);
criterion_main!(benches);
