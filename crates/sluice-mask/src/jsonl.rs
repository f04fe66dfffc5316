//! The JSONL driver behind `sluice mask`: one record in, one line out, in
//! order.
//!
//! Owns: reading `{"id", "text"}` records (other fields ignored), writing
//! span or masked lines, the plain-text mode, and throughput statistics.
//!
//! A line that is not a JSON object with a string `text` stops the run with
//! [`MaskError::BadRecord`] naming its line number: the lines before it
//! are written, nothing after it is. Failing is deliberate: a pipeline that
//! skipped a bad record would pass it on unmasked or lose it silently.
//! Blank lines are skipped.

use crate::{ClassCounts, MaskError, Masker, Span};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// What each output line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `{"id", "spans": [{"start", "end", "type"}], "offset_unit": "utf8"}`.
    Spans,
    /// `{"id", "masked"}`: the text with each span rewritten by the profile.
    Masked,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub records: u64,
    /// Bytes of `text` read (not of JSON framing).
    pub text_bytes: u64,
    /// Spans found (in `Spans` mode) or rewritten (in `Masked` mode), per class.
    pub counts: ClassCounts,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    id: serde_json::Value,
    text: String,
}

#[derive(Serialize)]
struct SpanOut {
    start: usize,
    end: usize,
    #[serde(rename = "type")]
    class: &'static str,
}

#[derive(Serialize)]
struct SpansLine<'a> {
    id: &'a serde_json::Value,
    spans: Vec<SpanOut>,
    offset_unit: &'static str,
}

#[derive(Serialize)]
struct MaskedLine<'a> {
    id: &'a serde_json::Value,
    masked: &'a str,
}

/// Reads JSONL records from `input` and writes one line per record to
/// `output`.
pub fn run(input: impl BufRead, mut output: impl Write, masker: &Masker, mode: Output) -> Result<Stats, MaskError> {
    let mut stats = Stats::default();
    let mut spans: Vec<Span> = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|e| MaskError::Read { line: line_no, source: e })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(&line).map_err(|e| MaskError::BadRecord { line: line_no, reason: e.to_string() })?;
        stats.records += 1;
        stats.text_bytes += record.text.len() as u64;
        match mode {
            Output::Spans => {
                masker.detector().detect_into(&record.text, &mut spans);
                let out: Vec<SpanOut> = spans
                    .iter()
                    .filter(|s| masker.profile().strategy(s.class) != crate::Strategy::Keep)
                    .map(|s| {
                        stats.counts.add(s.class);
                        SpanOut { start: s.start, end: s.end, class: s.class.as_str() }
                    })
                    .collect();
                let line = SpansLine { id: &record.id, spans: out, offset_unit: "utf8" };
                serde_json::to_writer(&mut output, &line).map_err(MaskError::Write)?;
            }
            Output::Masked => {
                let masked = masker.mask(&record.text, &mut stats.counts);
                let line = MaskedLine { id: &record.id, masked: &masked };
                serde_json::to_writer(&mut output, &line).map_err(MaskError::Write)?;
            }
        }
        output.write_all(b"\n").map_err(MaskError::Io)?;
    }
    output.flush().map_err(MaskError::Io)?;
    Ok(stats)
}

/// Plain text: each input line is masked as free text on its own and
/// written as one line.
pub fn run_text(input: impl BufRead, mut output: impl Write, masker: &Masker) -> Result<Stats, MaskError> {
    let mut stats = Stats::default();
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|e| MaskError::Read { line: index + 1, source: e })?;
        stats.records += 1;
        stats.text_bytes += line.len() as u64;
        let masked = masker.mask(&line, &mut stats.counts);
        output.write_all(masked.as_bytes()).map_err(MaskError::Io)?;
        output.write_all(b"\n").map_err(MaskError::Io)?;
    }
    output.flush().map_err(MaskError::Io)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans_of(input: &str) -> Result<String, MaskError> {
        let mut out = Vec::new();
        run(input.as_bytes(), &mut out, &Masker::safe_harbor(), Output::Spans)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn one_line_per_record_in_order_with_byte_offsets() {
        let input = "{\"id\": 1, \"text\": \"naïve café: SSN 123-45-6789\", \"kind\": \"x\"}\n\n{\"id\": \"b\", \"text\": \"clean\"}\n";
        let out = spans_of(input).unwrap();
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[0]["offset_unit"], "utf8");
        let span = &lines[0]["spans"][0];
        let at = "naïve café: SSN ".len() as u64;
        assert_eq!((span["start"].as_u64(), span["end"].as_u64()), (Some(at), Some(at + 11)));
        assert_eq!(span["type"], "SSN");
        assert_eq!(lines[1]["spans"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn bad_line_names_its_number() {
        let err = spans_of("{\"id\": 1, \"text\": \"a\"}\n{\"id\": 2}\n").unwrap_err();
        assert!(matches!(err, MaskError::BadRecord { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("line 2"));
    }

    #[test]
    fn masked_mode_keeps_other_text() {
        let mut out = Vec::new();
        let input = "{\"id\": 7, \"text\": \"call 617-555-0123 now\"}\n";
        let stats = run(input.as_bytes(), &mut out, &Masker::safe_harbor(), Output::Masked).unwrap();
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["masked"], "call [PHONE] now");
        assert_eq!(stats.counts.get(crate::PhiClass::Phone), 1);
    }
}
