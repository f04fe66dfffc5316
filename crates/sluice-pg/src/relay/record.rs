//! The relay's side of session recording: PostgreSQL messages, as written
//! to the client, turned into `Recorder` entries.
//!
//! Owns: capturing a request's statement (text, parameters as its masker
//! allows) when it is forwarded or refused, and reading back what the
//! response side wrote for the client (RowDescription, DataRow,
//! CommandComplete, NoticeResponse, ErrorResponse).
//! Does not: write to the client or change a byte of what it gets; decide
//! chunking or the payload format (sluice-pipeline's `recording`).

use super::{Columns, PgRequest};
use crate::codec::{self, DataRowValues, ErrorFields};
use sluice_mask::{ClassCounts, Masker};
use sluice_pipeline::recording::{RecordedParam, RecordedStatement, RecordedValue, Recorder, RowCap};
use std::sync::Arc;

/// A statement as recorded, captured when it is forwarded or refused.
pub(super) type Statement = RecordedStatement;

/// What the recording still needs of one request, kept in its `Tracked`.
/// Its statement is recorded when the request's answer reaches the head of
/// the queue (so a transcript reads statement, then its result, also for a
/// pipelined batch).
#[derive(Debug)]
pub(super) struct TrackedRecording {
    /// Recorded (and taken) when the request's answer reaches the head of
    /// the queue, so a transcript reads statement, then its result.
    statement: Option<RecordedStatement>,
    /// Rows kept and omitted of the current result.
    cap: RowCap,
    /// Which columns of the current result are in binary format.
    binary: Vec<bool>,
    /// The current result's columns are recorded.
    columns: bool,
    /// The request's profile keeps values clear (`unmasked`): its rows are
    /// counted, never stored, so a recording never holds clear PHI.
    clear: bool,
}

impl TrackedRecording {
    /// `clear`: the request has no masker (its profile keeps values clear).
    pub(super) fn new(statement: RecordedStatement, clear: bool) -> Box<TrackedRecording> {
        Box::new(TrackedRecording {
            statement: Some(statement),
            cap: RowCap::default(),
            binary: Vec::new(),
            columns: false,
            clear,
        })
    }

    /// Records the statement, once, before anything of its answer.
    pub(super) fn start(&mut self, recorder: &mut Recorder) {
        if let Some(statement) = self.statement.take() {
            recorder.statement(&statement);
        }
    }

    /// A RowDescription the client got (simple Query): a new result.
    pub(super) fn row_description(&mut self, recorder: &mut Recorder, body: &[u8]) {
        let Ok(fields) = codec::decode_row_description(body) else { return };
        recorder.columns(fields.iter().map(|f| (f.name.as_str(), is_numeric(f.type_oid))));
        self.binary = fields.iter().map(|f| f.format == 1).collect();
        self.columns = true;
        self.cap = RowCap::default();
    }

    /// An Execute's columns come from its portal's (or statement's)
    /// description, recorded before its first row or its completion.
    fn execute_columns(&mut self, recorder: &mut Recorder, columns: &Columns) {
        if self.columns {
            return;
        }
        self.columns = true;
        let Columns::Portal { portal, statement, formats } = columns else { return };
        let lock = |slot: &super::DescriptionSlot| slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (description, formats) = match lock(portal) {
            Some(description) => (Some(description), None),
            None => (lock(statement), Some(formats)),
        };
        let Some(fields) =
            description.as_ref().and_then(|d| d.get(5..)).and_then(|body| codec::decode_row_description(body).ok())
        else {
            return;
        };
        if fields.is_empty() {
            return;
        }
        recorder.columns(fields.iter().map(|f| (f.name.as_str(), is_numeric(f.type_oid))));
        self.binary = fields
            .iter()
            .enumerate()
            .map(|(i, field)| match formats.map(|f| &f[..]) {
                None => field.format == 1,
                Some([]) => false,
                Some([one]) => *one == 1,
                Some(many) => many.get(i) == Some(&1),
            })
            .collect();
    }

    /// A DataRow as written to the client (`row`: the whole message), kept
    /// while the statement's cap allows; past it, only counted.
    pub(super) fn row(&mut self, recorder: &mut Recorder, columns: &Columns, row: &[u8]) {
        if self.clear {
            self.execute_columns(recorder, columns);
            self.cap.omit();
            return;
        }
        if !self.cap.admit(recorder.limits(), row.len() as u64) {
            return;
        }
        self.execute_columns(recorder, columns);
        let Some(Ok((_, values))) = row.get(5..).map(DataRowValues::new) else { return };
        let binary = &self.binary;
        recorder.row(values.enumerate().map(|(i, value)| match value {
            Ok(Some(bytes)) if binary.get(i) == Some(&true) => RecordedValue::Binary(bytes),
            Ok(Some(bytes)) => RecordedValue::Text(bytes),
            Ok(None) | Err(_) => RecordedValue::Null,
        }));
    }

    /// Rows over the cap, counted once where the result ends.
    fn omitted(&mut self, recorder: &mut Recorder) {
        let omitted = self.cap.take_omitted();
        if omitted > 0 {
            recorder.rows_omitted(omitted);
        }
    }

    /// A CommandComplete the client got.
    pub(super) fn complete(&mut self, recorder: &mut Recorder, columns: &Columns, tag: &str, rows: u64) {
        if matches!(columns, Columns::Portal { .. }) && tag.starts_with("SELECT") {
            self.execute_columns(recorder, columns);
        }
        self.omitted(recorder);
        recorder.complete(tag, rows);
        self.columns = false;
    }

    /// The result ended without a completion (an error, a suspended portal).
    pub(super) fn interrupted(&mut self, recorder: &mut Recorder) {
        self.omitted(recorder);
    }
}

/// Whether a column of this type holds numbers: int2, int4, int8, oid,
/// float4, float8, money, numeric (psql aligns them right).
fn is_numeric(type_oid: u32) -> bool {
    matches!(type_oid, 20 | 21 | 23 | 26 | 700 | 701 | 790 | 1700)
}

/// The statement of a request as it will be recorded. Parameters in text
/// format go through the request's masker; binary ones, and all of a
/// request without a masker (its profile keeps values clear), are not
/// recorded (only their hash).
pub(super) fn statement(request: &PgRequest, request_id: &str, masker: Option<&Arc<Masker>>) -> RecordedStatement {
    let at = chrono::Utc::now();
    match request {
        PgRequest::Query { sql, .. } => RecordedStatement {
            at,
            request_id: request_id.to_string(),
            text: sql.clone(),
            param_count: 0,
            params: None,
            params_sha256: None,
        },
        PgRequest::Execute { portal, .. } => RecordedStatement {
            at,
            request_id: request_id.to_string(),
            text: portal.sql.to_string(),
            param_count: portal.param_count,
            params: masker.and_then(|masker| portal.params.as_deref().and_then(|raw| bind_params(raw, masker))),
            params_sha256: portal.params_sha256.clone(),
        },
    }
}

/// The statement of a refused request: it has no masking profile, so its
/// parameter values are not recorded (only their hash).
pub(super) fn refused_statement(request: &PgRequest, request_id: &str) -> RecordedStatement {
    let mut statement = statement(request, request_id, None);
    statement.params = None;
    statement
}

/// Bind's parameters (format codes, then values) as recorded; `None` if
/// they cannot be read.
fn bind_params(mut raw: &[u8], masker: &Masker) -> Option<Vec<Option<RecordedParam>>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = (raw.get(..n)?, raw.get(n..)?);
        raw = rest;
        Some(head)
    };
    let u16_of = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let format_count = usize::from(u16_of(take(2)?));
    let formats: Vec<u16> = (0..format_count).map(|_| take(2).map(u16_of)).collect::<Option<_>>()?;
    let value_count = usize::from(u16_of(take(2)?));
    let mut counts = ClassCounts::default();
    let mut params = Vec::with_capacity(value_count);
    for i in 0..value_count {
        let len = i32::from_be_bytes(take(4)?.try_into().ok()?);
        if len < 0 {
            params.push(None);
            continue;
        }
        let value = take(len as usize)?;
        let format = match formats.as_slice() {
            [] => 0,
            [one] => *one,
            many => *many.get(i)?,
        };
        let param = match (format, std::str::from_utf8(value)) {
            (0, Ok(text)) => RecordedParam::Text(masker.mask(text, &mut counts).into_owned()),
            _ => RecordedParam::Binary,
        };
        params.push(Some(param));
    }
    Some(params)
}

/// Ends the session's recording, with the session's farewell error if any.
pub(super) fn finish(mut recorder: Recorder, farewell: &[u8]) {
    messages(&mut recorder, farewell);
    recorder.finish();
}

/// Records every NoticeResponse and ErrorResponse among `messages`
/// (whole messages, as written to the client).
pub(super) fn messages(recorder: &mut Recorder, mut messages: &[u8]) {
    while messages.len() >= 5 {
        let tag = messages[0];
        let len = u32::from_be_bytes([messages[1], messages[2], messages[3], messages[4]]) as usize;
        let Some(body) = messages.get(5..1 + len) else { return };
        if matches!(tag, b'E' | b'N') {
            message(recorder, tag, body);
        }
        messages = &messages[1 + len..];
    }
}

/// Records one NoticeResponse (`N`) or ErrorResponse (`E`) body.
pub(super) fn message(recorder: &mut Recorder, tag: u8, body: &[u8]) {
    let fields = ErrorFields::decode(body);
    recorder.message(tag == b'E', fields.severity, fields.code, fields.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_parameters_are_read_with_their_formats() {
        let masker = Masker::safe_harbor();
        // Two format codes (text, binary), three values: 'Ava Okafor', NULL, \x01.
        let mut raw = vec![0, 2, 0, 0, 0, 1, 0, 3];
        raw.extend_from_slice(&10i32.to_be_bytes());
        raw.extend_from_slice(b"Ava Okafor");
        raw.extend_from_slice(&(-1i32).to_be_bytes());
        raw.extend_from_slice(&1i32.to_be_bytes());
        raw.push(1);
        // Two format codes for three values is malformed for the third.
        assert_eq!(bind_params(&raw, &masker), None);
        raw[1] = 1; // one code for all: text
        raw.drain(4..6);
        let masked = bind_params(&raw, &masker).unwrap();
        assert_eq!(masked.len(), 3);
        assert_ne!(masked[0], Some(RecordedParam::Text("Ava Okafor".into())), "a name is masked: {masked:?}");
        assert_eq!(masked[1..], [None, Some(RecordedParam::Text("\u{1}".into()))]);
        assert_eq!(bind_params(&raw[..raw.len() - 1], &masker), None, "truncated");
    }
}
