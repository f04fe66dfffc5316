//! The cursor table and a forwarder on the PostgreSQL store (the end-to-end
//! tests in `crates/sluice/tests/siem.rs` use SQLite): a fresh database on
//! the machine's PostgreSQL per test, dropped after it.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use sluice_audit::{AuditLog, AuditOptions};
use sluice_config::SinkConfig;
use sluice_model::{AuditEvent, AuthFailure};
use sluice_siem::Forwarder;
use sluice_siem::cursor::{CursorStore, Position};
use sqlx::Connection;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const PG_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/postgres";

/// Runs `scenario` against a fresh database and drops it after, even when
/// the scenario panics (the panic is then re-raised).
async fn on_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("sluice_siem_test_{}_{nanos}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create");
    let outcome = tokio::spawn(scenario(format!("postgres://root@127.0.0.1:5432/{name}"))).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn cursors_are_kept_per_sink_on_postgres() {
    on_postgres(|url| async move {
        let store = CursorStore::open(&url).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Position::default());
        store.save("a", Position { seq: 5, checkpoint_size: 4 }).await.unwrap();
        store.save("a", Position { seq: 9, checkpoint_size: 8 }).await.unwrap();
        store.save("b", Position { seq: 1, checkpoint_size: 0 }).await.unwrap();
        store.close().await;
        let store = CursorStore::open(&url).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Position { seq: 9, checkpoint_size: 8 });
        assert_eq!(store.load("b").await.unwrap(), Position { seq: 1, checkpoint_size: 0 });
        store.close().await;
    })
    .await;
}

fn syslog_sink(name: &str, address: &str) -> SinkConfig {
    SinkConfig {
        name: name.into(),
        kind: "syslog".into(),
        statement: "full".into(),
        batch: 4,
        address: Some(address.into()),
        transport: Some("tcp".into()),
        ca_file: None,
        server_name: None,
        url: None,
        token_env: None,
        token: None,
        stream: None,
        subject_prefix: None,
        headers: None,
        headers_env: None,
    }
}

/// The event ids in octet-counted RFC 5424 frames.
fn event_ids(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("event_id=\"")
        .map(|(at, m)| text[at + m.len()..].split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_forwarder_on_postgres_sends_every_record_and_keeps_its_cursor() {
    on_postgres(|url| async move {
        let log = AuditLog::open(&url, AuditOptions::default()).await.unwrap();
        for i in 0..10 {
            log.append(AuditEvent::AuthFailure(AuthFailure {
                protocol: "postgres".into(),
                client_addr: "127.0.0.1:1".into(),
                connection: Some("db".into()),
                reason: format!("bad key {i}"),
            }))
            .await
            .unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let collector = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut bytes = Vec::new();
            let mut chunk = [0u8; 4096];
            let deadline = Instant::now() + Duration::from_secs(30);
            while event_ids(&bytes).len() < 10 && Instant::now() < deadline {
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk)).await {
                    bytes.extend_from_slice(&chunk[..n]);
                }
            }
            // The stream goes back with the ids, so the connection stays up
            // while the sink's last batch settles.
            (event_ids(&bytes), stream)
        });

        let forwarder = Forwarder::start(&[syslog_sink("collector", &address)], &url).await.unwrap();
        let (ids, _connection) = collector.await.unwrap();
        let expected: BTreeSet<String> = (1..=10).map(|s| format!("sluice/{s}")).collect();
        assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), expected, "{ids:?}");

        // The cursor follows the acknowledged batches to the last record.
        let cursors = CursorStore::open(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while cursors.load("collector").await.unwrap().seq < 10 {
            assert!(Instant::now() < deadline, "the cursor did not reach record 10");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        forwarder.shutdown(Duration::from_secs(5)).await;
        log.shutdown().await;
        cursors.close().await;
    })
    .await;
}
