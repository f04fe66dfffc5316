//! Shared by the integration tests: the data-driven case runner.
//!
//! Owns: the TOML shape of `decisions.toml` (policy sets and cases) and the
//! comparison of a decision with a case's expectations.
//! Does not: hold any case itself.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sluice_model::{Principal, PrincipalKind, SqlClassification, SqlFlags, StatementKind};
use sluice_policy::{Budget, ConnectionAttrs, PolicyDecision, PolicyEngine, PolicySettings, SqlRequest};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    #[serde(default)]
    pub set: Vec<SetSpec>,
    pub case: Vec<Case>,
}

/// A policy set: the starter folder and/or inline files, plus settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    pub name: String,
    /// Load `policies/` (the shipped starter) first.
    #[serde(default)]
    pub starter: bool,
    #[serde(default)]
    pub file: Vec<FileSpec>,
    #[serde(default)]
    pub environments: BTreeMap<String, String>,
    #[serde(default)]
    pub group_parents: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub mask_order: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub set: String,
    pub kind: PrincipalKind,
    pub subject: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub connection: String,
    pub statement: StatementKind,
    #[serde(default)]
    pub tables_read: Vec<String>,
    #[serde(default)]
    pub tables_written: Vec<String>,
    #[serde(default)]
    pub functions: Vec<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    pub statements: Option<u32>,
    /// Default "public"; "" for none.
    pub default_schema: Option<String>,
    pub client_ip: Option<String>,
    /// Default 2026-11-04T10:00:00Z (a Wednesday).
    pub now: Option<String>,
    pub expect: String,
    /// Exact list, in order, when given.
    pub policies: Option<Vec<String>>,
    /// Expected mask profile; "" means none.
    pub mask: Option<String>,
    /// Expected budget (all three keys compared; missing = unlimited).
    pub budget: Option<BudgetSpec>,
    pub reason_contains: Option<Vec<String>>,
    pub remedy_contains: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    pub rows_per_statement: Option<u64>,
    pub bytes_per_statement: Option<u64>,
    pub rows_per_hour: Option<u64>,
}

pub fn load_cases(file: &str) -> Cases {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn build_set(spec: &SetSpec) -> PolicyEngine {
    let mut sources = Vec::new();
    if spec.starter {
        let dir = policies_dir();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
            .collect();
        names.sort();
        for p in names {
            sources.push((p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    sources.extend(spec.file.iter().map(|f| (f.name.clone(), f.text.clone())));
    let settings = PolicySettings {
        connections: spec
            .environments
            .iter()
            .map(|(c, e)| (c.clone(), ConnectionAttrs { environment: e.clone() }))
            .collect(),
        group_parents: spec.group_parents.clone(),
        mask_order: spec.mask_order.clone(),
    };
    PolicyEngine::from_sources_with(&sources, &settings).unwrap_or_else(|e| panic!("set {}: {e}", spec.name))
}

pub fn classification(case: &Case) -> SqlClassification {
    let mut flags = SqlFlags::default();
    for f in &case.flags {
        let slot = match f.as_str() {
            "where_less_write" => &mut flags.where_less_write,
            "multi_statement" => &mut flags.multi_statement,
            "writes_in_cte" => &mut flags.writes_in_cte,
            "copy_program" => &mut flags.copy_program,
            "copy_file" => &mut flags.copy_file,
            "dynamic_sql" => &mut flags.dynamic_sql,
            "prepare_body" => &mut flags.prepare_body,
            "set_role" => &mut flags.set_role,
            "alter_system" => &mut flags.alter_system,
            "security_function" => &mut flags.security_function,
            "unparseable" => &mut flags.unparseable,
            "set_search_path" => &mut flags.set_search_path,
            other => panic!("case {}: unknown flag {other}", case.name),
        };
        *slot = true;
    }
    SqlClassification {
        kind: case.statement,
        statements: case.statements.unwrap_or(if flags.multi_statement { 2 } else { 1 }),
        tables_read: case.tables_read.clone(),
        tables_written: case.tables_written.clone(),
        functions: case.functions.clone(),
        flags,
        fingerprint: "fp".into(),
    }
}

pub fn principal(case: &Case) -> Principal {
    Principal {
        subject: case.subject.clone(),
        kind: case.kind,
        groups: case.groups.clone(),
        issuer: "api-key".into(),
        token_id: None,
    }
}

pub fn decide(engine: &PolicyEngine, case: &Case) -> PolicyDecision {
    let principal = principal(case);
    let classification = classification(case);
    let default_schema = match case.default_schema.as_deref() {
        None => Some("public"),
        Some("") => None,
        Some(s) => Some(s),
    };
    let now: DateTime<Utc> = case.now.as_deref().unwrap_or("2026-11-04T10:00:00Z").parse().unwrap();
    let request = SqlRequest {
        principal: &principal,
        connection: &case.connection,
        classification: &classification,
        client_addr: case.client_ip.as_deref().map(|ip| ip.parse().unwrap()),
        now,
        default_schema,
    };
    engine.decide(&request)
}

/// Every way `decision` differs from what `case` expects.
pub fn mismatches(case: &Case, decision: &PolicyDecision) -> Vec<String> {
    let mut out = Vec::new();
    let verdict = format!("{:?}", decision.verdict()).to_lowercase();
    if verdict != case.expect {
        out.push(format!("expected {}, got {decision:?}", case.expect));
    }
    if let Some(policies) = &case.policies
        && decision.policies() != policies.as_slice()
    {
        out.push(format!("expected policies {policies:?}, got {:?}", decision.policies()));
    }
    let (mask, budget, reason, remedy) = match decision {
        PolicyDecision::Allow { mask_profile, budget, .. } => (mask_profile.clone(), Some(*budget), None, None),
        PolicyDecision::Hold { mask_profile, budget, reason, .. } => {
            (mask_profile.clone(), Some(*budget), Some(reason), None)
        }
        PolicyDecision::Deny { reason, remedy, .. } => (None, None, Some(reason), Some(remedy)),
    };
    if let Some(expected) = &case.mask {
        let expected = (!expected.is_empty()).then(|| expected.clone());
        if mask != expected {
            out.push(format!("expected mask {expected:?}, got {mask:?}"));
        }
    }
    if let Some(b) = &case.budget {
        let expected = Budget {
            rows_per_statement: b.rows_per_statement,
            bytes_per_statement: b.bytes_per_statement,
            rows_per_hour: b.rows_per_hour,
        };
        if budget != Some(expected) {
            out.push(format!("expected budget {expected:?}, got {budget:?}"));
        }
    }
    for needle in case.reason_contains.iter().flatten() {
        if !reason.is_some_and(|r| r.contains(needle.as_str())) {
            out.push(format!("expected reason containing {needle:?}, got {reason:?}"));
        }
    }
    if let Some(needle) = &case.remedy_contains
        && !remedy.is_some_and(|r| r.contains(needle.as_str()))
    {
        out.push(format!("expected remedy containing {needle:?}, got {remedy:?}"));
    }
    out
}
