//! Durable cursors: how far each sink has been delivered, in the audit
//! store's own database (SQLite or PostgreSQL).
//!
//! Owns: the `siem_cursors(sink, seq, checkpoint_size)` table, created on
//! open, and reading and saving one sink's position. The runner saves a
//! position only after the sink acknowledged everything up to it, so a
//! restart resends at most the batch that was in flight.
//! Does not: read the audit log or talk to sinks.

use sluice_audit::{SidePool, StoreUrl};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::SinkError;

/// The same DDL on both backends (`BIGINT` has integer affinity in SQLite).
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS siem_cursors (\
     sink TEXT PRIMARY KEY, seq BIGINT NOT NULL, checkpoint_size BIGINT NOT NULL)";

/// `INSERT ... ON CONFLICT DO UPDATE`: SQLite 3.24+ and PostgreSQL 9.5+ alike.
const SAVE: &str = "INSERT INTO siem_cursors (sink, seq, checkpoint_size) VALUES ($1, $2, $3) \
     ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, checkpoint_size = excluded.checkpoint_size";

const LOAD: &str = "SELECT seq, checkpoint_size FROM siem_cursors WHERE sink = $1";

/// A sink's position: every record up to `seq` and every checkpoint up to
/// `checkpoint_size` has been acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub checkpoint_size: u64,
}

/// The cursor table. Cheap to clone: it holds a pool.
#[derive(Debug, Clone)]
pub enum CursorStore {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl CursorStore {
    /// Opens the table in the database at `url` (the audit store's URL),
    /// creating it when it does not exist.
    pub async fn open(url: &str) -> Result<CursorStore, SinkError> {
        let target = StoreUrl::parse(url, "sluice-siem").map_err(|e| SinkError::Store(e.to_string()))?;
        let name = target.describe();
        let fail = |e: sqlx::Error| SinkError::Store(format!("{name}: {e}"));
        let store = match target.connect_side(2).await.map_err(SinkError::Store)? {
            SidePool::Sqlite(pool) => CursorStore::Sqlite(pool),
            SidePool::Postgres(pool) => CursorStore::Postgres(pool),
        };
        match &store {
            CursorStore::Sqlite(pool) => sqlx::query(SCHEMA).execute(pool).await.map(drop),
            CursorStore::Postgres(pool) => sqlx::query(SCHEMA).execute(pool).await.map(drop),
        }
        .map_err(fail)?;
        Ok(store)
    }

    /// Where `sink` stands; the start of the log if it never sent anything.
    pub async fn load(&self, sink: &str) -> Result<Position, SinkError> {
        let row: Option<(i64, i64)> = match self {
            CursorStore::Sqlite(pool) => sqlx::query_as(LOAD).bind(sink).fetch_optional(pool).await,
            CursorStore::Postgres(pool) => sqlx::query_as(LOAD).bind(sink).fetch_optional(pool).await,
        }
        .map_err(|e| SinkError::Store(format!("cursor of {sink}: {e}")))?;
        Ok(row.map_or_else(Position::default, |(seq, size)| Position {
            seq: seq.max(0) as u64,
            checkpoint_size: size.max(0) as u64,
        }))
    }

    /// Records that `sink` has been acknowledged up to `position`.
    pub async fn save(&self, sink: &str, position: Position) -> Result<(), SinkError> {
        let seq = i64::try_from(position.seq).unwrap_or(i64::MAX);
        let size = i64::try_from(position.checkpoint_size).unwrap_or(i64::MAX);
        match self {
            CursorStore::Sqlite(pool) => {
                sqlx::query(SAVE).bind(sink).bind(seq).bind(size).execute(pool).await.map(drop)
            }
            CursorStore::Postgres(pool) => {
                sqlx::query(SAVE).bind(sink).bind(seq).bind(size).execute(pool).await.map(drop)
            }
        }
        .map_err(|e| SinkError::Store(format!("cursor of {sink}: {e}")))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            CursorStore::Sqlite(pool) => pool.close().await,
            CursorStore::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CursorStore, Position};

    #[tokio::test]
    async fn positions_survive_reopening_and_are_per_sink() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/audit.db").display());
        let store = CursorStore::open(&url).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Position::default());
        store.save("a", Position { seq: 10, checkpoint_size: 8 }).await.unwrap();
        store.save("b", Position { seq: 3, checkpoint_size: 0 }).await.unwrap();
        store.save("a", Position { seq: 12, checkpoint_size: 8 }).await.unwrap();
        store.close().await;
        let store = CursorStore::open(&url).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Position { seq: 12, checkpoint_size: 8 });
        assert_eq!(store.load("b").await.unwrap(), Position { seq: 3, checkpoint_size: 0 });
    }
}
