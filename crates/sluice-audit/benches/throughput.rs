//! Throughput of the audit log on SQLite: durable appends per second under
//! concurrency, commits per batch, and verify speed. Run with
//! `cargo bench -p sluice-audit --bench throughput`; `AUDIT_BENCH_RECORDS`
//! and `AUDIT_BENCH_TASKS` change the size. With `AUDIT_BENCH_DB=<path>` the
//! SQLite log is kept there, and if it already exists only verify runs. With
//! `AUDIT_BENCH_URL=postgres://...` (an empty database) it runs there instead.
//!
//! Owns: measuring. Does not: assert; numbers are printed for `bench/` notes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sluice_audit::{AuditLog, AuditOptions, AuditReader};
use sluice_evidence::SigningKey;
use sluice_model::{AuditEvent, DecisionSummary, OutcomeEvent, OutcomeStatus, RequestEvent, Verdict};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn event(task: u64, n: u64) -> AuditEvent {
    let session_id = format!("bench-{task}");
    if n.is_multiple_of(2) {
        AuditEvent::Request(RequestEvent {
            request_id: format!("{session_id}:{n}"),
            session_id,
            principal: format!("agent-{}", task % 16),
            connection: "clinic".into(),
            client_addr: "127.0.0.1:50000".into(),
            statement: format!("SELECT name, dob, mrn FROM patients WHERE clinic_id = {n} ORDER BY name LIMIT 50"),
            param_count: 0,
            params_sha256: None,
            decision: DecisionSummary { verdict: Verdict::Allow, policies: vec!["allow-read".into()], reason: None },
            classification: None,
            mask_profile: None,
        })
    } else {
        AuditEvent::Outcome(OutcomeEvent {
            request_id: format!("{session_id}:{}", n - 1),
            session_id,
            principal: format!("agent-{}", task % 16),
            connection: "clinic".into(),
            status: OutcomeStatus::Ok,
            command_tag: Some("SELECT 50".into()),
            rows: 50,
            sqlstate: None,
            error: None,
            bytes_out: 4096,
            duration_us: 800,
            rows_charged: 0,
            masked: Default::default(),
            subjects: Default::default(),
            subjects_omitted: 0,
        })
    }
}

fn main() {
    let records = env_or("AUDIT_BENCH_RECORDS", 1_000_000);
    let tasks = env_or("AUDIT_BENCH_TASKS", 512).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = std::env::var("AUDIT_BENCH_DB").map(std::path::PathBuf::from);
        let path = path.unwrap_or_else(|_| dir.path().join("bench.db"));
        let url = match std::env::var("AUDIT_BENCH_URL") {
            Ok(url) => {
                append(&url, records, tasks).await;
                url
            }
            Err(_) => {
                let url = format!("sqlite://{}", path.display());
                if !path.exists() {
                    append(&url, records, tasks).await;
                }
                url
            }
        };
        verify(&url).await;
        verify_export(&url, dir.path()).await;
    });
}

/// The key the bench signs checkpoints with (fixed, so a kept log verifies).
fn bench_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::from_seed("bench", [7; 32]).expect("key"))
}

async fn append(url: &str, records: u64, tasks: u64) {
    let commits = Arc::new(AtomicU64::new(0));
    let commit_nanos = Arc::new(AtomicU64::new(0));
    let options = AuditOptions {
        max_batch: 1024,
        signing_key: Some(bench_key()),
        on_commit: Some({
            let (commits, commit_nanos) = (commits.clone(), commit_nanos.clone());
            Arc::new(move |stats| {
                commits.fetch_add(1, Ordering::Relaxed);
                commit_nanos.fetch_add(stats.latency.as_nanos() as u64, Ordering::Relaxed);
            })
        }),
    };
    let log = AuditLog::open(url, options).await.expect("open");

    // Each task is a session awaiting each record, as the pipeline does,
    // while a checkpoint is signed every second, as the server does.
    let per_task = records / tasks;
    let checkpoints = {
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if log.checkpoint().await.is_err() {
                    break;
                }
            }
        })
    };
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for n in 0..per_task {
                    log.append(event(t, n)).await.expect("append");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let elapsed = started.elapsed();
    checkpoints.abort();
    log.shutdown().await;
    let written = per_task * tasks;
    let commits = commits.load(Ordering::Relaxed);
    println!(
        "append: {written} durable records from {tasks} tasks in {elapsed:.2?} = {:.0} records/s; \
             {commits} commits ({:.0} records/commit, mean commit {:.0} µs)",
        written as f64 / elapsed.as_secs_f64(),
        written as f64 / commits.max(1) as f64,
        commit_nanos.load(Ordering::Relaxed) as f64 / commits.max(1) as f64 / 1000.0,
    );
}

async fn verify(url: &str) {
    let reader = AuditReader::open(url).await.expect("reader").with_checkpoint_key(bench_key().verifier().clone());
    let started = Instant::now();
    let report = reader.verify(|_, _| {}).await.expect("verify");
    let elapsed = started.elapsed();
    assert!(report.broken.is_none(), "{:?}", report.broken);
    println!(
        "verify: {} records in {elapsed:.2?} = {:.0} records/s",
        report.records,
        report.records as f64 / elapsed.as_secs_f64()
    );
}

/// Exports the log, then verifies the export offline (chain, tree and every
/// checkpoint): the auditor's path.
async fn verify_export(url: &str, scratch: &std::path::Path) {
    let reader = AuditReader::open(url).await.expect("reader");
    let dir = scratch.join("export");
    let started = Instant::now();
    let key = bench_key();
    let summary = reader.export(&dir, Some(key.verifier()), |_, _| {}).await.expect("export");
    let exported = started.elapsed();
    let started = Instant::now();
    let report = sluice_audit::verify_export(&dir, key.verifier(), |_, _| {}).expect("verify export");
    let elapsed = started.elapsed();
    assert!(report.broken.is_none(), "{:?}", report.broken);
    println!(
        "export: {} records in {exported:.2?}; verify export: {} records, {} checkpoints in {elapsed:.2?} = {:.0} records/s",
        summary.records,
        report.records,
        report.checkpoints_verified,
        report.records as f64 / elapsed.as_secs_f64()
    );
}
