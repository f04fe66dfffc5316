//! `sluice audit subject`: the accounting of disclosures for one patient
//! (HIPAA 45 CFR 164.528), and a breach-notification timeline.
//!
//! Owns: turning the identifier given on the command line into the keyed
//! pseudonym the gateway records (the `[masking]` pseudonym key), finding
//! the outcome records that carry it, joining each with its request record,
//! and printing who received the patient's data, when, and by what statement.
//! Does not: keep or print the identifier (only the argument holds it), or
//! index the log: the store scans the outcome records for the pseudonym (and
//! for those that kept only a count of identifiers), so only those are read
//! into memory, then the request records of the sessions it found.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args};
use serde::Serialize;
use sluice_audit::{AuditReader, SearchFilter};
use sluice_mask::PhiClass;
use sluice_model::{AuditEvent, OutcomeEvent, OutcomeStatus, RequestEvent};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("identifier").required(true).args(["mrn", "ssn", "name"])))]
pub struct SubjectArgs {
    #[arg(long, short, env = "SLUICE_CONFIG")]
    config: PathBuf,
    /// The patient's medical record number (letters and digits count;
    /// case, spaces and dashes do not).
    #[arg(long)]
    mrn: Option<String>,
    /// The patient's social security number (`123-45-6789` or `123456789`).
    #[arg(long)]
    ssn: Option<String>,
    /// The patient's name, "First Last" (case, punctuation and word order
    /// do not count; a result with separate first and last name columns
    /// matches the whole name).
    #[arg(long)]
    name: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// One request that returned the patient's data.
#[derive(Debug, Serialize)]
struct Disclosure<'a> {
    /// When the response ended (the outcome record's time).
    time: DateTime<Utc>,
    /// When the request was recorded, before it ran.
    requested_at: Option<DateTime<Utc>>,
    principal: &'a str,
    connection: &'a str,
    session: &'a str,
    request_id: &'a str,
    /// The class the patient was found by.
    class: &'a str,
    /// `recorded`: the outcome record holds the patient's pseudonym.
    /// `possible`: the request returned more identifiers than Sluice keeps
    /// per request (`subjects_omitted`), so it may have returned this one.
    #[serde(rename = "match")]
    matched: &'static str,
    /// The masking profile the response went through (`unmasked`: the
    /// principal saw clear values).
    mask_profile: Option<&'a str>,
    status: OutcomeStatus,
    rows: u64,
    statement: Option<&'a str>,
}

pub async fn run(args: SubjectArgs) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(&args.config)?;
    let (class, flag, value) = match (&args.mrn, &args.ssn, &args.name) {
        (Some(v), _, _) => (PhiClass::Mrn, "--mrn", v),
        (_, Some(v), _) => (PhiClass::Ssn, "--ssn", v),
        (_, _, Some(v)) => (PhiClass::Name, "--name", v),
        _ => anyhow::bail!("give one of --mrn, --ssn or --name"),
    };
    let key = sluice_server::masking::disclosure_key(&config)?.context(
        "no pseudonym key is configured ([masking] pseudonym_key_env or pseudonym_key_file): \
         Sluice records disclosures only under that key",
    )?;
    // The error names the flag, never the value.
    let pseudonym =
        key.pseudonym(class, value).with_context(|| format!("{flag}: no letters or digits in the value"))?;

    let reader = AuditReader::open(&config.storage.url).await?;
    let outcomes_containing = |text: String| {
        let filter = SearchFilter { kind: Some("outcome".into()), contains: Some(text), ..SearchFilter::default() };
        let reader = &reader;
        async move { reader.search(&filter).await }
    };
    let mut outcomes = outcomes_containing(format!("\"{pseudonym}\"")).await?;
    outcomes.extend(outcomes_containing("\"subjects_omitted\":".into()).await?);
    outcomes.sort_by_key(|record| record.seq);
    outcomes.dedup_by_key(|record| record.seq);
    let mut found: Vec<(DateTime<Utc>, &OutcomeEvent, &'static str)> = Vec::new();
    for record in &outcomes {
        let AuditEvent::Outcome(outcome) = &record.event else { continue };
        if outcome.subjects.get(class.as_str()).is_some_and(|pseudonyms| pseudonyms.contains(&pseudonym)) {
            found.push((record.time, outcome, "recorded"));
        } else if outcome.subjects_omitted > 0 {
            found.push((record.time, outcome, "possible"));
        }
    }

    let sessions: BTreeSet<&str> = found.iter().map(|(_, outcome, _)| outcome.session_id.as_str()).collect();
    let mut requests: HashMap<String, (DateTime<Utc>, RequestEvent)> = HashMap::new();
    for session in sessions {
        let filter =
            SearchFilter { session: Some(session.into()), kind: Some("request".into()), ..SearchFilter::default() };
        for record in reader.search(&filter).await? {
            if let AuditEvent::Request(request) = record.event {
                requests.insert(request.request_id.clone(), (record.time, request));
            }
        }
    }

    let disclosures: Vec<Disclosure> = found
        .iter()
        .map(|(time, outcome, matched)| {
            let request = requests.get(&outcome.request_id);
            Disclosure {
                time: *time,
                requested_at: request.map(|(time, _)| *time),
                principal: &outcome.principal,
                connection: &outcome.connection,
                session: &outcome.session_id,
                request_id: &outcome.request_id,
                class: class.as_str(),
                matched,
                mask_profile: request.and_then(|(_, r)| r.mask_profile.as_deref()),
                status: outcome.status,
                rows: outcome.rows,
                statement: request.map(|(_, r)| r.statement.as_str()),
            }
        })
        .collect();

    if args.json {
        for disclosure in &disclosures {
            println!("{}", serde_json::to_string(disclosure)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24}  {:<20} {:<16} {:<28} {:<5} {:<12} STATEMENT",
        "TIME", "PRINCIPAL", "CONNECTION", "REQUEST", "CLASS", "PROFILE"
    );
    for d in disclosures.iter().filter(|d| d.matched == "recorded") {
        println!("{}", table_row(d));
    }
    let recorded = disclosures.iter().filter(|d| d.matched == "recorded").count();
    println!("({recorded} requests returned this patient's data)");
    let possible: Vec<&Disclosure> = disclosures.iter().filter(|d| d.matched == "possible").collect();
    if !possible.is_empty() {
        println!(
            "{} more request(s) returned more identifiers than Sluice keeps per request, and may also have returned it:",
            possible.len()
        );
        for d in possible {
            println!("{}", table_row(d));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table_row(d: &Disclosure) -> String {
    let statement = d.statement.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default();
    let statement = if statement.chars().count() > 100 {
        format!("{}…", statement.chars().take(100).collect::<String>())
    } else {
        statement
    };
    format!(
        "{:<24}  {:<20} {:<16} {:<28} {:<5} {:<12} {statement}",
        d.time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        d.principal,
        d.connection,
        d.request_id,
        d.class,
        d.mask_profile.unwrap_or("-"),
    )
}
