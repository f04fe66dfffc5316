//! What the sluice-policy benches share: the 200-policy engine they load,
//! the principal they decide for, and the timing loop they report with.
//!
//! Owns: the generated policy set (the starter policies plus policies for
//! other groups and connections) and percentile timing.
//! Does not: print; each bench formats its own lines.

use sluice_model::{Principal, PrincipalKind};
use sluice_policy::{PolicyEngine, PolicySettings};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Policies loaded in every bench.
pub const TOTAL: usize = 200;

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

/// The starter policies plus generated ones, [`TOTAL`] in all, with
/// `analysts` configured as members of `readers`.
/// An agent in `analysts` and `staff`, the principal every bench decides for.
pub fn analyst() -> Principal {
    Principal {
        subject: "bot-1".into(),
        kind: PrincipalKind::Agent,
        groups: vec!["analysts".into(), "staff".into()],
        issuer: "https://idp.example".into(),
        token_id: None,
    }
}

pub fn engine(pinned: bool) -> PolicyEngine {
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

/// Latency percentiles of one measured loop, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub mean: f64,
}

impl Timings {
    /// Runs `run` `warmup` times untimed, then `n` times, each call timed on
    /// its own (the timer adds a few tens of nanoseconds).
    pub fn measure<T>(warmup: usize, n: usize, mut run: impl FnMut() -> T) -> Timings {
        for _ in 0..warmup {
            black_box(run());
        }
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            black_box(run());
            times.push(start.elapsed());
        }
        Timings::of(times)
    }

    /// Percentiles of the given samples.
    pub fn of(mut times: Vec<Duration>) -> Timings {
        times.sort_unstable();
        let n = times.len();
        let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
        let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / n as f64;
        Timings { p50: at(0.50), p99: at(0.99), p999: at(0.999), mean }
    }
}
