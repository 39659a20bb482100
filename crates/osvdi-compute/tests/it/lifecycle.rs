//! One desktop through its life on the real QEMU (TCG): create, boot to ready, VNC, stop,
//! suspend and resume, crash, delete.

use std::time::{Duration, Instant};

use anyhow::Result;
use osvdi_compute::qemu::bootsector::{Step, boot_sector};
use osvdi_compute::{Compute, ComputeError, ComputeEvent, PowerState, ReadyProbe, VncEndpoint};
use tokio::io::AsyncReadExt;

use serde_json::json;

use crate::support::{READY_TIMEOUT, Site, is_desktop_process, kill9, qmp, wait_event, wait_ready};

#[tokio::test]
async fn boots_to_ready_serves_vnc_and_is_deleted() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let spec = site.spec(false);
    let id = spec.id;
    let image_before = std::fs::read(&site.image)?;
    backend.create(&spec).await?;
    backend.create(&spec).await?; // idempotent
    let mut other = spec.clone();
    other.memory_mb = 128;
    assert!(matches!(
        backend.create(&other).await,
        Err(ComputeError::Exists(_))
    ));
    assert_eq!(backend.status(id).await?, PowerState::Stopped);
    assert!(site.dir(id).join("disk.qcow2").exists());

    let mut events = backend.subscribe();
    let started = Instant::now();
    backend.start(id).await?;
    let launched = started.elapsed();
    assert!(matches!(
        backend.status(id).await?,
        PowerState::Booting | PowerState::Running
    ));
    wait_ready(&mut events, id).await?;
    println!(
        "start returned after {launched:?}, Ready after {:?}",
        started.elapsed()
    );
    assert_eq!(backend.status(id).await?, PowerState::Running);
    backend.start(id).await?; // idempotent
    assert_eq!(backend.list().await?, vec![(id, PowerState::Running)]);

    let display = backend.display(id).await?;
    assert_eq!(display.spice, None);
    let VncEndpoint::Unix(path) = display.vnc else {
        anyhow::bail!("expected a unix VNC socket")
    };
    let mut vnc = tokio::net::UnixStream::connect(&path).await?;
    let mut greeting = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), vnc.read_exact(&mut greeting)).await??;
    assert_eq!(&greeting, b"RFB 003.008\n");
    drop(vnc);

    let pid = site.pid(id).expect("a running QEMU");
    backend.delete(id).await?;
    assert!(!site.dir(id).exists());
    assert!(!is_desktop_process(pid, id));
    backend.delete(id).await?; // idempotent
    assert!(matches!(
        backend.status(id).await,
        Err(ComputeError::NotFound(_))
    ));
    assert_eq!(
        std::fs::read(&site.image)?,
        image_before,
        "the template image was written"
    );
    Ok(())
}

#[tokio::test]
async fn stop_quits_a_guest_that_ignores_the_power_button() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let spec = site.spec(false);
    let id = spec.id;
    backend.create(&spec).await?;
    let mut events = backend.subscribe();
    backend.start(id).await?;
    wait_ready(&mut events, id).await?;
    let pid = site.pid(id).expect("a running QEMU");

    let grace = Duration::from_secs(1);
    let asked = Instant::now();
    backend.stop(id, grace).await?;
    let took = asked.elapsed();
    println!("stop with {grace:?} grace took {took:?}");
    assert!(took >= grace, "stop returned before the grace period");
    assert!(took < grace + Duration::from_secs(4), "stop took {took:?}");
    assert!(!is_desktop_process(pid, id));
    assert_eq!(backend.status(id).await?, PowerState::Stopped);
    assert!(!site.dir(id).join("qemu.pid").exists());
    backend.stop(id, grace).await?; // idempotent
    // A stop we asked for is no news.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(matches!(
        events.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Empty)
    ));

    // A fresh boot after the stop becomes ready again.
    backend.start(id).await?;
    wait_ready(&mut events, id).await?;
    backend.stop(id, Duration::ZERO).await?;
    Ok(())
}

#[tokio::test]
async fn suspend_and_resume() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let spec = site.spec(false);
    let id = spec.id;
    backend.create(&spec).await?;
    assert!(matches!(
        backend.suspend(id).await,
        Err(ComputeError::WrongState { .. })
    ));
    let mut events = backend.subscribe();
    backend.start(id).await?;
    wait_ready(&mut events, id).await?;
    let before = site.pid(id).expect("a running QEMU");

    let t = Instant::now();
    backend.suspend(id).await?;
    let suspend_took = t.elapsed();
    let state = site.dir(id).join("state.bin");
    assert!(state.exists());
    assert!(!site.dir(id).join("state.bin.tmp").exists());
    assert!(!is_desktop_process(before, id));
    assert_eq!(site.pid(id), None);
    assert_eq!(backend.status(id).await?, PowerState::Suspended);
    assert!(matches!(
        backend.display(id).await,
        Err(ComputeError::WrongState { .. })
    ));
    assert!(matches!(
        backend.start(id).await,
        Err(ComputeError::WrongState { .. })
    ));
    backend.suspend(id).await?; // idempotent

    let state_bytes = std::fs::metadata(&state)?.len();
    let t = Instant::now();
    backend.resume(id).await?;
    let resume_took = t.elapsed();
    println!(
        "suspend took {suspend_took:?} (state file {state_bytes} bytes), resume took {resume_took:?}"
    );
    assert_eq!(backend.status(id).await?, PowerState::Running);
    let after = site.pid(id).expect("a resumed QEMU");
    assert_ne!(before, after);
    assert!(is_desktop_process(after, id));
    assert!(!state.exists());
    // The guest runs (QEMU serves one QMP client: let go of it to ask).
    backend.shutdown().await;
    let status = qmp(
        &site.dir(id).join("qmp.sock"),
        &[json!({"execute": "query-status"})],
    )?;
    assert_eq!(status[0]["status"], "running");
    let backend = site.backend().await?;
    backend.stop(id, Duration::ZERO).await?;
    assert!(!is_desktop_process(after, id));
    assert!(matches!(
        backend.resume(id).await,
        Err(ComputeError::WrongState { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn a_killed_qemu_is_reported_and_crashed() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let spec = site.spec(false);
    let id = spec.id;
    backend.create(&spec).await?;
    let mut events = backend.subscribe();
    backend.start(id).await?;
    wait_ready(&mut events, id).await?;

    let pid = site.pid(id).expect("a running QEMU");
    let killed = Instant::now();
    kill9(pid)?;
    let event = wait_event(&mut events, Duration::from_secs(3), |e| {
        matches!(e, ComputeEvent::Exited { .. })
    })
    .await?;
    println!(
        "Exited event {:?} after kill -9: {event:?}",
        killed.elapsed()
    );
    let ComputeEvent::Exited { id: exited, reason } = event else {
        unreachable!()
    };
    assert_eq!(exited, id);
    assert!(reason.contains("process disappeared"), "{reason}");
    let PowerState::Crashed { reason } = backend.status(id).await? else {
        anyhow::bail!("not Crashed")
    };
    assert!(reason.contains("unexpectedly"), "{reason}");

    // A crashed desktop boots again.
    backend.start(id).await?;
    wait_ready(&mut events, id).await?;
    backend.delete(id).await?;
    Ok(())
}

#[tokio::test]
async fn start_failures_carry_qemus_message() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let spec = site.spec(false);
    let id = spec.id;
    backend.create(&spec).await?;
    std::fs::write(site.dir(id).join("disk.qcow2"), b"not a qcow2 image")?;
    let Err(ComputeError::Failed(message)) = backend.start(id).await else {
        anyhow::bail!("start succeeded")
    };
    println!("start failed with: {message}");
    assert!(message.starts_with("QEMU did not start: "), "{message}");
    assert!(message.contains("qcow2"), "{message}");
    assert_eq!(backend.status(id).await?, PowerState::Stopped);
    assert_eq!(site.pid(id), None);
    Ok(())
}

#[tokio::test]
async fn a_guest_that_powers_off_is_stopped() -> Result<()> {
    let site = Site::new()?;
    let image = site.run_dir.with_file_name("poweroff.img");
    let program = [
        Step::Print(b"OSVDI-READY\r\n".to_vec()),
        Step::WaitTicks(4),
        Step::PowerOff,
    ];
    std::fs::write(&image, boot_sector(&program)?)?;
    let backend = site.backend().await?;
    let mut spec = site.spec(false);
    spec.image = image;
    let id = spec.id;
    backend.create(&spec).await?;
    let mut events = backend.subscribe();
    backend.start(id).await?;
    let event = wait_event(&mut events, READY_TIMEOUT, |e| {
        matches!(e, ComputeEvent::Exited { .. })
    })
    .await?;
    assert_eq!(
        event,
        ComputeEvent::Exited {
            id,
            reason: "The guest powered off".into()
        }
    );
    assert_eq!(backend.status(id).await?, PowerState::Stopped);
    Ok(())
}

#[tokio::test]
async fn ready_after_a_delay() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let mut spec = site.spec(false);
    spec.ready = ReadyProbe::After(Duration::from_millis(800));
    let id = spec.id;
    backend.create(&spec).await?;
    let mut events = backend.subscribe();
    let started = Instant::now();
    backend.start(id).await?;
    assert_eq!(backend.status(id).await?, PowerState::Booting);
    wait_ready(&mut events, id).await?;
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(backend.status(id).await?, PowerState::Running);
    backend.delete(id).await?;
    Ok(())
}
