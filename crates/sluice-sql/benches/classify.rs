//! Classification latency, cached and uncached, for a few typical
//! PostgreSQL and MySQL statements: `cargo bench -p sluice-sql`. Plain `Instant` loop; each call
//! is timed on its own (the timer itself adds a few tens of nanoseconds).

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_sql::{Classifier, MySqlMode, PgStringMode};

const STATEMENTS: &[(&str, &str)] = &[
    ("select by id", "SELECT * FROM patients WHERE id = $1"),
    (
        "join + group",
        "SELECT p.name, count(n.id) FROM public.patients p LEFT JOIN notes n ON n.patient_id = p.id \
         WHERE p.ward = $1 GROUP BY p.name ORDER BY 2 DESC LIMIT 10",
    ),
    ("insert", "INSERT INTO notes (patient_id, body, at) VALUES ($1, $2, now()) RETURNING id"),
    ("update", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"),
    (
        "cte + subquery",
        "WITH recent AS (SELECT * FROM visits WHERE at > now() - interval '1 day') \
         SELECT * FROM recent r JOIN patients p ON p.id = r.pid WHERE EXISTS (SELECT 1 FROM consents c WHERE c.pid = p.id)",
    ),
    ("set", "SET statement_timeout = '5s'"),
];

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

fn measure(classifier: &Classifier, sql: &str, iterations: usize) -> (Duration, Duration) {
    let mode = PgStringMode::default();
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        black_box(classifier.classify_postgres(black_box(sql), mode));
        samples.push(start.elapsed());
    }
    percentiles(samples)
}

/// The same loop over a bare `pg_query` call, as a baseline.
fn measure_fn(iterations: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    percentiles(samples)
}

/// MySQL statements (no `pg_query` baseline for these).
const MYSQL_STATEMENTS: &[(&str, &str)] = &[
    ("mysql select by id", "SELECT * FROM patients WHERE id = ?"),
    (
        "mysql join + group",
        "SELECT p.name, COUNT(n.id) FROM clinic.patients p LEFT JOIN notes n ON n.patient_id = p.id \
         WHERE p.ward = ? GROUP BY p.name ORDER BY 2 DESC LIMIT 10",
    ),
    ("mysql upsert", "INSERT INTO notes (id, body) VALUES (?, ?) ON DUPLICATE KEY UPDATE body = VALUES(body)"),
    ("mysql set names", "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"),
];

fn measure_mysql(classifier: &Classifier, sql: &str, iterations: usize) -> (Duration, Duration) {
    measure_fn(iterations, || {
        black_box(classifier.classify_mysql(black_box(sql), MySqlMode::DEFAULT));
    })
}

fn main() {
    // A larger statement: 1 kB of generated SQL.
    let wide: String = format!(
        "SELECT {} FROM patients WHERE id = ANY($1)",
        (0..60).map(|i| format!("col_{i}")).collect::<Vec<_>>().join(", ")
    );
    let mut all: Vec<(&str, &str)> = STATEMENTS.to_vec();
    all.push(("wide select (1 kB)", &wide));

    println!(
        "{:<22} {:>13} {:>13} {:>11} {:>11} {:>16} {:>16}",
        "statement", "uncached p50", "uncached p99", "cached p50", "cached p99", "pg_query parse", "pg_query fprint"
    );
    let uncached = Classifier::new(0);
    let cached = Classifier::new(4096);
    for (name, sql) in all {
        // Warm up both paths.
        measure(&uncached, sql, 200);
        measure(&cached, sql, 10);
        let (u50, u99) = measure(&uncached, sql, 5_000);
        let (c50, c99) = measure(&cached, sql, 200_000);
        let (p50, _) = measure_fn(5_000, || {
            black_box(pg_query::parse(black_box(sql), 0).is_ok());
        });
        let (f50, _) = measure_fn(5_000, || {
            black_box(pg_query::fingerprint(black_box(sql), 0, 0).is_ok());
        });
        println!(
            "{name:<22} {u50:>13.2?} {u99:>13.2?} {c50:>11.2?} {c99:>11.2?} {:>16} {:>16}",
            format!("p50 {p50:.2?}"),
            format!("p50 {f50:.2?}")
        );
    }
    for (name, sql) in MYSQL_STATEMENTS {
        measure_mysql(&uncached, sql, 200);
        measure_mysql(&cached, sql, 10);
        let (u50, u99) = measure_mysql(&uncached, sql, 5_000);
        let (c50, c99) = measure_mysql(&cached, sql, 200_000);
        println!("{name:<22} {u50:>13.2?} {u99:>13.2?} {c50:>11.2?} {c99:>11.2?}");
    }
}
