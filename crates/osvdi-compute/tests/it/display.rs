//! SPICE endpoints: bound on 127.0.0.1, speaking SPICE, taking a ticket over QMP.

use std::time::Duration;

use anyhow::Result;
use osvdi_compute::{Compute, ComputeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Site, wait_ready};

/// A SPICE link message for the main channel: header ("REDQ", protocol 2.2, size) and body.
fn spice_link() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0u32.to_le_bytes()); // connection id
    body.extend([1u8, 0]); // channel type main, channel id 0
    body.extend(0u32.to_le_bytes()); // common capabilities
    body.extend(0u32.to_le_bytes()); // channel capabilities
    body.extend(18u32.to_le_bytes()); // capabilities offset
    let mut message = b"REDQ".to_vec();
    message.extend(2u32.to_le_bytes());
    message.extend(2u32.to_le_bytes());
    message.extend((body.len() as u32).to_le_bytes());
    message.extend(body);
    message
}

#[tokio::test]
async fn spice_answers_on_loopback_and_takes_a_ticket() -> Result<()> {
    let site = Site::new()?;
    let backend = site.backend().await?;
    let spec = site.spec(true);
    let id = spec.id;
    backend.create(&spec).await?;
    let mut events = backend.subscribe();
    backend.start(id).await?;
    wait_ready(&mut events, id).await?;

    let display = backend.display(id).await?;
    let addr = display.spice.expect("a SPICE endpoint");
    assert!(addr.ip().is_loopback());
    assert!((25900..=25999).contains(&addr.port()));
    let mut spice = tokio::net::TcpStream::connect(addr).await?;
    spice.write_all(&spice_link()).await?;
    let mut magic = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), spice.read_exact(&mut magic)).await??;
    assert_eq!(&magic, b"REDQ");
    drop(spice);

    backend
        .set_spice_ticket(id, "s3cret-ticket", Duration::from_secs(60))
        .await?;

    // A second SPICE desktop gets another port.
    let other = site.spec(true);
    backend.create(&other).await?;
    backend.start(other.id).await?;
    let other_addr = backend
        .display(other.id)
        .await?
        .spice
        .expect("a SPICE endpoint");
    assert_ne!(addr.port(), other_addr.port());

    // No SPICE, no ticket.
    let plain = site.spec(false);
    backend.create(&plain).await?;
    backend.start(plain.id).await?;
    assert!(matches!(
        backend
            .set_spice_ticket(plain.id, "x", Duration::from_secs(60))
            .await,
        Err(ComputeError::Unsupported(_))
    ));
    for id in [id, other.id, plain.id] {
        backend.delete(id).await?;
    }
    Ok(())
}
