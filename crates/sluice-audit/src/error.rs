//! The crate's one error type.
//!
//! Owns: `AuditError`, and turning a database driver error into words an
//! operator can act on (`store_unavailable`).
//! Does not: decide what the pipeline does with an error (it fails closed).

/// Everything that can go wrong while writing, reading or verifying the log.
///
/// `Clone` because one failed batch reports the same error to every waiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The store could not make a record durable. The text says why; the
    /// record was not written and the chain did not advance.
    #[error("audit store unavailable: {0}")]
    StoreUnavailable(String),
    /// The log was shut down (or its writer stopped); nothing more is accepted.
    #[error("the audit log is closed; Sluice is shutting down")]
    Closed,
    /// The store could not be opened: bad URL, missing file, unreachable server.
    #[error("cannot open the audit log: {0}")]
    Open(String),
    /// Another process (a running `sluice serve`) is this log's writer.
    #[error("{0}: another Sluice process is writing this audit log (one log has one writer)")]
    WriterBusy(String),
    /// The store holds something the chain rules forbid (found at open or
    /// while decoding a record).
    #[error("the audit log is corrupt: {0}")]
    Corrupt(String),
    /// A proof was asked for leaves or sizes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
    /// A read (search or verify) failed in the store.
    #[error("audit query failed: {0}")]
    Query(String),
}

/// Describes a failed write in words, without driver jargon where possible.
pub(crate) fn store_unavailable(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => format!("the store refused the write: {}", db.message()),
        sqlx::Error::Io(io) => format!("cannot reach the store: {io}"),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => "no connection to the store is available".to_owned(),
        sqlx::Error::WorkerCrashed => "the store's worker thread stopped".to_owned(),
        other => format!("the write failed: {other}"),
    }
}
