//! `sluice policy test` and `sluice policy explain`: try policies without a
//! gateway, a client or a database.
//!
//! Owns: flags, output (tables, JSON) and exit codes (0 all as expected, 1 a
//! case failed, 2 the config, the policies or the cases file cannot be used).
//! Does not: classify (sluice-sql), decide (sluice-policy) or turn config
//! into policy settings (sluice-server's `policy`); the cases-file format is
//! in [`cases`].

mod cases;

use anyhow::{Context, anyhow};
use cases::{Case, Cases, PrincipalSpec, parse_time, verdict_name};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;
use sluice_config::Config;
use sluice_model::{Principal, PrincipalKind, SqlClassification, SqlFlags};
use sluice_policy::{Budget, PolicyDecision, PolicyEngine, SqlRequest, action_for};
use sluice_sql::{Classifier, PgStringMode};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const CASES_HELP: &str = r#"CASES FILE (TOML)

  [defaults]                      # optional; each case may override each key
  connection = "patients"         # a [[connections]] name from the config
  principal = { subject = "bot-1", kind = "agent", groups = ["analysts"] }
  time = "2026-11-04T10:00:00Z"   # RFC 3339; default: the current time
  # client_ip = "10.1.2.3"        # default: none (`context has client_ip` is false)

  [[case]]
  name = "analysts read patients" # unique; names the case in the report
  sql = "SELECT * FROM public.patients"
  expect = "allow"                # allow | deny | hold
  policies = ["analysts-read-patients"]   # optional: exactly these @ids, any order

  [[case]]
  name = "staff may not read secrets"
  principal = { subject = "ann", kind = "human", groups = ["staff"], issuer = "https://idp.example" }
  sql = "SELECT * FROM secrets"
  expect = "deny"

A principal is `subject`, `kind` (agent | human | service; default agent),
`groups` (as the credential carries them; [policy.groups] adds their parents)
and `issuer` (default "api-key"). Each case's SQL is classified as the
gateway classifies it (PostgreSQL, standard_conforming_strings on) and
decided by the policies in the config's [policy] dir, with its environments,
[policy.groups] and mask_order. Unknown keys are errors.

Exit status: 0 every case passed, 1 some case failed, 2 the config, the
policies or the cases file could not be used."#;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run a file of cases (principal, connection, SQL, expected decision)
    /// against the configured policies; print one row per case and a
    /// summary. Exits 0 when all pass, 1 when any fails, 2 on a bad config,
    /// policy or cases file.
    #[command(after_long_help = CASES_HELP)]
    Test {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// The cases file (TOML; see --help for the format).
        cases: PathBuf,
    },
    /// Show how one statement is classified and decided for a principal on a
    /// connection: kind, tables, functions, flags, fingerprint, then the
    /// decision, the policies that made it, the reason and remedy, and any
    /// mask profile and budget. Exits 0 whatever the decision, 2 on a bad
    /// config or policy.
    Explain {
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// The principal's subject: an API key's name or a token's `sub`.
        #[arg(long)]
        principal: String,
        /// The principal's kind: agent, human or service.
        #[arg(long, default_value = "agent", value_parser = parse_kind)]
        kind: PrincipalKind,
        /// The principal's groups, comma-separated, as its credential carries
        /// them; [policy.groups] adds their parents.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// The principal's issuer: `api-key` or an OIDC issuer URL.
        #[arg(long, default_value_t = cases::default_issuer())]
        issuer: String,
        /// The connection the client names (a [[connections]] name).
        #[arg(long)]
        connection: String,
        /// The client's address (`context.client_ip`); none by default.
        #[arg(long)]
        client_ip: Option<IpAddr>,
        /// When the request is made, RFC 3339; the current time by default.
        #[arg(long, value_parser = parse_time)]
        time: Option<DateTime<Utc>>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The SQL, one simple-query string as the client would send it.
        sql: String,
    },
}

/// `--kind`, spelt as in config and cases files.
fn parse_kind(text: &str) -> Result<PrincipalKind, String> {
    use serde::de::IntoDeserializer;
    serde::Deserialize::deserialize(text.into_deserializer()).map_err(|e: serde::de::value::Error| e.to_string())
}

/// Runs a `policy` subcommand. Errors are printed here, with exit status 2,
/// so that 1 always means "a case failed".
pub fn run(command: PolicyCommand) -> ExitCode {
    let result = match command {
        PolicyCommand::Test { config, cases } => test(&config, &cases),
        PolicyCommand::Explain { config, principal, kind, groups, issuer, connection, client_ip, time, json, sql } => {
            let spec = PrincipalSpec { subject: principal, kind, groups, issuer };
            explain(&config, &spec, &connection, client_ip, time, json, &sql)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("sluice: {}", crate::error_chain(&e));
        ExitCode::from(2)
    })
}

/// The configured policies, ready to classify and decide as the gateway does.
struct Workbench {
    config: Config,
    engine: PolicyEngine,
    classifier: Classifier,
}

impl Workbench {
    fn load(config_path: &Path) -> anyhow::Result<Workbench> {
        let config = crate::load_config(config_path)?;
        let engine = sluice_server::policy::load(&config)
            .with_context(|| format!("{}: policies", config_path.display()))?
            .ok_or_else(|| {
                anyhow!(
                    "{}: no `[policy] dir` is set, so there are no Cedar policies to run (the built-in \
                     guardrails decide instead); set `dir` under [policy]",
                    config_path.display()
                )
            })?;
        Ok(Workbench { config, engine, classifier: Classifier::new(0) })
    }

    fn environment(&self, connection: &str) -> Option<&str> {
        self.config.connection(connection).map(|c| c.environment.as_str())
    }

    fn decide(
        &self,
        principal: &Principal,
        connection: &str,
        sql: &str,
        client_addr: Option<IpAddr>,
        time: Option<DateTime<Utc>>,
    ) -> (Arc<SqlClassification>, PolicyDecision) {
        let classification = self.classifier.classify_postgres(sql, PgStringMode::STANDARD);
        // As the gateway decides: it does not know the session's schema, so
        // unqualified table names stay unqualified.
        let request = SqlRequest {
            principal,
            connection,
            classification: &classification,
            client_addr,
            now: time.unwrap_or_else(Utc::now),
            default_schema: None,
        };
        let decision = self.engine.decide(&request);
        (classification, decision)
    }
}

fn test(config_path: &Path, cases_path: &Path) -> anyhow::Result<ExitCode> {
    let workbench = Workbench::load(config_path)?;
    let text = std::fs::read_to_string(cases_path).with_context(|| format!("cannot read {}", cases_path.display()))?;
    let Cases { cases } = Cases::parse(&text, |c| workbench.environment(c).is_some())
        .map_err(|e| anyhow!("{}: {e}", cases_path.display()))?;
    let rows: Vec<Row> = cases.iter().map(|case| Row::run(&workbench, case)).collect();
    print_table(&rows);
    let failed = rows.iter().filter(|r| r.failure.is_some()).count();
    println!("{} passed, {failed} failed", rows.len() - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One case's line in the report.
struct Row<'a> {
    case: &'a Case,
    decision: PolicyDecision,
    /// Why the case failed, with the decision's reason.
    failure: Option<String>,
}

impl<'a> Row<'a> {
    fn run(workbench: &Workbench, case: &'a Case) -> Row<'a> {
        let (_, decision) = workbench.decide(&case.principal, &case.connection, &case.sql, case.client_ip, case.time);
        let failure = case.judge(decision.verdict(), decision.policies()).map(|why| match reason(&decision) {
            Some(reason) => format!("{why}: {reason}"),
            None => why,
        });
        Row { case, decision, failure }
    }
}

fn print_table(rows: &[Row<'_>]) {
    let width = rows.iter().map(|r| r.case.name.chars().count()).max().unwrap_or(0).max("case".len());
    println!("{:<6} {:<width$}  {:<8} {:<6} policies", "result", "case", "expected", "got");
    for row in rows {
        let policies = row.decision.policies();
        println!(
            "{:<6} {:<width$}  {:<8} {:<6} {}",
            if row.failure.is_some() { "FAIL" } else { "ok" },
            row.case.name,
            verdict_name(row.case.expect),
            verdict_name(row.decision.verdict()),
            if policies.is_empty() { "-".to_owned() } else { policies.join(", ") },
        );
        if let Some(failure) = &row.failure {
            println!("{:<6} {failure}", "");
        }
    }
}

fn reason(decision: &PolicyDecision) -> Option<&str> {
    match decision {
        PolicyDecision::Allow { .. } => None,
        PolicyDecision::Deny { reason, .. } | PolicyDecision::Hold { reason, .. } => Some(reason),
    }
}

fn explain(
    config_path: &Path,
    spec: &PrincipalSpec,
    connection: &str,
    client_ip: Option<IpAddr>,
    time: Option<DateTime<Utc>>,
    json: bool,
    sql: &str,
) -> anyhow::Result<ExitCode> {
    let workbench = Workbench::load(config_path)?;
    let principal = spec.to_principal().map_err(|e| anyhow!("--principal: {e}"))?;
    let environment = workbench.environment(connection).ok_or_else(|| {
        let known: Vec<&str> = workbench.config.connections.iter().map(|c| c.name.as_str()).collect();
        anyhow!("--connection {connection}: not configured in [[connections]] (configured: {})", known.join(", "))
    })?;
    let (c, decision) = workbench.decide(&principal, connection, sql, client_ip, time);
    if json {
        let report = json!({
            "principal": principal,
            "connection": connection,
            "environment": environment,
            "statement": sql,
            "classification": *c,
            "action": action_for(c.kind),
            "decision": decision_json(&decision),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = |items: &[String]| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
    let groups = if principal.groups.is_empty() { "no groups".to_owned() } else { principal.groups.join(", ") };
    field("statement", sql);
    field("principal", &format!("{} {} ({groups}; issuer {})", principal.kind, principal.subject, principal.issuer));
    field("connection", &format!("{connection} (environment {environment})"));
    println!("classification");
    field("  kind", &format!("{} (action {})", serde_name(&c.kind), action_for(c.kind)));
    field("  statements", &c.statements.to_string());
    field("  tables read", &list(&c.tables_read));
    field("  tables written", &list(&c.tables_written));
    field("  functions", &list(&c.functions));
    field("  flags", &list(&set_flags(&c.flags)));
    field("  fingerprint", if c.fingerprint.is_empty() { "-" } else { &c.fingerprint });
    field("decision", verdict_name(decision.verdict()));
    field("  policies", &list(decision.policies()));
    match &decision {
        PolicyDecision::Allow { mask_profile, budget, .. } => print_obligations(mask_profile, budget),
        PolicyDecision::Hold { reason, mask_profile, budget, .. } => {
            field("  reason", reason);
            print_obligations(mask_profile, budget);
        }
        PolicyDecision::Deny { reason, remedy, .. } => {
            field("  reason", reason);
            field("  remedy", remedy);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `explain`'s text: the label, then the value in a column.
fn field(label: &str, value: &str) {
    println!("{label:<18}{value}");
}

fn print_obligations(mask_profile: &Option<String>, budget: &Budget) {
    if let Some(profile) = mask_profile {
        field("  mask profile", profile);
    }
    if !budget.is_unlimited() {
        field("  budget", &budget_text(budget));
    }
}

fn decision_json(decision: &PolicyDecision) -> serde_json::Value {
    let budget = |b: &Budget| {
        (!b.is_unlimited()).then(|| {
            json!({
                "rows_per_statement": b.rows_per_statement,
                "bytes_per_statement": b.bytes_per_statement,
                "rows_per_hour": b.rows_per_hour,
            })
        })
    };
    let verdict = verdict_name(decision.verdict());
    match decision {
        PolicyDecision::Allow { policies, mask_profile, budget: b } => json!({
            "verdict": verdict, "policies": policies, "mask_profile": mask_profile, "budget": budget(b),
        }),
        PolicyDecision::Hold { policies, reason, mask_profile, budget: b } => json!({
            "verdict": verdict, "policies": policies, "reason": reason, "mask_profile": mask_profile, "budget": budget(b),
        }),
        PolicyDecision::Deny { policies, reason, remedy } => json!({
            "verdict": verdict, "policies": policies, "reason": reason, "remedy": remedy,
        }),
    }
}

/// A budget in `@budget` syntax: `rows_per_statement=1000, rows_per_hour=10000`.
fn budget_text(budget: &Budget) -> String {
    [
        ("rows_per_statement", budget.rows_per_statement),
        ("bytes_per_statement", budget.bytes_per_statement),
        ("rows_per_hour", budget.rows_per_hour),
    ]
    .iter()
    .filter_map(|(key, value)| value.map(|v| format!("{key}={v}")))
    .collect::<Vec<_>>()
    .join(", ")
}

fn set_flags(flags: &SqlFlags) -> Vec<String> {
    SqlFlags::NAMES.iter().zip(flags.values()).filter(|(_, set)| *set).map(|(name, _)| name.to_string()).collect()
}

/// The name serde gives a unit variant (`StatementKind::Write` → `write`).
fn serde_name(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
