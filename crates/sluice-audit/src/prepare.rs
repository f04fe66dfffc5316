//! Preparing records for verify: what one record's bytes give on their
//! own, worked out on several threads and checked in order.
//!
//! Owns: [`Prepared`] (a record's chain digest over the previous record's
//! stored hash, its leaf, its stored hash decoded, the body fields verify
//! tracks, and how its index columns differ from the body),
//! [`PagePreparer`] (the live verify's preparing stage) and
//! [`prepare_in_order`], shared by the live store and an export.
//! Does not: decide whether the log holds (`verify`'s `ChainCheck` does,
//! record by record, in seq order).

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use sluice_evidence::{Hash, leaf_hash};

use crate::encoding::{self, BodyFacts, BodyIndex, Text, decode_hash};
use crate::scan::{Page, RowView};
use crate::verify::BreakReason;

/// What one record's bytes give, independent of the running check, so
/// records can be prepared in parallel: its chain digest over a given
/// previous hash, its leaf hash, its stored hash decoded, the body fields
/// verify tracks, and how its index columns (if any) differ from the body.
/// It borrows nothing (an outcome's request id is kept as where it is in
/// the body, which `apply` is given again), so it can be checked on another
/// thread than the one that prepared it.
pub(crate) struct Prepared {
    pub(crate) chain: Hash,
    pub(crate) leaf: Hash,
    /// The record's stored hash, decoded; `None`: not 64 hex digits.
    pub(crate) stored: Option<Hash>,
    pub(crate) facts: Result<Facts, String>,
    /// The first index column that differs from the body.
    pub(crate) mismatch: Option<Box<BreakReason>>,
    /// A body retention rewrote: the SHA-256 of the body as it is now, to be
    /// matched with a retention record.
    pub(crate) rewritten: Option<String>,
}

impl Prepared {
    /// `prev`: the raw previous hash the record must link to; `hash`: the
    /// record's stored hash. `original_leaf`: the body was rewritten by
    /// retention (its statement text replaced) and this is the leaf of the
    /// original: the chain hash and leaf are those of the original body, so
    /// they are taken as stored, and the body itself must be listed, by its
    /// hash, in a retention record (checked at the end). `columns`: the
    /// store's index columns, compared with the body (parsed in full); without
    /// them the canonical layout is scanned, and parsed only if that fails.
    pub(crate) fn new(
        prev: &Hash,
        hash: &str,
        body: &str,
        original_leaf: Option<Hash>,
        columns: Option<&RowView<'_>>,
    ) -> Prepared {
        let stored = decode_hash(hash);
        let (facts, mismatch) = read_fields(body, columns);
        match original_leaf {
            None => Prepared {
                chain: encoding::chain_digest(prev, body),
                leaf: leaf_hash(body.as_bytes()),
                stored,
                facts,
                mismatch,
                rewritten: None,
            },
            // A stored hash that is not hex fails as a hash mismatch in `apply`.
            Some(leaf) => Prepared {
                chain: stored.unwrap_or_default(),
                leaf,
                stored,
                facts,
                mismatch,
                rewritten: Some(hex::encode(Sha256::digest(body.as_bytes()))),
            },
        }
    }

    /// The record's stored hash, decoded: what the next record links to.
    pub(crate) fn stored(&self) -> Option<Hash> {
        self.stored
    }
}

/// The body fields verify tracks: its seq, and what its kind means for
/// the running check.
pub(crate) struct Facts {
    pub(crate) seq: u64,
    pub(crate) tracked: Tracked,
}

pub(crate) enum Tracked {
    /// A request, by request id: open until its outcome.
    Request(String),
    /// An outcome, by request id.
    Outcome(BodyText),
    /// A recording chunk, by its payload's SHA-256.
    Chunk(String),
    /// A `payloads_pruned` record (decoded in full when checked).
    Pruned,
    Other,
}

impl Facts {
    /// The facts read from `body`.
    fn new(facts: BodyFacts<'_>, body: &str) -> Self {
        let tracked = match (&*facts.kind, facts.request_id, facts.payload_sha256) {
            ("request", Some(request_id), _) => Tracked::Request(request_id.into_owned()),
            ("outcome", Some(request_id), _) => Tracked::Outcome(BodyText::new(request_id, body)),
            ("recording_chunk", _, Some(sha256)) => Tracked::Chunk(sha256.into_owned()),
            ("payloads_pruned", _, _) => Tracked::Pruned,
            _ => Tracked::Other,
        };
        Facts { seq: facts.seq, tracked }
    }
}

/// A string read from a body, kept as where it is in the body when it is
/// there as it is (no escapes), so that it need not be copied.
pub(crate) enum BodyText {
    At(Range<usize>),
    Owned(String),
}

impl BodyText {
    fn new(text: Cow<'_, str>, body: &str) -> Self {
        if let Cow::Borrowed(text) = text {
            // Where `text` starts, if it is a slice of `body`.
            let start = (text.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
            let at = start..start.saturating_add(text.len());
            if body.get(at.clone()).is_some_and(|found| std::ptr::eq(found, text)) {
                return BodyText::At(at);
            }
        }
        BodyText::Owned(text.into_owned())
    }

    /// The string, from the `body` it was read from.
    pub(crate) fn get<'b>(&'b self, body: &'b str) -> &'b str {
        match self {
            BodyText::At(at) => body.get(at.clone()).unwrap_or_default(),
            BodyText::Owned(text) => text,
        }
    }
}

/// The fields verify tracks, and with `columns` the first index column
/// that differs from the body: parsed as JSON when index columns are to be
/// compared, otherwise scanned from the canonical layout (parsed only if
/// that fails).
fn read_fields(body: &str, columns: Option<&RowView<'_>>) -> (Result<Facts, String>, Option<Box<BreakReason>>) {
    let parse = || BodyIndex::parse(body).map_err(|e| e.to_string());
    match columns {
        Some(row) => match parse() {
            Ok(index) => (Ok(Facts::new(BodyFacts::from(&index), body)), index_mismatch(row, &index).map(Box::new)),
            Err(e) => (Err(e), None),
        },
        None => match BodyFacts::scan(body) {
            Some(facts) => (Ok(Facts::new(facts, body)), None),
            None => (parse().map(|index| Facts::new(BodyFacts::from(&index), body)), None),
        },
    }
}

/// A page's records, prepared, in chunks (see [`prepare_in_order`]).
pub(crate) type PreparedPage = Vec<Vec<Result<Prepared, String>>>;

/// The first stage of the live verify: prepares pages, in seq order, each
/// on `threads` threads (see [`prepare_in_order`]); [`ChainCheck::apply_page`]
/// checks them.
pub(crate) struct PagePreparer {
    /// What the next page's first record links to: the stored hash of the
    /// last record before it.
    first: Hash,
    /// The original leaves of bodies retention rewrote, by seq.
    redacted: HashMap<u64, Hash>,
    threads: usize,
}

impl PagePreparer {
    pub(crate) fn new(redacted: HashMap<u64, Hash>, threads: usize) -> Self {
        PagePreparer { first: Hash::default(), redacted, threads }
    }

    /// Prepares the next page.
    pub(crate) fn prepare(&mut self, page: &Page) -> PreparedPage {
        let mut prepared = Vec::new();
        let redacted = &self.redacted;
        let Ok(()) = prepare_in_order(
            page.len(),
            self.first,
            self.threads,
            |i| page.row(i).ok().and_then(|row| decode_hash(row.hash)),
            |i, prev| match page.row(i) {
                Ok(row) => {
                    // Keyed by the row's own seq: a row that is not the next
                    // record fails on its seq before this is looked at.
                    let original_leaf = u64::try_from(row.seq).ok().and_then(|seq| redacted.get(&seq)).copied();
                    let record = Prepared::new(prev, row.hash, row.body, original_leaf, Some(&row));
                    let stored = record.stored();
                    (Ok(record), stored)
                }
                Err(error) => (Err(error), None),
            },
            |_, chunk| {
                prepared.push(chunk);
                Ok::<(), Infallible>(())
            },
        );
        if let Some(last) = page.len().checked_sub(1) {
            self.first = page.row(last).ok().and_then(|row| decode_hash(row.hash)).unwrap_or_default();
        }
        prepared
    }
}

/// Threads that prepare records: one per core, at most 8.
pub(crate) fn prepare_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

/// Records per chunk that one thread prepares at a time.
const CHUNK: usize = 512;

/// Prepares records `0..count` on up to `threads` threads and applies them
/// in order on the calling thread, a chunk at a time (`apply(start,
/// records)`: records `start..`); the calling thread prepares too whenever
/// the next chunk is not ready. Stops at the first error `apply` returns.
///
/// Records depend on one another only through the hash each links to, and
/// that is the *stored* hash of the record before: what the chain links to
/// once that record checks out (if it does not, checking stops there). So
/// `prepare(i, prev)` gets the stored hash of record `i - 1` (`first` for
/// record 0, all zeros where it is not hex: that record fails first) and
/// returns its result with record `i`'s stored hash, decoded; `stored(i)`
/// gives that hash alone, for where a chunk starts.
pub(crate) fn prepare_in_order<T: Send, E>(
    count: usize,
    first: Hash,
    threads: usize,
    stored: impl Fn(usize) -> Option<Hash> + Sync,
    prepare: impl Fn(usize, &Hash) -> (T, Option<Hash>) + Sync,
    mut apply: impl FnMut(usize, Vec<T>) -> Result<(), E>,
) -> Result<(), E> {
    let chunks = count.div_ceil(CHUNK);
    let run = |chunk: usize| -> Vec<T> {
        let range = chunk * CHUNK..((chunk + 1) * CHUNK).min(count);
        let mut prev = match range.start {
            0 => first,
            i => stored(i - 1).unwrap_or_default(),
        };
        range
            .map(|i| {
                let (prepared, hash) = prepare(i, &prev);
                prev = hash.unwrap_or_default();
                prepared
            })
            .collect()
    };
    // The next chunk no thread has taken yet.
    let next = AtomicUsize::new(0);
    let take = || Some(next.fetch_add(1, Ordering::Relaxed)).filter(|chunk| *chunk < chunks);
    std::thread::scope(|scope| {
        let (done, finished) = mpsc::channel::<(usize, Vec<T>)>();
        let workers: Vec<_> = (1..threads.min(chunks))
            .map(|_| {
                let done = done.clone();
                let (run, take) = (&run, &take);
                scope.spawn(move || {
                    while let Some(chunk) = take() {
                        if done.send((chunk, run(chunk))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(done);
        let mut ready: Vec<Option<Vec<T>>> = (0..chunks).map(|_| None).collect();
        let mut applied = Ok(());
        for chunk in 0..chunks {
            let records = loop {
                if let Some(records) = ready[chunk].take() {
                    break records;
                }
                let (at, records) = match take() {
                    Some(at) => (at, run(at)),
                    // Every chunk is taken: wait for one. If the workers are
                    // gone (one failed), what they did not send is done here.
                    None => finished.recv().unwrap_or_else(|_| (chunk, run(chunk))),
                };
                ready[at] = Some(records);
            };
            applied = apply(chunk * CHUNK, records);
            if applied.is_err() {
                break;
            }
        }
        // Stop the workers after the chunk they are on.
        next.store(chunks, Ordering::Relaxed);
        drop(finished);
        for worker in workers {
            // A worker that failed left no gap (see above).
            let _ = worker.join();
        }
        applied
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_prepared_over_the_stored_hash_before_them_and_applied_in_order() {
        let stored = |i: usize| Some([u8::try_from(i % 251).expect("small"); 32]);
        for (count, threads) in [(0, 2), (1, 2), (CHUNK, 2), (5 * CHUNK + 3, 2), (5 * CHUNK + 3, 3), (4000, 1)] {
            let mut applied = Vec::new();
            let result = prepare_in_order(
                count,
                [9; 32],
                threads,
                stored,
                |i, prev| ((i, *prev), stored(i)),
                |start, records| {
                    for (i, (at, prev)) in (start..).zip(records) {
                        assert_eq!(at, i);
                        let expected = if i == 0 { [9; 32] } else { stored(i - 1).expect("some") };
                        assert_eq!(prev, expected, "record {i}");
                        applied.push(i);
                        if i == 2 * CHUNK + 5 {
                            return Err(i);
                        }
                    }
                    Ok(())
                },
            );
            let stop = 2 * CHUNK + 5;
            match count > stop {
                true => assert_eq!((result, applied.len()), (Err(stop), stop + 1), "{count} records"),
                false => assert_eq!((result, applied), (Ok(()), (0..count).collect()), "{count} records"),
            }
        }
    }
}
