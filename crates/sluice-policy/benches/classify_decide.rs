//! What the decide phase costs a statement end to end: classification from
//! the cache plus `decide_prepared`, with 200 policies loaded
//! (`cargo bench -p sluice-policy --bench classify_decide`).
//!
//! Owns: p50/p99 of `Classifier::classify_postgres` (cached, as the gateway
//! hits it for repeated statements) followed by `decide_prepared` (entities
//! prepared once per session, as the pipeline does), per typical statement
//! and over all of them, ending with one summary line:
//! `policy: classify+decide p50=… µs p99=… µs (200 policies, cached)`.
//! Does not: assert a target; `bench/policy.sh` runs it.

mod common;

use common::{TOTAL, Timings, analyst, engine};
use sluice_model::{Principal, Verdict};
use sluice_policy::{PolicyEngine, PreparedPrincipal, SqlRequest};
use sluice_sql::{Classifier, PgStringMode};
use std::hint::black_box;
use std::time::Instant;

/// Typical statements of an analyst's session, with the verdict each gets.
const STATEMENTS: &[(&str, &str, Verdict)] = &[
    ("select by id", "SELECT * FROM public.patients WHERE id = $1", Verdict::Allow),
    (
        "join + filter",
        "SELECT p.name, v.at FROM public.patients p JOIN public.visits v ON v.patient_id = p.id \
         WHERE p.ward = $1 ORDER BY v.at DESC LIMIT 50",
        Verdict::Allow,
    ),
    ("begin", "BEGIN", Verdict::Allow),
    ("set", "SET statement_timeout = '5s'", Verdict::Allow),
    ("read outside allow-list", "SELECT * FROM public.patients JOIN public.secrets USING (id)", Verdict::Deny),
    ("update (no permit)", "UPDATE public.patients SET name = $1 WHERE id = $2", Verdict::Deny),
    ("multi-statement (forbid)", "SELECT 1; SELECT * FROM public.visits", Verdict::Deny),
];

fn classify_decide(
    classifier: &Classifier,
    engine: &PolicyEngine,
    prepared: &PreparedPrincipal,
    principal: &Principal,
    sql: &str,
) -> Verdict {
    let classification = classifier.classify_postgres(sql, PgStringMode::STANDARD);
    // As the gateway decides: the session's schema is not known.
    let request = SqlRequest {
        principal,
        connection: "patients",
        classification: &classification,
        client_addr: Some("10.1.2.3".parse().unwrap()),
        now: chrono::Utc::now(),
        default_schema: None,
    };
    engine.decide_prepared(prepared, &request).verdict()
}

fn main() {
    let engine = engine(true);
    let classifier = Classifier::new(4096);
    let analyst = analyst();
    let prepared = engine.prepare(&analyst, "patients");
    let run = |sql: &str| classify_decide(&classifier, &engine, &prepared, &analyst, black_box(sql));

    println!("sluice-policy classify (cached) + decide_prepared: {TOTAL} policies, one agent session on `patients`");
    for (label, sql, verdict) in STATEMENTS {
        assert_eq!(run(sql), *verdict, "{label}: unexpected verdict");
        let t = Timings::measure(10_000, 50_000, || run(sql));
        println!(
            "{label:<28} {:<5}  p50 {:>6.2} µs  p99 {:>6.2} µs  p99.9 {:>6.2} µs  mean {:>6.2} µs",
            format!("{verdict:?}").to_lowercase(),
            t.p50,
            t.p99,
            t.p999,
            t.mean,
        );
    }
    // All statements interleaved, as a session sends them.
    let rounds = 30_000;
    let mut times = Vec::with_capacity(rounds * STATEMENTS.len());
    for _ in 0..rounds {
        for (_, sql, _) in STATEMENTS {
            let start = Instant::now();
            black_box(run(sql));
            times.push(start.elapsed());
        }
    }
    let all = Timings::of(times);
    println!(
        "{:<28} {:<5}  p50 {:>6.2} µs  p99 {:>6.2} µs  p99.9 {:>6.2} µs  mean {:>6.2} µs",
        "all, interleaved", "", all.p50, all.p99, all.p999, all.mean
    );
    println!("policy: classify+decide p50={:.1} µs p99={:.1} µs ({TOTAL} policies, cached)", all.p50, all.p99);
}
