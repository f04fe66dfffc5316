//! The two storage backends, SQLite and PostgreSQL, behind one small enum.
//!
//! Owns: parsing a store URL, connecting (with SQLite's durability settings),
//! the schema, batch INSERTs, the chain head read, and search. The SQL is the
//! same on both backends except the DDL (`BIGINT` seq on PostgreSQL), the
//! "does the table exist" probe, and the big INSERT's placeholders (see
//! `insert_statements`); elsewhere placeholders are `$N`, which SQLite accepts.
//! Does not: hash, sequence or decide anything; it moves rows. Verify's bulk
//! reads live in `scan`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ColumnIndex, Connection, Decode, Row, Type};

use crate::AuditError;
use crate::reader::SearchFilter;
use sluice_evidence::Hash;

/// Rows per multi-row INSERT. Batches are split into one statement of this
/// size per full chunk, then powers of two for the rest, so a connection
/// prepares at most ten distinct INSERT statements.
const INSERT_CHUNK: usize = 512;

/// How long a SQLite connection waits for another connection's lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const COLUMNS: &str = "seq, time, kind, session_id, principal, connection, body, prev_hash, hash";

/// A record ready to insert: the writer has sequenced and hashed it.
#[derive(Debug, Clone)]
pub(crate) struct NewRow {
    pub seq: u64,
    pub time: Arc<str>,
    pub kind: &'static str,
    pub session_id: Option<String>,
    pub principal: Option<String>,
    pub connection: Option<String>,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
    /// Bytes kept beside the record (a recording chunk), in `audit_payloads`.
    pub payload: Option<Vec<u8>>,
}

/// A signed checkpoint as stored in `audit_checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCheckpoint {
    /// Leaves (records) the checkpoint covers: records 1..=size.
    pub size: u64,
    /// When it was signed, RFC 3339 UTC.
    pub time: String,
    /// The RFC 9162 root of the first `size` leaves, lowercase hex.
    pub root: String,
    /// The C2SP signed note (checkpoint text, blank line, signature line).
    pub note: String,
}

/// A record as read back for search or the chain head: what an
/// `AuditRecord` is made of (the index columns are only copies).
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub seq: i64,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The columns `stored_row` reads.
const RECORD_COLUMNS: &str = "seq, body, prev_hash, hash";

/// Where the log lives, parsed from its URL.
/// How the audit log's PostgreSQL connections name themselves.
pub(crate) const AUDIT_APPLICATION_NAME: &str = "sluice-audit";

/// A store URL, parsed: `sqlite://path` or `postgres://...`. Shared with
/// the other crates that keep their tables in the audit store's database.
#[derive(Debug, Clone)]
pub enum StoreUrl {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

/// A pool on the audit store's database, from [`StoreUrl::connect_side`].
#[derive(Debug)]
pub enum SidePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One open connection to the log.
#[derive(Debug)]
pub(crate) enum Store {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs the same body against whichever connection type `store` holds.
macro_rules! on_conn {
    ($store:expr, $conn:ident => $body:expr) => {
        match $store {
            Store::Sqlite($conn) => $body,
            Store::Postgres($conn) => $body,
        }
    };
}

impl StoreUrl {
    /// Parses `url`; PostgreSQL connections announce themselves as
    /// `application_name` (so they can be told apart in `pg_stat_activity`).
    pub fn parse(url: &str, application_name: &str) -> Result<Self, AuditError> {
        if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map(StoreUrl::Sqlite)
                .map_err(|e| AuditError::Open(format!("bad SQLite URL: {e}")))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url)
                .map(|o| StoreUrl::Postgres(o.application_name(application_name)))
                .map_err(|e| AuditError::Open(format!("bad PostgreSQL URL: {e}")))
        } else {
            Err(AuditError::Open("unsupported store URL; use sqlite://<path> or postgres://<host>/<db>".into()))
        }
    }

    /// Names the store for messages, without any password.
    pub fn describe(&self) -> String {
        match self {
            StoreUrl::Sqlite(o) => format!("sqlite://{}", o.get_filename().display()),
            StoreUrl::Postgres(o) => {
                format!("postgres://{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or_default())
            }
        }
    }

    /// A pool on this database for another crate's own tables (approvals,
    /// SIEM cursors). SQLite: the log's durability settings (WAL,
    /// `synchronous=FULL`, the busy timeout), the file and its folder
    /// created if missing, one connection (SQLite has one writer anyway).
    /// PostgreSQL: up to `pg_connections`.
    pub async fn connect_side(self, pg_connections: u32) -> Result<SidePool, String> {
        let name = self.describe();
        let fail = |e: String| format!("{name}: {e}");
        match self {
            StoreUrl::Sqlite(options) => {
                let options = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                if let Some(folder) =
                    options.get_filename().parent().filter(|p| !p.as_os_str().is_empty() && !p.exists())
                {
                    std::fs::create_dir_all(folder).map_err(|e| fail(e.to_string()))?;
                }
                let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await;
                pool.map(SidePool::Sqlite).map_err(|e| fail(e.to_string()))
            }
            StoreUrl::Postgres(options) => {
                let pool = PgPoolOptions::new().max_connections(pg_connections.max(1)).connect_with(options).await;
                pool.map(SidePool::Postgres).map_err(|e| fail(e.to_string()))
            }
        }
    }

    /// A reader's connection: never creates anything.
    pub(crate) async fn connect_reader(&self) -> Result<Store, AuditError> {
        let fail = |e: String| AuditError::Open(format!("{}: {e}", self.describe()));
        let mut store = match self {
            StoreUrl::Sqlite(options) => {
                let path = options.get_filename();
                if !path.exists() {
                    return Err(fail("no such file".into()));
                }
                let options =
                    options.clone().create_if_missing(false).busy_timeout(SQLITE_BUSY_TIMEOUT).row_buffer_size(4096);
                Store::Sqlite(SqliteConnection::connect_with(&options).await.map_err(|e| fail(e.to_string()))?)
            }
            StoreUrl::Postgres(options) => {
                Store::Postgres(PgConnection::connect_with(options).await.map_err(|e| fail(e.to_string()))?)
            }
        };
        if !store.has_schema().await.map_err(|e| fail(e.to_string()))? {
            return Err(fail("it holds no audit log (table audit_records is missing)".into()));
        }
        Ok(store)
    }
}

/// A retention rewrite of one record's body and index columns (`$1` body,
/// `$2` kind, `$3` session id, `$4` principal, `$5` seq); SQLite reads the
/// `$N` as numbered parameters.
pub(crate) const REWRITE_RECORD: &str =
    "UPDATE audit_records SET body = $1, kind = $2, session_id = $3, principal = $4 WHERE seq = $5";
/// The original leaf of a rewritten record (`$1` seq, `$2` leaf hex), kept
/// from its first rewrite.
pub(crate) const KEEP_ORIGINAL_LEAF: &str =
    "INSERT INTO audit_redactions (seq, leaf) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING";

/// Seqs one [`bodies_of_sql`] query names at most.
pub(crate) const BODIES_PER_QUERY: usize = 500;

/// `SELECT seq, body ... WHERE seq IN ($1, ..., $n) ORDER BY seq`, for both
/// stores (SQLite reads `$N` as numbered parameters).
pub(crate) fn bodies_of_sql(n: usize) -> String {
    let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("SELECT seq, body FROM audit_records WHERE seq IN ({}) ORDER BY seq", placeholders.join(", "))
}

pub(crate) const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS audit_records (seq INTEGER PRIMARY KEY, time TEXT, kind TEXT, \
     session_id TEXT, principal TEXT, connection TEXT, body TEXT NOT NULL, prev_hash TEXT NOT NULL, \
     hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_payloads (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_blocks (block INTEGER PRIMARY KEY, root TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_redactions (seq INTEGER PRIMARY KEY, leaf TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (size INTEGER PRIMARY KEY, time TEXT NOT NULL, \
     root TEXT NOT NULL, note TEXT NOT NULL)",
];
/// `time` sorts bytewise (`COLLATE "C"`) whatever the database's locale, so
/// `time >= $since` and its index follow the RFC 3339 text order.
const POSTGRES_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS audit_records (seq BIGINT PRIMARY KEY, time TEXT COLLATE \"C\", kind TEXT, \
     session_id TEXT, principal TEXT, connection TEXT, body TEXT NOT NULL, prev_hash TEXT NOT NULL, \
     hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_payloads (seq BIGINT PRIMARY KEY, payload BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_blocks (block BIGINT PRIMARY KEY, root TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_redactions (seq BIGINT PRIMARY KEY, leaf TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (size BIGINT PRIMARY KEY, time TEXT NOT NULL, \
     root TEXT NOT NULL, note TEXT NOT NULL)",
];
/// Search indexes; `seq` last so "newest N for this principal" is an index
/// walk. No index on `session_id`: with many sessions active at once each
/// record lands on a different index page, and that cost half the write rate
/// (25,000 vs 54,000-82,000 records/s with 512 sessions). A session search
/// scans, narrowed by any indexed filter given with it.
pub(crate) const INDEXES: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS audit_records_principal ON audit_records (principal, seq)",
    "CREATE INDEX IF NOT EXISTS audit_records_connection ON audit_records (connection, seq)",
    "CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time)",
];

/// `INSERT ... VALUES (...), ...` for `INSERT_CHUNK`, half of it, ..., 1 rows.
/// SQLite gets anonymous `?` placeholders: with numbered ones, binding costs
/// O(parameters) each (`sqlite3_bind_parameter_name` scans a list), which is
/// quadratic for a 4,608-parameter statement. PostgreSQL needs `$N`.
fn insert_statements(numbered: bool) -> Vec<(usize, Arc<str>)> {
    let mut statements = Vec::new();
    let mut rows = INSERT_CHUNK;
    while rows > 0 {
        let mut sql = format!("INSERT INTO audit_records ({COLUMNS}) VALUES ");
        for row in 0..rows {
            sql.push_str(if row > 0 { ",(" } else { "(" });
            for column in 0..9 {
                if column > 0 {
                    sql.push(',');
                }
                if numbered {
                    sql.push_str(&format!("${}", row * 9 + column + 1));
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        statements.push((rows, Arc::from(sql)));
        rows /= 2;
    }
    statements
}

static SQLITE_INSERTS: LazyLock<Vec<(usize, Arc<str>)>> = LazyLock::new(|| insert_statements(false));
static POSTGRES_INSERTS: LazyLock<Vec<(usize, Arc<str>)>> = LazyLock::new(|| insert_statements(true));

/// Splits `rows` into runs that each match one of `statements`.
fn insert_plan<'r>(statements: &[(usize, Arc<str>)], rows: &'r [NewRow]) -> Vec<(Arc<str>, &'r [NewRow])> {
    let mut plan = Vec::new();
    let mut rest = rows;
    for (size, sql) in statements {
        while rest.len() >= *size {
            let (run, tail) = rest.split_at(*size);
            plan.push((sql.clone(), run));
            rest = tail;
        }
    }
    plan
}

/// Reads one row of `SELECT {RECORD_COLUMNS}` on either backend.
fn stored_row<R>(row: &R) -> Result<StoredRow, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Type<R::Database> + for<'r> Decode<'r, R::Database>,
    String: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    Ok(StoredRow { seq: row.try_get(0)?, body: row.try_get(1)?, prev_hash: row.try_get(2)?, hash: row.try_get(3)? })
}

/// The last two values of `SELECT COUNT(*), COALESCE(MAX(seq), 0)`.
fn count_and_max<R>(row: &R) -> Result<(u64, u64), sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Type<R::Database> + for<'r> Decode<'r, R::Database>,
{
    let count: i64 = row.try_get(0)?;
    let max: i64 = row.try_get(1)?;
    Ok((count.max(0) as u64, max.max(0) as u64))
}

/// What a prune removes besides appending its records: payload rows, and
/// bodies rewritten (statement text replaced, or the record expired).
#[derive(Debug, Clone, Default)]
pub(crate) struct Removals {
    pub payloads: Vec<u64>,
    pub rewrites: Vec<Rewrite>,
}

/// One record's rewritten body, the index columns that go with it, and the
/// leaf of its original body. The leaf is stored only if the record has
/// none yet: a record rewritten twice keeps the leaf of its first body.
#[derive(Debug, Clone)]
pub(crate) struct Rewrite {
    pub seq: u64,
    pub body: String,
    pub kind: &'static str,
    pub session_id: Option<String>,
    pub principal: Option<String>,
    pub leaf: Hash,
}

/// `(seq, leaf hex)` rows as a map; rows with a bad hash are left out (the
/// record then fails its own check).
pub(crate) fn redaction_map(rows: Vec<(i64, String)>) -> HashMap<u64, Hash> {
    rows.into_iter()
        .filter_map(|(seq, leaf)| {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&leaf, &mut hash).ok()?;
            Some((u64::try_from(seq).ok()?, hash))
        })
        .collect()
}

/// Block roots from rows sorted by block, up to the first gap or bad root.
pub(crate) fn contiguous_blocks(rows: Vec<(i64, String)>) -> Vec<Hash> {
    let mut blocks = Vec::with_capacity(rows.len());
    for (block, root) in rows {
        let mut hash = [0u8; 32];
        if block != blocks.len() as i64 || hex::decode_to_slice(&root, &mut hash).is_err() {
            break;
        }
        blocks.push(hash);
    }
    blocks
}

fn stored_checkpoint((size, time, root, note): (i64, String, String, String)) -> StoredCheckpoint {
    StoredCheckpoint { size: size.max(0) as u64, time, root, note }
}

pub(crate) fn db_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl Store {
    /// The writer's connection to a PostgreSQL store. (SQLite is written
    /// through `sqlite_writer`.)
    pub(crate) async fn connect_postgres_writer(options: &PgConnectOptions) -> Result<Store, String> {
        PgConnection::connect_with(options).await.map(Store::Postgres).map_err(|e| e.to_string())
    }

    pub(crate) async fn create_schema(&mut self) -> Result<(), sqlx::Error> {
        let table = match self {
            Store::Sqlite(_) => SQLITE_SCHEMA,
            Store::Postgres(_) => POSTGRES_SCHEMA,
        };
        for sql in table.iter().chain(INDEXES) {
            on_conn!(self, c => { sqlx::query(*sql).execute(&mut *c).await?; });
        }
        Ok(())
    }

    async fn has_schema(&mut self) -> Result<bool, sqlx::Error> {
        let count: i64 = match self {
            Store::Sqlite(c) => {
                sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_records'")
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?
            }
            Store::Postgres(c) => sqlx::query(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_name = 'audit_records' AND table_schema = current_schema()",
            )
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?,
        };
        Ok(count > 0)
    }

    /// Takes the session-level advisory lock that marks the log's one
    /// writer (PostgreSQL only); `false` if another session holds it.
    pub(crate) async fn try_writer_lock(&mut self) -> Result<bool, sqlx::Error> {
        match self {
            Store::Postgres(c) => {
                sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('sluice-audit-writer'))")
                    .fetch_one(&mut *c)
                    .await
            }
            Store::Sqlite(_) => Ok(true),
        }
    }

    pub(crate) async fn ping(&mut self) -> Result<(), sqlx::Error> {
        on_conn!(self, c => c.ping().await)
    }

    pub(crate) async fn close(self) {
        let result = on_conn!(self, c => c.close().await);
        if let Err(e) = result {
            tracing::debug!(error = %e, "closing the audit store connection failed");
        }
    }

    /// The record with the highest seq, if any.
    pub(crate) async fn last_row(&mut self) -> Result<Option<StoredRow>, sqlx::Error> {
        const SQL: &str = "SELECT seq, body, prev_hash, hash FROM audit_records ORDER BY seq DESC LIMIT 1";
        on_conn!(self, c => {
            let row = sqlx::query(SQL).fetch_optional(&mut *c).await?;
            row.as_ref().map(stored_row).transpose()
        })
    }

    /// Writes `rows`, their payloads and the roots of the blocks they
    /// complete, and deletes the payloads of `pruned` (seqs), in one
    /// transaction: all of it or, on error, none.
    pub(crate) async fn insert(
        &mut self,
        rows: &[NewRow],
        blocks: &[(u64, Hash)],
        removals: &Removals,
    ) -> Result<(), sqlx::Error> {
        let statements = match self {
            Store::Sqlite(_) => &*SQLITE_INSERTS,
            Store::Postgres(_) => &*POSTGRES_INSERTS,
        };
        let plan = insert_plan(statements, rows);
        on_conn!(self, c => {
            let mut tx = c.begin().await?;
            let written = async {
                for (sql, run) in &plan {
                    let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
                    for row in *run {
                        query = query
                            .bind(db_seq(row.seq))
                            .bind(&*row.time)
                            .bind(row.kind)
                            .bind(row.session_id.as_deref())
                            .bind(row.principal.as_deref())
                            .bind(row.connection.as_deref())
                            .bind(row.body.as_str())
                            .bind(row.prev_hash.as_str())
                            .bind(row.hash.as_str());
                    }
                    query.execute(&mut *tx).await?;
                }
                for row in rows {
                    if let Some(payload) = &row.payload {
                        sqlx::query("INSERT INTO audit_payloads (seq, payload) VALUES ($1, $2)")
                            .bind(db_seq(row.seq))
                            .bind(payload.as_slice())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                for (block, root) in blocks {
                    sqlx::query("INSERT INTO audit_blocks (block, root) VALUES ($1, $2)")
                        .bind(db_seq(*block))
                        .bind(hex::encode(root))
                        .execute(&mut *tx)
                        .await?;
                }
                for seq in &removals.payloads {
                    sqlx::query("DELETE FROM audit_payloads WHERE seq = $1").bind(db_seq(*seq)).execute(&mut *tx).await?;
                }
                for rewrite in &removals.rewrites {
                    sqlx::query(REWRITE_RECORD)
                        .bind(rewrite.body.as_str())
                        .bind(rewrite.kind)
                        .bind(rewrite.session_id.as_deref())
                        .bind(rewrite.principal.as_deref())
                        .bind(db_seq(rewrite.seq))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(KEEP_ORIGINAL_LEAF)
                        .bind(db_seq(rewrite.seq))
                        .bind(hex::encode(rewrite.leaf))
                        .execute(&mut *tx)
                        .await?;
                }
                Ok::<(), sqlx::Error>(())
            }
            .await;
            match written {
                Err(e) => {
                    if let Err(rollback) = tx.rollback().await {
                        tracing::debug!(error = %rollback, "rollback after a failed audit write failed");
                    }
                    Err(e)
                }
                Ok(()) => tx.commit().await,
            }
        })
    }

    /// Stores block roots computed outside a record write (when a log from
    /// before blocks existed is opened). Existing rows are kept.
    pub(crate) async fn insert_blocks(&mut self, blocks: &[(u64, Hash)]) -> Result<(), sqlx::Error> {
        on_conn!(self, c => {
            let mut tx = c.begin().await?;
            for (block, root) in blocks {
                sqlx::query("INSERT INTO audit_blocks (block, root) VALUES ($1, $2) ON CONFLICT (block) DO NOTHING")
                    .bind(db_seq(*block))
                    .bind(hex::encode(root))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }

    pub(crate) async fn insert_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<(), sqlx::Error> {
        const SQL: &str = "INSERT INTO audit_checkpoints (size, time, root, note) VALUES ($1, $2, $3, $4)";
        on_conn!(self, c => {
            sqlx::query(SQL)
                .bind(db_seq(checkpoint.size))
                .bind(checkpoint.time.as_str())
                .bind(checkpoint.root.as_str())
                .bind(checkpoint.note.as_str())
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
    }

    /// Stored block roots from block 0 up to the first gap, at most `limit`.
    pub(crate) async fn blocks(&mut self, limit: u64) -> Result<Vec<Hash>, sqlx::Error> {
        const SQL: &str = "SELECT block, root FROM audit_blocks WHERE block >= 0 AND block < $1 ORDER BY block";
        let rows: Vec<(i64, String)> = on_conn!(self, c => {
            sqlx::query_as(SQL).bind(db_seq(limit)).fetch_all(&mut *c).await?
        });
        Ok(contiguous_blocks(rows))
    }

    /// `(seq, body)` of the records with `first <= seq <= last`, in seq order.
    pub(crate) async fn bodies(&mut self, first: u64, last: u64) -> Result<Vec<(i64, String)>, sqlx::Error> {
        const SQL: &str = "SELECT seq, body FROM audit_records WHERE seq >= $1 AND seq <= $2 ORDER BY seq";
        on_conn!(self, c => {
            sqlx::query_as(SQL).bind(db_seq(first)).bind(db_seq(last)).fetch_all(&mut *c).await
        })
    }

    /// Records after `after`, in seq order, at most `limit`.
    pub(crate) async fn records_after(&mut self, after: u64, limit: u64) -> Result<Vec<StoredRow>, sqlx::Error> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2");
        on_conn!(self, c => {
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(db_seq(after)).bind(db_seq(limit)).fetch_all(&mut *c).await?;
            rows.iter().map(stored_row).collect()
        })
    }

    /// Checkpoints with a size above `after`, smallest first, at most `limit`.
    pub(crate) async fn checkpoints(&mut self, after: u64, limit: u64) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
        const SQL: &str = "SELECT size, time, root, note FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2";
        let rows: Vec<(i64, String, String, String)> = on_conn!(self, c => {
            sqlx::query_as(SQL).bind(db_seq(after)).bind(db_seq(limit)).fetch_all(&mut *c).await?
        });
        Ok(rows.into_iter().map(stored_checkpoint).collect())
    }

    /// The checkpoint with the largest size, if any.
    pub(crate) async fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        const SQL: &str = "SELECT size, time, root, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1";
        let row: Option<(i64, String, String, String)> = on_conn!(self, c => {
            sqlx::query_as(SQL).fetch_optional(&mut *c).await?
        });
        Ok(row.map(stored_checkpoint))
    }

    /// The original leaf hashes of redacted records with `first <= seq <= last`.
    pub(crate) async fn redactions(&mut self, first: u64, last: u64) -> Result<HashMap<u64, Hash>, sqlx::Error> {
        const SQL: &str = "SELECT seq, leaf FROM audit_redactions WHERE seq >= $1 AND seq <= $2";
        let rows: Vec<(i64, String)> = on_conn!(self, c => {
            sqlx::query_as(SQL).bind(db_seq(first)).bind(db_seq(last)).fetch_all(&mut *c).await?
        });
        Ok(redaction_map(rows))
    }

    /// `(seq, time)` of the records `sql` (a [`crate::prune`] query with
    /// `$1` connection and `$2` cutoff) finds due.
    pub(crate) async fn due_for_rewrite(
        &mut self,
        sql: &'static str,
        connection: &str,
        cutoff: &str,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        on_conn!(self, c => {
            sqlx::query_as(sql).bind(connection).bind(cutoff).fetch_all(&mut *c).await
        })
    }

    /// `(seq, body)` of the records `seqs` names that exist, in seq order,
    /// [`BODIES_PER_QUERY`] a query.
    pub(crate) async fn bodies_of(&mut self, seqs: &[u64]) -> Result<Vec<(u64, String)>, sqlx::Error> {
        let mut bodies = Vec::with_capacity(seqs.len());
        for group in seqs.chunks(BODIES_PER_QUERY) {
            let sql = bodies_of_sql(group.len());
            on_conn!(self, c => {
                let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql));
                for seq in group {
                    query = query.bind(db_seq(*seq));
                }
                bodies.extend(query.fetch_all(&mut *c).await?.into_iter().map(|(seq, body)| (seq.max(0) as u64, body)));
            });
        }
        Ok(bodies)
    }

    /// Recording chunks of `connection` sequenced before `cutoff` whose
    /// payloads are still stored: `(seq, time, payload bytes)`, in seq order.
    pub(crate) async fn expired_payloads(
        &mut self,
        connection: &str,
        cutoff: &str,
    ) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
        const SQL: &str = "SELECT r.seq, r.time, CAST(length(p.payload) AS BIGINT) FROM audit_records r \
                           JOIN audit_payloads p ON p.seq = r.seq \
                           WHERE r.kind = 'recording_chunk' AND r.connection = $1 AND r.time < $2 ORDER BY r.seq";
        on_conn!(self, c => {
            let rows: Vec<(i64, String, i64)> =
                sqlx::query_as(SQL).bind(connection).bind(cutoff).fetch_all(&mut *c).await?;
            Ok(rows)
        })
    }

    /// The payload stored beside record `seq`, if any.
    pub(crate) async fn payload(&mut self, seq: u64) -> Result<Option<Vec<u8>>, sqlx::Error> {
        const SQL: &str = "SELECT payload FROM audit_payloads WHERE seq = $1";
        on_conn!(self, c => {
            sqlx::query_scalar(SQL).bind(db_seq(seq)).fetch_optional(&mut *c).await
        })
    }

    /// The highest seq (0 for an empty log): one index lookup, unlike
    /// [`Store::extent`]'s count.
    pub(crate) async fn max_seq(&mut self) -> Result<u64, sqlx::Error> {
        const SQL: &str = "SELECT COALESCE(MAX(seq), 0) FROM audit_records";
        let max: i64 = on_conn!(self, c => sqlx::query_scalar(SQL).fetch_one(&mut *c).await?);
        Ok(max.max(0) as u64)
    }

    /// Number of records and the highest seq.
    pub(crate) async fn extent(&mut self) -> Result<(u64, u64), sqlx::Error> {
        const SQL: &str = "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM audit_records";
        on_conn!(self, c => count_and_max(&sqlx::query(SQL).fetch_one(&mut *c).await?))
    }

    /// Records matching `filter` (on the index columns), in seq order; with a
    /// limit, the newest `limit` of them.
    pub(crate) async fn search(&mut self, filter: &SearchFilter) -> Result<Vec<StoredRow>, sqlx::Error> {
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM audit_records");
        let mut binds: Vec<String> = Vec::new();
        let conditions = [
            ("principal", filter.principal.clone()),
            ("connection", filter.connection.clone()),
            ("session_id", filter.session.clone()),
            ("kind", filter.kind.clone()),
            ("time", filter.since.map(|t| crate::encoding::format_time(crate::encoding::truncate_time(t)))),
            ("body", filter.contains.clone()),
        ];
        for (column, value) in conditions {
            if let Some(value) = value {
                sql.push_str(if binds.is_empty() { " WHERE " } else { " AND " });
                binds.push(value);
                let n = binds.len();
                sql.push_str(&match column {
                    "time" => format!("time >= ${n}"),
                    // Exact and case-sensitive on both (SQLite's LIKE ignores ASCII case).
                    "body" => match self {
                        Store::Sqlite(_) => format!("instr(body, ${n}) > 0"),
                        Store::Postgres(_) => format!("strpos(body, ${n}) > 0"),
                    },
                    column => format!("{column} = ${n}"),
                });
            }
        }
        match filter.limit {
            Some(limit) => sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", limit.min(i64::MAX as u64))),
            None => sql.push_str(" ORDER BY seq"),
        }
        let mut rows = on_conn!(self, c => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for value in &binds {
                query = query.bind(value.as_str());
            }
            let rows = query.fetch_all(&mut *c).await?;
            rows.iter().map(stored_row).collect::<Result<Vec<_>, _>>()?
        });
        if filter.limit.is_some() {
            rows.reverse();
        }
        Ok(rows)
    }
}
