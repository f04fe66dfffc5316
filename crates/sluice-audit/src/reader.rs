//! The read side: `AuditReader` and search.
//!
//! Owns: opening a store for reading (never creating it), searching records
//! by the index columns, and decoding rows into `AuditRecord`s.
//! Does not: write, or check the chain (see `verify`, which it hosts).

use chrono::{DateTime, Utc};
use sluice_evidence::VerifierKey;
use tokio::sync::Mutex;

use crate::AuditError;
use crate::encoding::{self, AuditRecord};
use crate::store::{AUDIT_APPLICATION_NAME, Store, StoreUrl, StoredRow};

/// Seqs per verify page by default.
const DEFAULT_PAGE_SEQS: i64 = 16_384;

/// What to look for. Every field that is set must match (AND). String
/// fields match the index columns exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// The principal's subject.
    pub principal: Option<String>,
    /// The connection name.
    pub connection: Option<String>,
    /// The session id. Not indexed (see the store's indexes): alone, it scans.
    pub session: Option<String>,
    /// The event kind: `session_open`, `session_close`, `request`, `outcome`, `auth_failure`,
    /// `approval`, `alert_delivery`, `recording_chunk`, `payloads_pruned`,
    /// `expired`.
    pub kind: Option<String>,
    /// Records whose body (its canonical JSON) contains this text, matched
    /// by the store as it reads (not indexed: it scans what the other
    /// filters leave).
    pub contains: Option<String>,
    /// Records sequenced at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many records: the newest ones (still returned in seq order).
    pub limit: Option<u64>,
}

/// Read access to a log: search and verify. Holds one connection.
#[derive(Debug)]
pub struct AuditReader {
    pub(crate) target: StoreUrl,
    pub(crate) store: Mutex<Store>,
    /// Seqs per verify page; see [`AuditReader::with_page_size`].
    pub(crate) page_seqs: i64,
    /// Checks checkpoints in verify; see [`AuditReader::with_checkpoint_key`].
    pub(crate) checkpoint_key: Option<VerifierKey>,
}

impl AuditReader {
    /// Opens an existing log at `url`; fails if there is none there.
    pub async fn open(url: &str) -> Result<Self, AuditError> {
        let target = StoreUrl::parse(url, AUDIT_APPLICATION_NAME)?;
        let store = target.connect_reader().await?;
        Ok(AuditReader { target, store: Mutex::new(store), page_seqs: DEFAULT_PAGE_SEQS, checkpoint_key: None })
    }

    /// How many seqs `verify` reads per query (default 16,384, about 10 MB;
    /// the first pages are smaller). Verify holds up to five pages at once:
    /// one each being read, prepared and checked, and one waiting between
    /// each. Smaller holds less memory and makes more round trips.
    pub fn with_page_size(mut self, seqs: u32) -> Self {
        self.page_seqs = i64::from(seqs.max(1));
        self
    }

    /// Makes `verify` check the stored checkpoints against `key`: the
    /// public half of the node's `audit.signing_key_file`, obtained
    /// independently of the store.
    pub fn with_checkpoint_key(mut self, key: VerifierKey) -> Self {
        self.checkpoint_key = Some(key);
        self
    }

    /// Records matching `filter`, in seq order. With `limit`, the newest
    /// `limit` matches. Bodies are decoded as stored; use `verify` to know
    /// whether they were altered.
    pub async fn search(&self, filter: &SearchFilter) -> Result<Vec<AuditRecord>, AuditError> {
        let rows = {
            let mut store = self.store.lock().await;
            store.search(filter).await.map_err(|e| self.query_error(e))?
        };
        rows.into_iter().map(decode_row).collect()
    }

    pub(crate) fn query_error(&self, e: impl std::fmt::Display) -> AuditError {
        AuditError::Query(format!("{}: {e}", self.target.describe()))
    }
}

/// A stored row as an `AuditRecord`, taking seq, time and event from the body.
pub(crate) fn decode_row(row: StoredRow) -> Result<AuditRecord, AuditError> {
    let (seq, time, event) =
        encoding::decode_body(&row.body).map_err(|e| AuditError::Corrupt(format!("record {}: {e}", row.seq)))?;
    Ok(AuditRecord { seq, time, event, prev_hash: row.prev_hash, hash: row.hash })
}
