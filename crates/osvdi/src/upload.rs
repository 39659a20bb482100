//! `osvdi template upload`: send a disk image to a running server, creating the template if
//! it does not exist yet, with a progress bar and an end-to-end SHA-256 check.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Subcommand;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Subcommand, Debug)]
pub(crate) enum TemplateCommand {
    /// Build the demo desktop from Debian packages and register it as a template shared with
    /// everyone (in the database directly, like `osvdi admin`).
    Demo {
        #[command(flatten)]
        site: crate::SiteArgs,
    },
    /// Upload a qcow2 or raw image as the next version of the template NAME (created first if
    /// it does not exist). Log in with OSVDI_TOKEN, or --username and a password on stdin.
    Upload {
        file: PathBuf,
        /// The template's name.
        #[arg(long)]
        name: String,
        /// The server.
        #[arg(long, env = "OSVDI_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// Log in as this user, reading the password from standard input.
        #[arg(long)]
        username: Option<String>,
        /// For a new template: virtual CPUs.
        #[arg(long, default_value_t = 2)]
        vcpus: u32,
        /// For a new template: memory in MiB.
        #[arg(long, default_value_t = 4096)]
        memory_mb: u32,
        /// For a new template: disk size in GiB (default: the image's virtual size, rounded up).
        #[arg(long)]
        disk_gb: Option<u32>,
        /// For a new template: operating system label, e.g. ubuntu-24.04.
        #[arg(long, default_value = "")]
        os: String,
        /// For a new template: description.
        #[arg(long, default_value = "")]
        description: String,
    },
}

/// The virtual size of an image as far as the client can tell without qemu-img: the qcow2
/// header's size field, or the file length.
fn virtual_size(path: &Path, file_len: u64) -> u64 {
    let mut header = [0u8; 32];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    if read.is_ok() && header[..4] == *b"QFI\xfb" {
        let mut size = [0u8; 8];
        size.copy_from_slice(&header[24..32]);
        return u64::from_be_bytes(size);
    }
    file_len
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{msg:9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}

fn sha256_file(path: &Path, len: u64) -> anyhow::Result<[u8; 32]> {
    let pb = progress(len, "hashing");
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    Ok(h.finalize().into())
}

/// Turns an error answer into a readable message.
async fn api_error(res: reqwest::Response) -> anyhow::Error {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let msg = body["error"]["message"].as_str().unwrap_or("no details");
    anyhow::anyhow!("server answered {status}: {msg}")
}

async fn token(
    client: &reqwest::Client,
    server: &str,
    username: Option<String>,
) -> anyhow::Result<String> {
    if let Some(user) = username {
        let mut password = String::new();
        std::io::stdin()
            .read_line(&mut password)
            .context("cannot read the password from standard input")?;
        let res = client
            .post(format!("{server}/api/v1/auth/login"))
            .json(&json!({"username": user, "password": password.trim_end_matches(['\n', '\r'])}))
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(api_error(res).await);
        }
        let body: Value = res.json().await?;
        return body["token"]
            .as_str()
            .map(str::to_owned)
            .context("the login answer has no token");
    }
    std::env::var("OSVDI_TOKEN").map_err(|_| {
        anyhow::anyhow!("set OSVDI_TOKEN, or pass --username and the password on stdin")
    })
}

pub(crate) async fn run(command: TemplateCommand) -> anyhow::Result<()> {
    let (file, name, server, username, vcpus, memory_mb, disk_gb, os, description) = match command {
        TemplateCommand::Demo { site } => return crate::demo::run(site).await,
        TemplateCommand::Upload {
            file,
            name,
            server,
            username,
            vcpus,
            memory_mb,
            disk_gb,
            os,
            description,
        } => (
            file,
            name,
            server,
            username,
            vcpus,
            memory_mb,
            disk_gb,
            os,
            description,
        ),
    };
    let server = server.trim_end_matches('/').to_owned();
    let len = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let client = reqwest::Client::builder().build()?;
    let token = token(&client, &server, username).await?;
    let auth = format!("Bearer {token}");

    let res = client
        .get(format!("{server}/api/v1/templates"))
        .header(header::AUTHORIZATION, &auth)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(api_error(res).await);
    }
    let templates: Vec<Value> = res.json().await?;
    let existing = templates.iter().find(|t| {
        t["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&name))
    });
    let id = match existing {
        Some(t) => t["id"].as_str().context("template without id")?.to_owned(),
        None => {
            let gib = 1u64 << 30;
            let disk_gb = disk_gb.unwrap_or_else(|| {
                u32::try_from(virtual_size(&file, len).div_ceil(gib).max(1)).unwrap_or(u32::MAX)
            });
            let res = client
                .post(format!("{server}/api/v1/templates"))
                .header(header::AUTHORIZATION, &auth)
                .json(
                    &json!({"name": name, "description": description, "os": os, "vcpus": vcpus,
                              "memory_mb": memory_mb, "disk_gb": disk_gb}),
                )
                .send()
                .await?;
            if res.status() != StatusCode::CREATED {
                return Err(api_error(res).await);
            }
            let t: Value = res.json().await?;
            eprintln!("Created template '{name}'");
            t["id"].as_str().context("template without id")?.to_owned()
        }
    };

    let digest = sha256_file(&file, len)?;
    let pb = progress(len, "uploading");
    let reader = tokio::fs::File::open(&file).await?;
    let counted = pb.clone();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20).inspect(move |chunk| {
            if let Ok(c) = chunk {
                counted.inc(c.len() as u64);
            }
        });
    let res = client
        .put(format!("{server}/api/v1/templates/{id}/image"))
        .header(header::AUTHORIZATION, &auth)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(
            "content-digest",
            format!(
                "sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?;
    pb.finish_and_clear();
    if res.status() != StatusCode::CREATED {
        let e = api_error(res).await;
        bail!("upload refused: {e}");
    }
    let v: Value = res.json().await?;
    println!(
        "Uploaded {} as version {} of '{name}' ({} bytes, {}; sha256 {})",
        file.display(),
        v["version"],
        v["size_bytes"],
        v["format"].as_str().unwrap_or("?"),
        v["sha256"].as_str().unwrap_or("?")
    );
    Ok(())
}
