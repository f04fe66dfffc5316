//! The log on the real PostgreSQL server (127.0.0.1:5432), one throwaway
//! database per test.
//!
//! Owns: append/verify on PostgreSQL, "durable means visible" against a slow
//! store, and reconnecting after the writer's connection is killed.
//! Does not: time anything as a pass/fail criterion except the slow store's
//! floor (the trigger sleeps 300 ms, so resolving sooner would be a bug).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TestDatabase, append_all, request, session, session_open, with_database};
use sluice_audit::{AuditError, AuditLog, AuditOptions, AuditReader, SearchFilter, StoreHealth};
use sqlx::{Connection, Row};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_verify_on_postgres() {
    with_database(|url| async move {
        const TASKS: u64 = 8;
        const PER_TASK: u64 = 250;
        let commits = Arc::new(AtomicUsize::new(0));
        let options = AuditOptions {
            max_batch: 1024,
            signing_key: None,
            on_commit: Some({
                let commits = commits.clone();
                Arc::new(move |_| {
                    commits.fetch_add(1, Ordering::Relaxed);
                })
            }),
        };
        let log = AuditLog::open(&url, options).await.expect("open");
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for n in 0..PER_TASK {
                        seqs.push(log.append(request(&format!("pg-{t}"), n, "agent", "clinic")).await.expect("append"));
                    }
                    seqs
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.extend(task.await.expect("task"));
        }
        let elapsed = started.elapsed();
        log.shutdown().await;
        let total = TASKS * PER_TASK;
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        let commits = commits.load(Ordering::Relaxed) as u64;
        assert!(commits < total, "group commit: {commits} commits for {total} records");
        eprintln!(
            "postgres: {total} records from {TASKS} tasks in {elapsed:?} = {:.0} records/s, {commits} commits",
            total as f64 / elapsed.as_secs_f64()
        );

        // Pages of 300 seqs: several pages, and 1500 sits at a page boundary.
        let reader = AuditReader::open(&url).await.expect("reader").with_page_size(300);
        let report = reader.verify(|_, _| {}).await.expect("verify");
        assert_eq!(report.broken, None);
        assert_eq!(report.records, total);
        assert_eq!(report.incomplete_requests.len() as u64, total, "no outcomes were written");

        // Tampering is found on PostgreSQL too.
        let mut side = sqlx::PgConnection::connect(&url).await.expect("side connection");
        sqlx::query("UPDATE audit_records SET connection = 'elsewhere' WHERE seq = 1500")
            .execute(&mut side)
            .await
            .expect("tamper");
        let broken = reader.verify(|_, _| {}).await.expect("verify").broken.expect("broken");
        assert_eq!(broken.seq, 1500, "{broken}");
    })
    .await;
}

#[tokio::test]
async fn durable_waits_for_a_slow_store() {
    with_database(|url| async move {
        let log = AuditLog::open(&url, AuditOptions::default()).await.expect("open");
        let mut side = sqlx::PgConnection::connect(&url).await.expect("side connection");
        for sql in [
            "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$",
            "CREATE TRIGGER slow BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION slow_insert()",
        ] {
            sqlx::query(sql).execute(&mut side).await.expect(sql);
        }

        let started = Instant::now();
        let mut durable = log.append(session_open("s1", "agent-1", "clinic"));
        // Still in flight while the store sleeps.
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut durable).await.is_err());
        let seq = durable.await.expect("durable");
        let elapsed = started.elapsed();
        // Visible from another connection the moment it resolves.
        let visible: i64 = sqlx::query("SELECT COUNT(*) FROM audit_records WHERE seq = $1")
            .bind(i64::try_from(seq).expect("seq"))
            .fetch_one(&mut side)
            .await
            .expect("count")
            .get(0);
        assert_eq!(visible, 1, "record {seq} must be committed when Durable resolves");
        assert!(elapsed >= Duration::from_millis(300), "resolved after {elapsed:?}, before the store finished");
        log.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn killed_connection_fails_closed_then_reconnects() {
    with_database(|url| async move {
        let log = AuditLog::open(&url, AuditOptions::default()).await.expect("open");
        append_all(&log, session("s1", "agent-1", "clinic", 1)).await; // 1..=4

        let mut side = sqlx::PgConnection::connect(&url).await.expect("side connection");
        let killed: i64 = sqlx::query(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'sluice-audit') AS t",
        )
        .fetch_one(&mut side)
        .await
        .expect("terminate")
        .get(0);
        assert_eq!(killed, 1, "exactly the writer's connection");

        match log.append(request("s2", 1, "agent-2", "clinic")).await {
            Err(AuditError::StoreUnavailable(reason)) => eprintln!("postgres: after kill: {reason}"),
            other => panic!("expected StoreUnavailable, got {other:?}"),
        }
        assert!(matches!(log.health(), StoreHealth::Unavailable { .. }));

        let seq = log.append(request("s2", 2, "agent-2", "clinic")).await.expect("reconnected");
        assert_eq!(seq, 5);
        assert_eq!(log.health(), StoreHealth::Healthy);
        log.shutdown().await;
        let report = AuditReader::open(&url).await.expect("reader").verify(|_, _| {}).await.expect("verify");
        assert_eq!((report.records, report.broken), (5, None));
    })
    .await;
}

#[tokio::test]
async fn search_on_postgres() {
    with_database(|url| async move {
        let log = AuditLog::open(&url, AuditOptions::default()).await.expect("open");
        append_all(&log, session("s1", "alice", "clinic", 1)).await; // 1..=4
        let between = chrono::Utc::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        append_all(&log, session("s2", "bob", "billing", 1)).await; // 5..=8
        log.shutdown().await;
        let reader = AuditReader::open(&url).await.expect("reader");
        let seqs = |records: Vec<sluice_audit::AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
        let cases = [
            (SearchFilter { since: Some(between), ..Default::default() }, vec![5, 6, 7, 8]),
            (SearchFilter { principal: Some("alice".into()), limit: Some(2), ..Default::default() }, vec![3, 4]),
            (
                SearchFilter { connection: Some("billing".into()), kind: Some("request".into()), ..Default::default() },
                vec![6],
            ),
            (SearchFilter { session: Some("s1".into()), ..Default::default() }, vec![1, 2, 3, 4]),
        ];
        for (filter, expected) in cases {
            assert_eq!(seqs(reader.search(&filter).await.expect("search")), expected, "{filter:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn test_databases_are_dropped() {
    let db = TestDatabase::create().await;
    let name = db.name.clone();
    db.drop_database().await;
    let mut admin = sqlx::PgConnection::connect(common::PG_ADMIN_URL).await.expect("admin");
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
}

/// Retention on PostgreSQL: statement text redacted, then every record of
/// the connection expired, each keeping its first leaf; the log verifies.
#[tokio::test]
async fn retention_rewrites_verify_on_postgres() {
    with_database(|url| async move {
        use sluice_audit::PruneRule;
        let log = AuditLog::open(&url, AuditOptions::default()).await.expect("open");
        append_all(&log, session("pg-a", "alice", "clinic", 3)).await;
        append_all(&log, session("pg-b", "bob", "lab", 2)).await;
        let reader = AuditReader::open(&url).await.expect("reader");
        let later = chrono::Utc::now() + chrono::Duration::seconds(1);
        let rule = |statement_days, index_days| PruneRule {
            connection: "clinic".into(),
            payload_days: None,
            statement_days,
            index_days,
            legal_hold: false,
        };
        let plans = reader.prune_plan(&[rule(Some(0), None)], later).await.expect("plan");
        assert_eq!(plans[0].statements.len(), 3);
        log.prune(plans).await.expect("redacted");
        let plans = reader.prune_plan(&[rule(None, Some(0))], later).await.expect("plan");
        assert_eq!(plans[0].expired.len(), 8, "open, 3 requests, 3 outcomes, close");
        log.prune(plans).await.expect("expired");
        assert!(reader.prune_plan(&[rule(Some(0), Some(0))], later).await.expect("plan").is_empty());
        let expired =
            reader.search(&SearchFilter { kind: Some("expired".into()), ..Default::default() }).await.unwrap();
        assert_eq!(expired.len(), 8);
        let alice =
            reader.search(&SearchFilter { principal: Some("alice".into()), ..Default::default() }).await.unwrap();
        assert!(alice.is_empty());
        let bob = SearchFilter { contains: Some("\"bob\"".into()), ..Default::default() };
        assert_eq!(reader.search(&bob).await.unwrap().len(), 6, "exact text, found by strpos");
        let wildcard = SearchFilter { contains: Some("%".into()), ..Default::default() };
        assert!(reader.search(&wildcard).await.unwrap().is_empty());
        let report = reader.verify(|_, _| {}).await.expect("verify");
        assert_eq!((report.broken, report.records), (None, 8 + 6 + 2));
        log.shutdown().await;
    })
    .await;
}
