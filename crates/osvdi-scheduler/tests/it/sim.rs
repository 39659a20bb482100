//! The simulator's report on the sample teaching week, as a snapshot.

use expect_test::expect;
use osvdi_scheduler::{BootTime, SimConfig, WarmPools, WarmSettings, simulate};

#[test]
fn teaching_week_report() {
    let report = simulate(&SimConfig::teaching_week(42));
    assert_eq!(report.guarantees_broken, 0);
    assert_eq!(report.reservation_checks_failed, 0);
    expect![[r#"
        simulation: 7.0 days, 11 hosts, seed 42
                          requests  admitted  shortened  refused
        course members         179       179          0        0
        on demand             2634      2630          3        1
        courses admitted / refused                         3 / 1
        reservation guarantees broken                          0
        reservation checks failed                              0
        peak vCPU use                                      47.3%
        peak memory use                                    22.7%
        peak GPUs in use                                   88.8%
        GPU type switches                                     38
        acceptance (got a desktop)                         99.9%
        reservations kept                          5 / 6 (83.3%)
        mean vGPU capacity in use                          36.5%
        peak hosts in use                                8 of 11
        peak GPU hosts in use                             4 of 5
        time to desktop, members                p50 0 s, p95 0 s
        time to desktop, on demand              p50 0 s, p95 0 s
        warm desktops started / used                       0 / 0
    "#]]
    .assert_eq(&report.to_string());
}

/// The same week with boot times: cold, every desktop boots while its person waits; with warm
/// pools, course desktops are started ahead and an office pool of four is kept.
#[test]
fn teaching_week_with_boot_times_and_warm_pools() {
    let mut cfg = SimConfig::teaching_week(42);
    for (t, p50, p95) in [("office", 20, 45), ("fiji", 40, 90), ("dl", 60, 150)] {
        let b = BootTime {
            p50_ms: p50 * 1000,
            p95_ms: p95 * 1000,
        };
        cfg.boot_times.insert(t.into(), b);
    }
    let cold = simulate(&cfg);
    assert_eq!(cold.warm_started, 0);
    assert!(cold.members_wait.p50_ms >= 10_000, "{cold}");
    cfg.warm = Some(WarmPools {
        settings: WarmSettings {
            min_idle: [("office".into(), 4)].into(),
            ..Default::default()
        },
        idle_hold_ms: 2 * 3_600_000,
    });
    let warm = simulate(&cfg);
    assert_eq!(warm, simulate(&cfg), "same seed, same report");
    assert_eq!(warm.guarantees_broken, 0, "{warm}");
    assert_eq!(warm.reservation_checks_failed, 0, "{warm}");
    assert_eq!(warm.members.admitted, warm.members.requests, "{warm}");
    // Every member finds a desktop started for the slot, booted well before they come.
    assert_eq!(warm.members_wait.warm, warm.members.requests, "{warm}");
    assert_eq!(warm.members_wait.p95_ms, 0, "{warm}");
    assert!(warm.on_demand_wait.warm > 0, "{warm}");
    assert!(
        warm.on_demand_wait.p50_ms < cold.on_demand_wait.p50_ms,
        "{warm}"
    );
    expect![[r#"
        simulation: 7.0 days, 11 hosts, seed 42
                          requests  admitted  shortened  refused
        course members         179       179          0        0
        on demand             2634      2630          3        1
        courses admitted / refused                         3 / 1
        reservation guarantees broken                          0
        reservation checks failed                              0
        peak vCPU use                                      52.0%
        peak memory use                                    24.8%
        peak GPUs in use                                   88.8%
        GPU type switches                                     40
        acceptance (got a desktop)                         99.9%
        reservations kept                          5 / 6 (83.3%)
        mean vGPU capacity in use                          36.9%
        peak hosts in use                                8 of 11
        peak GPU hosts in use                             4 of 5
        time to desktop, members                p50 0 s, p95 0 s
        time to desktop, on demand             p50 0 s, p95 66 s
        warm desktops started / used                 2169 / 2144
    "#]]
    .assert_eq(&warm.to_string());
}
