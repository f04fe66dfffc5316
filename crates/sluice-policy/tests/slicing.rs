//! Slicing, guard flags and context pruning never change a decision: every
//! case of `decisions.toml`, varied at random (kind, flags, groups,
//! connection, principal kind, tables, address), decides the same as the
//! unsliced reference that evaluates every policy against the full context.
//! Also: unrelated policies stay out of a request's slice.
//!
//! Owns: the differential test of `decide` against `decide_unsliced`.
//! Does not: check what the decisions are (see `decisions.rs`).

mod common;

use common::{Case, build_set, decide, load_cases};
use sluice_model::{Principal, PrincipalKind, SqlClassification, StatementKind};
use sluice_policy::{PolicyEngine, SqlRequest};
use std::collections::HashMap;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

fn vary(rng: &mut Rng, base: &Case) -> Case {
    use StatementKind::*;
    let mut c = base.clone();
    if rng.chance(2) {
        c.statement = *rng.pick(&[Read, Transaction, Session, Utility, Write, Ddl, Admin]);
    }
    if rng.chance(2) {
        c.flags = sluice_model::SqlFlags::NAMES.iter().filter(|_| rng.chance(6)).map(|f| f.to_string()).collect();
    }
    if rng.chance(3) {
        let extra = ["readers", "analysts", "writers", "dba", "clinic", "research", "staff", "admins", "math", "trial"];
        c.groups = extra.iter().filter(|_| rng.chance(3)).map(|g| g.to_string()).collect();
    }
    if rng.chance(3) {
        c.connection = rng.pick(&["patients", "scratch", "emr", "x", "other"]).to_string();
    }
    if rng.chance(4) {
        c.kind = *rng.pick(&[PrincipalKind::Agent, PrincipalKind::Human, PrincipalKind::Service]);
    }
    if rng.chance(3) {
        c.tables_read.push(rng.pick(&["patients", "public.visits", "secrets", "archive.patients"]).to_string());
    }
    if rng.chance(4) {
        c.client_ip = Some(rng.pick(&["10.9.8.7", "192.168.0.1", "::1"]).to_string());
    }
    if rng.chance(5) {
        c.statements = Some(*rng.pick(&[1, 2, 5]));
    }
    if rng.chance(5) {
        c.now = Some(rng.pick(&["2026-11-07T23:00:00Z", "2027-03-01T03:00:00Z"]).to_string());
    }
    c
}

fn unsliced(engine: &PolicyEngine, case: &Case) -> sluice_policy::PolicyDecision {
    let principal = common::principal(case);
    let classification = common::classification(case);
    let request = SqlRequest {
        principal: &principal,
        connection: &case.connection,
        classification: &classification,
        client_addr: case.client_ip.as_deref().map(|ip| ip.parse().unwrap()),
        now: case.now.as_deref().unwrap_or("2026-11-04T10:00:00Z").parse().unwrap(),
        default_schema: match case.default_schema.as_deref() {
            None => Some("public"),
            Some("") => None,
            Some(s) => Some(s),
        },
    };
    engine.decide_unsliced(&request)
}

#[test]
fn sliced_decisions_equal_unsliced() {
    let cases = load_cases("decisions.toml");
    let engines: HashMap<&str, PolicyEngine> = cases.set.iter().map(|s| (s.name.as_str(), build_set(s))).collect();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut checked = 0;
    for base in &cases.case {
        let engine = &engines[base.set.as_str()];
        for i in 0..40 {
            let case = if i == 0 { base.clone() } else { vary(&mut rng, base) };
            let (sliced, reference) = (decide(engine, &case), unsliced(engine, &case));
            assert_eq!(sliced, reference, "slicing changed the decision for {case:?}");
            checked += 1;
        }
    }
    assert!(checked > 1000);
}

#[test]
fn unrelated_policies_stay_out_of_the_slice() {
    let mut others = String::new();
    for i in 0..150 {
        others.push_str(&format!(
            "permit (principal in Sluice::Group::\"team{i}\", action == Sluice::Action::\"sql:read\", resource == Sluice::Connection::\"db{i}\");\n\
             forbid (principal in Sluice::Group::\"team{i}\", action, resource == Sluice::Connection::\"patients\") when {{ context.hour > 22 }};\n"
        ));
    }
    let mine = "permit (principal in Sluice::Group::\"analysts\", action == Sluice::Action::\"sql:read\", resource == Sluice::Connection::\"patients\");\n\
                forbid (principal, action, resource) when { context.multi_statement };";
    let engine =
        PolicyEngine::from_sources(&[("others.cedar".into(), others), ("mine.cedar".into(), mine.into())]).unwrap();
    assert_eq!(engine.policy_names().count(), 302);
    let mut case: Case =
        load_cases("decisions.toml").case.into_iter().find(|c| c.name == "analyst-reads-patients-qualified").unwrap();
    let principal = common::principal(&case);
    let mut classification = common::classification(&case);
    // Only the analysts' permit; the multi-statement forbid is guarded by its flag.
    assert_eq!(engine.slice_len(&request(&principal, &classification)), 1);
    classification.flags.multi_statement = true;
    assert_eq!(engine.slice_len(&request(&principal, &classification)), 2);
    case.groups = vec!["team7".into()];
    let team7 = common::principal(&case);
    // team7's forbid on patients and the guarded forbid; no permit.
    assert_eq!(engine.slice_len(&request(&team7, &classification)), 2);
}

fn request<'a>(principal: &'a Principal, classification: &'a SqlClassification) -> SqlRequest<'a> {
    SqlRequest {
        principal,
        connection: "patients",
        classification,
        client_addr: None,
        now: "2026-11-04T10:00:00Z".parse().unwrap(),
        default_schema: Some("public"),
    }
}
