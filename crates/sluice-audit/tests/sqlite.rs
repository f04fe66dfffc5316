//! The log on a real SQLite file: group commit, verify, tampering, failing
//! closed and recovering, shutdown, search.
//!
//! Owns: behaviour of `AuditLog` and `AuditReader` on the embedded store.
//! Does not: time anything as a pass/fail criterion (numbers are printed only).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TempLog, append_all, outcome, request, session, session_open};
use sluice_audit::{
    AuditError, AuditLog, AuditOptions, AuditReader, BreakReason, SearchFilter, StoreHealth, VerifyReport,
};
use sqlx::Row;

/// Verifies with the default page size and with pages of 7 and 1 seqs (so
/// breaks fall on, before and after page boundaries); all must agree.
async fn verify(url: &str) -> VerifyReport {
    let report = AuditReader::open(url).await.expect("open reader").verify(|_, _| {}).await.expect("verify runs");
    for page in [7, 1] {
        let reader = AuditReader::open(url).await.expect("open reader").with_page_size(page);
        let paged = reader.verify(|_, _| {}).await.expect("verify runs");
        assert_eq!(paged, report, "pages of {page} seqs");
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits_and_verify() {
    const TASKS: u64 = 16;
    const PER_TASK: u64 = 625;
    let store = TempLog::new();
    let commits = Arc::new(AtomicUsize::new(0));
    let committed = Arc::new(AtomicUsize::new(0));
    let options = AuditOptions {
        max_batch: 1024,
        signing_key: None,
        on_commit: Some({
            let (commits, committed) = (commits.clone(), committed.clone());
            Arc::new(move |stats| {
                commits.fetch_add(1, Ordering::Relaxed);
                committed.fetch_add(stats.records, Ordering::Relaxed);
            })
        }),
    };
    let log = AuditLog::open(&store.url, options).await.expect("open");
    assert!(store.path.exists(), "open creates the file and its folder");

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let session_id = format!("session-{t}");
            let mut seqs = Vec::new();
            for n in 0..PER_TASK {
                let event = if n.is_multiple_of(2) {
                    request(&session_id, n, &format!("agent-{t}"), "clinic")
                } else {
                    outcome(&session_id, n - 1, &format!("agent-{t}"), "clinic")
                };
                seqs.push(log.append(event).await.expect("durable"));
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        let task_seqs = task.await.expect("task");
        assert!(task_seqs.windows(2).all(|w| w[0] < w[1]), "one task's records keep their order");
        seqs.extend(task_seqs);
    }
    let elapsed = started.elapsed();
    log.shutdown().await;

    let total = TASKS * PER_TASK;
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "seqs are contiguous from 1");
    let commits = commits.load(Ordering::Relaxed);
    assert_eq!(committed.load(Ordering::Relaxed) as u64, total);
    assert!(commits as u64 <= total / 4, "group commit: {commits} commits for {total} records");
    eprintln!(
        "sqlite: {total} records from {TASKS} tasks in {elapsed:?} = {:.0} records/s, {commits} commits",
        total as f64 / elapsed.as_secs_f64()
    );

    let reader = AuditReader::open(&store.url).await.expect("reader").with_page_size(1000);
    let mut calls = Vec::new();
    let started = Instant::now();
    let report = reader.verify(|checked, of| calls.push((checked, of))).await.expect("verify");
    eprintln!("sqlite: verified {} records in {:?} (debug build)", report.records, started.elapsed());
    assert_eq!(report.broken, None);
    assert_eq!(report.records, total);
    // Each task's last record is a request (625 is odd): its outcome is unknown.
    assert_eq!(report.incomplete_requests.len() as u64, TASKS);
    assert!(report.incomplete_requests.iter().all(|id| id.ends_with(":624")), "{:?}", report.incomplete_requests);
    assert_eq!(calls.len(), 10, "one progress call per page of 1000");
    assert_eq!(calls.last(), Some(&(total, total)));
    let newest = reader.search(&SearchFilter { limit: Some(1), ..Default::default() }).await.expect("search");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].seq, total);
    assert_eq!(report.head_hash, newest[0].hash);
}

/// A log of 4 sessions × 10 requests (88 records), closed, for tampering.
async fn tamper_fixture() -> TempLog {
    let store = TempLog::new();
    let log = store.open().await;
    for s in 0..4 {
        append_all(&log, session(&format!("s{s}"), &format!("agent-{s}"), "clinic", 10)).await;
    }
    log.shutdown().await;
    store
}

async fn body_of(conn: &mut sqlx::SqliteConnection, seq: i64) -> String {
    sqlx::query("SELECT body FROM audit_records WHERE seq = $1")
        .bind(seq)
        .fetch_one(&mut *conn)
        .await
        .expect("body")
        .get(0)
}

async fn exec(conn: &mut sqlx::SqliteConnection, sql: &'static str) {
    sqlx::query(sql).execute(&mut *conn).await.expect(sql);
}

#[tokio::test]
async fn untampered_log_verifies() {
    let store = tamper_fixture().await;
    let report = verify(&store.url).await;
    assert_eq!(report.broken, None);
    assert_eq!(report.records, 88);
}

#[tokio::test]
async fn edited_body_is_named() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    // Record 17 is the outcome of s0:8; claim it returned no rows.
    exec(&mut conn, r#"UPDATE audit_records SET body = replace(body, '"rows":1', '"rows":0') WHERE seq = 17"#).await;
    let broken = verify(&store.url).await.broken.expect("broken");
    assert_eq!(broken.seq, 17);
    assert!(matches!(broken.reason, BreakReason::HashMismatch { .. }), "{broken}");
    assert!(broken.to_string().contains("hash mismatch"), "{broken}");
}

#[tokio::test]
async fn deleted_record_is_named_as_missing() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    // 21 ends a page of 7, 22 starts one: both must be named.
    exec(&mut conn, "DELETE FROM audit_records WHERE seq = 23").await;
    let broken = verify(&store.url).await.broken.expect("broken");
    assert_eq!(broken.seq, 23);
    assert_eq!(broken.reason, BreakReason::Missing);
    exec(&mut conn, "DELETE FROM audit_records WHERE seq IN (21, 22)").await;
    let broken = verify(&store.url).await.broken.expect("broken");
    assert_eq!(broken.seq, 21);
    assert_eq!(broken.reason, BreakReason::Missing);
    assert_eq!(broken.to_string(), "record 21 missing (deleted)");
}

#[tokio::test]
async fn deleted_first_record_is_named() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    exec(&mut conn, "DELETE FROM audit_records WHERE seq = 1").await;
    let report = verify(&store.url).await;
    assert_eq!(report.broken.map(|b| (b.seq, b.reason)), Some((1, BreakReason::Missing)));
    assert_eq!(report.records, 0);
}

#[tokio::test]
async fn swapped_bodies_are_named() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    let (a, b) = (body_of(&mut conn, 30).await, body_of(&mut conn, 31).await);
    for (seq, body) in [(30i64, b), (31, a)] {
        sqlx::query("UPDATE audit_records SET body = $1 WHERE seq = $2")
            .bind(body)
            .bind(seq)
            .execute(&mut conn)
            .await
            .expect("swap");
    }
    let report = verify(&store.url).await;
    let broken = report.broken.expect("broken");
    assert_eq!(broken.seq, 30);
    assert!(matches!(broken.reason, BreakReason::HashMismatch { .. }), "{broken}");
    assert_eq!(report.records, 29, "records before the break are intact");
}

#[tokio::test]
async fn edited_index_column_is_named() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    exec(&mut conn, "UPDATE audit_records SET principal = 'someone-else' WHERE seq = 12").await;
    let broken = verify(&store.url).await.broken.expect("broken");
    assert_eq!(broken.seq, 12);
    match &broken.reason {
        BreakReason::IndexMismatch { column, column_value, body_value } => {
            assert_eq!(column, "principal");
            assert_eq!(column_value.as_deref(), Some("someone-else"));
            assert_eq!(body_value.as_deref(), Some("agent-0"));
        }
        other => panic!("expected an index mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn rehashed_record_breaks_the_next_link() {
    // A tamperer who knows the algorithm rewrites record 40 with a fresh
    // hash: record 41 no longer links to it.
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    let body = body_of(&mut conn, 40).await.replace("agent-1", "agent-9");
    let prev: String = sqlx::query("SELECT prev_hash FROM audit_records WHERE seq = 40")
        .fetch_one(&mut conn)
        .await
        .expect("prev")
        .get(0);
    let hash = sluice_audit::record_hash(&prev, &body).expect("hash");
    sqlx::query("UPDATE audit_records SET body = $1, hash = $2, principal = 'agent-9' WHERE seq = 40")
        .bind(&body)
        .bind(&hash)
        .execute(&mut conn)
        .await
        .expect("rewrite");
    let broken = verify(&store.url).await.broken.expect("broken");
    assert_eq!(broken.seq, 41);
    assert!(matches!(broken.reason, BreakReason::PrevHashMismatch { .. }), "{broken}");
    assert!(broken.to_string().contains("record 40"), "{broken}");
}

#[tokio::test]
async fn forged_row_below_the_chain_is_named() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    exec(
        &mut conn,
        "INSERT INTO audit_records (seq, time, kind, session_id, principal, connection, body, prev_hash, hash) \
         SELECT 0, time, kind, session_id, principal, connection, body, prev_hash, hash FROM audit_records WHERE seq = 1",
    )
    .await;
    let broken = verify(&store.url).await.broken.expect("broken");
    assert_eq!((broken.seq, broken.reason.clone()), (1, BreakReason::Inserted { found_seq: 0 }), "{broken}");
}

#[tokio::test]
async fn cut_off_tail_shows_only_in_the_head() {
    // The chain alone cannot tell that the newest records were removed;
    // the head hash (to be compared with a checkpoint kept elsewhere) can.
    let store = tamper_fixture().await;
    let before = verify(&store.url).await;
    let mut conn = store.side_connection().await;
    exec(&mut conn, "DELETE FROM audit_records WHERE seq > 80").await;
    let after = verify(&store.url).await;
    assert_eq!((after.records, after.broken), (80, None));
    assert_ne!(after.head_hash, before.head_hash);
}

#[tokio::test]
async fn open_refuses_a_log_whose_head_was_altered() {
    let store = tamper_fixture().await;
    let mut conn = store.side_connection().await;
    exec(&mut conn, "UPDATE audit_records SET body = body || ' ' WHERE seq = 88").await;
    let err = AuditLog::open(&store.url, AuditOptions::default()).await.expect_err("must refuse");
    assert!(matches!(err, AuditError::Corrupt(_)), "{err}");
}

#[tokio::test]
async fn store_failure_fails_closed_then_recovers() {
    let store = TempLog::new();
    let log = store.open().await;
    let mut health = log.health_watch();
    assert_eq!(log.health(), StoreHealth::Healthy);
    append_all(&log, session("s1", "agent-1", "clinic", 1)).await; // seqs 1..=4

    let mut side = store.side_connection().await;
    exec(
        &mut side,
        "CREATE TRIGGER block BEFORE INSERT ON audit_records \
         BEGIN SELECT RAISE(ABORT, 'store is read-only for test'); END;",
    )
    .await;

    // Several appends in flight: each is told, none is written.
    let pending: Vec<_> = (1..=5).map(|n| log.append(request("s2", n, "agent-2", "clinic"))).collect();
    for durable in pending {
        match durable.await {
            Err(AuditError::StoreUnavailable(reason)) => {
                assert!(reason.contains("store is read-only for test"), "{reason}");
            }
            other => panic!("expected StoreUnavailable, got {other:?}"),
        }
    }
    match log.health() {
        StoreHealth::Unavailable { error, .. } => assert!(error.contains("store is read-only for test"), "{error}"),
        StoreHealth::Healthy => panic!("health must say the store is unavailable"),
    }
    health.wait_for(|h| matches!(h, StoreHealth::Unavailable { .. })).await.expect("watch");
    let err = log.append(request("s2", 6, "agent-2", "clinic")).await.expect_err("still failing");
    assert!(err.to_string().contains("audit store unavailable"), "{err}");

    exec(&mut side, "DROP TRIGGER block").await;
    let seq = log.append(session_open("s3", "agent-3", "clinic")).await.expect("recovers by itself");
    assert_eq!(seq, 5, "failed batches did not use up seqs");
    assert_eq!(log.health(), StoreHealth::Healthy);
    health.wait_for(|h| *h == StoreHealth::Healthy).await.expect("watch");
    log.shutdown().await;

    let report = verify(&store.url).await;
    assert_eq!(report.broken, None);
    assert_eq!(report.records, 5);
}

#[tokio::test]
async fn requests_without_outcome_are_listed_not_broken() {
    let store = TempLog::new();
    let log = store.open().await;
    append_all(
        &log,
        vec![
            session_open("s1", "agent-1", "clinic"),
            request("s1", 1, "agent-1", "clinic"),
            outcome("s1", 1, "agent-1", "clinic"),
            request("s1", 2, "agent-1", "clinic"),
            request("s1", 3, "agent-1", "clinic"),
            outcome("s1", 3, "agent-1", "clinic"),
            request("s1", 4, "agent-1", "clinic"),
        ],
    )
    .await;
    log.shutdown().await;
    let report = verify(&store.url).await;
    assert_eq!(report.broken, None);
    assert_eq!(report.records, 7);
    assert_eq!(report.incomplete_requests, vec!["s1:2".to_owned(), "s1:4".to_owned()]);
}

#[tokio::test]
async fn shutdown_drains_then_refuses() {
    let store = TempLog::new();
    let log = store.open().await;
    // Queued, not awaited: shutdown must still write all of them.
    let pending: Vec<_> = (1..=500).map(|n| log.append(request("s1", n, "agent-1", "clinic"))).collect();
    let other_handle = log.clone();
    log.shutdown().await;
    other_handle.shutdown().await; // twice, from a clone: returns at once
    let mut seqs = Vec::new();
    for durable in pending {
        seqs.push(durable.await.expect("queued before shutdown, so written"));
    }
    assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
    let err = other_handle.append(session_open("s2", "agent-2", "clinic")).await.expect_err("closed");
    assert_eq!(err, AuditError::Closed);
    assert_eq!(verify(&store.url).await.records, 500);
}

#[tokio::test]
async fn panicking_on_commit_does_not_stop_the_writer() {
    let store = TempLog::new();
    let options =
        AuditOptions { max_batch: 8, signing_key: None, on_commit: Some(Arc::new(|_| panic!("metrics bug"))) };
    let log = AuditLog::open(&store.url, options).await.expect("open");
    for n in 1..=3 {
        assert_eq!(log.append(request("s1", n, "agent-1", "clinic")).await, Ok(n));
    }
    log.shutdown().await;
}

#[test]
fn handles_cross_tasks() {
    fn check<T: Send + Sync + 'static>() {}
    fn check_future<T: std::future::Future + Send + Unpin + 'static>() {}
    check::<AuditLog>();
    check::<AuditReader>();
    check::<AuditError>();
    check_future::<sluice_audit::Durable>();
}

#[tokio::test]
async fn dropped_durable_still_writes() {
    let store = TempLog::new();
    let log = store.open().await;
    drop(log.append(session_open("s1", "agent-1", "clinic")));
    let seq = log.append(session_open("s2", "agent-2", "clinic")).await.expect("append");
    assert_eq!(seq, 2);
    log.shutdown().await;
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let store = TempLog::new();
    let log = store.open().await;
    append_all(&log, session("s1", "agent-1", "clinic", 2)).await;
    log.shutdown().await;
    let log = store.open().await;
    assert_eq!(log.append(session_open("s2", "agent-2", "clinic")).await.expect("append"), 7);
    log.shutdown().await;
    let report = verify(&store.url).await;
    assert_eq!((report.records, report.broken), (7, None));
}

#[tokio::test]
async fn search_filters_and_keeps_seq_order() {
    let store = TempLog::new();
    let log = store.open().await;
    append_all(&log, session("s1", "alice", "clinic", 2)).await; // 1..=6
    let before_second = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    append_all(&log, session("s2", "bob", "billing", 1)).await; // 7..=10
    append_all(&log, session("s3", "alice", "billing", 1)).await; // 11..=14
    log.shutdown().await;

    let reader = AuditReader::open(&store.url).await.expect("reader");
    let seqs = |records: Vec<sluice_audit::AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    let cases: Vec<(SearchFilter, Vec<u64>)> = vec![
        (SearchFilter::default(), (1..=14).collect()),
        (
            SearchFilter { principal: Some("alice".into()), ..Default::default() },
            vec![1, 2, 3, 4, 5, 6, 11, 12, 13, 14],
        ),
        (SearchFilter { connection: Some("billing".into()), ..Default::default() }, (7..=14).collect()),
        (SearchFilter { session: Some("s2".into()), ..Default::default() }, vec![7, 8, 9, 10]),
        (SearchFilter { kind: Some("request".into()), ..Default::default() }, vec![2, 4, 8, 12]),
        (
            SearchFilter { principal: Some("alice".into()), kind: Some("session_open".into()), ..Default::default() },
            vec![1, 11],
        ),
        (SearchFilter { since: Some(before_second), ..Default::default() }, (7..=14).collect()),
        (SearchFilter { limit: Some(3), ..Default::default() }, vec![12, 13, 14]),
        (SearchFilter { principal: Some("alice".into()), limit: Some(2), ..Default::default() }, vec![13, 14]),
        (SearchFilter { principal: Some("nobody".into()), ..Default::default() }, vec![]),
        (SearchFilter { contains: Some("\"session_id\":\"s2\"".into()), ..Default::default() }, vec![7, 8, 9, 10]),
        (
            SearchFilter {
                kind: Some("request".into()),
                contains: Some("note <> 'a \\\"quoted\\\" word'".into()),
                ..Default::default()
            },
            vec![2, 4, 8, 12],
        ),
        // Exact text: case counts, and `%` / `_` are not wildcards.
        (SearchFilter { contains: Some("ALICE".into()), ..Default::default() }, vec![]),
        (SearchFilter { contains: Some("%".into()), ..Default::default() }, vec![]),
        (SearchFilter { contains: Some("s_2".into()), ..Default::default() }, vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(seqs(reader.search(&filter).await.expect("search")), expected, "{filter:?}");
    }
    let first = reader.search(&SearchFilter { limit: Some(14), ..Default::default() }).await.expect("search");
    assert_eq!(first[0].event, session_open("s1", "alice", "clinic"));
    assert_eq!(first[0].prev_hash, sluice_audit::GENESIS_HASH);
    assert_eq!(first[1].prev_hash, first[0].hash);
}

#[tokio::test]
async fn open_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    let err = AuditReader::open(&missing).await.expect_err("no log there");
    assert!(matches!(err, AuditError::Open(_)), "{err}");
    let err = AuditLog::open("mysql://localhost/x", AuditOptions::default()).await.expect_err("unsupported");
    assert!(err.to_string().contains("sqlite://"), "{err}");
}

/// A lazy record (an outcome) does not cost a commit of its own when a
/// record someone waits on follows soon, and is still written when none does.
#[tokio::test]
async fn lazy_records_ride_with_the_next_commit_or_go_alone_soon() {
    let store = TempLog::new();
    // Records per commit, in order. on_commit runs after the waiters are
    // answered, so the test waits for the count rather than reading it at once.
    let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = AuditOptions {
        max_batch: 1024,
        signing_key: None,
        on_commit: Some({
            let batches = batches.clone();
            Arc::new(move |stats| batches.lock().unwrap().push(stats.records))
        }),
    };
    let log = AuditLog::open(&store.url, options).await.expect("open");
    log.append_lazy(outcome("s", 1, "agent", "clinic"));
    log.append(request("s", 2, "agent", "clinic")).await.expect("durable");
    log.append_lazy(outcome("s", 2, "agent", "clinic"));
    let started = Instant::now();
    while batches.lock().unwrap().len() < 2 {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "a lone lazy record was never written");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(
        *batches.lock().unwrap(),
        vec![2, 1],
        "the first lazy record shares the waited-on record's commit; the last goes alone"
    );
    log.shutdown().await;
    let report = verify(&store.url).await;
    assert_eq!(report.records, 3);
    assert!(report.broken.is_none() && report.incomplete_requests.is_empty(), "{report:?}");
}
