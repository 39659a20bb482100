//! The simulator's report on the sample teaching week, as a snapshot.

use expect_test::expect;
use osvdi_scheduler::{SimConfig, simulate};

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
    "#]]
    .assert_eq(&report.to_string());
}
