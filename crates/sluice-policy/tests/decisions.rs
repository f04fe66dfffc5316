//! Runs `decisions.toml`: every case against its policy set, all mismatches
//! reported at once.
//!
//! Owns: the data-driven decision tests and checks that the runner can fail.
//! Does not: test loading errors (see `load_errors.rs`).

mod common;

use common::{build_set, decide, load_cases, mismatches};
use sluice_model::StatementKind;
use sluice_policy::PolicyDecision;
use std::collections::HashMap;

#[test]
fn decision_table() {
    let cases = load_cases("decisions.toml");
    let engines: HashMap<&str, _> = cases.set.iter().map(|s| (s.name.as_str(), build_set(s))).collect();
    let mut failures = Vec::new();
    let mut verdicts = HashMap::new();
    for case in &cases.case {
        let engine =
            engines.get(case.set.as_str()).unwrap_or_else(|| panic!("case {}: no set {}", case.name, case.set));
        let decision = decide(engine, case);
        *verdicts.entry(case.expect.clone()).or_insert(0) += 1;
        for m in mismatches(case, &decision) {
            failures.push(format!("{}: {m}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.case.len() >= 40, "only {} cases", cases.case.len());
    for v in ["allow", "deny", "hold"] {
        assert!(verdicts.get(v).copied().unwrap_or(0) >= 3, "too few {v} cases: {verdicts:?}");
    }
    println!("{} decision cases passed ({verdicts:?})", cases.case.len());
}

/// The runner notices a wrong expectation of every kind.
#[test]
fn runner_reports_mismatches() {
    let cases = load_cases("decisions.toml");
    let set = cases.set.iter().find(|s| s.name == "obligations").unwrap();
    let engine = build_set(set);
    let base = cases.case.iter().find(|c| c.name == "masks-strictest-by-order-budget-minimum").unwrap().clone();
    assert!(mismatches(&base, &decide(&engine, &base)).is_empty());
    let mut wrong = Vec::new();
    let mut c = base.clone();
    c.expect = "deny".into();
    wrong.push(c);
    let mut c = base.clone();
    c.policies = Some(vec!["read-strict".into()]);
    wrong.push(c);
    let mut c = base.clone();
    c.mask = Some("phi".into());
    wrong.push(c);
    let mut c = base.clone();
    c.budget.as_mut().unwrap().rows_per_statement = Some(500);
    wrong.push(c);
    let mut c = base.clone();
    c.groups = vec!["nobody".into()];
    wrong.push(c);
    for c in wrong {
        assert!(!mismatches(&c, &decide(&engine, &c)).is_empty(), "mismatch not reported for {c:?}");
    }
}

/// Every statement kind maps to its own action, and each is reachable.
#[test]
fn each_kind_has_its_action() {
    use StatementKind::*;
    let kinds = [Read, Transaction, Session, Utility, Write, Ddl, Admin];
    let names: Vec<&str> = kinds.iter().map(|k| sluice_policy::action_for(*k)).collect();
    assert_eq!(
        names,
        ["sql:read", "sql:transaction", "sql:session", "sql:utility", "sql:write", "sql:ddl", "sql:admin"]
    );
    let cases = load_cases("decisions.toml");
    let set = cases.set.iter().find(|s| s.name == "kinds").unwrap();
    let engine = build_set(set);
    let mut case = cases.case.iter().find(|c| c.set == "kinds").unwrap().clone();
    for (kind, name) in kinds.iter().zip(names) {
        case.statement = *kind;
        case.groups = vec![name.replace(':', "-")];
        match decide(&engine, &case) {
            PolicyDecision::Allow { policies, .. } => assert_eq!(policies, [name]),
            other => panic!("{name}: {other:?}"),
        }
        case.groups = vec!["sql-read".into()];
        if *kind != Read {
            assert!(matches!(decide(&engine, &case), PolicyDecision::Deny { .. }), "{name} allowed to readers");
        }
    }
}
