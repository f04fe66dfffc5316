//! Session recording: the exchange as the client saw it, masked, stored in
//! the audit log in hash-committed chunks, for `sluice sessions replay`.
//!
//! Owns: the payload format (JSON Lines, below), the per-statement row cap
//! ([`RowCap`]), chunking and hashing, and flushing chunks through the
//! session's `AuditLog` as `recording_chunk` records with their payload.
//! Reading a payload back ([`parse_payload`]) lives here too, so the format
//! has one owner.
//! Does not: know any protocol. The adapter feeds it what it wrote to the
//! client, after masking (for PostgreSQL: `sluice-pg`'s relay); a recorder
//! never sees a value before the masker does, and never changes what the
//! client receives.
//!
//! # Payload format
//! A chunk's payload is UTF-8 JSON Lines, one entry per line, in the order
//! the client received them. Entries with `t` carry the time (RFC 3339, UTC,
//! microseconds) the statement was sent or the answer arrived.
//!
//! ```text
//! {"t":"2026-11-26T12:00:01.234567Z","kind":"statement","request_id":"<session>:3","text":"SELECT ...","param_count":0}
//! {"t":"…","kind":"statement","request_id":"…","text":"… $1","param_count":1,"params":["[NAME]",null,{"binary":"00ff"}],"params_sha256":"…"}
//! {"kind":"columns","names":["mrn","age"],"numeric":[false,true]}
//! {"kind":"row","values":["[MRN]",null,{"binary":"0001"}]}
//! {"kind":"rows_omitted","rows":998}
//! {"t":"…","kind":"complete","tag":"SELECT 1000","rows":1000}
//! {"t":"…","kind":"notice","severity":"NOTICE","sqlstate":"00000","message":"…"}
//! {"t":"…","kind":"error","severity":"ERROR","sqlstate":"42P01","message":"…"}
//! ```
//!
//! - `columns.numeric` says which columns hold numbers (a transcript
//!   aligns them right, as psql does).
//! - `row` values are the bytes the client got, after masking: a text value
//!   as a JSON string (`null` for SQL NULL); a binary-format value, or text
//!   that is not UTF-8, as `{"binary":"<hex>"}`.
//! - `params`: each value of a text-format parameter run through the
//!   request's masker (free-text detection: a parameter has no column to
//!   say what it holds), clear only under a profile that keeps everything;
//!   binary-format parameters are `{"binary":null}` (not recorded). A
//!   refused request has no profile: its `params` are left out. The
//!   simple protocol has no parameters (`param_count` 0, no `params`).
//!   `params_sha256` is the hash the request record carries.
//! - COPY data (either direction) is not recorded; its `complete`
//!   (`COPY 12`) is. A portal read in slices (Execute with a row limit) is
//!   one `statement` per Execute, each with its own cap.
//! - The cap: per result (each `columns`), at most `max_rows_per_statement`
//!   rows and `max_bytes_per_statement` bytes of row messages are stored;
//!   the rest are counted once, in `rows_omitted`, before the `complete`.
//!
//! # Chunks
//! Entries are gathered in memory and flushed as one chunk every
//! [`CHUNK_ENTRIES`] entries or [`CHUNK_BYTES`] bytes, and when the session
//! ends (`last: true`, possibly with no entries). Each chunk is a lazy
//! append ([`AuditLog::append_lazy_with_payload`]): the client never waits
//! on it. The chunk's record carries the payload's SHA-256 and is a Merkle
//! leaf, so a payload altered, deleted or cut short is detected by verify,
//! and replay checks it again. If Sluice dies mid-session, the entries not
//! yet flushed (at most one chunk's worth) are lost and the recording has no
//! `last` chunk; what was flushed stays.

use crate::session::Session;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_audit::AuditLog;
use sluice_model::{AuditEvent, RecordingChunk};
use std::io::Write;

/// Entries per chunk before it is flushed.
pub const CHUNK_ENTRIES: u32 = 256;
/// Payload bytes per chunk before it is flushed.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Per-statement limits of what a recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
}

/// Rows kept and omitted for one result, against [`RecordingLimits`].
/// Once full, every later row costs one branch and one increment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RowCap {
    kept_rows: u64,
    kept_bytes: u64,
    omitted: u64,
}

impl RowCap {
    /// Whether a row of `bytes` bytes is stored; if not, it is counted.
    pub fn admit(&mut self, limits: RecordingLimits, bytes: u64) -> bool {
        if self.omitted == 0 && self.kept_rows < limits.max_rows && self.kept_bytes + bytes <= limits.max_bytes {
            self.kept_rows += 1;
            self.kept_bytes += bytes;
            true
        } else {
            self.omitted += 1;
            false
        }
    }

    /// Counts a row that is never stored (its request's values were clear).
    pub fn omit(&mut self) {
        self.omitted += 1;
    }

    /// Rows counted but not stored; resets the cap for the next result.
    pub fn take_omitted(&mut self) -> u64 {
        std::mem::take(self).omitted
    }
}

/// One value of a recorded row or parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedValue<'a> {
    Null,
    /// A text-format value as the client got it (not necessarily UTF-8).
    Text(&'a [u8]),
    /// A binary-format value.
    Binary(&'a [u8]),
    /// A value that is deliberately not recorded (a binary parameter).
    Withheld,
}

/// A statement as it will be recorded, captured when it was forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStatement {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub text: String,
    pub param_count: u32,
    /// Parameter values as the masking allows (see the module docs).
    pub params: Option<Vec<Option<RecordedParam>>>,
    pub params_sha256: Option<String>,
}

/// A parameter value in a [`RecordedStatement`] (`None` in the list: NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedParam {
    Text(String),
    /// A binary-format parameter, not recorded.
    Binary,
}

/// A session's recorder: gathers entries, flushes chunks. One per session,
/// owned by whoever writes the client's side of the exchange.
#[derive(Debug)]
pub struct Recorder {
    sink: ChunkSink,
    limits: RecordingLimits,
    /// The current chunk's payload.
    buf: Vec<u8>,
    entries: u32,
    chunk: u32,
}

/// Where chunks go: the session's audit log, or (in tests) a list.
#[derive(Debug)]
enum ChunkSink {
    Audit {
        audit: AuditLog,
        session_id: String,
        principal: String,
        connection: String,
    },
    #[cfg(test)]
    Memory(Vec<(RecordingChunk, Vec<u8>)>),
}

impl Recorder {
    /// The session's recorder, or `None` when `[recording] enabled = false`.
    pub fn for_session(session: &Session) -> Option<Recorder> {
        let config = &session.gateway().config().recording;
        if !config.enabled {
            return None;
        }
        let sink = ChunkSink::Audit {
            audit: session.gateway().audit().clone(),
            session_id: session.id().to_string(),
            principal: session.principal().subject.clone(),
            connection: session.connection().name.clone(),
        };
        let limits =
            RecordingLimits { max_rows: config.max_rows_per_statement, max_bytes: config.max_bytes_per_statement };
        Some(Recorder::with_sink(sink, limits))
    }

    fn with_sink(sink: ChunkSink, limits: RecordingLimits) -> Recorder {
        Recorder { sink, limits, buf: Vec::new(), entries: 0, chunk: 0 }
    }

    pub fn limits(&self) -> RecordingLimits {
        self.limits
    }

    pub fn statement(&mut self, statement: &RecordedStatement) {
        self.begin(Some(statement.at), "statement");
        self.field_str("request_id", &statement.request_id);
        self.field_str("text", &statement.text);
        let _ = write!(self.buf, ",\"param_count\":{}", statement.param_count);
        if let Some(params) = &statement.params {
            self.buf.extend_from_slice(b",\"params\":[");
            for (i, param) in params.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                let value = match param {
                    None => RecordedValue::Null,
                    Some(RecordedParam::Text(text)) => RecordedValue::Text(text.as_bytes()),
                    Some(RecordedParam::Binary) => RecordedValue::Withheld,
                };
                self.value(value);
            }
            self.buf.push(b']');
        }
        if let Some(hash) = &statement.params_sha256 {
            self.field_str("params_sha256", hash);
        }
        self.end();
    }

    /// A result's columns: each name, and whether it holds numbers.
    pub fn columns<'a>(&mut self, columns: impl IntoIterator<Item = (&'a str, bool)> + Clone) {
        self.begin(None, "columns");
        self.buf.extend_from_slice(b",\"names\":[");
        for (i, (name, _)) in columns.clone().into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            json_str(&mut self.buf, name);
        }
        self.buf.extend_from_slice(b"],\"numeric\":[");
        for (i, (_, numeric)) in columns.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(if numeric { b"true" } else { b"false" });
        }
        self.buf.push(b']');
        self.end();
    }

    /// One result row. Values are written straight into the chunk: no
    /// allocation beyond the chunk's own growth.
    pub fn row<'a>(&mut self, values: impl IntoIterator<Item = RecordedValue<'a>>) {
        self.begin(None, "row");
        self.buf.extend_from_slice(b",\"values\":[");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.value(value);
        }
        self.buf.push(b']');
        self.end();
    }

    pub fn rows_omitted(&mut self, rows: u64) {
        self.begin(None, "rows_omitted");
        let _ = write!(self.buf, ",\"rows\":{rows}");
        self.end();
    }

    pub fn complete(&mut self, tag: &str, rows: u64) {
        self.begin(Some(Utc::now()), "complete");
        self.field_str("tag", tag);
        let _ = write!(self.buf, ",\"rows\":{rows}");
        self.end();
    }

    /// A notice (`error: false`) or an error the client got.
    pub fn message(&mut self, error: bool, severity: &str, sqlstate: &str, message: &str) {
        self.begin(Some(Utc::now()), if error { "error" } else { "notice" });
        self.field_str("severity", severity);
        self.field_str("sqlstate", sqlstate);
        self.field_str("message", message);
        self.end();
    }

    /// Flushes what is left as the session's last chunk.
    pub fn finish(mut self) {
        self.flush(true);
    }

    fn begin(&mut self, at: Option<DateTime<Utc>>, kind: &str) {
        self.buf.push(b'{');
        if let Some(at) = at {
            // The RFC 3339 writer, not a strftime string parsed per entry.
            let _ = write!(self.buf, "\"t\":\"{}\",", at.to_rfc3339_opts(SecondsFormat::Micros, true));
        }
        self.buf.extend_from_slice(b"\"kind\":\"");
        self.buf.extend_from_slice(kind.as_bytes());
        self.buf.push(b'"');
    }

    fn end(&mut self) {
        self.buf.extend_from_slice(b"}\n");
        self.entries += 1;
        if self.entries >= CHUNK_ENTRIES || self.buf.len() >= CHUNK_BYTES {
            self.flush(false);
        }
    }

    fn field_str(&mut self, name: &str, value: &str) {
        self.buf.extend_from_slice(b",\"");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
        json_str(&mut self.buf, value);
    }

    fn value(&mut self, value: RecordedValue<'_>) {
        match value {
            RecordedValue::Null => self.buf.extend_from_slice(b"null"),
            RecordedValue::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => json_str(&mut self.buf, text),
                Err(_) => self.binary(bytes),
            },
            RecordedValue::Binary(bytes) => self.binary(bytes),
            RecordedValue::Withheld => self.buf.extend_from_slice(b"{\"binary\":null}"),
        }
    }

    fn binary(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.buf.extend_from_slice(b"{\"binary\":\"");
        self.buf.reserve(bytes.len() * 2 + 2);
        for byte in bytes {
            self.buf.push(HEX[usize::from(byte >> 4)]);
            self.buf.push(HEX[usize::from(byte & 15)]);
        }
        self.buf.extend_from_slice(b"\"}");
    }

    fn flush(&mut self, last: bool) {
        if self.entries == 0 && !last {
            return;
        }
        let payload = std::mem::take(&mut self.buf);
        let sha = hex::encode(Sha256::digest(&payload));
        let entries = std::mem::take(&mut self.entries);
        let chunk = self.chunk;
        self.chunk += 1;
        let record = |session_id: &str, principal: &str, connection: &str| RecordingChunk {
            session_id: session_id.to_string(),
            principal: principal.to_string(),
            connection: connection.to_string(),
            chunk,
            entries,
            last,
            payload_sha256: sha.clone(),
            payload_bytes: payload.len() as u64,
        };
        match &mut self.sink {
            ChunkSink::Audit { audit, session_id, principal, connection } => {
                let event = AuditEvent::RecordingChunk(record(session_id, principal, connection));
                audit.append_lazy_with_payload(event, payload);
            }
            #[cfg(test)]
            ChunkSink::Memory(chunks) => chunks.push((record("s", "p", "c"), payload)),
        }
    }
}

/// `text` as a JSON string, escaped, appended without allocating.
fn json_str(buf: &mut Vec<u8>, text: &str) {
    // Writing to a Vec cannot fail, and a &str always serialises.
    let _ = serde_json::to_writer(&mut *buf, text);
}

/// One entry of a recording, as read back ([`parse_payload`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordingEntry {
    Statement {
        t: DateTime<Utc>,
        request_id: String,
        text: String,
        #[serde(default)]
        param_count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<Vec<serde_json::Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params_sha256: Option<String>,
    },
    Columns {
        names: Vec<String>,
        #[serde(default)]
        numeric: Vec<bool>,
    },
    Row {
        values: Vec<serde_json::Value>,
    },
    RowsOmitted {
        rows: u64,
    },
    Complete {
        t: DateTime<Utc>,
        tag: String,
        rows: u64,
    },
    Notice {
        t: DateTime<Utc>,
        severity: String,
        sqlstate: String,
        message: String,
    },
    Error {
        t: DateTime<Utc>,
        severity: String,
        sqlstate: String,
        message: String,
    },
}

impl RecordingEntry {
    /// When the entry happened, for entries that say.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            RecordingEntry::Statement { t, .. }
            | RecordingEntry::Complete { t, .. }
            | RecordingEntry::Notice { t, .. }
            | RecordingEntry::Error { t, .. } => Some(*t),
            _ => None,
        }
    }
}

/// The entries of one chunk's payload; the error names the line.
pub fn parse_payload(payload: &[u8]) -> Result<Vec<RecordingEntry>, String> {
    payload
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorder(max_rows: u64, max_bytes: u64) -> Recorder {
        Recorder::with_sink(ChunkSink::Memory(Vec::new()), RecordingLimits { max_rows, max_bytes })
    }

    fn chunks(recorder: Recorder) -> Vec<(RecordingChunk, Vec<u8>)> {
        let mut recorder = recorder;
        recorder.flush(true);
        match recorder.sink {
            ChunkSink::Memory(chunks) => chunks,
            ChunkSink::Audit { .. } => unreachable!(),
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-11-26T12:00:01.234567Z".parse().unwrap()
    }

    #[test]
    fn every_entry_kind_is_one_json_line_and_reads_back() {
        let mut r = recorder(10, 1 << 20);
        r.statement(&RecordedStatement {
            at: at(),
            request_id: "s:1".into(),
            text: "SELECT \"a\"\n, $1".into(),
            param_count: 3,
            params: Some(vec![Some(RecordedParam::Text("[NAME]".into())), None, Some(RecordedParam::Binary)]),
            params_sha256: Some("ab".into()),
        });
        r.columns([("a", false), ("b\"c", true), ("d", false)]);
        r.row([RecordedValue::Text(b"x\ty"), RecordedValue::Null, RecordedValue::Binary(&[0, 255])]);
        r.row([RecordedValue::Text(&[0xff, 0x00]), RecordedValue::Text("é".as_bytes()), RecordedValue::Null]);
        r.rows_omitted(7);
        r.complete("SELECT 9", 9);
        r.message(false, "NOTICE", "00000", "hello");
        r.message(true, "ERROR", "42P01", "relation \"x\" does not exist");
        let chunks = chunks(r);
        assert_eq!(chunks.len(), 1);
        let (record, payload) = &chunks[0];
        assert_eq!((record.chunk, record.entries, record.last), (0, 8, true));
        assert_eq!(record.payload_sha256, hex::encode(Sha256::digest(payload)));
        assert_eq!(record.payload_bytes, payload.len() as u64);
        let text = std::str::from_utf8(payload).unwrap();
        assert_eq!(text.lines().count(), 8);
        assert!(text.starts_with(
            "{\"t\":\"2026-11-26T12:00:01.234567Z\",\"kind\":\"statement\",\"request_id\":\"s:1\",\"text\":\"SELECT \\\"a\\\"\\n, $1\""
        ));
        let entries = parse_payload(payload).unwrap();
        assert_eq!(
            entries[0],
            RecordingEntry::Statement {
                t: at(),
                request_id: "s:1".into(),
                text: "SELECT \"a\"\n, $1".into(),
                param_count: 3,
                params: Some(vec![json!("[NAME]"), json!(null), json!({"binary": null})]),
                params_sha256: Some("ab".into()),
            }
        );
        assert_eq!(
            entries[1],
            RecordingEntry::Columns {
                names: vec!["a".into(), "b\"c".into(), "d".into()],
                numeric: vec![false, true, false]
            }
        );
        assert_eq!(
            entries[2],
            RecordingEntry::Row { values: vec![json!("x\ty"), json!(null), json!({"binary": "00ff"})] }
        );
        assert_eq!(
            entries[3],
            RecordingEntry::Row { values: vec![json!({"binary": "ff00"}), json!("é"), json!(null)] }
        );
        assert_eq!(entries[4], RecordingEntry::RowsOmitted { rows: 7 });
        assert!(matches!(&entries[5], RecordingEntry::Complete { tag, rows: 9, .. } if tag == "SELECT 9"));
        assert!(matches!(&entries[6], RecordingEntry::Notice { message, .. } if message == "hello"));
        assert!(matches!(&entries[7], RecordingEntry::Error { sqlstate, .. } if sqlstate == "42P01"));
    }

    #[test]
    fn chunks_flush_by_entries_and_bytes_are_numbered_and_end_with_last() {
        let mut r = recorder(u64::MAX, u64::MAX);
        for _ in 0..(CHUNK_ENTRIES * 2 + 10) {
            r.row([RecordedValue::Text(b"v")]);
        }
        // One entry larger than a chunk is flushed alone.
        let big = vec![b'x'; CHUNK_BYTES];
        r.row([RecordedValue::Text(&big)]);
        let chunks = chunks(r);
        let summary: Vec<(u32, u32, bool)> = chunks.iter().map(|(c, _)| (c.chunk, c.entries, c.last)).collect();
        assert_eq!(summary, [(0, CHUNK_ENTRIES, false), (1, CHUNK_ENTRIES, false), (2, 11, false), (3, 0, true)]);
        for (record, payload) in &chunks {
            assert_eq!(record.payload_sha256, hex::encode(Sha256::digest(payload)));
            assert_eq!(parse_payload(payload).unwrap().len() as u32, record.entries);
        }
    }

    #[test]
    fn an_empty_session_still_has_a_last_chunk() {
        let chunks = chunks(recorder(1, 1));
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].0.chunk, chunks[0].0.entries, chunks[0].0.last), (0, 0, true));
        assert!(chunks[0].1.is_empty());
    }

    #[test]
    fn the_row_cap_counts_rows_over_either_limit() {
        let limits = RecordingLimits { max_rows: 2, max_bytes: 100 };
        let mut cap = RowCap::default();
        assert_eq!([10, 10, 10, 10].map(|n| cap.admit(limits, n)), [true, true, false, false]);
        assert_eq!(cap.take_omitted(), 2);
        // Reset for the next result; a row over the byte limit stops keeping.
        assert_eq!([60, 60, 1].map(|n| cap.admit(limits, n)), [true, false, false]);
        assert_eq!(cap.take_omitted(), 2);
        assert_eq!(cap.take_omitted(), 0);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let error = parse_payload(b"{\"kind\":\"rows_omitted\",\"rows\":1}\n{nope}\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
    }
}
