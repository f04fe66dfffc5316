//! Export and offline verify: a folder an auditor can check with nothing but
//! the node's public key.
//!
//! Owns: [`AuditReader::export`], [`verify_export`], and the folder format.
//! Does not: define the chain, the tree or checkpoints (they are checked by
//! the same [`ChainCheck`] the live verify uses).
//!
//! # The folder
//! - `records.jsonl`: one record per line, in seq order, exactly
//!   `{"seq":<seq>,"hash":"<chain hash>","record":<canonical body>}` where
//!   `<canonical body>` is the stored body byte for byte (the Merkle leaf
//!   is `SHA-256(0x00 ‖ body)`, the chain hash `SHA-256(prev ‖ body)`; see
//!   the crate docs). A verifier slices the body out, it never re-encodes.
//!   A request record whose statement text retention replaced has
//!   `"leaf":"<original leaf>"` after its hash: its chain hash and leaf are
//!   those of the original body, and a later `payloads_pruned` record lists
//!   the SHA-256 of the body as it is now.
//! - `checkpoints.jsonl`: one stored checkpoint per line, smallest size
//!   first: `{"size":..,"time":..,"root":..,"note":"<C2SP signed note>"}`.
//!   Only the note counts; verify reads size and root from the signed text.
//! - `payloads/<seq>`: the bytes of each recording chunk, named by the seq of
//!   the record that holds their hash.
//! - `key.pub`: the node's verifier key as it was configured (informative:
//!   verify is given the key separately and trusts only that).
//! - `manifest.json`: format, counts, log id, time of export.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use sluice_evidence::{Hash, VerifierKey};

use crate::AuditError;
use crate::encoding::decode_hash;
use crate::prepare::{Prepared, prepare_in_order, prepare_threads};
use crate::reader::AuditReader;
use crate::store::StoredCheckpoint;
use crate::verify::{BreakReason, Broken, ChainCheck, VerifyReport, verified_checkpoints};

/// The `format` of `manifest.json`.
pub const EXPORT_FORMAT: &str = "sluice-audit-export/1";
const RECORDS: &str = "records.jsonl";
const CHECKPOINTS: &str = "checkpoints.jsonl";
const PAYLOADS: &str = "payloads";
/// Records read from the store per query while exporting.
const EXPORT_PAGE: u64 = 8192;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub format: &'static str,
    pub records: u64,
    pub checkpoints: u64,
    pub payloads: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
    pub exported_at: String,
}

fn io_error(path: &Path, e: std::io::Error) -> AuditError {
    AuditError::Query(format!("{}: {e}", path.display()))
}

impl AuditReader {
    /// Writes every record up to the newest one present when it starts, the
    /// checkpoints that cover them, and the recording payloads, into `dir`
    /// (created; it must not exist or be empty). `key` is the node's verifier
    /// key, copied as `key.pub`. `progress` gets (records written, total).
    pub async fn export(
        &self,
        dir: &Path,
        key: Option<&VerifierKey>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ExportSummary, AuditError> {
        if dir.exists() && fs::read_dir(dir).map_err(|e| io_error(dir, e))?.next().is_some() {
            return Err(AuditError::Query(format!("{} is not empty; export into a new folder", dir.display())));
        }
        let payload_dir = dir.join(PAYLOADS);
        fs::create_dir_all(&payload_dir).map_err(|e| io_error(&payload_dir, e))?;
        let (total, max_seq, redacted) = {
            let mut store = self.store.lock().await;
            let (total, max_seq) = store.extent().await.map_err(|e| self.query_error(e))?;
            (total, max_seq, store.redactions(0, u64::MAX).await.map_err(|e| self.query_error(e))?)
        };
        let records_path = dir.join(RECORDS);
        let mut records = BufWriter::new(File::create(&records_path).map_err(|e| io_error(&records_path, e))?);
        let (mut written, mut payloads, mut after) = (0u64, 0u64, 0u64);
        while after < max_seq {
            let rows = {
                let mut store = self.store.lock().await;
                store.records_after(after, EXPORT_PAGE.min(max_seq - after)).await.map_err(|e| self.query_error(e))?
            };
            let Some(last) = rows.last() else { break };
            after = u64::try_from(last.seq).unwrap_or(u64::MAX);
            for row in &rows {
                let leaf = match redacted.get(&u64::try_from(row.seq).unwrap_or_default()) {
                    Some(leaf) => format!(",\"leaf\":\"{}\"", hex::encode(leaf)),
                    None => String::new(),
                };
                writeln!(records, "{{\"seq\":{},\"hash\":\"{}\"{leaf},\"record\":{}}}", row.seq, row.hash, row.body)
                    .map_err(|e| io_error(&records_path, e))?;
                if row.body.contains("\"type\":\"recording_chunk\"") {
                    let seq = u64::try_from(row.seq).unwrap_or_default();
                    if let Some(payload) = self.payload(seq).await? {
                        let path = payload_dir.join(seq.to_string());
                        fs::write(&path, payload).map_err(|e| io_error(&path, e))?;
                        payloads += 1;
                    }
                }
            }
            written += rows.len() as u64;
            progress(written, total);
        }
        records.flush().map_err(|e| io_error(&records_path, e))?;
        let checkpoints: Vec<StoredCheckpoint> =
            self.checkpoints_after(0, u64::MAX).await?.into_iter().filter(|c| c.size <= after).collect();
        let checkpoints_path = dir.join(CHECKPOINTS);
        let mut lines = String::new();
        for checkpoint in &checkpoints {
            lines.push_str(&serde_json::to_string(checkpoint).unwrap_or_default());
            lines.push('\n');
        }
        fs::write(&checkpoints_path, lines).map_err(|e| io_error(&checkpoints_path, e))?;
        if let Some(key) = key {
            let path = dir.join("key.pub");
            fs::write(&path, format!("{key}\n")).map_err(|e| io_error(&path, e))?;
        }
        let summary = ExportSummary {
            format: EXPORT_FORMAT,
            records: written,
            checkpoints: checkpoints.len() as u64,
            payloads,
            log_id: key.map(VerifierKey::log_id),
            exported_at: crate::encoding::format_time(chrono::Utc::now()),
        };
        let manifest = dir.join("manifest.json");
        fs::write(&manifest, serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n")
            .map_err(|e| io_error(&manifest, e))?;
        Ok(summary)
    }
}

/// One line of `records.jsonl`, sliced without re-encoding the body.
fn parse_line(line: &str) -> Option<ExportLine<'_>> {
    let rest = line.strip_prefix("{\"seq\":")?;
    let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'-').count();
    let (seq, rest) = rest.split_at(digits);
    let rest = rest.strip_prefix(",\"hash\":\"")?;
    let (hash, rest) = (rest.get(..64)?, rest.get(64..)?);
    let (leaf, rest) = match rest.strip_prefix("\",\"leaf\":\"") {
        Some(rest) => (Some(rest.get(..64)?), rest.get(64..)?),
        None => (None, rest),
    };
    let body = rest.strip_prefix("\",\"record\":")?.strip_suffix('}')?;
    Some(ExportLine { seq: seq.parse().ok()?, hash, leaf, body })
}

/// One line of `records.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExportLine<'a> {
    seq: i64,
    hash: &'a str,
    /// The original leaf of a body retention rewrote.
    leaf: Option<&'a str>,
    body: &'a str,
}

/// Verifies an export folder against `key` alone: every record's seq, chain
/// hash and body, the tree root at every checkpoint signed by `key`, that
/// no record a checkpoint covers is gone, and every recording payload. Names
/// the first break by record seq. `progress` gets (bytes read, bytes).
pub fn verify_export(
    dir: &Path,
    key: &VerifierKey,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, AuditError> {
    let checkpoints_path = dir.join(CHECKPOINTS);
    let text = fs::read_to_string(&checkpoints_path).map_err(|e| io_error(&checkpoints_path, e))?;
    let mut notes = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let stored: StoredCheckpoint = serde_json::from_str(line)
            .map_err(|e| AuditError::Corrupt(format!("{} line {}: {e}", checkpoints_path.display(), n + 1)))?;
        notes.push(stored.note);
    }
    let (mut chain, bad_checkpoint) = match verified_checkpoints(&notes, key) {
        // An export's rewritten records carry their original leaf on their line.
        Ok(checkpoints) => (ChainCheck::new(checkpoints), None),
        Err(broken) => (ChainCheck::new(Vec::new()), Some(broken)),
    };
    let records_path = dir.join(RECORDS);
    let file = File::open(&records_path).map_err(|e| io_error(&records_path, e))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let threads = prepare_threads();
    // The stored hash of the line before the block: what its first record links to.
    let mut prev = Hash::default();
    let (mut read, mut line_no) = (0u64, 0u64);
    loop {
        // One buffer per block; `ends[i]` is where line i ends (after its newline).
        let mut block = Vec::with_capacity(VERIFY_BLOCK * 512);
        let mut ends = Vec::with_capacity(VERIFY_BLOCK);
        while ends.len() < VERIFY_BLOCK {
            let n = reader.read_until(b'\n', &mut block).map_err(|e| io_error(&records_path, e))?;
            if n == 0 {
                break;
            }
            read += n as u64;
            ends.push(block.len());
        }
        if ends.is_empty() {
            break;
        }
        let lines = Lines { block: &block, ends: &ends };
        let first = prev;
        prev = lines.stored(ends.len() - 1).unwrap_or_default();
        let checked = prepare_in_order(
            ends.len(),
            first,
            threads,
            |i| lines.stored(i),
            |i, prev| match lines.parse(i) {
                Some(line) => {
                    let original_leaf = line.leaf.and_then(decode_hash);
                    let prepared = Prepared::new(prev, line.hash, line.body, original_leaf, None);
                    let stored = prepared.stored();
                    (Some((line.seq, line.hash, line.body, prepared)), stored)
                }
                None => (None, None),
            },
            |start, lines| {
                for (i, line) in (start..).zip(lines) {
                    let line_no = line_no + 1 + i as u64;
                    let result = match line {
                        Some((seq, hash, body, prepared)) => chain.apply(seq, body, None, hash, prepared),
                        None => Err(Broken {
                            seq: line_no,
                            reason: BreakReason::Unreadable {
                                error: format!(
                                    "line {line_no} of {RECORDS} is not {{\"seq\":..,\"hash\":..,\"record\":..}}"
                                ),
                            },
                        }),
                    };
                    result.map_err(|broken| (i, broken))?;
                }
                Ok(())
            },
        );
        if let Err((i, broken)) = checked {
            line_no += 1 + i as u64;
            let rest_of_block = (i + 1..ends.len()).map(|j| lines.text(j).unwrap_or_default().to_owned());
            let rest = rest_of_block.chain((&mut reader).lines().map_while(Result::ok));
            chain.set_broken(reordered_or(broken, rest, line_no));
            break;
        }
        line_no += ends.len() as u64;
        progress(read, total);
    }
    progress(read, total);
    chain.finish_records();
    for (seq, sha256) in chain.chunks() {
        if chain.is_broken() {
            break;
        }
        let payload = fs::read(dir.join(PAYLOADS).join(seq.to_string())).ok();
        chain.check_payload(seq, &sha256, payload.as_deref());
    }
    if let Some(bad) = bad_checkpoint {
        chain.set_broken(bad);
    }
    Ok(chain.report())
}

/// Records per block of `records.jsonl` read at once, then hashed and
/// parsed in parallel (see [`prepare_in_order`]).
const VERIFY_BLOCK: usize = 8_192;

/// A block of `records.jsonl` lines in one buffer.
struct Lines<'a> {
    block: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Lines<'a> {
    /// Line `i` without its newline, if it is UTF-8.
    fn text(&self, i: usize) -> Option<&'a str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let raw = &self.block[start..self.ends[i]];
        std::str::from_utf8(raw.strip_suffix(b"\n").unwrap_or(raw)).ok()
    }

    fn parse(&self, i: usize) -> Option<ExportLine<'a>> {
        self.text(i).and_then(parse_line)
    }

    /// Line `i`'s stored hash, decoded.
    fn stored(&self, i: usize) -> Option<Hash> {
        self.parse(i).and_then(|line| decode_hash(line.hash))
    }
}

/// A record reported missing may sit later in the file: then it was moved,
/// not deleted, and the break says where it is.
fn reordered_or(broken: Broken, rest: impl Iterator<Item = String>, line_no: u64) -> Broken {
    if broken.reason != BreakReason::Missing {
        return broken;
    }
    let wanted = format!("{{\"seq\":{},", broken.seq);
    for (offset, line) in rest.enumerate() {
        if line.starts_with(&wanted) {
            return Broken {
                seq: broken.seq,
                reason: BreakReason::Reordered { found_at_line: line_no + 1 + offset as u64 },
            };
        }
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn lines_are_sliced_not_reencoded() {
        let body = r#"{"seq":3,"time":"t","event":{"type":"x","s":"a}b \"c\""}}"#;
        let line = format!("{{\"seq\":3,\"hash\":\"{}\",\"record\":{body}}}", "ab".repeat(32));
        let parsed = parse_line(&line).expect("parses");
        assert_eq!((parsed.seq, parsed.hash.len(), parsed.leaf, parsed.body), (3, 64, None, body));
        let with_leaf = format!(
            "{{\"seq\":3,\"hash\":\"{}\",\"leaf\":\"{}\",\"record\":{body}}}",
            "ab".repeat(32),
            "cd".repeat(32)
        );
        let parsed = parse_line(&with_leaf).expect("parses");
        assert_eq!((parsed.leaf.map(str::len), parsed.body), (Some(64), body));
        for bad in ["", "{}", "{\"seq\":x,\"hash\":\"\",\"record\":{}}", "{\"seq\":1,\"hash\":\"a\"}"] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }
}
