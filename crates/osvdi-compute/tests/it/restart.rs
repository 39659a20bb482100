//! A second backend over the same run folder, as after a restart of the server: it finds
//! every desktop in the state it was left in, finishes what was left half done, and removes
//! what belongs to nobody.

use std::time::{Duration, Instant};

use anyhow::Result;
use osvdi_compute::{Compute, ComputeEvent, PowerState};
use osvdi_model::DesktopId;
use serde_json::json;

use crate::support::{Site, kill9, qmp, wait_event, wait_ready};

#[tokio::test]
async fn a_new_backend_finds_every_desktop() -> Result<()> {
    let site = Site::new()?;
    let first = site.backend().await?;
    let mut events = first.subscribe();
    let [running, suspended, crashed, stopped, booting] = [(); 5].map(|_| site.spec(false));
    let mut booting = booting;
    booting.ready = osvdi_compute::ReadyProbe::SerialMarker("NEVER-SAID".into());
    for spec in [&running, &suspended, &crashed, &stopped, &booting] {
        first.create(spec).await?;
    }
    for spec in [&running, &suspended, &crashed] {
        first.start(spec.id).await?;
        wait_ready(&mut events, spec.id).await?;
    }
    first.start(booting.id).await?;
    first.suspend(suspended.id).await?;
    first.shutdown().await;
    drop(first);

    // While no server runs: one desktop dies, one folder loses its record, a suspend left
    // a temporary file behind.
    kill9(site.pid(crashed.id).expect("a running QEMU"))?;
    let orphan = site.dir(DesktopId::random());
    std::fs::create_dir_all(&orphan)?;
    std::fs::write(orphan.join("disk.qcow2"), b"")?;
    std::fs::write(site.dir(stopped.id).join("state.bin.tmp"), b"partial")?;

    let second = site.backend().await?;
    let mut listed = second.list().await?;
    listed.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (running.id, PowerState::Running),
        (suspended.id, PowerState::Suspended),
        (stopped.id, PowerState::Stopped),
        (booting.id, PowerState::Booting),
    ];
    expected.sort_by_key(|(id, _)| *id);
    let crash = listed
        .iter()
        .position(|(id, _)| *id == crashed.id)
        .expect("the crashed desktop is listed");
    let (_, crash_state) = listed.remove(crash);
    assert!(
        matches!(crash_state, PowerState::Crashed { .. }),
        "{crash_state:?}"
    );
    assert_eq!(listed, expected);
    assert!(!orphan.exists());
    assert!(!site.dir(stopped.id).join("state.bin.tmp").exists());

    // The adopted desktops are fully in hand: watched, stoppable, resumable.
    let mut events = second.subscribe();
    let pid = site.pid(booting.id).expect("a running QEMU");
    let killed = Instant::now();
    kill9(pid)?;
    let event = wait_event(&mut events, Duration::from_secs(3), |e| {
        matches!(e, ComputeEvent::Exited { .. })
    })
    .await?;
    println!(
        "Exited event of an adopted desktop {:?} after kill -9",
        killed.elapsed()
    );
    assert!(matches!(event, ComputeEvent::Exited { id, .. } if id == booting.id));
    second.stop(running.id, Duration::from_millis(200)).await?;
    assert_eq!(second.status(running.id).await?, PowerState::Stopped);
    assert_eq!(site.pid(running.id), None);
    second.resume(suspended.id).await?;
    assert_eq!(second.status(suspended.id).await?, PowerState::Running);
    second.stop(suspended.id, Duration::ZERO).await?;
    Ok(())
}

#[tokio::test]
async fn adoption_finishes_a_suspend_whose_server_died() -> Result<()> {
    let site = Site::new()?;
    let first = site.backend().await?;
    let mut events = first.subscribe();
    let spec = site.spec(false);
    let id = spec.id;
    first.create(&spec).await?;
    first.start(id).await?;
    wait_ready(&mut events, id).await?;
    first.shutdown().await;
    drop(first);

    // What suspend does, up to the migration's end, and then the server is gone.
    let dir = site.dir(id);
    let tmp = dir.join("state.bin.tmp");
    let socket = dir.join("qmp.sock");
    let uri = format!("exec:cat > '{}'", tmp.display());
    qmp(
        &socket,
        &[
            json!({"execute": "stop"}),
            json!({"execute": "migrate", "arguments": {"uri": uri}}),
        ],
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while qmp(&socket, &[json!({"execute": "query-migrate"})])?[0]["status"] != "completed" {
        anyhow::ensure!(Instant::now() < deadline, "migration did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = site.pid(id).expect("QEMU waits in postmigrate");

    let second = site.backend().await?;
    assert_eq!(second.status(id).await?, PowerState::Suspended);
    assert!(dir.join("state.bin").exists());
    assert!(!tmp.exists());
    assert!(!crate::support::is_desktop_process(pid, id));
    second.resume(id).await?;
    assert_eq!(second.status(id).await?, PowerState::Running);
    second.delete(id).await?;
    Ok(())
}

#[tokio::test]
async fn adoption_continues_a_paused_desktop() -> Result<()> {
    let site = Site::new()?;
    let first = site.backend().await?;
    let mut events = first.subscribe();
    let spec = site.spec(false);
    let id = spec.id;
    first.create(&spec).await?;
    first.start(id).await?;
    wait_ready(&mut events, id).await?;
    first.shutdown().await;
    drop(first);
    let socket = site.dir(id).join("qmp.sock");
    qmp(&socket, &[json!({"execute": "stop"})])?;

    let second = site.backend().await?;
    assert_eq!(second.status(id).await?, PowerState::Running);
    second.shutdown().await;
    let status = qmp(&socket, &[json!({"execute": "query-status"})])?;
    assert_eq!(status[0]["status"], "running");
    Ok(())
}
