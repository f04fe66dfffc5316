//! Verify: re-derive the chain and the Merkle tree from the records, check
//! them against the signed checkpoints, and name the first break.
//!
//! Owns: `VerifyReport`, `Broken`, `BreakReason`, and [`ChainCheck`], the
//! record-by-record check shared by the live store (page by page) and an
//! export (`export`): seq continuity, prev-hash links, record hashes, index
//! columns, the tree root at every checkpoint, checkpoint signatures, the
//! tail a checkpoint covers, and recording payloads against their records'
//! hashes; also the list of requests without an outcome. Also how both keep
//! every core busy: what a record's bytes give on their own ([`Prepared`]:
//! its hashes and fields) is worked out on several threads, over the stored
//! hash of the record before ([`prepare_in_order`]), and only checked in
//! order; the live verify reads, prepares and checks pages on three threads
//! at once.
//! Does not: repair anything. Without a checkpoint key, checkpoints are not
//! checked (a cut tail or a consistently rewritten log then goes unseen).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::mpsc;

use serde::Serialize;

use crate::AuditError;
use crate::encoding::{self, GENESIS_HASH};
use crate::prepare::{PagePreparer, Prepared, PreparedPage, Tracked, prepare_threads};
use crate::reader::AuditReader;
use crate::scan::{Page, Pages};
use sha2::{Digest, Sha256};
use sluice_evidence::{Checkpoint, MerkleLog, VerifierKey};
use sluice_model::AuditEvent;

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
    /// Signed checkpoints whose signature and root matched the records.
    pub checkpoints_verified: u64,
    /// The RFC 9162 root of the intact records, hex.
    pub tree_root: String,
    /// Recording payloads whose bytes matched their record's hash.
    pub payloads_verified: u64,
    /// Recording payloads deleted by retention, as `payloads_pruned`
    /// records say (their chunk records still verify).
    pub payloads_pruned: u64,
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
    /// The records up to a checkpoint do not hash to the root it signed:
    /// the log was rewritten (hashes and all) at or before this record.
    CheckpointMismatch { checkpoint_size: u64, checkpoint_time: String, signed_root: String, computed_root: String },
    /// A signed checkpoint covers records the log no longer has: the tail
    /// from this record on was removed.
    Truncated { checkpoint_size: u64, checkpoint_time: String },
    /// A checkpoint that is not validly signed by the expected key.
    BadCheckpoint { checkpoint_size: Option<u64>, error: String },
    /// An export holds this record, but after a later one (at this line of
    /// `records.jsonl`): records were reordered.
    Reordered { found_at_line: u64 },
    /// A recording chunk's payload is gone although no prune record
    /// released it.
    PayloadMissing,
    /// A recording chunk's payload does not hash to what its record holds.
    PayloadMismatch { stored: String, computed: String },
    /// The record's body was rewritten as if by retention, but no
    /// `payloads_pruned` record lists it with this body's hash.
    RedactionUnauthorised { body_sha256: String },
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
            BreakReason::CheckpointMismatch { checkpoint_size, checkpoint_time, signed_root, computed_root } => write!(
                f,
                "records 1..={checkpoint_size} hash to root {computed_root}, but the checkpoint of {checkpoint_time} \
                 signed {signed_root}: a record at or before {seq} was rewritten along with its chain hashes"
            ),
            BreakReason::Truncated { checkpoint_size, checkpoint_time } => write!(
                f,
                "records {seq}..={checkpoint_size} are missing: the checkpoint of {checkpoint_time} signed \
                 {checkpoint_size} records (the tail was cut)"
            ),
            BreakReason::BadCheckpoint { checkpoint_size, error } => match checkpoint_size {
                Some(size) => write!(f, "the checkpoint of size {size} is not valid: {error}"),
                None => write!(f, "a checkpoint is not valid: {error}"),
            },
            BreakReason::Reordered { found_at_line } => {
                write!(f, "record {seq} is out of order: it comes later, at line {found_at_line} (reordered)")
            }
            BreakReason::PayloadMissing => {
                write!(f, "record {seq}: its recording chunk's payload is missing (deleted without a prune record)")
            }
            BreakReason::RedactionUnauthorised { body_sha256 } => write!(
                f,
                "record {seq}: its body was rewritten (body hash {body_sha256}), and no retention record lists that \
                 rewrite (altered)"
            ),
            BreakReason::PayloadMismatch { stored, computed } => write!(
                f,
                "record {seq}: its recording chunk's payload hashes to {computed}, the record says {stored} (altered)"
            ),
        }
    }
}

impl AuditReader {
    /// Checks every record in seq order, a page at a time, up to the highest
    /// seq present when it starts, then the recording payloads. With a
    /// checkpoint key ([`AuditReader::with_checkpoint_key`]) also every
    /// stored checkpoint: its signature, its root, and that no record it
    /// covers is gone. Stops at the first break. `progress` is called after
    /// each page with (checked, total).
    pub async fn verify(&self, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport, AuditError> {
        let mut store = self.store.lock().await;
        // The highest seq is also the number of records to check: counting
        // them (`Store::extent`) would scan an index first.
        let total = store.max_seq().await.map_err(|e| self.query_error(e))?;
        let (checkpoints, bad_checkpoint) = match &self.checkpoint_key {
            None => (Vec::new(), None),
            Some(key) => {
                let notes: Vec<String> = store
                    .checkpoints(0, u64::MAX)
                    .await
                    .map_err(|e| self.query_error(e))?
                    .into_iter()
                    .map(|c| c.note)
                    .collect();
                match verified_checkpoints(&notes, key) {
                    Ok(checkpoints) => (checkpoints, None),
                    Err(broken) => (Vec::new(), Some(broken)),
                }
            }
        };
        let redacted = store.redactions(0, u64::MAX).await.map_err(|e| self.query_error(e))?;
        let mut chain = ChainCheck::new(checkpoints);
        let max_seq = i64::try_from(total).unwrap_or(i64::MAX);
        let threads = prepare_threads();
        let mut pages = Pages::open(&self.target, &mut store).map_err(|e| self.query_error(e))?;
        // A pipeline: pages are read, prepared (on `threads` threads) and
        // checked in order, each stage on its own thread, a page apart; then
        // they go back to be reused. A page is held in memory as one buffer,
        // and bounds how long one read snapshot is held. When a stage stops
        // (a break, an error), the ones before it stop at their next hand-off.
        let (read_tx, mut read_rx) = tokio::sync::mpsc::channel::<Page>(1);
        let (prepared_tx, prepared_rx) = mpsc::sync_channel::<(Page, PreparedPage)>(1);
        let (spare_tx, spare_rx) = mpsc::channel::<Page>();
        let (checked_tx, mut checked_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let page_seqs = self.page_seqs;
        let reading = async move {
            // The first range has no lower bound: a row forged below seq 1
            // must be seen too. Pages start small, so every stage has work
            // soon, and double up to `page_seqs`.
            let mut seqs = page_seqs.min(FIRST_PAGE_SEQS);
            let mut range = (i64::MIN, seqs.min(max_seq));
            loop {
                while let Ok(page) = spare_rx.try_recv() {
                    pages.recycle(page);
                }
                let page = pages.page(range.0, range.1).await?;
                if read_tx.send(page).await.is_err() || range.1 >= max_seq {
                    return Ok::<(), String>(());
                }
                seqs = seqs.saturating_mul(2).min(page_seqs);
                range = (range.1, range.1.saturating_add(seqs).min(max_seq));
            }
        };
        let mut preparer = PagePreparer::new(redacted, threads);
        let preparing = tokio::task::spawn_blocking(move || {
            while let Some(page) = read_rx.blocking_recv() {
                let prepared = preparer.prepare(&page);
                if prepared_tx.send((page, prepared)).is_err() {
                    break;
                }
            }
        });
        let checking = tokio::task::spawn_blocking(move || {
            while let Ok((page, prepared)) = prepared_rx.recv() {
                let result = chain.apply_page(&page, prepared);
                let _ = spare_tx.send(page);
                if let Err(broken) = result {
                    chain.broken = Some(broken);
                    break;
                }
                let _ = checked_tx.send(chain.records);
            }
            chain
        });
        let reporting = async {
            while let Some(records) = checked_rx.recv().await {
                progress(records, total.max(records));
            }
        };
        let (read, prepared, checked, ()) = tokio::join!(reading, preparing, checking, reporting);
        let stopped = |e: tokio::task::JoinError| AuditError::Query(format!("the verify task stopped: {e}"));
        prepared.map_err(stopped)?;
        let mut chain = checked.map_err(stopped)?;
        // Pages stop coming after a failed read: only a break found before
        // stands.
        if chain.broken.is_none() {
            read.map_err(|e| self.query_error(e))?;
        }
        // Rows end before `max_seq`: the records up to it were deleted.
        if chain.broken.is_none() && i64::try_from(chain.next_seq).unwrap_or(i64::MAX) <= max_seq {
            chain.broken = Some(Broken { seq: chain.next_seq, reason: BreakReason::Missing });
        }
        chain.finish_records();
        for (seq, sha256) in chain.chunks() {
            if chain.is_broken() {
                break;
            }
            let payload = store.payload(seq).await.map_err(|e| self.query_error(e))?;
            chain.check_payload(seq, &sha256, payload.as_deref());
        }
        if let Some(bad) = bad_checkpoint {
            chain.set_broken(bad);
        }
        Ok(chain.report())
    }
}

/// Seqs in the first page verify reads (see [`AuditReader::verify`]).
const FIRST_PAGE_SEQS: i64 = 1024;

/// The running state of a verify: what the next record must link to, the
/// tree so far, and the checkpoints still ahead.
pub(crate) struct ChainCheck {
    records: u64,
    next_seq: u64,
    head_hash: String,
    tree: MerkleLog,
    /// Verified checkpoints by size, smallest first; `next_checkpoint` is
    /// the first one the records have not reached yet.
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    /// Recording chunks seen: (seq, payload SHA-256 in hex).
    chunks: Vec<(u64, String)>,
    payloads_verified: u64,
    /// Chunk seqs whose payloads a `payloads_pruned` record released.
    released: HashSet<u64>,
    /// Rewritten bodies checked: (seq, SHA-256 of the body as stored).
    claimed: Vec<(u64, String)>,
    /// Rewrites `payloads_pruned` records list: seq → body SHA-256.
    authorised: HashMap<u64, String>,
    payloads_pruned: u64,
    /// Open requests: id → seq of the request record.
    open_requests: HashMap<String, u64>,
    broken: Option<Broken>,
}

impl ChainCheck {
    /// A check against `checkpoints` (already signature-checked, see
    /// [`verified_checkpoints`]).
    pub(crate) fn new(mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.sort_by_key(|c| c.size);
        ChainCheck {
            records: 0,
            next_seq: 1,
            head_hash: GENESIS_HASH.to_owned(),
            tree: MerkleLog::new(),
            checkpoints,
            next_checkpoint: 0,
            chunks: Vec::new(),
            payloads_verified: 0,
            released: HashSet::new(),
            claimed: Vec::new(),
            authorised: HashMap::new(),
            payloads_pruned: 0,
            open_requests: HashMap::new(),
            broken: None,
        }
    }

    /// Checks a page's records in seq order, as [`PagePreparer`] prepared
    /// them: the second stage of the live verify.
    pub(crate) fn apply_page(&mut self, page: &Page, prepared: PreparedPage) -> Result<(), Broken> {
        let unreadable = |seq, error| Broken { seq, reason: BreakReason::Unreadable { error } };
        if let Some(error) = page.malformed() {
            return Err(unreadable(self.next_seq, error.to_owned()));
        }
        for (i, prepared) in prepared.into_iter().flatten().enumerate() {
            let prepared = prepared.map_err(|error| unreadable(self.next_seq, error))?;
            let (seq, body, prev_hash, hash) = page.link(i).map_err(|error| unreadable(self.next_seq, error))?;
            self.apply(seq, body, Some(prev_hash), hash, prepared)?;
        }
        Ok(())
    }

    /// Checks the next record, [`Prepared`] (over the previous record's
    /// stored hash, which is what the chain links to once that record
    /// checked out): its seq, its link (`prev_hash` where the source stores
    /// it), its hash, its index columns (where the source has them), then
    /// adds its leaf and compares the root at a checkpoint.
    pub(crate) fn apply(
        &mut self,
        found_seq: i64,
        body: &str,
        prev_hash: Option<&str>,
        hash: &str,
        prepared: Prepared,
    ) -> Result<(), Broken> {
        let seq = self.next_seq;
        let broken = |reason| Broken { seq, reason };
        let expected = i64::try_from(seq).unwrap_or(i64::MAX);
        if found_seq < expected {
            // Only a row outside the chain (seq below 1), or a repeated or
            // reordered record in an export, can come before.
            return Err(broken(BreakReason::Inserted { found_seq }));
        }
        if found_seq > expected {
            // Records come in seq order, so a higher seq means `seq` is absent.
            return Err(broken(BreakReason::Missing));
        }
        if let Some(prev_hash) = prev_hash.filter(|p| *p != self.head_hash) {
            return Err(broken(BreakReason::PrevHashMismatch {
                expected: self.head_hash.clone(),
                found: prev_hash.to_owned(),
            }));
        }
        if prepared.stored != Some(prepared.chain) {
            return Err(broken(BreakReason::HashMismatch {
                stored: hash.to_owned(),
                computed: hex::encode(prepared.chain),
            }));
        }
        let facts = prepared.facts.map_err(|error| broken(BreakReason::Unreadable { error }))?;
        if facts.seq != seq {
            return Err(broken(BreakReason::IndexMismatch {
                column: "seq".into(),
                column_value: Some(seq.to_string()),
                body_value: Some(facts.seq.to_string()),
            }));
        }
        if let Some(reason) = prepared.mismatch {
            return Err(broken(*reason));
        }
        match facts.tracked {
            Tracked::Request(request_id) => {
                self.open_requests.insert(request_id, seq);
            }
            Tracked::Outcome(request_id) => {
                self.open_requests.remove(request_id.get(body));
            }
            Tracked::Chunk(sha256) => self.chunks.push((seq, sha256)),
            Tracked::Pruned => match encoding::decode_body(body) {
                Ok((_, _, AuditEvent::PayloadsPruned(pruned))) => {
                    self.released.extend(pruned.seqs);
                    self.authorised.extend(pruned.redacted.into_iter().map(|r| (r.seq, r.body_sha256)));
                }
                _ => return Err(broken(BreakReason::Unreadable { error: "not a payloads_pruned record".into() })),
            },
            Tracked::Other => {}
        }
        if let Some(body_sha256) = prepared.rewritten {
            self.claimed.push((seq, body_sha256));
        }
        self.tree.append(prepared.leaf);
        if let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint).filter(|c| c.size == self.tree.size()) {
            let root = self.tree.root();
            if root != checkpoint.root {
                return Err(broken(BreakReason::CheckpointMismatch {
                    checkpoint_size: checkpoint.size,
                    checkpoint_time: checkpoint.time.to_rfc3339(),
                    signed_root: hex::encode(checkpoint.root),
                    computed_root: hex::encode(root),
                }));
            }
            self.next_checkpoint += 1;
        }
        self.records += 1;
        self.next_seq += 1;
        self.head_hash.clear();
        self.head_hash.push_str(hash);
        Ok(())
    }

    /// After the last record: a checkpoint beyond it means the tail was cut.
    pub(crate) fn finish_records(&mut self) {
        if self.broken.is_some() {
            return;
        }
        // A rewritten body counts only if a later retention record lists it.
        for (seq, body_sha256) in &self.claimed {
            if self.authorised.get(seq) != Some(body_sha256) {
                self.broken = Some(Broken {
                    seq: *seq,
                    reason: BreakReason::RedactionUnauthorised { body_sha256: body_sha256.clone() },
                });
                return;
            }
        }
        if let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint) {
            self.broken = Some(Broken {
                seq: self.next_seq,
                reason: BreakReason::Truncated {
                    checkpoint_size: checkpoint.size,
                    checkpoint_time: checkpoint.time.to_rfc3339(),
                },
            });
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    pub(crate) fn set_broken(&mut self, broken: Broken) {
        self.broken.get_or_insert(broken);
    }

    /// The recording chunks seen, `(seq, payload SHA-256)`, for the caller
    /// to check with [`ChainCheck::check_payload`].
    pub(crate) fn chunks(&self) -> Vec<(u64, String)> {
        self.chunks.clone()
    }

    /// Checks one chunk's payload (`None`: not found) against its record.
    pub(crate) fn check_payload(&mut self, seq: u64, expected_sha256: &str, payload: Option<&[u8]>) {
        if self.broken.is_some() {
            return;
        }
        let reason = match payload {
            None if self.released.contains(&seq) => {
                self.payloads_pruned += 1;
                return;
            }
            None => BreakReason::PayloadMissing,
            Some(bytes) => {
                let computed = hex::encode(Sha256::digest(bytes));
                if computed == expected_sha256 {
                    self.payloads_verified += 1;
                    return;
                }
                BreakReason::PayloadMismatch { stored: expected_sha256.to_owned(), computed }
            }
        };
        self.broken = Some(Broken { seq, reason });
    }

    pub(crate) fn report(self) -> VerifyReport {
        let mut open: Vec<(u64, String)> = self.open_requests.into_iter().map(|(id, seq)| (seq, id)).collect();
        open.sort_unstable();
        VerifyReport {
            records: self.records,
            head_hash: self.head_hash,
            broken: self.broken,
            incomplete_requests: open.into_iter().map(|(_, id)| id).collect(),
            checkpoints_verified: self.next_checkpoint as u64,
            tree_root: hex::encode(self.tree.root()),
            payloads_verified: self.payloads_verified,
            payloads_pruned: self.payloads_pruned,
        }
    }
}

/// Parses and checks signed checkpoint notes against `key`: each must be
/// signed by it, name this key's log (`sluice/<log id>`), and sizes must
/// grow with time. The first bad one is the error.
pub(crate) fn verified_checkpoints(notes: &[String], key: &VerifierKey) -> Result<Vec<Checkpoint>, Broken> {
    let origin = crate::checkpoint_origin(&key.log_id());
    let mut checkpoints: Vec<Checkpoint> = Vec::with_capacity(notes.len());
    for note in notes {
        let bad = |error: String, size: Option<u64>| Broken {
            seq: size.unwrap_or(0),
            reason: BreakReason::BadCheckpoint { checkpoint_size: size, error },
        };
        let checkpoint = Checkpoint::parse_and_verify(note, key).map_err(|e| bad(e.to_string(), None))?;
        if checkpoint.origin != origin {
            return Err(bad(
                format!("it is for log {:?}, not {origin:?} (the log of this key)", checkpoint.origin),
                Some(checkpoint.size),
            ));
        }
        checkpoints.push(checkpoint);
    }
    checkpoints.sort_by_key(|c| c.size);
    for pair in checkpoints.windows(2) {
        if pair[0].size == pair[1].size || pair[0].time > pair[1].time {
            return Err(Broken {
                seq: pair[1].size,
                reason: BreakReason::BadCheckpoint {
                    checkpoint_size: Some(pair[1].size),
                    error: format!(
                        "it is not newer than the checkpoint of size {} ({} vs {})",
                        pair[0].size, pair[1].time, pair[0].time
                    ),
                },
            });
        }
    }
    Ok(checkpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{record_hash, splice_body};

    /// Store rows: a seq and the columns of a page (time, kind, session_id,
    /// principal, connection, body, prev_hash, hash).
    type Rows = Vec<(i64, [Option<String>; 8])>;

    /// A chain of `n` records, requests and their outcomes by turns.
    fn chain(n: u64) -> Rows {
        let time = "2026-11-05T09:30:00.000250Z";
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let (kind, id) = if seq % 2 == 1 { ("request", seq) } else { ("outcome", seq - 1) };
                let event = format!(
                    r#"{{"type":"{kind}","request_id":"s:{id}","session_id":"s","principal":"p","connection":"c","rows":{seq}}}"#
                );
                let body = splice_body(seq, time, &event);
                let hash = record_hash(&prev, &body).expect("hex");
                let columns = [time, kind, "s", "p", "c", &body, &prev, &hash].map(|c| Some(c.to_owned()));
                prev = hash;
                (i64::try_from(seq).expect("small"), columns)
            })
            .collect()
    }

    /// Checks `rows` as the live verify does, in pages of `page_rows` rows
    /// prepared on `threads` threads.
    fn check(rows: &Rows, page_rows: usize, threads: usize) -> VerifyReport {
        let (mut preparer, mut chain) = (PagePreparer::new(HashMap::new(), threads), ChainCheck::new(Vec::new()));
        for rows in rows.chunks(page_rows) {
            let page = Page::of_rows(rows);
            let prepared = preparer.prepare(&page);
            if let Err(broken) = chain.apply_page(&page, prepared) {
                chain.set_broken(broken);
                break;
            }
        }
        chain.finish_records();
        chain.report()
    }

    /// Where `rows` break, the same whatever the pages and threads: with
    /// 3,000 records and chunks of 512, breaks fall inside chunks, on their
    /// edges, and (pages of 1,000) on pages' edges.
    fn broken(rows: &Rows) -> Option<Broken> {
        let report = check(rows, rows.len(), 1);
        for (page_rows, threads) in [(rows.len(), 2), (rows.len(), 3), (1000, 2), (700, 3), (7, 2)] {
            assert_eq!(check(rows, page_rows, threads), report, "pages of {page_rows} rows, {threads} threads");
        }
        report.broken
    }

    fn column(rows: &mut Rows, seq: usize, index: usize) -> &mut String {
        rows[seq - 1].1[index].as_mut().expect("not NULL")
    }

    #[test]
    fn parallel_checks_find_the_same_first_break() {
        let intact = chain(3000);
        let report = check(&intact, 1000, 2);
        assert_eq!((report.broken, report.records, report.incomplete_requests.len()), (None, 3000, 0));
        assert_eq!(broken(&intact), None);

        let mut edited = intact.clone();
        *column(&mut edited, 1701, 5) = column(&mut edited, 1701, 5).replace("\"rows\":1701", "\"rows\":0");
        let found = broken(&edited).expect("broken");
        assert!(matches!(found.reason, BreakReason::HashMismatch { .. }) && found.seq == 1701, "{found}");

        // The first record of a chunk links elsewhere.
        let mut relinked = intact.clone();
        *column(&mut relinked, 513, 6) = "ab".repeat(32);
        let found = broken(&relinked).expect("broken");
        assert!(matches!(found.reason, BreakReason::PrevHashMismatch { .. }) && found.seq == 513, "{found}");

        // Rewritten with a fresh hash: the next record's link breaks.
        let mut rehashed = intact.clone();
        *column(&mut rehashed, 1536, 5) = column(&mut rehashed, 1536, 5).replace("\"rows\":1536", "\"rows\":0");
        let (prev, body) = (column(&mut rehashed, 1536, 6).clone(), column(&mut rehashed, 1536, 5).clone());
        *column(&mut rehashed, 1536, 7) = record_hash(&prev, &body).expect("hex");
        let found = broken(&rehashed).expect("broken");
        assert!(matches!(found.reason, BreakReason::PrevHashMismatch { .. }) && found.seq == 1537, "{found}");

        let mut reindexed = intact.clone();
        *column(&mut reindexed, 2049, 3) = "someone-else".into();
        let found = broken(&reindexed).expect("broken");
        assert!(matches!(&found.reason, BreakReason::IndexMismatch { column, .. } if column == "principal"), "{found}");
        assert_eq!(found.seq, 2049);

        let mut deleted = intact.clone();
        deleted.remove(1024);
        assert_eq!(broken(&deleted), Some(Broken { seq: 1025, reason: BreakReason::Missing }));

        let mut forged = intact.clone();
        forged.insert(0, (0, intact[0].1.clone()));
        assert_eq!(broken(&forged), Some(Broken { seq: 1, reason: BreakReason::Inserted { found_seq: 0 } }));

        // Not JSON, and the chain rewritten from there on to match.
        let mut unreadable = intact;
        *column(&mut unreadable, 2600, 5) = "{\"seq\":2600".into();
        for seq in 2600..=3000 {
            let prev = column(&mut unreadable, seq - 1, 7).clone();
            let body = column(&mut unreadable, seq, 5).clone();
            *column(&mut unreadable, seq, 6) = prev.clone();
            *column(&mut unreadable, seq, 7) = record_hash(&prev, &body).expect("hex");
        }
        let found = broken(&unreadable).expect("broken");
        assert!(matches!(found.reason, BreakReason::Unreadable { .. }) && found.seq == 2600, "{found}");
    }
}
