//! `sluice approvals list|show|approve|deny`: the reviewer's command line,
//! a client of the reviewer API (`/api/approvals`) of a running Sluice.
//!
//! Owns: the subcommands' flags, the HTTP calls, and how requests are shown
//! (a table, the full record, or the server's JSON with `--json`).
//! Exit codes: 0 done; 1 the server refused (its error message is printed);
//! 2 Sluice could not be reached or answered something that is not the API.
//! Does not: decide anything; the server applies every reviewer rule.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;

/// How long one API call may take before the command gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a statement the table shows.
const STATEMENT_WIDTH: usize = 60;

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approval requests you may review, as a table.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Which requests: pending, approved, denied, expired, used or all.
        #[arg(long, default_value = "pending", value_parser = ["pending", "approved", "denied", "expired", "used", "all"])]
        status: String,
        /// Print the server's JSON (`{"items": [...]}`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one request in full: who, where, why, decisions, the statement.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        /// The request id (as `list` shows it).
        id: String,
        /// Print the server's JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request (a held session runs it at once).
    Approve {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        /// Why, for the audit record.
        #[arg(long)]
        comment: Option<String>,
        /// Print the server's JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Deny a pending request; the requester is told the comment.
    Deny {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        /// Why; required, and shown to the requester.
        #[arg(long)]
        comment: String,
        /// Print the server's JSON instead.
        #[arg(long)]
        json: bool,
    },
}

/// Where the API is and who is calling.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The Sluice API base URL (`[server] api_listen`), e.g. http://127.0.0.1:8080.
    #[arg(long, env = "SLUICE_SERVER")]
    server: String,
    /// Your API key or OIDC access token (prefer the environment variable:
    /// command lines are visible to other users).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
}

/// What went wrong with a call, and the exit code it earns.
enum Failure {
    /// The server answered with an error: exit 1.
    Refused(String),
    /// No usable answer: exit 2.
    Unreachable(String),
}

pub async fn run(command: ApprovalsCommand) -> ExitCode {
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(message)) => {
            eprintln!("sluice: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(message)) => {
            eprintln!("sluice: {message}");
            ExitCode::from(2)
        }
    }
}

async fn execute(command: ApprovalsCommand) -> Result<(), Failure> {
    match command {
        ApprovalsCommand::List { server, status, json } => {
            let path = match status.as_str() {
                "all" => "/api/approvals".to_string(),
                status => format!("/api/approvals?status={status}"),
            };
            let body = call(&server, reqwest::Method::GET, &path, None).await?;
            if json {
                return print_json(&body);
            }
            let items = body["items"].as_array().ok_or_else(|| not_the_api(&server, "no `items` in the list"))?;
            if items.is_empty() {
                println!("no {} approval requests", if status == "all" { "" } else { status.as_str() });
            } else {
                print!("{}", table(items, Utc::now()));
            }
            Ok(())
        }
        ApprovalsCommand::Show { server, id, json } => {
            let body = call(&server, reqwest::Method::GET, &format!("/api/approvals/{id}"), None).await?;
            if json {
                return print_json(&body);
            }
            print!("{}", details(&body, Utc::now()));
            Ok(())
        }
        ApprovalsCommand::Approve { server, id, comment, json } => {
            let body = json!({ "comment": comment.unwrap_or_default() });
            let answer =
                call(&server, reqwest::Method::POST, &format!("/api/approvals/{id}/approve"), Some(body)).await?;
            decided(&answer, json)
        }
        ApprovalsCommand::Deny { server, id, comment, json } => {
            let body = json!({ "comment": comment });
            let answer = call(&server, reqwest::Method::POST, &format!("/api/approvals/{id}/deny"), Some(body)).await?;
            decided(&answer, json)
        }
    }
}

fn print_json(body: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(body).map_err(|e| Failure::Unreachable(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// What `approve` and `deny` print: the request's status after the decision.
fn decided(answer: &Value, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(answer);
    }
    let id = text(&answer["id"]);
    let status = text(&answer["status"]);
    let approvals = format!("{} of {} approvals", answer["approvals"], answer["approvals_required"]);
    match status.as_str() {
        "pending" => println!("{id}: approval recorded; still pending ({approvals})"),
        "approved" => println!("{id}: approved ({approvals}); it may run once"),
        other => println!("{id}: {other}"),
    }
    Ok(())
}

/// One API call: the JSON of a 2xx answer, the server's `error` otherwise.
async fn call(server: &ServerArgs, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
    let base = server.server.trim_end_matches('/');
    let url = format!("{base}{path}");
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| Failure::Unreachable(format!("cannot build an HTTP client: {e}")))?;
    let mut request = client.request(method, &url).bearer_auth(&server.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Unreachable(format!("cannot reach Sluice at {base}: {}", cause(&e))))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Failure::Unreachable(format!("reading the answer from {base}: {}", cause(&e))))?;
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return parsed.ok_or_else(|| not_the_api(server, &format!("{url} did not answer JSON")));
    }
    let message = parsed.as_ref().and_then(|v| v["error"].as_str()).map(str::to_string);
    match message {
        Some(message) => Err(Failure::Refused(format!("{status}: {message}"))),
        None if status.is_server_error() || status == reqwest::StatusCode::NOT_FOUND => {
            Err(not_the_api(server, &format!("{url} answered {status}")))
        }
        None => Err(Failure::Refused(format!("{status}"))),
    }
}

/// reqwest's error with its underlying causes (the connection error itself
/// is a source, not in the top-level message).
fn cause(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn not_the_api(server: &ServerArgs, what: &str) -> Failure {
    Failure::Unreachable(format!("{what}; is {} a Sluice API address?", server.server))
}

/// A JSON string's text, or the value as JSON (`null` for absent).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The list table: ID, AGE, PRINCIPAL, CONNECTION, STATEMENT (one line,
/// cut to [`STATEMENT_WIDTH`] characters), REASON.
fn table(items: &[Value], now: DateTime<Utc>) -> String {
    let header = ["ID", "AGE", "PRINCIPAL", "CONNECTION", "STATEMENT", "REASON"].map(str::to_string);
    let mut rows = vec![header];
    for item in items {
        rows.push([
            text(&item["id"]),
            age(&item["created_at"], now),
            text(&item["principal"]["subject"]),
            text(&item["connection"]),
            truncate(&one_line(&text(&item["statement"])), STATEMENT_WIDTH),
            one_line(&text(&item["reason"])),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `show`: every field, the decisions, then the statement in full.
fn details(item: &Value, now: DateTime<Utc>) -> String {
    let principal = &item["principal"];
    let groups = principal["groups"].as_array().map(|g| g.iter().map(text).collect::<Vec<_>>().join(", "));
    let mut lines = vec![
        ("id", text(&item["id"])),
        ("status", text(&item["status"])),
        (
            "principal",
            format!(
                "{} ({}, {}; groups: {})",
                text(&principal["subject"]),
                text(&principal["kind"]),
                text(&principal["issuer"]),
                groups.unwrap_or_default()
            ),
        ),
        ("connection", text(&item["connection"])),
        ("policy", text(&item["policy"])),
        ("reason", text(&item["reason"])),
        ("approvals", format!("{} of {}", item["approvals"], item["approvals_required"])),
        ("created", format!("{} ({} ago)", text(&item["created_at"]), age(&item["created_at"], now))),
        ("expires", text(&item["expires_at"])),
    ];
    if let Some(kind) = item["classification"]["kind"].as_str() {
        lines.push(("kind", kind.to_string()));
        for (label, key) in [("tables read", "tables_read"), ("tables written", "tables_written")] {
            let tables = item["classification"][key].as_array().map(|t| t.iter().map(text).collect::<Vec<_>>());
            if let Some(tables) = tables.filter(|t| !t.is_empty()) {
                lines.push((label, tables.join(", ")));
            }
        }
    }
    let optional = [
        ("row estimate", "row_estimate"),
        ("params sha256", "params_sha256"),
        ("approved", "approved_at"),
        ("grant expires", "grant_expires_at"),
        ("used", "used_at"),
        ("link", "link"),
    ];
    for (label, key) in optional {
        if !item[key].is_null() {
            lines.push((label, text(&item[key])));
        }
    }
    let mut out = String::new();
    for (label, value) in lines {
        out.push_str(&format!("{:<16}{value}\n", format!("{label}:")));
    }
    let decisions = item["decisions"].as_array().cloned().unwrap_or_default();
    if decisions.is_empty() {
        out.push_str("decisions:      none\n");
    } else {
        out.push_str("decisions:\n");
        for d in &decisions {
            let comment = text(&d["comment"]);
            let comment = if comment.is_empty() { String::new() } else { format!(": {comment}") };
            out.push_str(&format!(
                "  {} {} by {}{comment}\n",
                text(&d["decided_at"]),
                text(&d["ruling"]),
                text(&d["reviewer"])
            ));
        }
    }
    out.push_str("statement:\n");
    for line in text(&item["statement"]).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// How long ago an RFC 3339 time was, in its two largest units (`3m12s`,
/// `2h5m`, `1d4h`); `?` when it cannot be read.
fn age(value: &Value, now: DateTime<Utc>) -> String {
    let Some(then) = value.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        return "?".to_string();
    };
    let seconds = (now - then.with_timezone(&Utc)).num_seconds().max(0);
    let (days, hours, minutes, secs) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// Whitespace runs (newlines included) become one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ages_use_two_units() {
        let at = |s: &str| age(&json!(s), now());
        assert_eq!(at("2026-01-02T03:04:00Z"), "5s");
        assert_eq!(at("2026-01-02T03:00:53.5Z"), "3m11s");
        assert_eq!(at("2026-01-02T01:00:05Z"), "2h4m");
        assert_eq!(at("2025-12-31T01:00:05Z"), "2d2h");
        assert_eq!(at("2026-01-02T03:05:00Z"), "0s");
        assert_eq!(age(&Value::Null, now()), "?");
    }

    #[test]
    fn statements_are_one_line_and_cut() {
        assert_eq!(one_line("DELETE\n  FROM t\tWHERE x"), "DELETE FROM t WHERE x");
        assert_eq!(truncate("short", 60), "short");
        let long = "x".repeat(80);
        let cut = truncate(&long, 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
    }

    fn item() -> Value {
        json!({
            "id": "0192f0c1-7c9a-7cc0-8b3e-2f4f0c1d2e3f",
            "status": "pending",
            "principal": {"subject": "agent-7", "kind": "agent", "groups": ["analysts"], "issuer": "api-key"},
            "connection": "patients",
            "statement": "DELETE\nFROM notes",
            "params_sha256": null,
            "policy": "where-less-write-needs-approval",
            "reason": "UPDATE or DELETE without WHERE",
            "classification": {"kind": "write", "tables_read": [], "tables_written": ["public.notes"]},
            "row_estimate": 12,
            "approvals_required": 1,
            "approvals": 0,
            "created_at": "2026-01-02T03:01:00Z",
            "expires_at": "2026-01-03T03:01:00Z",
            "approved_at": null,
            "grant_expires_at": null,
            "used_at": null,
            "decisions": [],
            "link": null
        })
    }

    #[test]
    fn the_table_has_a_header_and_one_row_per_request() {
        let out = table(&[item()], now());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        for column in ["ID", "AGE", "PRINCIPAL", "CONNECTION", "STATEMENT", "REASON"] {
            assert!(lines[0].contains(column), "{}", lines[0]);
        }
        for cell in ["0192f0c1-7c9a-7cc0-8b3e-2f4f0c1d2e3f", "3m5s", "agent-7", "patients", "DELETE FROM notes"] {
            assert!(lines[1].contains(cell), "{cell} missing: {}", lines[1]);
        }
        assert!(lines[1].ends_with("UPDATE or DELETE without WHERE"));
    }

    #[test]
    fn details_show_every_field_and_the_statement_in_full() {
        let mut item = item();
        item["decisions"] = json!([{"reviewer": "bob", "ruling": "deny", "comment": "not today", "decided_at": "t"}]);
        let out = details(&item, now());
        for text in [
            "status:         pending",
            "agent-7 (agent, api-key; groups: analysts)",
            "row estimate:   12",
            "tables written: public.notes",
            "deny by bob: not today",
            "statement:\n  DELETE\n  FROM notes\n",
        ] {
            assert!(out.contains(text), "{text:?} missing:\n{out}");
        }
        assert!(!out.contains("grant expires"), "{out}");
    }
}
