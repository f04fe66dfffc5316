//! Decision latency with 200 policies loaded (`cargo bench -p sluice-policy`).
//!
//! Owns: the p50/p99 numbers for `PolicyEngine::decide` on a typical read,
//! sliced (scopes pinned) and, for comparison, unsliceable (the same
//! conditions written in `when`, so every policy is evaluated).
//! Does not: assert; the target (p99 ≤ 20 µs) is checked by reading the output.

use sluice_model::{Principal, PrincipalKind, SqlClassification, SqlFlags, StatementKind};
use sluice_policy::{PolicyDecision, PolicyEngine, PolicySettings, SqlRequest};
use std::hint::black_box;
use std::time::{Duration, Instant};

const TOTAL: usize = 200;

fn starter() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let text = std::fs::read_to_string(dir.join("starter.cedar")).expect("policies/starter.cedar");
    vec![("starter.cedar".into(), text)]
}

/// Policies for other groups and connections (and a few for this one), with
/// the scope pinned (`pinned`) or the same tests moved into `when`.
fn others(count: usize, pinned: bool) -> String {
    let mut out = String::new();
    for i in 0..count {
        let (group, connection, action, effect, extra) = match i % 10 {
            0..=5 => (format!("team{i}"), format!("db{}", i % 30), "sql:read", "permit", ""),
            6 => (format!("team{i}"), "patients".to_owned(), "sql:read", "permit", ""),
            7 => (format!("ops{i}"), format!("db{}", i % 30), "sql:write", "permit", ""),
            8 => (format!("team{i}"), format!("db{}", i % 30), "sql:read", "forbid", " && context.hour > 20"),
            _ => (format!("ops{i}"), "patients".to_owned(), "sql:ddl", "permit", ""),
        };
        let tables = format!("[\"public.t{i}\", \"public.u{i}\"].containsAll(context.tables_read)");
        if pinned {
            out.push_str(&format!(
                "@id(\"p{i}\")\n{effect} (principal in Sluice::Group::\"{group}\", action == Sluice::Action::\"{action}\", resource == Sluice::Connection::\"{connection}\")\nwhen {{ {tables}{extra} }};\n\n"
            ));
        } else {
            out.push_str(&format!(
                "@id(\"p{i}\")\n{effect} (principal, action, resource)\nwhen {{ principal in Sluice::Group::\"{group}\" && action == Sluice::Action::\"{action}\" && resource == Sluice::Connection::\"{connection}\" && {tables}{extra} }};\n\n"
            ));
        }
    }
    out
}

fn engine(pinned: bool) -> PolicyEngine {
    let mut sources = starter();
    let starter_count = PolicyEngine::from_sources(&sources).unwrap().policy_names().count();
    sources.push(("others.cedar".into(), others(TOTAL - starter_count, pinned)));
    let settings = PolicySettings {
        group_parents: [("analysts".to_owned(), vec!["readers".to_owned()])].into(),
        ..PolicySettings::default()
    };
    let engine = PolicyEngine::from_sources_with(&sources, &settings).unwrap();
    assert_eq!(engine.policy_names().count(), TOTAL);
    engine
}

fn report(label: &str, slice: usize, run: impl Fn() -> PolicyDecision) {
    for _ in 0..20_000 {
        black_box(run());
    }
    let n = 100_000;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        black_box(run());
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / n as f64;
    println!(
        "{label:<58} {slice:>3}/{TOTAL}  p50 {:>7.2} µs  p99 {:>7.2} µs  p99.9 {:>7.2} µs  mean {mean:>7.2} µs",
        at(0.50),
        at(0.99),
        at(0.999),
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
    let analyst = Principal {
        subject: "bot-1".into(),
        kind: PrincipalKind::Agent,
        groups: vec!["analysts".into(), "staff".into()],
        issuer: "https://idp.example".into(),
        token_id: None,
    };
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
