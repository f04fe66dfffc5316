//! Events and store fixtures shared by the integration tests.
//!
//! Owns: builders for each kind of `AuditEvent`, a temporary SQLite log, and
//! a throwaway PostgreSQL database per test.
//! Does not: assert anything; each test file says what it checks.

#![allow(dead_code)] // each test binary uses a different subset

use sluice_audit::{AuditLog, AuditOptions};
use sluice_model::{
    AuditEvent, AuthFailure, DecisionSummary, OutcomeEvent, OutcomeStatus, Principal, PrincipalKind, RequestEvent,
    SessionClose, SessionOpen, Verdict,
};

pub fn principal(subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        kind: PrincipalKind::Agent,
        groups: vec!["analysts".into()],
        issuer: "api-key".into(),
        token_id: None,
    }
}

pub fn session_open(session: &str, subject: &str, connection: &str) -> AuditEvent {
    AuditEvent::SessionOpen(SessionOpen {
        session_id: session.into(),
        principal: principal(subject),
        connection: connection.into(),
        protocol: "postgres".into(),
        client_addr: "127.0.0.1:50000".into(),
        client_tls: false,
    })
}

pub fn request(session: &str, n: u64, subject: &str, connection: &str) -> AuditEvent {
    AuditEvent::Request(RequestEvent {
        request_id: format!("{session}:{n}"),
        session_id: session.into(),
        principal: subject.into(),
        connection: connection.into(),
        client_addr: "127.0.0.1:50000".into(),
        statement: format!("SELECT name, dob FROM patients WHERE id = {n} AND note <> 'a \"quoted\" word'"),
        param_count: 0,
        params_sha256: None,
        decision: DecisionSummary { verdict: Verdict::Allow, policies: vec!["allow-read".into()], reason: None },
        classification: None,
        mask_profile: None,
    })
}

pub fn outcome(session: &str, n: u64, subject: &str, connection: &str) -> AuditEvent {
    AuditEvent::Outcome(OutcomeEvent {
        request_id: format!("{session}:{n}"),
        session_id: session.into(),
        principal: subject.into(),
        connection: connection.into(),
        status: OutcomeStatus::Ok,
        command_tag: Some("SELECT 1".into()),
        rows: 1,
        sqlstate: None,
        error: None,
        bytes_out: 96,
        duration_us: 420,
        rows_charged: 0,
        masked: Default::default(),
        subjects: Default::default(),
        subjects_omitted: 0,
    })
}

pub fn session_close(session: &str, subject: &str, connection: &str) -> AuditEvent {
    AuditEvent::SessionClose(SessionClose {
        session_id: session.into(),
        principal: subject.into(),
        connection: connection.into(),
        reason: "client_terminated".into(),
        requests: 1,
        duration_us: 1_000,
    })
}

pub fn auth_failure(reason: &str) -> AuditEvent {
    AuditEvent::AuthFailure(AuthFailure {
        protocol: "postgres".into(),
        client_addr: "10.0.0.9:4000".into(),
        connection: None,
        reason: reason.into(),
    })
}

/// A session of `requests` requests, each with its outcome.
pub fn session(session: &str, subject: &str, connection: &str, requests: u64) -> Vec<AuditEvent> {
    let mut events = vec![session_open(session, subject, connection)];
    for n in 1..=requests {
        events.push(request(session, n, subject, connection));
        events.push(outcome(session, n, subject, connection));
    }
    events.push(session_close(session, subject, connection));
    events
}

/// A SQLite log in its own temporary folder (a sub-folder that does not
/// exist yet, so `open` must create it).
pub struct TempLog {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub path: std::path::PathBuf,
}

impl TempLog {
    pub fn new() -> TempLog {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("audit.db");
        let url = format!("sqlite://{}", path.display());
        TempLog { dir, url, path }
    }

    pub async fn open(&self) -> AuditLog {
        AuditLog::open(&self.url, AuditOptions::default()).await.expect("open audit log")
    }

    /// A second, independent connection to the same file (the tamperer's).
    pub async fn side_connection(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        sqlx::SqliteConnection::connect(&self.url).await.expect("side connection")
    }
}

/// Appends `events` one after another, awaiting each; returns the seqs.
pub async fn append_all(log: &AuditLog, events: Vec<AuditEvent>) -> Vec<u64> {
    let mut seqs = Vec::new();
    for event in events {
        seqs.push(log.append(event).await.expect("append"));
    }
    seqs
}

/// The PostgreSQL server on the machine, and a database made for one test.
pub const PG_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let name = format!("sluice_audit_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = format!("postgres://root@127.0.0.1:5432/{name}");
        TestDatabase { name, url }
    }

    pub async fn drop_database(self) {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&mut admin)
            .await
            .expect("drop test database");
    }

    pub async fn connection(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.url).await.expect("connect to the test database")
    }
}

/// Runs `test` against a fresh database and drops the database afterwards,
/// even if the test panics (the panic is then re-raised).
pub async fn with_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = TestDatabase::create().await;
    let outcome = tokio::spawn(test(db.url.clone())).await;
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
