//! `ApprovalStore`: approval requests and decisions in SQLite or PostgreSQL.
//!
//! Owns: opening the store by the audit store's URL, creating its two tables
//! on open, and every state change as one transaction: create, decide,
//! expire, take a grant. The SQL is the same on both backends except how a
//! transaction takes its lock (see `in_transaction!`).
//! Does not: decide who may review (the caller passes the configured
//! groups), send alerts or write audit records: each change returns what
//! happened so the caller can.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sluice_audit::{SidePool, StoreUrl};
use sluice_config::Approvals;
use sluice_model::{Principal, PrincipalKind};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use crate::rules::{self, Outcome};
use crate::{ApprovalError, ApprovalRequest, ApprovalStatus, NewApprovalRequest, Requester, ReviewDecision, Ruling};

/// Connections to a PostgreSQL store; decisions on one request serialise on
/// its row lock, not on the pool.
const POSTGRES_CONNECTIONS: u32 = 4;

/// The same DDL on both backends: `BIGINT` has integer affinity in SQLite.
/// Times are microseconds since the Unix epoch (UTC), so they compare as
/// numbers on both.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS approval_requests (\
     id TEXT PRIMARY KEY, principal TEXT NOT NULL, principal_kind TEXT NOT NULL, \
     principal_groups TEXT NOT NULL, principal_issuer TEXT NOT NULL, connection TEXT NOT NULL, \
     fingerprint TEXT NOT NULL, statement TEXT NOT NULL, params_sha256 TEXT, policy TEXT NOT NULL, \
     reason TEXT NOT NULL, classification TEXT, row_estimate BIGINT, approvals_required BIGINT NOT NULL, \
     grant_ttl_us BIGINT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
     status TEXT NOT NULL, approved_at BIGINT, grant_expires_at BIGINT, used_at BIGINT)",
    "CREATE INDEX IF NOT EXISTS approval_requests_status ON approval_requests (status, expires_at)",
    "CREATE INDEX IF NOT EXISTS approval_requests_grant ON approval_requests (fingerprint, principal, status)",
    // One row per reviewer per request: the primary key is what makes "the
    // same reviewer twice" impossible even if a check were skipped.
    // `position` keeps the order decisions were taken in.
    "CREATE TABLE IF NOT EXISTS approval_decisions (\
     request_id TEXT NOT NULL REFERENCES approval_requests (id), reviewer TEXT NOT NULL, \
     ruling TEXT NOT NULL, comment TEXT NOT NULL, decided_at BIGINT NOT NULL, position BIGINT NOT NULL, \
     PRIMARY KEY (request_id, reviewer))",
];

const REQUEST_COLUMNS: &str = "id, principal, principal_kind, principal_groups, principal_issuer, connection, \
     fingerprint, statement, params_sha256, policy, reason, classification, row_estimate, approvals_required, \
     grant_ttl_us, created_at, expires_at, status, approved_at, grant_expires_at, used_at";

const DECISION_COLUMNS: &str = "d.request_id, d.reviewer, d.ruling, d.comment, d.decided_at";

/// Approval requests in the audit store's database. Cheap to clone: it
/// holds a connection pool.
#[derive(Debug, Clone)]
pub struct ApprovalStore {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    /// One connection: every transaction in this process runs alone, and
    /// `BEGIN IMMEDIATE` takes the file's write lock before reading, so a
    /// decision cannot read a state another writer is about to change.
    Sqlite(SqlitePool),
    /// Transactions lock the rows they change (`FOR UPDATE`).
    Postgres(PgPool),
}

/// A decision that was taken: the request as it is now, the decision
/// itself, and what it did. Everything the caller needs for the audit
/// record and the `approval.decided` alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub request: ApprovalRequest,
    pub decision: ReviewDecision,
    pub outcome: Outcome,
}

/// Runs `$body` in a transaction on either backend, with `$tx` the
/// transaction and `$lock` the clause that locks selected rows. `write`
/// transactions lock: `FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` (the
/// file's write lock, taken before the first read) on SQLite. `read`
/// transactions see one snapshot (SQLite's deferred `BEGIN`; PostgreSQL's
/// `REPEATABLE READ READ ONLY`), so a request and its decisions agree.
/// `$body` may return early with `?`, which rolls the transaction back;
/// otherwise it is committed.
macro_rules! in_transaction {
    (@sqlite write) => { "BEGIN IMMEDIATE" };
    (@sqlite read) => { "BEGIN" };
    (@postgres write) => { "BEGIN" };
    (@postgres read) => { "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" };
    (@lock write) => { " FOR UPDATE" };
    (@lock read) => { "" };
    ($store:expr, $mode:ident, $tx:ident, $lock:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(pool) => {
                let mut $tx = pool.begin_with(in_transaction!(@sqlite $mode)).await?;
                let $lock = "";
                let value = $body;
                $tx.commit().await?;
                value
            }
            Backend::Postgres(pool) => {
                let mut $tx = pool.begin_with(in_transaction!(@postgres $mode)).await?;
                let $lock = in_transaction!(@lock $mode);
                let value = $body;
                $tx.commit().await?;
                value
            }
        }
    };
}

/// The requests matching `$condition` (SQL over alias `r`, with at most
/// one bound string `$1`), each with its decisions, in creation order.
macro_rules! fetch_requests {
    ($conn:expr, $condition:expr, $value:expr) => {{
        let condition: &str = $condition;
        let value: Option<&str> = $value;
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM approval_requests r {condition} ORDER BY created_at, id");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(value) = value {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&mut *$conn).await?;
        let mut requests = rows.iter().map(request_row).collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM approval_decisions d JOIN approval_requests r ON r.id = d.request_id \
             {condition} ORDER BY d.request_id, d.position"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(value) = value {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&mut *$conn).await?;
        let mut decisions: HashMap<String, Vec<ReviewDecision>> = HashMap::new();
        for row in &rows {
            let (request_id, decision) = decision_row(row)?;
            decisions.entry(request_id).or_default().push(decision);
        }
        for request in &mut requests {
            request.decisions = decisions.remove(&request.id.to_string()).unwrap_or_default();
        }
        requests
    }};
}

/// The requests an `UPDATE ... RETURNING id` (`$sql`, binding `$now` as
/// `$1` then `$binds` in order) changed, read back in the same transaction.
macro_rules! update_returning {
    ($tx:expr, $sql:expr, $now:expr, [$($bind:expr),*]) => {{
        let rows = sqlx::query($sql).bind($now)$(.bind($bind))*.fetch_all(&mut *$tx).await?;
        let mut changed = Vec::new();
        for row in &rows {
            let id: String = row.try_get(0)?;
            changed.extend(fetch_requests!($tx, "WHERE r.id = $1", Some(id.as_str())));
        }
        changed
    }};
}

impl ApprovalStore {
    /// Opens the store at `url` (`sqlite://path` or `postgres://...`, the
    /// audit store's URL), creating the SQLite file and its folder, and the
    /// approval tables, when they do not exist.
    pub async fn open(url: &str) -> Result<ApprovalStore, ApprovalError> {
        let target = StoreUrl::parse(url, "sluice-approval").map_err(|e| ApprovalError::Open(e.to_string()))?;
        let backend = match target.connect_side(POSTGRES_CONNECTIONS).await.map_err(ApprovalError::Open)? {
            SidePool::Sqlite(pool) => Backend::Sqlite(pool),
            SidePool::Postgres(pool) => Backend::Postgres(pool),
        };
        let store = ApprovalStore { backend };
        in_transaction!(store, write, tx, _lock => {
            for sql in SCHEMA {
                sqlx::query(*sql).execute(&mut *tx).await?;
            }
        });
        Ok(store)
    }

    /// Records a held request as `pending`. Its quorum, grant lifetime and
    /// expiry come from `rules` now and do not change with later config.
    pub async fn create(
        &self,
        new: NewApprovalRequest,
        rules: &Approvals,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let now = to_micros(now);
        let request = ApprovalRequest {
            id: Uuid::now_v7(),
            fingerprint: new.fingerprint(),
            principal: Requester::from(&new.principal),
            connection: new.connection,
            statement: new.statement,
            params_sha256: new.params_sha256,
            policy: new.hold.policy,
            reason: new.hold.reason,
            classification: new.classification,
            row_estimate: new.row_estimate,
            approvals_required: rules.approvals_required,
            // At the store's precision, so a read returns what create did.
            grant_ttl: Duration::from_micros(u64::try_from(micros(rules.grant_ttl)).unwrap_or(0)),
            created_at: now,
            expires_at: later(now, rules.expires_after),
            status: ApprovalStatus::Pending,
            approved_at: None,
            grant_expires_at: None,
            used_at: None,
            decisions: Vec::new(),
        };
        let groups = serde_json::to_string(&request.principal.groups).map_err(|e| corrupt(request.id, e))?;
        let classification = request
            .classification
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt(request.id, e))?;
        let sql = format!(
            "INSERT INTO approval_requests ({REQUEST_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, NULL, NULL, NULL)"
        );
        let id = request.id.to_string();
        let row_estimate = request.row_estimate.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        in_transaction!(self, write, tx, _lock => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(id.as_str())
                .bind(request.principal.subject.as_str())
                .bind(request.principal.kind.as_str())
                .bind(groups.as_str())
                .bind(request.principal.issuer.as_str())
                .bind(request.connection.as_str())
                .bind(request.fingerprint.as_str())
                .bind(request.statement.as_str())
                .bind(request.params_sha256.as_deref())
                .bind(request.policy.as_str())
                .bind(request.reason.as_str())
                .bind(classification.as_deref())
                .bind(row_estimate)
                .bind(i64::from(request.approvals_required))
                .bind(micros(request.grant_ttl))
                .bind(request.created_at.timestamp_micros())
                .bind(request.expires_at.timestamp_micros())
                .bind(request.status.as_str())
                .execute(&mut *tx)
                .await?;
        });
        Ok(request)
    }

    /// The request with this id, with its decisions.
    pub async fn get(&self, id: Uuid) -> Result<ApprovalRequest, ApprovalError> {
        let id_text = id.to_string();
        let mut found = in_transaction!(self, read, tx, _lock => {
            fetch_requests!(tx, "WHERE r.id = $1", Some(id_text.as_str()))
        });
        found.pop().ok_or(ApprovalError::UnknownRequest(id))
    }

    /// All requests, or those with `status`, oldest first.
    pub async fn list(&self, status: Option<ApprovalStatus>) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let condition = if status.is_some() { "WHERE r.status = $1" } else { "" };
        Ok(in_transaction!(self, read, tx, _lock => {
            fetch_requests!(tx, condition, status.map(ApprovalStatus::as_str))
        }))
    }

    /// Takes `reviewer`'s decision on request `id`, under the reviewer rules
    /// (see the crate docs), as one transaction that holds the request's
    /// lock: two reviewers deciding at once are counted one after the other.
    /// `rules` names the reviewer groups (per connection).
    pub async fn decide(
        &self,
        id: Uuid,
        reviewer: &Principal,
        ruling: Ruling,
        comment: &str,
        rules: &Approvals,
        now: DateTime<Utc>,
    ) -> Result<Decided, ApprovalError> {
        let now = to_micros(now);
        let id_text = id.to_string();
        let decided = in_transaction!(self, write, tx, lock => {
            // Lock the request's row first (PostgreSQL), so a concurrent
            // decision on it waits here and then reads this one's result.
            let sql = format!("SELECT id FROM approval_requests WHERE id = $1{lock}");
            sqlx::query(AssertSqlSafe(sql)).bind(id_text.as_str()).fetch_optional(&mut *tx).await?;
            let mut request = fetch_requests!(tx, "WHERE r.id = $1", Some(id_text.as_str()))
                .pop()
                .ok_or(ApprovalError::UnknownRequest(id))?;
            rules::check_ballot(&request, reviewer, rules.reviewer_groups_for(&request.connection), now)?;
            let decision =
                ReviewDecision { reviewer: reviewer.subject.clone(), ruling, comment: comment.to_string(), decided_at: now };
            sqlx::query(
                "INSERT INTO approval_decisions (request_id, reviewer, ruling, comment, decided_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id_text.as_str())
            .bind(decision.reviewer.as_str())
            .bind(ruling.as_str())
            .bind(comment)
            .bind(now.timestamp_micros())
            .bind(i64::try_from(request.decisions.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            request.decisions.push(decision.clone());
            let outcome = rules::tally(&request.decisions, request.approvals_required);
            request.status = outcome.status();
            if outcome == Outcome::Approved {
                request.approved_at = Some(now);
                request.grant_expires_at = Some(later(now, request.grant_ttl));
            }
            sqlx::query(
                "UPDATE approval_requests SET status = $1, approved_at = $2, grant_expires_at = $3 \
                 WHERE id = $4 AND status = 'pending'",
            )
            .bind(request.status.as_str())
            .bind(request.approved_at.map(|t| t.timestamp_micros()))
            .bind(request.grant_expires_at.map(|t| t.timestamp_micros()))
            .bind(id_text.as_str())
            .execute(&mut *tx)
            .await?;
            Decided { request, decision, outcome }
        });
        Ok(decided)
    }

    /// Turns every request still pending at its `expires_at` into `expired`
    /// and returns them (for the `approval.expired` alert). Each expiry is
    /// returned by exactly one call, however many run at once.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let now = to_micros(now).timestamp_micros();
        Ok(in_transaction!(self, write, tx, _lock => {
            update_returning!(
                tx,
                "UPDATE approval_requests SET status = 'expired' \
                 WHERE status = 'pending' AND expires_at <= $1 RETURNING id",
                now,
                []
            )
        }))
    }

    /// Takes the grant for a request with this `fingerprint` from this
    /// `principal` (same subject and issuer): an approved request whose
    /// `grant_expires_at` is after `now` becomes `used` and is returned. At
    /// most one caller gets any one grant; everyone else gets `None` (also a
    /// caller that lost the race for the oldest grant while a newer identical
    /// one exists: it is held again, which fails closed).
    pub async fn take_grant(
        &self,
        fingerprint: &str,
        principal: &Principal,
        now: DateTime<Utc>,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let now = to_micros(now).timestamp_micros();
        // The inner SELECT picks the oldest live grant; the outer
        // `status = 'approved'` is re-checked on the row PostgreSQL locked,
        // so a caller that lost the race to the same row updates nothing.
        let mut taken = in_transaction!(self, write, tx, _lock => {
            update_returning!(
                tx,
                "UPDATE approval_requests SET status = 'used', used_at = $1 \
                 WHERE status = 'approved' AND id = (SELECT id FROM approval_requests \
                 WHERE fingerprint = $2 AND principal = $3 AND principal_issuer = $4 AND status = 'approved' \
                 AND grant_expires_at > $1 ORDER BY approved_at, id LIMIT 1) RETURNING id",
                now,
                [fingerprint, principal.subject.as_str(), principal.issuer.as_str()]
            )
        });
        Ok(taken.pop())
    }
}

/// `now` at the store's precision (microseconds), so what a call returns
/// equals what a later read returns.
fn to_micros(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// `at + duration`, saturating at the latest representable time.
fn later(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration).ok().and_then(|d| at.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn corrupt(id: impl ToString, message: impl ToString) -> ApprovalError {
    ApprovalError::Corrupt { id: id.to_string(), message: message.to_string() }
}

fn time(id: &str, micros: i64) -> Result<DateTime<Utc>, ApprovalError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt(id, format!("time {micros} is out of range")))
}

/// Reads one row of `SELECT {REQUEST_COLUMNS}` on either backend; the
/// decisions are attached by the caller.
fn request_row<R>(row: &R) -> Result<ApprovalRequest, ApprovalError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    String: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    Option<i64>: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    Option<String>: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    let id: String = row.try_get(0)?;
    let kind: String = row.try_get(2)?;
    let kind = [PrincipalKind::Agent, PrincipalKind::Human, PrincipalKind::Service]
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| corrupt(&id, format!("unknown principal kind `{kind}`")))?;
    let groups: String = row.try_get(3)?;
    let classification: Option<String> = row.try_get(11)?;
    let optional_time = |micros: Option<i64>| micros.map(|m| time(&id, m)).transpose();
    Ok(ApprovalRequest {
        id: Uuid::parse_str(&id).map_err(|e| corrupt(&id, e))?,
        principal: Requester {
            subject: row.try_get(1)?,
            kind,
            groups: serde_json::from_str(&groups).map_err(|e| corrupt(&id, e))?,
            issuer: row.try_get(4)?,
        },
        connection: row.try_get(5)?,
        fingerprint: row.try_get(6)?,
        statement: row.try_get(7)?,
        params_sha256: row.try_get(8)?,
        policy: row.try_get(9)?,
        reason: row.try_get(10)?,
        classification: classification
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| corrupt(&id, e))?,
        row_estimate: row.try_get::<Option<i64>, _>(12)?.map(|n| u64::try_from(n).unwrap_or(0)),
        approvals_required: u32::try_from(row.try_get::<i64, _>(13)?).map_err(|e| corrupt(&id, e))?,
        grant_ttl: Duration::from_micros(u64::try_from(row.try_get::<i64, _>(14)?).map_err(|e| corrupt(&id, e))?),
        created_at: time(&id, row.try_get(15)?)?,
        expires_at: time(&id, row.try_get(16)?)?,
        status: row.try_get::<String, _>(17)?.parse().map_err(|e: String| corrupt(&id, e))?,
        approved_at: optional_time(row.try_get(18)?)?,
        grant_expires_at: optional_time(row.try_get(19)?)?,
        used_at: optional_time(row.try_get(20)?)?,
        decisions: Vec::new(),
    })
}

/// Reads one row of `SELECT {DECISION_COLUMNS}`: the request id and the decision.
fn decision_row<R>(row: &R) -> Result<(String, ReviewDecision), ApprovalError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    String: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    let request_id: String = row.try_get(0)?;
    let ruling: String = row.try_get(2)?;
    let decision = ReviewDecision {
        reviewer: row.try_get(1)?,
        ruling: ruling.parse().map_err(|e: String| corrupt(&request_id, e))?,
        comment: row.try_get(3)?,
        decided_at: time(&request_id, row.try_get(4)?)?,
    };
    Ok((request_id, decision))
}
