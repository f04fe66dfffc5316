//! `sluice audit verify`, `export` and `search`.
//!
//! Owns: flags, output formats (table or JSON lines), progress bars and exit
//! codes.
//! Does not: read the store or check anything itself (sluice-audit's
//! `AuditReader` and `verify_export` do).

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use sluice_audit::{AuditReader, AuditRecord, SearchFilter, verify_export};
use sluice_evidence::{SigningKey, VerifierKey};
use sluice_model::AuditEvent;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the log: every record's chain hash, the Merkle root at every
    /// signed checkpoint, that no record a checkpoint covers is gone, and
    /// every recording payload; name the first broken record.
    /// `verify DIR --key PUB` checks an export with nothing but the public
    /// key (no server, no config); `verify --config F` checks the live store.
    /// Exits 0 if intact, 1 if broken.
    Verify {
        /// An export folder (`sluice audit export`). Without it, --config.
        dir: Option<PathBuf>,
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: Option<PathBuf>,
        /// The node's public key (`PATH.pub` of `sluice keys generate`),
        /// obtained independently of the export. Required with DIR; with
        /// --config it defaults to the public half of audit.signing_key_file.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete recording payloads older than each connection's
    /// `retention.payload_days`, replace the statement text of request
    /// records older than `retention.statement_days`, and expire records
    /// older than `retention.index_days` to their kind and connection (never
    /// under `legal_hold`), keeping every leaf hash so the log still
    /// verifies, and record what went.
    /// A running `sluice serve` does this hourly; this command needs the
    /// server stopped (one log has one writer), except with --dry-run.
    Prune {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// Show what would go; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the log to a new folder: records as JSON lines, the signed
    /// checkpoints, recording payloads and the public key, for `verify DIR`.
    Export {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// The folder to create (it must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Find records by principal, connection, session, kind, time and text.
    Search {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// The principal's subject (API key name or token `sub`).
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        connection: Option<String>,
        #[arg(long)]
        session: Option<String>,
        /// session_open, session_close, request, outcome, auth_failure,
        /// approval, alert_delivery, recording_chunk, payloads_pruned or
        /// expired.
        #[arg(long)]
        kind: Option<String>,
        /// Records whose JSON body contains this exact text (a scan of what
        /// the other filters leave): `--contains 'FROM patients'`.
        #[arg(long)]
        contains: Option<String>,
        /// An RFC 3339 time, or a duration back from now such as `15m` or `2h`.
        #[arg(long)]
        since: Option<String>,
        /// At most this many records: the newest ones.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON record per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Accounting of disclosures: every principal and request that received
    /// one patient's data (by MRN, SSN or name), with time.
    Subject(crate::audit_subject::SubjectArgs),
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Subject(args) => crate::audit_subject::run(args).await,
        AuditCommand::Verify { dir, config, key, json } => verify(dir, config, key, json).await,
        AuditCommand::Prune { config, dry_run, json } => prune(&config, dry_run, json).await,
        AuditCommand::Export { config, out } => {
            let config = crate::load_config(&config)?;
            let key = configured_key(&config)?;
            let reader = AuditReader::open(&config.storage.url).await?;
            let bar = progress_bar("records");
            let summary = reader
                .export(&out, key.as_ref(), |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "exported {} records, {} checkpoints and {} recording payloads to {}",
                summary.records,
                summary.checkpoints,
                summary.payloads,
                out.display()
            );
            if key.is_none() {
                println!("no audit.signing_key_file is configured: the export has no checkpoints to verify against");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Search { config, principal, connection, session, kind, contains, since, limit, json } => {
            let config = crate::load_config(&config)?;
            let since = since.map(|s| parse_since(&s)).transpose()?;
            let reader = AuditReader::open(&config.storage.url).await?;
            let filter = SearchFilter { principal, connection, session, kind, contains, since, limit };
            let records = reader.search(&filter).await?;
            for record in &records {
                if json {
                    println!("{}", serde_json::to_string(record)?);
                } else {
                    println!("{}", table_row(record));
                }
            }
            if !json {
                println!("({} records)", records.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn verify(
    dir: Option<PathBuf>,
    config: Option<PathBuf>,
    key: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let read_key = |path: &PathBuf| -> anyhow::Result<VerifierKey> {
        let text = std::fs::read_to_string(path).with_context(|| format!("--key {}", path.display()))?;
        VerifierKey::parse(&text).with_context(|| format!("--key {}", path.display()))
    };
    let report = match (dir, config) {
        (Some(dir), _) => {
            let key = key.as_ref().context("verifying an export needs --key PUB, the node's public key")?;
            let key = read_key(key)?;
            let bar = progress_bar("bytes");
            let shown = bar.clone();
            let report = tokio::task::spawn_blocking(move || {
                verify_export(&dir, &key, |done, total| {
                    shown.set_length(total);
                    shown.set_position(done);
                })
            })
            .await??;
            bar.finish_and_clear();
            report
        }
        (None, Some(config)) => {
            let config = crate::load_config(&config)?;
            let key = match &key {
                Some(path) => Some(read_key(path)?),
                None => configured_key(&config)?,
            };
            let mut reader = AuditReader::open(&config.storage.url).await?;
            if let Some(key) = key {
                reader = reader.with_checkpoint_key(key);
            }
            let bar = progress_bar("records");
            let report = reader
                .verify(|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await?;
            bar.finish_and_clear();
            report
        }
        (None, None) => anyhow::bail!("give an export folder (verify DIR --key PUB) or --config F"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.broken {
            None => println!(
                "audit log intact: {} records, {} signed checkpoints verified, {} recording payloads, root {}",
                report.records, report.checkpoints_verified, report.payloads_verified, report.tree_root
            ),
            Some(broken) => {
                println!(
                    "audit log BROKEN at record {}: {broken} ({} records before it are intact)",
                    broken.seq, report.records
                )
            }
        }
        if !report.incomplete_requests.is_empty() {
            println!(
                "{} request(s) have no outcome record (outcome unknown: Sluice stopped before it was written): {}",
                report.incomplete_requests.len(),
                report.incomplete_requests.join(", ")
            );
        }
    }
    Ok(if report.broken.is_none() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn prune(config: &std::path::Path, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(config)?;
    let rules = sluice_server::retention::prune_rules(&config);
    // The writer first: it refuses while another process (a running server)
    // writes the log, and the plan is then made under its lock.
    let writer = match dry_run {
        true => None,
        false => {
            // Signed when the writer stops, so the prune record is under a checkpoint.
            let options = sluice_audit::AuditOptions {
                max_batch: config.audit.max_batch,
                signing_key: signing_key(&config)?.map(std::sync::Arc::new),
                ..Default::default()
            };
            Some(sluice_audit::AuditLog::open(&config.storage.url, options).await?)
        }
    };
    let reader = AuditReader::open(&config.storage.url).await?;
    let plans = reader.prune_plan(&rules, Utc::now()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        if rules.is_empty() {
            println!("no connection sets retention.payload_days, statement_days or index_days: nothing is ever pruned");
        } else if plans.is_empty() {
            println!("nothing is due");
        }
        for plan in &plans {
            let what = match (plan.statements.len(), plan.expired.len()) {
                (0, 0) => format!("{} recording chunk payloads, {} bytes", plan.chunks.len(), plan.bytes()),
                (0, n) => format!("{n} records expire"),
                (n, _) => format!("{n} request records' statement text"),
            };
            println!(
                "{}: {what}, recorded {} .. before {} ({})",
                plan.connection,
                plan.oldest.as_deref().unwrap_or("-"),
                plan.cutoff,
                plan.reason
            );
        }
    }
    let Some(writer) = writer else {
        return Ok(ExitCode::SUCCESS);
    };
    let result = writer.prune(plans).await;
    writer.shutdown().await;
    let records = result?;
    if !json && !records.is_empty() {
        println!("pruned; recorded as audit record(s) {records:?}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The public half of `audit.signing_key_file`, if one is configured.
fn configured_key(config: &sluice_config::Config) -> anyhow::Result<Option<VerifierKey>> {
    Ok(signing_key(config)?.map(|key| key.verifier().clone()))
}

/// `audit.signing_key_file`, if one is configured.
fn signing_key(config: &sluice_config::Config) -> anyhow::Result<Option<SigningKey>> {
    let Some(path) = &config.audit.signing_key_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("audit.signing_key_file {}", path.display()))?;
    let key = SigningKey::from_key_file(&text).with_context(|| format!("audit.signing_key_file {}", path.display()))?;
    Ok(Some(key))
}

/// A bar on stderr (hidden when stderr is not a terminal).
fn progress_bar(unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let template = format!("{{spinner}} {{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

pub(crate) fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(text)
        .with_context(|| format!("--since {text}: neither an RFC 3339 time nor a duration like 15m"))?;
    Ok(Utc::now() - chrono::Duration::from_std(ago)?)
}

fn table_row(record: &AuditRecord) -> String {
    let time = record.time.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let detail = match &record.event {
        AuditEvent::SessionOpen(e) => {
            format!("{} {} from {} ({})", e.principal.subject, e.connection, e.client_addr, e.protocol)
        }
        AuditEvent::SessionClose(e) => {
            format!("{} {} {} after {} requests", e.principal, e.connection, e.reason, e.requests)
        }
        AuditEvent::Request(e) => {
            format!("{} {} {:?} {}", e.principal, e.connection, e.decision.verdict, one_line(&e.statement))
        }
        AuditEvent::Outcome(e) => format!(
            "{} {:?} {} rows={}{}",
            e.request_id,
            e.status,
            e.command_tag.as_deref().unwrap_or("-"),
            e.rows,
            e.sqlstate.as_deref().map(|s| format!(" sqlstate={s}")).unwrap_or_default()
        ),
        AuditEvent::AuthFailure(e) => {
            format!("{} {} {}", e.client_addr, e.connection.as_deref().unwrap_or("-"), e.reason)
        }
        AuditEvent::AlertDelivery(e) => format!(
            "{} {} to {} {} after {} attempt(s){}",
            e.event_type,
            e.event_id,
            e.url,
            e.status,
            e.attempts,
            e.error.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        AuditEvent::Approval(e) => format!(
            "{} {} by {} -> {} (requested by {} on {}){}{}",
            e.approval_id,
            e.action,
            e.actor,
            e.status,
            e.principal,
            e.connection,
            e.row_estimate.map(|n| format!(" est_rows={n}")).unwrap_or_default(),
            e.comment.as_deref().map(|c| format!(": {}", one_line(c))).unwrap_or_default()
        ),
        AuditEvent::RecordingChunk(e) => format!(
            "{} {} chunk {}{}: {} entries, {} bytes",
            e.principal,
            e.session_id,
            e.chunk,
            if e.last { " (last)" } else { "" },
            e.entries,
            e.payload_bytes
        ),
        AuditEvent::PayloadsPruned(e) => format!(
            "{} {} chunk payloads ({} bytes), {} bodies rewritten, recorded before {}: {}",
            e.connection,
            e.seqs.len(),
            e.bytes,
            e.redacted.len(),
            e.cutoff,
            e.reason
        ),
        AuditEvent::Expired(e) => format!("{} {} record expired by retention", e.connection, e.kind),
    };
    format!("{:>8}  {time}  {:<13} {detail}", record.seq, record.event.kind())
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 { format!("{}…", flat.chars().take(120).collect::<String>()) } else { flat }
}
