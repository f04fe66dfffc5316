//! Verify: re-derive the chain and the Merkle tree from the records, check
//! them against the signed checkpoints, and name the first break.
//!
//! Owns: `VerifyReport`, `Broken`, `BreakReason`, and [`ChainCheck`], the
//! record-by-record check shared by the live store (page by page) and an
//! export (`export`): seq continuity, prev-hash links, record hashes, index
//! columns, the tree root at every checkpoint, checkpoint signatures, the
//! tail a checkpoint covers, and recording payloads against their records'
//! hashes; also the list of requests without an outcome.
//! Does not: repair anything. Without a checkpoint key, checkpoints are not
//! checked (a cut tail or a consistently rewritten log then goes unseen).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::AuditError;
use crate::encoding::{self, BodyFacts, BodyIndex, GENESIS_HASH, Text};
use crate::reader::AuditReader;
use crate::scan::{Frames, RowView};
use sha2::{Digest, Sha256};
use sluice_evidence::{Checkpoint, Hash, MerkleLog, VerifierKey, leaf_hash};
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
        let (total, max_seq) = store.extent().await.map_err(|e| self.query_error(e))?;
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
        let mut chain = ChainCheck::new(checkpoints, redacted);
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

/// The running state of a verify: what the next record must link to, the
/// tree so far, and the checkpoints still ahead.
pub(crate) struct ChainCheck {
    records: u64,
    next_seq: u64,
    head_hash: String,
    head_raw: [u8; 32],
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
    /// Original leaves of bodies retention rewrote, by seq (live store).
    redacted: HashMap<u64, Hash>,
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
    pub(crate) fn new(mut checkpoints: Vec<Checkpoint>, redacted: HashMap<u64, Hash>) -> Self {
        checkpoints.sort_by_key(|c| c.size);
        ChainCheck {
            records: 0,
            next_seq: 1,
            head_hash: GENESIS_HASH.to_owned(),
            head_raw: [0; 32],
            tree: MerkleLog::new(),
            checkpoints,
            next_checkpoint: 0,
            chunks: Vec::new(),
            payloads_verified: 0,
            released: HashSet::new(),
            redacted,
            claimed: Vec::new(),
            authorised: HashMap::new(),
            payloads_pruned: 0,
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
            self.check_record(row.seq, row.body, Some(row.prev_hash), row.hash, Some(&row))?;
        }
        Ok(())
    }

    /// Checks the next record: its seq, its link (`prev_hash` where the
    /// source stores it), its hash, its index columns (where the source has
    /// them), then adds its leaf and compares the root at a checkpoint.
    pub(crate) fn check_record(
        &mut self,
        found_seq: i64,
        body: &str,
        prev_hash: Option<&str>,
        hash: &str,
        columns: Option<&RowView<'_>>,
    ) -> Result<(), Broken> {
        let prepared = match self.redacted.get(&self.next_seq) {
            Some(leaf) => Prepared::redacted(hash, *leaf, body, columns.is_some()),
            None => Prepared::new(&self.head_raw, body, columns.is_some()),
        };
        self.apply(found_seq, body, prev_hash, hash, columns, prepared)
    }

    /// [`ChainCheck::check_record`] with the hashing and parsing already
    /// done by [`Prepared::new`] over the previous record's stored hash
    /// (which is what the chain links to once that record checked out).
    pub(crate) fn apply(
        &mut self,
        found_seq: i64,
        body: &str,
        prev_hash: Option<&str>,
        hash: &str,
        columns: Option<&RowView<'_>>,
        prepared: Prepared<'_>,
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
        let stored = prepared.stored.or_else(|| {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(hash, &mut raw).ok().map(|()| raw)
        });
        if stored != Some(prepared.chain) {
            return Err(broken(BreakReason::HashMismatch {
                stored: hash.to_owned(),
                computed: hex::encode(prepared.chain),
            }));
        }
        let stored_raw = prepared.chain;
        let facts = prepared.facts.map_err(|error| broken(BreakReason::Unreadable { error }))?;
        if facts.seq != seq {
            return Err(broken(BreakReason::IndexMismatch {
                column: "seq".into(),
                column_value: Some(seq.to_string()),
                body_value: Some(facts.seq.to_string()),
            }));
        }
        if let Some(reason) = columns.zip(prepared.full.as_ref()).and_then(|(row, index)| index_mismatch(row, index)) {
            return Err(broken(reason));
        }
        match (&*facts.kind, &facts.request_id, &facts.payload_sha256) {
            ("request", Some(request_id), _) => {
                self.open_requests.insert(request_id.to_string(), seq);
            }
            ("outcome", Some(request_id), _) => {
                self.open_requests.remove(&**request_id);
            }
            ("recording_chunk", _, Some(sha256)) => self.chunks.push((seq, sha256.to_string())),
            ("payloads_pruned", _, _) => match encoding::decode_body(body) {
                Ok((_, _, AuditEvent::PayloadsPruned(pruned))) => {
                    self.released.extend(pruned.seqs);
                    self.authorised.extend(pruned.redacted.into_iter().map(|r| (r.seq, r.body_sha256)));
                }
                _ => return Err(broken(BreakReason::Unreadable { error: "not a payloads_pruned record".into() })),
            },
            _ => {}
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
        self.head_raw = stored_raw;
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

/// What one record's bytes give, independent of the running check, so
/// records can be prepared in parallel: its chain digest over a given
/// previous hash, its leaf hash, and the body fields verify tracks.
pub(crate) struct Prepared<'a> {
    chain: [u8; 32],
    leaf: Hash,
    facts: Result<BodyFacts<'a>, String>,
    /// The full index view, parsed when index columns are to be compared.
    full: Option<BodyIndex<'a>>,
    /// The record's stored hash, already decoded by the caller (an export's
    /// parallel pass); `None`: decoded when checked.
    pub(crate) stored: Option<[u8; 32]>,
    /// A body retention rewrote: the SHA-256 of the body as it is now, to be
    /// matched with a retention record.
    rewritten: Option<String>,
}

impl<'a> Prepared<'a> {
    /// `prev`: the raw previous hash the record must link to. `full`: parse
    /// the whole index view (to compare a store's index columns); otherwise
    /// the canonical layout is scanned, and parsed only if that fails.
    pub(crate) fn new(prev: &[u8; 32], body: &'a str, full: bool) -> Prepared<'a> {
        let (facts, full) = read_fields(body, full);
        Prepared {
            chain: encoding::chain_digest(prev, body),
            leaf: leaf_hash(body.as_bytes()),
            facts,
            full,
            stored: None,
            rewritten: None,
        }
    }

    /// A body retention rewrote (its statement text replaced): the chain
    /// hash and leaf are those of the original body, kept by the store, so
    /// they are taken as stored; the body itself must be listed, by its
    /// hash, in a retention record (checked at the end).
    pub(crate) fn redacted(hash: &str, original_leaf: Hash, body: &'a str, full: bool) -> Prepared<'a> {
        let (facts, full) = read_fields(body, full);
        // A stored hash that is not hex fails as a hash mismatch in `apply`.
        let mut chain = [0u8; 32];
        let _ = hex::decode_to_slice(hash, &mut chain);
        Prepared {
            chain,
            leaf: original_leaf,
            facts,
            full,
            stored: None,
            rewritten: Some(hex::encode(Sha256::digest(body.as_bytes()))),
        }
    }
}

/// The fields verify tracks, and with `full` the whole index view: parsed
/// as JSON when index columns are to be compared, otherwise scanned from
/// the canonical layout (parsed only if that fails).
fn read_fields(body: &str, full: bool) -> (Result<BodyFacts<'_>, String>, Option<BodyIndex<'_>>) {
    let parse = || BodyIndex::parse(body).map_err(|e| e.to_string());
    match full {
        true => match parse() {
            Ok(index) => (Ok(BodyFacts::from(&index)), Some(index)),
            Err(e) => (Err(e), None),
        },
        false => match BodyFacts::scan(body) {
            Some(facts) => (Ok(facts), None),
            None => (parse().map(|index| BodyFacts::from(&index)), None),
        },
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
