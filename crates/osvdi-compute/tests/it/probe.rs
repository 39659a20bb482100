//! The accelerator probe decides within its timeout, whatever it decides.

use std::time::{Duration, Instant};

use anyhow::Result;
use osvdi_compute::qemu::{Accel, KvmProbe, QemuBackend, probe_kvm};

use crate::support::Site;

#[tokio::test]
async fn kvm_probe_decides_within_its_timeout() -> Result<()> {
    let site = Site::new()?;
    std::fs::create_dir_all(&site.run_dir)?;
    let timeout = Duration::from_secs(10);
    let t = Instant::now();
    let probe = probe_kvm("qemu-system-x86_64".as_ref(), &site.run_dir, timeout).await;
    let took = t.elapsed();
    println!("KVM probe: {probe:?} after {took:?}");
    assert!(
        took < timeout + Duration::from_secs(2),
        "probe took {took:?}"
    );
    if let KvmProbe::Works { boot } = probe {
        assert!(boot <= took);
    }
    // The probe leaves nothing behind.
    assert_eq!(std::fs::read_dir(&site.run_dir)?.count(), 0);

    // Auto settles on one or the other.
    let mut config = site.config();
    config.accel = Accel::Auto;
    let backend = QemuBackend::new(config).await?;
    println!("Auto chose {}", backend.accel().as_str());
    Ok(())
}

#[tokio::test]
async fn a_probe_with_a_missing_qemu_fails_cleanly() -> Result<()> {
    let site = Site::new()?;
    std::fs::create_dir_all(&site.run_dir)?;
    let probe = probe_kvm(
        "/nonexistent/qemu".as_ref(),
        &site.run_dir,
        Duration::from_secs(2),
    )
    .await;
    assert!(
        matches!(&probe, KvmProbe::Fails { why } if why.contains("cannot run")),
        "{probe:?}"
    );
    Ok(())
}
