//! The `sluice` command: parses flags and calls the crates that do the work.
//!
//! Owns: the command-line surface (`serve`, `check`, `audit verify`,
//! `audit search`, `policy test`, `policy explain`, `mask`, `approvals`,
//! `keys generate`, `sessions list`, `sessions replay`),
//! logging setup, signal handling, and exit codes.
//! Does not: carry logic a crate should own; each subcommand is a thin call.

mod approvals_cmd;
mod audit_cmd;
mod audit_subject;
mod keys_cmd;
mod mask_cmd;
mod policy_cmd;
mod sessions_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_config::{Config, LogFormat};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Sluice: a gateway between AI agents (and people, and services) and the
/// systems that hold protected health information.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGTERM or SIGINT.
    Serve {
        /// The sluice.toml to load.
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// Once listening, write the bound addresses here as JSON
        /// (useful when config asks for port 0).
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Validate the config, open the audit store, reach every identity
    /// provider and log in to every upstream; print a summary.
    Check {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
    },
    /// Search and verify the audit log.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// List recorded sessions and replay one as a psql-like transcript.
    Sessions {
        #[command(subcommand)]
        command: sessions_cmd::SessionsCommand,
    },
    /// Try Cedar policies offline: run a file of test cases, or explain how
    /// one statement is classified and decided.
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// Mask PHI in JSONL records (`{"id", "text"}`) or plain text, stdin to
    /// stdout, one line out per line in.
    Mask(mask_cmd::MaskArgs),
    /// Review held requests through a running Sluice's API: list, show,
    /// approve, deny (`--server URL --token T`, or SLUICE_SERVER and
    /// SLUICE_TOKEN).
    Approvals {
        #[command(subcommand)]
        command: approvals_cmd::ApprovalsCommand,
    },
    /// Make the Ed25519 key that signs audit checkpoints.
    Keys {
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: library errors
/// already quote their source in their own message, context from the binary
/// does not.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, ready_file } => serve(&config, ready_file.as_deref()).await,
        Command::Check { config } => check(&config).await,
        Command::Audit { command } => audit_cmd::run(command).await,
        Command::Sessions { command } => sessions_cmd::run(command).await,
        Command::Policy { command } => Ok(policy_cmd::run(command)),
        Command::Mask(args) => mask_cmd::run(args),
        Command::Approvals { command } => Ok(approvals_cmd::run(command).await),
        Command::Keys { command } => keys_cmd::run(command),
    }
}

pub(crate) fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config_path: &Path, ready_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(config_path)?);
    init_logging(config.server.log_format);
    let server = sluice_server::Server::start(config).await?;
    let addrs = server.addrs();
    tracing::info!(postgres = ?addrs.postgres, api = ?addrs.api, "sluice is listening");
    if let Some(path) = ready_file {
        let json = serde_json::to_string(&addrs)?;
        // Written whole, then renamed, so a reader never sees half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, json).with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    }
    server.run(shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

async fn check(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    println!("{}: config is valid", config_path.display());
    let mut failed = 0;
    for line in sluice_server::check::check(&config).await {
        match line.result {
            Ok(detail) => println!("  ok    {}: {detail}", line.what),
            Err(error) => {
                failed += 1;
                println!("  FAIL  {}: {error}", line.what);
            }
        }
    }
    if failed == 0 {
        println!("all checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} check(s) failed");
        Ok(ExitCode::FAILURE)
    }
}
