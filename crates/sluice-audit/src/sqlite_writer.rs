//! The SQLite write path: one blocking rusqlite connection on the writer's
//! own thread.
//!
//! Owns: creating the SQLite file, its folder and schema, the durability
//! settings (WAL, `synchronous=FULL`, so each commit is fsynced), reading the
//! chain head, and writing a batch in one transaction.
//! Does not: sequence, hash or batch (the writer does), or read for search
//! (sqlx, in `store`) or verify (its own read-only connection, in `scan`).
//!
//! Why not sqlx here: every sqlx SQLite call is a hop to sqlx's worker thread
//! and back. On the 2-core machine that hop, not the fsync, set the commit
//! time (about 600 µs for a batch of 8 under pgbench, against an fsync of
//! about 140 µs), and every statement of every session waits for a commit.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use sluice_evidence::Hash;

use std::collections::HashMap;

use crate::store::{
    BODIES_PER_QUERY, INDEXES, KEEP_ORIGINAL_LEAF, NewRow, REWRITE_RECORD, Removals, SQLITE_SCHEMA, StoredCheckpoint,
    StoredRow, bodies_of_sql, contiguous_blocks, db_seq, redaction_map,
};

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
    // b-trees' hot pages out of pread. secure_delete zeroes what retention
    // deletes or rewrites (payloads, statement text), so it does not linger
    // in free space; only prunes delete anything.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; \
         PRAGMA secure_delete = ON;",
    )
    .map_err(|e| e.to_string())?;
    for sql in SQLITE_SCHEMA.iter().chain(INDEXES) {
        conn.execute_batch(sql).map_err(|e| e.to_string())?;
    }
    Ok(conn)
}

/// Takes the writer's lock on `<path>.lock` (created beside the log), so
/// only one process writes the file. Released when the file is closed.
pub(crate) fn lock(path: &Path) -> Result<std::fs::File, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", Path::new(&lock_path).display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(crate::writer::ANOTHER_WRITER.into()),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", Path::new(&lock_path).display())),
    }
}

/// The record with the highest seq, if any.
pub(crate) fn last_row(conn: &Connection) -> Result<Option<StoredRow>, String> {
    conn.query_row("SELECT seq, body, prev_hash, hash FROM audit_records ORDER BY seq DESC LIMIT 1", [], |row| {
        Ok(StoredRow { seq: row.get(0)?, body: row.get(1)?, prev_hash: row.get(2)?, hash: row.get(3)? })
    })
    .optional()
    .map_err(|e| store_refused(&e))
}

/// Writes `rows`, their payloads and the roots of the blocks they complete,
/// and deletes the payloads of `pruned` (seqs), in one transaction: all of
/// it, or none.
pub(crate) fn insert(
    conn: &mut Connection,
    rows: &[NewRow],
    blocks: &[(u64, Hash)],
    removals: &Removals,
) -> Result<(), String> {
    let tx = conn.transaction().map_err(|e| store_refused(&e))?;
    {
        let mut statement = tx.prepare_cached(INSERT).map_err(|e| store_refused(&e))?;
        for row in rows {
            statement
                .execute(params![
                    db_seq(row.seq),
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
            if let Some(payload) = &row.payload {
                tx.prepare_cached("INSERT INTO audit_payloads (seq, payload) VALUES (?1, ?2)")
                    .and_then(|mut insert| insert.execute(params![db_seq(row.seq), payload]))
                    .map_err(|e| store_refused(&e))?;
            }
        }
        insert_block_rows(&tx, blocks, "INSERT INTO audit_blocks (block, root) VALUES (?1, ?2)")?;
        for seq in &removals.payloads {
            tx.prepare_cached("DELETE FROM audit_payloads WHERE seq = ?1")
                .and_then(|mut delete| delete.execute(params![db_seq(*seq)]))
                .map_err(|e| store_refused(&e))?;
        }
        for rewrite in &removals.rewrites {
            tx.prepare_cached(REWRITE_RECORD)
                .and_then(|mut update| {
                    update.execute(params![
                        rewrite.body,
                        rewrite.kind,
                        rewrite.session_id,
                        rewrite.principal,
                        db_seq(rewrite.seq)
                    ])
                })
                .and_then(|_| {
                    tx.prepare_cached(KEEP_ORIGINAL_LEAF)
                        .and_then(|mut insert| insert.execute(params![db_seq(rewrite.seq), hex::encode(rewrite.leaf)]))
                })
                .map_err(|e| store_refused(&e))?;
        }
    }
    // Dropping an uncommitted transaction rolls it back.
    tx.commit().map_err(|e| store_refused(&e))
}

/// After a prune: copies the WAL into the database and empties it, so the
/// old versions of pruned pages do not linger in the WAL file. Best effort:
/// a reader holding an old snapshot keeps part of it until the next one.
pub(crate) fn flush_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "could not empty the WAL after a prune");
    }
}

/// Stores block roots computed outside a record write (a log from before
/// blocks existed). Existing rows are kept.
pub(crate) fn insert_blocks(conn: &mut Connection, blocks: &[(u64, Hash)]) -> Result<(), String> {
    let tx = conn.transaction().map_err(|e| store_refused(&e))?;
    insert_block_rows(&tx, blocks, "INSERT OR IGNORE INTO audit_blocks (block, root) VALUES (?1, ?2)")?;
    tx.commit().map_err(|e| store_refused(&e))
}

/// The checkpoint with the largest size, if any.
pub(crate) fn latest_checkpoint(conn: &Connection) -> Result<Option<StoredCheckpoint>, String> {
    conn.query_row("SELECT size, time, root, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", [], |row| {
        Ok(StoredCheckpoint {
            size: row.get::<_, i64>(0)?.max(0) as u64,
            time: row.get(1)?,
            root: row.get(2)?,
            note: row.get(3)?,
        })
    })
    .optional()
    .map_err(|e| store_refused(&e))
}

fn insert_block_rows(conn: &Connection, blocks: &[(u64, Hash)], sql: &str) -> Result<(), String> {
    let mut insert = conn.prepare_cached(sql).map_err(|e| store_refused(&e))?;
    for (block, root) in blocks {
        insert.execute(params![db_seq(*block), hex::encode(root)]).map_err(|e| store_refused(&e))?;
    }
    Ok(())
}

/// Stored block roots from block 0 up to the first gap.
pub(crate) fn blocks(conn: &Connection) -> Result<Vec<Hash>, String> {
    let mut select = conn
        .prepare("SELECT block, root FROM audit_blocks WHERE block >= 0 ORDER BY block")
        .map_err(|e| store_refused(&e))?;
    let rows = select
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| store_refused(&e))?;
    Ok(contiguous_blocks(rows))
}

/// The original leaf hashes of redacted records from `first` on.
pub(crate) fn redactions_from(conn: &Connection, first: u64) -> Result<HashMap<u64, Hash>, String> {
    let mut select =
        conn.prepare("SELECT seq, leaf FROM audit_redactions WHERE seq >= ?1").map_err(|e| store_refused(&e))?;
    let rows = select
        .query_map(params![db_seq(first)], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| store_refused(&e))?;
    Ok(redaction_map(rows))
}

/// `(seq, body)` of the records `seqs` names that exist, in seq order.
pub(crate) fn bodies_of(conn: &Connection, seqs: &[u64]) -> Result<Vec<(u64, String)>, String> {
    let mut bodies = Vec::with_capacity(seqs.len());
    for group in seqs.chunks(BODIES_PER_QUERY) {
        let mut select = conn.prepare_cached(&bodies_of_sql(group.len())).map_err(|e| store_refused(&e))?;
        let rows = select
            .query_map(rusqlite::params_from_iter(group.iter().map(|seq| db_seq(*seq))), |row| {
                Ok((row.get::<_, i64>(0)?.max(0) as u64, row.get(1)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| store_refused(&e))?;
        bodies.extend(rows);
    }
    Ok(bodies)
}

/// `(seq, body)` of the records from `first` on, in seq order.
pub(crate) fn bodies_from(conn: &Connection, first: u64) -> Result<Vec<(i64, String)>, String> {
    let mut select = conn
        .prepare("SELECT seq, body FROM audit_records WHERE seq >= ?1 ORDER BY seq")
        .map_err(|e| store_refused(&e))?;
    select
        .query_map(params![db_seq(first)], |row| Ok((row.get(0)?, row.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| store_refused(&e))
}

pub(crate) fn insert_checkpoint(conn: &Connection, checkpoint: &StoredCheckpoint) -> Result<(), String> {
    conn.execute(
        "INSERT INTO audit_checkpoints (size, time, root, note) VALUES (?1, ?2, ?3, ?4)",
        params![db_seq(checkpoint.size), checkpoint.time, checkpoint.root, checkpoint.note],
    )
    .map(|_| ())
    .map_err(|e| store_refused(&e))
}

/// Describes a failed write in words: the store's own message (a trigger's
/// RAISE text, "disk I/O error", "database or disk is full").
fn store_refused(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) => format!("the store refused the write: {message}"),
        other => format!("the store refused the write: {other}"),
    }
}
