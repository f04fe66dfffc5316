//! Verify: re-derive the chain from the stored rows and name the first break.
//!
//! Owns: `VerifyReport`, `Broken`, `BreakReason`, and the page-by-page check
//! of seq continuity, prev-hash links, record hashes and index columns; also
//! the list of requests without an outcome.
//! Does not: repair anything, or prove that the newest records were not cut
//! off (only a checkpoint of the head kept elsewhere can show that; compare
//! `head_hash` and `records` with one).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::AuditError;
use crate::encoding::{self, BodyIndex, GENESIS_HASH, Text};
use crate::reader::AuditReader;
use crate::scan::{Frames, RowView};

/// The result of a verify run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records checked and found intact (all of them when `broken` is `None`).
    pub records: u64,
    /// Hash of the last intact record ([`GENESIS_HASH`] if none).
    pub head_hash: String,
    /// The first record, by seq, that breaks the chain.
    pub broken: Option<Broken>,
    /// Request ids with a `request` record and no `outcome` record (among
    /// the intact records), in seq order. "Outcome unknown": Sluice stopped
    /// in between. Not a sign of tampering.
    pub incomplete_requests: Vec<String>,
}

/// Where the chain breaks and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: u64,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakReason {
    /// No row has this seq although later ones exist: it was deleted.
    Missing,
    /// A row whose seq cannot be in the chain (below 1) sits before this
    /// record: it was inserted.
    Inserted { found_seq: i64 },
    /// The row's `prev_hash` is not the hash of the record before it: this
    /// link, or the previous record (rewritten with a fresh hash), was altered.
    PrevHashMismatch { expected: String, found: String },
    /// The body does not hash to the stored `hash`: the body or hash was altered.
    HashMismatch { stored: String, computed: String },
    /// An index column (or the seq/time columns) differs from the body.
    IndexMismatch { column: String, column_value: Option<String>, body_value: Option<String> },
    /// The body is not a readable record.
    Unreadable { error: String },
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match &self.reason {
            BreakReason::Missing => write!(f, "record {seq} missing (deleted)"),
            BreakReason::Inserted { found_seq } => {
                write!(f, "record {seq}: a row with seq {found_seq} comes before it; seqs start at 1 (inserted)")
            }
            BreakReason::PrevHashMismatch { expected, found } => write!(
                f,
                "record {seq}: prev-hash mismatch: it links to {found}, but record {} hashes to {expected} \
                 (record {} or this link was altered)",
                seq.saturating_sub(1),
                seq.saturating_sub(1)
            ),
            BreakReason::HashMismatch { stored, computed } => write!(
                f,
                "record {seq}: hash mismatch: the body hashes to {computed}, the stored hash is {stored} \
                 (body or hash altered)"
            ),
            BreakReason::IndexMismatch { column, column_value, body_value } => write!(
                f,
                "record {seq}: index column `{column}` differs from the body ({column_value:?} vs {body_value:?})"
            ),
            BreakReason::Unreadable { error } => write!(f, "record {seq}: body unreadable: {error}"),
        }
    }
}

impl AuditReader {
    /// Checks every record in seq order, a page at a time, up to the highest
    /// seq present when it starts. Stops at the first break. `progress` is
    /// called after each page with (checked, total).
    pub async fn verify(&self, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport, AuditError> {
        let mut store = self.store.lock().await;
        let (total, max_seq) = store.extent().await.map_err(|e| self.query_error(e))?;
        let mut chain = ChainCheck::new();
        let max_seq = i64::try_from(max_seq).unwrap_or(i64::MAX);
        // The first range has no lower bound: a row forged below seq 1 must
        // be seen too.
        // A page is held in memory as one packed value, and bounds how long
        // one read snapshot is held.
        let page_seqs = self.page_seqs;
        let mut range = (i64::MIN, page_seqs.min(max_seq));
        let mut page = store.page(range.0, range.1).await.map_err(|e| self.query_error(e))?;
        loop {
            let more = range.1 < max_seq;
            range = (range.1, range.1.saturating_add(page_seqs).min(max_seq));
            // Check this page on a blocking thread while the store packs the next.
            let checking = tokio::task::spawn_blocking(move || {
                let result = chain.check_page(&page);
                (chain, result)
            });
            let prefetch = async {
                match more {
                    true => Some(store.page(range.0, range.1).await),
                    false => None,
                }
            };
            let (checked, next) = tokio::join!(checking, prefetch);
            let (checked_chain, result) =
                checked.map_err(|e| AuditError::Query(format!("the verify task stopped: {e}")))?;
            chain = checked_chain;
            if let Err(broken) = result {
                chain.broken = Some(broken);
                break;
            }
            progress(chain.records, total.max(chain.records));
            match next {
                Some(next) => page = next.map_err(|e| self.query_error(e))?,
                None => break,
            }
        }
        // Rows end before `max_seq`: the records up to it were deleted.
        if chain.broken.is_none() && i64::try_from(chain.next_seq).unwrap_or(i64::MAX) <= max_seq {
            chain.broken = Some(Broken { seq: chain.next_seq, reason: BreakReason::Missing });
        }
        Ok(chain.report())
    }
}

/// The running state of a verify: what the next record must link to.
pub(crate) struct ChainCheck {
    records: u64,
    next_seq: u64,
    head_hash: String,
    head_raw: [u8; 32],
    /// Open requests: id → seq of the request record.
    open_requests: HashMap<String, u64>,
    broken: Option<Broken>,
}

impl ChainCheck {
    pub(crate) fn new() -> Self {
        ChainCheck {
            records: 0,
            next_seq: 1,
            head_hash: GENESIS_HASH.to_owned(),
            head_raw: [0; 32],
            open_requests: HashMap::new(),
            broken: None,
        }
    }

    /// Checks every record of a page of frames, in seq order.
    pub(crate) fn check_page(&mut self, frames: &[u8]) -> Result<(), Broken> {
        let mut rows = Frames::new(frames)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| Broken { seq: self.next_seq, reason: BreakReason::Unreadable { error } })?;
        // Usually already in order, which this sort sees in one pass.
        rows.sort_by_key(|row| row.seq);
        for row in rows {
            self.check_row(row)?;
        }
        Ok(())
    }

    fn check_row(&mut self, row: RowView<'_>) -> Result<(), Broken> {
        let seq = self.next_seq;
        let broken = |reason| Broken { seq, reason };
        let expected = i64::try_from(seq).unwrap_or(i64::MAX);
        if row.seq < expected {
            // Only a row outside the chain (seq below 1) can come before.
            return Err(broken(BreakReason::Inserted { found_seq: row.seq }));
        }
        if row.seq > expected {
            // Rows come in seq order, so a higher seq means `seq` is absent.
            return Err(broken(BreakReason::Missing));
        }
        if row.prev_hash != self.head_hash {
            return Err(broken(BreakReason::PrevHashMismatch {
                expected: self.head_hash.clone(),
                found: row.prev_hash.to_owned(),
            }));
        }
        let computed = encoding::chain_digest(&self.head_raw, row.body);
        let mut stored_raw = [0u8; 32];
        if hex::decode_to_slice(row.hash, &mut stored_raw).is_err() || stored_raw != computed {
            return Err(broken(BreakReason::HashMismatch {
                stored: row.hash.to_owned(),
                computed: hex::encode(computed),
            }));
        }
        let index = BodyIndex::parse(row.body).map_err(|e| broken(BreakReason::Unreadable { error: e.to_string() }))?;
        if let Some(reason) = index_mismatch(&row, &index) {
            return Err(broken(reason));
        }
        if let Some(request_id) = &index.event.request_id {
            match index.event.kind.as_str() {
                "request" => {
                    self.open_requests.insert(request_id.as_str().to_owned(), seq);
                }
                "outcome" => {
                    self.open_requests.remove(request_id.as_str());
                }
                _ => {}
            }
        }
        self.records += 1;
        self.next_seq += 1;
        self.head_raw = stored_raw;
        self.head_hash.clear();
        self.head_hash.push_str(row.hash);
        Ok(())
    }

    pub(crate) fn report(self) -> VerifyReport {
        let mut open: Vec<(u64, String)> = self.open_requests.into_iter().map(|(id, seq)| (seq, id)).collect();
        open.sort_unstable();
        VerifyReport {
            records: self.records,
            head_hash: self.head_hash,
            broken: self.broken,
            incomplete_requests: open.into_iter().map(|(_, id)| id).collect(),
        }
    }
}

/// The first column whose copy differs from the body, if any.
fn index_mismatch(row: &RowView<'_>, index: &BodyIndex<'_>) -> Option<BreakReason> {
    let mismatch = |column: &str, column_value: Option<&str>, body_value: Option<&str>| {
        (column_value != body_value).then(|| BreakReason::IndexMismatch {
            column: column.to_owned(),
            column_value: column_value.map(str::to_owned),
            body_value: body_value.map(str::to_owned),
        })
    };
    let event = &index.event;
    if index.seq != u64::try_from(row.seq).unwrap_or(u64::MAX) {
        return mismatch("seq", Some(&row.seq.to_string()), Some(&index.seq.to_string()));
    }
    mismatch("time", row.time, Some(index.time.as_str()))
        .or_else(|| mismatch("kind", row.kind, Some(event.kind.as_str())))
        .or_else(|| mismatch("session_id", row.session_id, event.session_id.as_ref().map(Text::as_str)))
        .or_else(|| mismatch("principal", row.principal, event.principal.as_ref().map(Text::as_str)))
        .or_else(|| mismatch("connection", row.connection, event.connection.as_ref().map(Text::as_str)))
}
