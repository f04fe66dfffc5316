//! Decision latency with 200 policies loaded (`cargo bench -p sluice-policy`).
//!
//! Owns: the p50/p99 numbers for `PolicyEngine::decide` on a typical read,
//! sliced (scopes pinned) and, for comparison, unsliceable (the same
//! conditions written in `when`, so every policy is evaluated).
//! Does not: assert; the target (p99 ≤ 20 µs) is checked by reading the output.

mod common;

use common::{TOTAL, Timings, analyst, engine};
use sluice_model::{SqlClassification, SqlFlags, StatementKind};
use sluice_policy::{PolicyDecision, PolicyEngine, SqlRequest};
use std::hint::black_box;

fn report(label: &str, slice: usize, run: impl Fn() -> PolicyDecision) {
    let t = Timings::measure(20_000, 100_000, run);
    println!(
        "{label:<58} {slice:>3}/{TOTAL}  p50 {:>7.2} µs  p99 {:>7.2} µs  p99.9 {:>7.2} µs  mean {:>7.2} µs",
        t.p50, t.p99, t.p999, t.mean,
    );
}

/// Reports `decide_prepared` (per-session entities, the pipeline's path),
/// and `decide` (entities built per call).
fn measure(label: &str, engine: &PolicyEngine, request: &SqlRequest<'_>, expect: fn(&PolicyDecision) -> bool) {
    let prepared = engine.prepare(request.principal, request.connection);
    let decision = engine.decide(request);
    assert!(expect(&decision), "{label}: unexpected {decision:?}");
    assert_eq!(engine.decide_prepared(&prepared, request), decision);
    assert_eq!(engine.decide_unsliced(request), decision);
    let slice = engine.slice_len(request);
    report(&format!("{label}: decide_prepared"), slice, || {
        engine.decide_prepared(black_box(&prepared), black_box(request))
    });
    report(&format!("{label}: decide"), slice, || engine.decide(black_box(request)));
}

fn classification(kind: StatementKind, tables: &[&str]) -> SqlClassification {
    SqlClassification {
        kind,
        statements: 1,
        tables_read: tables.iter().map(|t| t.to_string()).collect(),
        tables_written: vec![],
        functions: vec!["count".into()],
        flags: SqlFlags::default(),
        fingerprint: "a1b2c3d4e5f60718".into(),
    }
}

fn main() {
    let analyst = analyst();
    let read = classification(StatementKind::Read, &["patients", "visits"]);
    let secret = classification(StatementKind::Read, &["patients", "secrets"]);
    let mut multi = read.clone();
    multi.flags.multi_statement = true;
    multi.statements = 2;
    let write = classification(StatementKind::Write, &[]);
    let request = |c| SqlRequest {
        principal: &analyst,
        connection: "patients",
        classification: c,
        client_addr: Some("10.1.2.3".parse().unwrap()),
        now: "2026-11-04T10:00:00Z".parse().unwrap(),
        default_schema: Some("public"),
    };
    let allow = |d: &PolicyDecision| matches!(d, PolicyDecision::Allow { .. });
    let deny = |d: &PolicyDecision| matches!(d, PolicyDecision::Deny { .. });

    println!("sluice-policy decide: {TOTAL} policies (starter + generated for other groups/connections)");
    println!("{:<58} slice     (policies evaluated / loaded)", "request");
    let sliced = engine(true);
    measure("analyst SELECT patients+visits (allow)", &sliced, &request(&read), allow);
    measure("analyst SELECT patients+secrets (deny)", &sliced, &request(&secret), deny);
    measure("agent multi-statement (forbid)", &sliced, &request(&multi), deny);
    measure("analyst UPDATE, no permit (default deny)", &sliced, &request(&write), deny);
    let r = request(&read);
    report("analyst SELECT (allow): unsliced reference", TOTAL, || sliced.decide_unsliced(black_box(&r)));
    let unpinned = engine(false);
    let prepared = unpinned.prepare(r.principal, r.connection);
    report("analyst SELECT (allow): scopes written in `when`", unpinned.slice_len(&r), || {
        unpinned.decide_prepared(black_box(&prepared), black_box(&r))
    });
}
