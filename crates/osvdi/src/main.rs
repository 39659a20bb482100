//! The `osvdi` command: `serve` runs the whole service; `admin` manages accounts and groups
//! directly in the database (also while the server runs); `template upload` sends an image
//! to a running server.

mod admin;
mod bench;
mod config;
mod demo;
mod serve;
mod simulate;
mod upload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "osvdi", version, about = "Open-source virtual desktop infrastructure", long_about = None)]
struct Cli {
    /// Log as JSON lines instead of text (logs go to standard error; RUST_LOG sets the level).
    #[arg(long, global = true, env = "OSVDI_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the REST API under /api/v1, /healthz and /metrics.
    Serve(serve::ServeArgs),
    /// Manage accounts and groups in the database directly (works while the server runs).
    Admin {
        #[command(flatten)]
        site: SiteArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Work with templates on a running server.
    Template {
        #[command(subcommand)]
        command: upload::TemplateCommand,
    },
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Benchmarks that print tables comparable across runs and machines.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Simulate a site over weeks (hosts, GPUs, courses, on-demand load) with the real
    /// scheduler, or find how many GPU hosts it needs (--sweep-hosts).
    Simulate(simulate::SimulateArgs),
}

/// Where a site's state is: shared by `serve` and `admin`.
#[derive(Args, Debug, Clone)]
pub(crate) struct SiteArgs {
    /// Data directory (database file, images, VM state). Default: ./data, or the config file's.
    #[arg(long, global = true, env = "OSVDI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: postgres://user:password@host/db. Default: SQLite at DATA_DIR/osvdi.db.
    #[arg(
        long,
        global = true,
        env = "OSVDI_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// TOML configuration file (see README.md); command-line options take precedence.
    #[arg(long, global = true, env = "OSVDI_CONFIG")]
    config: Option<PathBuf>,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
        // tungstenite traces whole handshakes: a cloud console proxy's URL holds its token.
        .add_directive("tungstenite=debug".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("osvdi: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Admin { site, command } => admin::run(site, command).await,
            Command::Template { command } => upload::run(command).await,
            Command::Bench { command } => bench::run(command).await,
            Command::Simulate(args) => simulate::run(args),
            Command::Openapi => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&osvdi_server::openapi())?
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osvdi: {e:#}");
            ExitCode::FAILURE
        }
    }
}
