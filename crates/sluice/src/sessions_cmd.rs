//! `sluice sessions list` and `sluice sessions replay`.
//!
//! Owns: flags, finding a session's recording chunks in the audit log,
//! checking them (each payload against the SHA-256 its record carries, chunk
//! numbers without gaps, a last chunk), and printing a psql-like transcript
//! or JSON lines.
//! Does not: define the payload format (sluice-pipeline's `recording`
//! does) or verify the log's chain (`sluice audit verify` does).

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice_audit::{AuditReader, SearchFilter};
use sluice_model::AuditEvent;
use sluice_pipeline::recording::{RecordingEntry, parse_payload};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions in the audit log, oldest first, with their recordings.
    List {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// The principal's subject (API key name or token `sub`).
        #[arg(long)]
        principal: Option<String>,
        /// Sessions opened at or after this: an RFC 3339 time, or a duration
        /// back from now such as `15m` or `2h`.
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's recording as a psql-like transcript, after checking
    /// every chunk against the hash its audit record carries. Exits 1 if a
    /// chunk is missing or altered.
    Replay {
        /// The session id (`sluice sessions list`).
        session: String,
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// Replay with the recorded timing, N times faster (1: real time).
        #[arg(long)]
        speed: Option<f64>,
        /// The recorded entries as JSON lines instead of a transcript.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: SessionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SessionsCommand::List { config, principal, since, json } => {
            let config = crate::load_config(&config)?;
            let since = since.map(|s| crate::audit_cmd::parse_since(&s)).transpose()?;
            let reader = AuditReader::open(&config.storage.url).await?;
            list(&reader, principal, since, json).await
        }
        SessionsCommand::Replay { session, config, speed, json } => {
            if let Some(speed) = speed
                && !(speed > 0.0 && speed.is_finite())
            {
                anyhow::bail!("--speed must be a positive number");
            }
            let config = crate::load_config(&config)?;
            let reader = AuditReader::open(&config.storage.url).await?;
            replay(&reader, &session, speed, json).await
        }
    }
}

/// One row of `sessions list`.
#[derive(Debug, Serialize)]
struct SessionRow {
    session_id: String,
    started: DateTime<Utc>,
    principal: String,
    connection: String,
    protocol: String,
    client_addr: String,
    /// From the session's close record; `None` while it is open (or if
    /// Sluice stopped before writing it).
    requests: Option<u64>,
    ended: Option<DateTime<Utc>>,
    close_reason: Option<String>,
    chunks: u64,
    /// The recording has its last chunk.
    recording_complete: bool,
}

async fn list(
    reader: &AuditReader,
    principal: Option<String>,
    since: Option<DateTime<Utc>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let search = |kind: &str| SearchFilter {
        principal: principal.clone(),
        kind: Some(kind.into()),
        since,
        ..SearchFilter::default()
    };
    let mut sessions: BTreeMap<String, SessionRow> = BTreeMap::new();
    let mut order = Vec::new();
    for record in reader.search(&search("session_open")).await? {
        if let AuditEvent::SessionOpen(e) = record.event {
            order.push(e.session_id.clone());
            sessions.insert(
                e.session_id.clone(),
                SessionRow {
                    session_id: e.session_id,
                    started: record.time,
                    principal: e.principal.subject,
                    connection: e.connection,
                    protocol: e.protocol,
                    client_addr: e.client_addr,
                    requests: None,
                    ended: None,
                    close_reason: None,
                    chunks: 0,
                    recording_complete: false,
                },
            );
        }
    }
    for record in reader.search(&search("session_close")).await? {
        if let AuditEvent::SessionClose(e) = record.event
            && let Some(row) = sessions.get_mut(&e.session_id)
        {
            row.requests = Some(e.requests);
            row.ended = Some(record.time);
            row.close_reason = Some(e.reason);
        }
    }
    for record in reader.search(&search("recording_chunk")).await? {
        if let AuditEvent::RecordingChunk(e) = record.event
            && let Some(row) = sessions.get_mut(&e.session_id)
        {
            row.chunks += 1;
            row.recording_complete |= e.last;
        }
    }
    if json {
        for id in &order {
            println!("{}", serde_json::to_string(&sessions[id])?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![["SESSION", "STARTED", "PRINCIPAL", "CONNECTION", "REQUESTS", "CHUNKS"].map(String::from)];
    for id in &order {
        let row = &sessions[id];
        table.push([
            row.session_id.clone(),
            row.started.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            row.principal.clone(),
            row.connection.clone(),
            row.requests.map_or_else(|| "-".into(), |n| n.to_string()),
            match (row.chunks, row.recording_complete, row.ended.is_some()) {
                (0, _, _) => "-".into(),
                (n, true, _) | (n, false, false) => n.to_string(),
                (n, false, true) => format!("{n} (incomplete)"),
            },
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &table {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, &w)| format!("{cell:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
    println!("({} sessions)", order.len());
    Ok(ExitCode::SUCCESS)
}

/// Reads, checks and prints one session's recording.
async fn replay(reader: &AuditReader, session: &str, speed: Option<f64>, json: bool) -> anyhow::Result<ExitCode> {
    let filter =
        SearchFilter { session: Some(session.into()), kind: Some("recording_chunk".into()), ..SearchFilter::default() };
    let records = reader.search(&filter).await?;
    let chunks: Vec<_> = records
        .into_iter()
        .filter_map(|record| match record.event {
            AuditEvent::RecordingChunk(chunk) => Some((record.seq, chunk)),
            _ => None,
        })
        .collect();
    if chunks.is_empty() {
        anyhow::bail!("no recording of session {session} in the audit log (see `sluice sessions list`)");
    }
    let total = chunks.iter().map(|(_, c)| c.chunk + 1).max().unwrap_or(0);
    let principal = chunks[0].1.principal.clone();
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut expected = 0u32;
    for (seq, chunk) in &chunks {
        while expected < chunk.chunk {
            problems.push(format!("chunk {expected} of {total} missing: no record of it in the audit log"));
            expected += 1;
        }
        if chunk.chunk < expected {
            problems.push(format!("chunk {} of {total} recorded twice (record {seq})", chunk.chunk));
            continue;
        }
        expected = chunk.chunk + 1;
        let label = format!("chunk {} of {total} (record {seq})", chunk.chunk);
        match reader.payload(*seq).await? {
            None => problems.push(format!("{label} missing: its payload was deleted")),
            Some(payload) if hex::encode(Sha256::digest(&payload)) != chunk.payload_sha256 => {
                problems.push(format!("{label} altered: its payload does not match the SHA-256 its record carries"))
            }
            Some(payload) => match parse_payload(&payload) {
                Ok(parsed) => entries.extend(parsed),
                Err(e) => problems.push(format!("{label} unreadable: {e}")),
            },
        }
    }
    let complete = chunks.iter().any(|(_, c)| c.last);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("sluice: session {session}: {problem}");
        }
        eprintln!("sluice: the recording of session {session} is not intact; nothing is replayed");
        return Ok(ExitCode::FAILURE);
    }
    let mut previous: Option<DateTime<Utc>> = None;
    let mut transcript = Transcript::new(&principal);
    for entry in &entries {
        if let (Some(speed), Some(at)) = (speed, entry.time()) {
            if let Some(before) = previous
                && let Ok(gap) = (at - before).to_std()
            {
                tokio::time::sleep(Duration::from_secs_f64(gap.as_secs_f64() / speed)).await;
            }
            previous = Some(at);
        }
        if json {
            println!("{}", serde_json::to_string(entry)?);
        } else {
            transcript.entry(entry);
        }
    }
    if !json {
        transcript.finish();
        if !complete {
            println!("-- the recording ends here: the session is still open, or Sluice stopped before its end");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints entries as psql would have shown them.
struct Transcript<'a> {
    principal: &'a str,
    /// The current result's columns and the rows kept of it.
    columns: Option<Vec<String>>,
    /// Which of them hold numbers, aligned right.
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
    omitted: u64,
}

impl<'a> Transcript<'a> {
    fn new(principal: &'a str) -> Transcript<'a> {
        Transcript { principal, columns: None, numeric: Vec::new(), rows: Vec::new(), omitted: 0 }
    }

    fn entry(&mut self, entry: &RecordingEntry) {
        match entry {
            RecordingEntry::Statement { t, text, params, .. } => {
                self.finish();
                let text = text.trim_end();
                let end = if text.ends_with(';') { "" } else { ";" };
                println!("[{}] {}=> {text}{end}", t.format("%H:%M:%S%.3f"), self.principal);
                if let Some(params) = params {
                    let shown: Vec<String> = params.iter().map(param_text).collect();
                    println!("  -- parameters: {}", shown.join(", "));
                }
            }
            RecordingEntry::Columns { names, numeric } => {
                self.finish();
                self.columns = Some(names.clone());
                self.numeric = numeric.clone();
            }
            RecordingEntry::Row { values } => self.rows.push(values.iter().map(cell_text).collect()),
            RecordingEntry::RowsOmitted { rows } => self.omitted += rows,
            RecordingEntry::Complete { tag, rows, .. } => {
                if self.columns.is_some() {
                    self.print_table(*rows);
                } else if !tag.is_empty() {
                    println!("{tag}");
                }
            }
            // A notice arrives while its result is still coming, and psql
            // shows it at once, before the result's table.
            RecordingEntry::Notice { severity, message, .. } => println!("{severity}:  {message}"),
            RecordingEntry::Error { severity, message, .. } => {
                self.finish();
                println!("{severity}:  {message}");
            }
        }
    }

    /// Prints a result that ended without a completion (an error).
    fn finish(&mut self) {
        if self.columns.is_some() {
            let rows = self.rows.len() as u64 + self.omitted;
            self.print_table(rows);
        }
    }

    /// An aligned table, as psql prints one, then `(N rows)`.
    fn print_table(&mut self, rows: u64) {
        let columns = self.columns.take().unwrap_or_default();
        let body = std::mem::take(&mut self.rows);
        let omitted = std::mem::take(&mut self.omitted);
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                body.iter()
                    .filter_map(|row| row.get(i))
                    .map(|v| v.chars().count())
                    .chain([name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|(name, &w)| {
                let pad = w - name.chars().count();
                format!("{}{name}{}", " ".repeat(pad / 2), " ".repeat(pad - pad / 2))
            })
            .collect();
        println!(" {} ", header.join(" | ").trim_end());
        println!("{}", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
        for row in &body {
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, &w)| {
                    let cell = row.get(i).map(String::as_str).unwrap_or("");
                    if self.numeric.get(i) == Some(&true) { format!("{cell:>w$}") } else { format!("{cell:<w$}") }
                })
                .collect();
            println!(" {}", cells.join(" | ").trim_end());
        }
        if omitted > 0 {
            println!("... {omitted} more rows not recorded (the recording's per-statement cap)");
        }
        println!("({rows} {})", if rows == 1 { "row" } else { "rows" });
        println!();
    }
}

/// A recorded value as psql shows it: NULL as empty, binary as `\x…`.
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Object(object) => match object.get("binary") {
            Some(Value::String(hex)) => format!("\\x{hex}"),
            _ => "(not recorded)".into(),
        },
        other => other.to_string(),
    }
}

fn param_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(text) => format!("'{}'", text.replace('\'', "''")),
        other => cell_text(other),
    }
}
