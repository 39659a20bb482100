//! `osvdi simulate` on the example scenario: the report table, a sweep over GPU hosts, and
//! the error a bad file gets.

use std::path::PathBuf;

use crate::support::osvdi;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/university.toml")
}

fn run(args: &[&str], file: &std::path::Path) -> (bool, String, String) {
    let out = osvdi()
        .arg("simulate")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn simulates_the_example_university() {
    // Two days (Monday and Tuesday) keep it quick in a debug build.
    let (ok, out, err) = run(&["--days", "2"], &example());
    assert!(ok, "{err}");
    assert!(
        out.starts_with(
            "osvdi simulate: site university, 18 hosts (8 with 16 GPUs), 20 courses, 2 days \
             from 2025-09-01, warm pools on\n"
        ),
        "{out}"
    );
    for row in [
        "course members",
        "acceptance (got a desktop)",
        "reservations kept",
        "mean vGPU capacity in use",
        "peak hosts in use",
        "peak GPU hosts in use",
        "time to desktop, members",
        "time to desktop, on demand",
        "warm desktops started / used",
    ] {
        assert!(out.contains(row), "no '{row}' in:\n{out}");
    }
    assert!(
        out.contains("reservation guarantees broken                          0"),
        "{out}"
    );
    assert!(out.contains("(100.0%)"), "every reservation kept:\n{out}");
}

#[test]
fn sweeps_gpu_hosts_and_names_the_smallest_count() {
    let (ok, out, err) = run(&["--days", "1", "--sweep-hosts", "1..2"], &example());
    assert!(ok, "{err}");
    assert!(out.contains("| GPU hosts | GPUs | acceptance |"), "{out}");
    assert!(
        out.contains("\n| 1 | 2 | ") && out.contains("\n| 2 | 4 | "),
        "{out}"
    );
    assert!(
        out.contains("smallest number of GPU hosts") || out.contains("no number of GPU hosts"),
        "{out}"
    );
}

#[test]
fn a_bad_scenario_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(example()).unwrap();
    std::fs::write(&bad, text.replacen("vcpus = 64", "vcpu = 64", 1)).unwrap();
    let (ok, _, err) = run(&[], &bad);
    assert!(!ok);
    assert!(
        err.contains("invalid scenario") && err.contains("line 26") && err.contains("vcpu"),
        "{err}"
    );
}
