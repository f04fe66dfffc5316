//! `sluice audit verify` and `sluice audit search`.
//!
//! Owns: flags, output formats (table or JSON lines) and exit codes.
//! Does not: read the store itself (sluice-audit's `AuditReader` does).

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use sluice_audit::{AuditReader, AuditRecord, SearchFilter};
use sluice_model::AuditEvent;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and name the first broken record.
    /// Exits 0 if intact, 1 if broken.
    Verify {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find records by principal, connection, session, kind and time.
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
        /// approval or alert_delivery.
        #[arg(long)]
        kind: Option<String>,
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
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { config, json } => {
            let config = crate::load_config(&config)?;
            let reader = AuditReader::open(&config.storage.url).await?;
            let report = reader.verify(|_, _| {}).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                match &report.broken {
                    None => println!("audit log intact: {} records, head {}", report.records, report.head_hash),
                    Some(broken) => println!(
                        "audit log BROKEN at record {}: {:?} ({} records before it are intact)",
                        broken.seq, broken.reason, report.records
                    ),
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
        AuditCommand::Search { config, principal, connection, session, kind, since, limit, json } => {
            let config = crate::load_config(&config)?;
            let since = since.map(|s| parse_since(&s)).transpose()?;
            let reader = AuditReader::open(&config.storage.url).await?;
            let filter = SearchFilter { principal, connection, session, kind, since, limit };
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

fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
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
    };
    format!("{:>8}  {time}  {:<13} {detail}", record.seq, record.event.kind())
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 { format!("{}…", flat.chars().take(120).collect::<String>()) } else { flat }
}
