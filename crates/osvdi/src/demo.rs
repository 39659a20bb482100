//! `osvdi template demo`: builds the demo desktop (a Debian kernel and a busybox initramfs on
//! a small bootable disk) and registers it as a template shared with everyone, so that a new
//! site can launch a desktop at once. Running it again is harmless: an unchanged image is not
//! uploaded twice.

use std::sync::Arc;

use anyhow::Context;
use osvdi_core::{Caller, Core, NewTemplate, Sharing, UploadExpectation};
use osvdi_model::{DisplayProtocol, Principal, ReadyRule, Role, TemplateSpec, Visibility};
use sha2::{Digest, Sha256};

use crate::SiteArgs;
use crate::config::Site;

/// The demo template's name.
pub(crate) const DEMO_NAME: &str = "osvdi demo desktop";

pub(crate) async fn run(site: SiteArgs) -> anyhow::Result<()> {
    let site = Site::resolve(&site)?;
    let core = Arc::new(site.open_core().await?);
    if let Some(password) = core.bootstrap_admin().await? {
        println!("Created the first account: user 'admin', password '{password}'.");
        println!("This password is not shown again; change it after logging in.");
    }
    let outcome = register(&core, &site.data_dir).await;
    core.store().close().await;
    println!("{}", outcome?);
    Ok(())
}

/// Builds the image and makes it the demo template's current version; returns what it did.
pub(crate) async fn register(
    core: &Arc<Core>,
    data_dir: &std::path::Path,
) -> anyhow::Result<String> {
    let owner = core
        .store()
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.role == Role::Admin)
        .context("no admin account to own the demo template")?;
    let caller = Caller {
        who: Principal {
            id: owner.id,
            name: owner.name.clone(),
            role: Role::Admin,
            groups: vec![],
        },
        client: None,
    };
    let dir = data_dir.join("demo");
    std::fs::create_dir_all(&dir)?;
    let image = dir.join("osvdi-demo.qcow2");
    let out = image.clone();
    let built = tokio::task::spawn_blocking(move || {
        osvdi_demo::build(&out, &osvdi_demo::DemoOptions::default())
    })
    .await?
    .context("cannot build the demo desktop image")?;
    let bytes = tokio::fs::read(&image).await?;
    let sha256 = hex::encode(Sha256::digest(&bytes));

    let template = match core.store().template_by_name(DEMO_NAME).await? {
        Some(t) => t,
        None => {
            let spec = TemplateSpec {
                name: DEMO_NAME.into(),
                description: format!(
                    "A tiny Linux desktop (Debian kernel {}, busybox shell) that boots in seconds; \
                     for trying osvdi out and for its tests.",
                    built.kernel_version
                ),
                os: "linux-busybox".into(),
                vcpus: 1,
                memory_mb: 256,
                disk_gb: 1,
                vgpu_type: None,
                protocols: vec![DisplayProtocol::Vnc, DisplayProtocol::Spice],
                tags: vec!["demo".into()],
                ready: ReadyRule::SerialMarker("OSVDI-READY".into()),
                idle_timeout_min: Some(120),
                max_lifetime_min: Some(480),
                warm_pool: 0,
            };
            let sharing = Sharing {
                visibility: Visibility::Everyone,
                groups: vec![],
            };
            core.create_template(&caller, NewTemplate { spec, sharing })
                .await?
        }
    };
    if let Some(current) = template.current_version {
        let v = core.store().version(template.id, current).await?;
        if v.sha256 == sha256 {
            let _ = tokio::fs::remove_file(&image).await;
            return Ok(format!(
                "The demo template '{DEMO_NAME}' is up to date (version {current})."
            ));
        }
    }
    let expect = UploadExpectation {
        length: Some(bytes.len() as u64),
        sha256: Some(Sha256::digest(&bytes).into()),
    };
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
    let v = core
        .upload_image(&caller, template.id, expect, body)
        .await?;
    let _ = tokio::fs::remove_file(&image).await;
    Ok(format!(
        "Registered the demo template '{DEMO_NAME}' version {} (shared with everyone).",
        v.version
    ))
}
