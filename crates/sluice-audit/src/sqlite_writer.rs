//! The SQLite write path: one blocking rusqlite connection on the writer's
//! own thread.
//!
//! Owns: creating the SQLite file, its folder and schema, the durability
//! settings (WAL, `synchronous=FULL`, so each commit is fsynced), reading the
//! chain head, and writing a batch in one transaction.
//! Does not: sequence, hash or batch (the writer does), or read for search
//! and verify (those go through sqlx in `store` and `scan`).
//!
//! Why not sqlx here: every sqlx SQLite call is a hop to sqlx's worker thread
//! and back. On the 2-core machine that hop, not the fsync, set the commit
//! time (about 600 µs for a batch of 8 under pgbench, against an fsync of
//! about 140 µs), and every statement of every session waits for a commit.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{INDEXES, NewRow, SQLITE_SCHEMA, StoredRow};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const INSERT: &str = "INSERT INTO audit_records (seq, time, kind, session_id, principal, connection, body, prev_hash, hash) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Opens (creating if needed) the log at `path` for writing.
pub(crate) fn open(path: &Path) -> Result<Connection, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    // WAL with synchronous=FULL fsyncs the log at every commit. The statement
    // journal stays in memory, and 64 MiB of page cache keeps the index
    // b-trees' hot pages out of pread.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;",
    )
    .map_err(|e| e.to_string())?;
    for sql in SQLITE_SCHEMA.iter().chain(INDEXES) {
        conn.execute_batch(sql).map_err(|e| e.to_string())?;
    }
    Ok(conn)
}

/// The record with the highest seq, if any.
pub(crate) fn last_row(conn: &Connection) -> Result<Option<StoredRow>, String> {
    conn.query_row("SELECT seq, body, prev_hash, hash FROM audit_records ORDER BY seq DESC LIMIT 1", [], |row| {
        Ok(StoredRow { seq: row.get(0)?, body: row.get(1)?, prev_hash: row.get(2)?, hash: row.get(3)? })
    })
    .optional()
    .map_err(|e| store_refused(&e))
}

/// Writes `rows` in one transaction: all of them, or none.
pub(crate) fn insert(conn: &mut Connection, rows: &[NewRow]) -> Result<(), String> {
    let tx = conn.transaction().map_err(|e| store_refused(&e))?;
    {
        let mut statement = tx.prepare_cached(INSERT).map_err(|e| store_refused(&e))?;
        for row in rows {
            statement
                .execute(params![
                    i64::try_from(row.seq).unwrap_or(i64::MAX),
                    &*row.time,
                    row.kind,
                    row.session_id,
                    row.principal,
                    row.connection,
                    row.body,
                    row.prev_hash,
                    row.hash
                ])
                .map_err(|e| store_refused(&e))?;
        }
    }
    // Dropping an uncommitted transaction rolls it back.
    tx.commit().map_err(|e| store_refused(&e))
}

/// Describes a failed write in words: the store's own message (a trigger's
/// RAISE text, "disk I/O error", "database or disk is full").
fn store_refused(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) => format!("the store refused the write: {message}"),
        other => format!("the store refused the write: {other}"),
    }
}
