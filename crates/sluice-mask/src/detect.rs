//! The detector: finds PHI spans in a text or in one column value, and
//! normalises them (sorted, overlaps merged).
//!
//! Owns: choosing the reader for a text (JSON, HL7 v2 or free text) and the
//! column-value rule (whole value unless a recogniser narrows it).

use crate::column::{ColumnMap, ColumnRule};
use crate::freetext::FreeText;
use crate::{PhiClass, names, structured};

/// A stretch of PHI: byte offsets into the text it was found in, `end`
/// exclusive, both on UTF-8 character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub class: PhiClass,
}

/// Finds PHI. Build one and share it: construction compiles the patterns
/// and loads the word lists (a few milliseconds); detection is `&self`.
#[derive(Debug)]
pub struct Detector {
    free: FreeText,
    columns: ColumnMap,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

impl Detector {
    /// The built-in recognisers and column rules.
    pub fn new() -> Detector {
        Detector::with_columns(ColumnMap::new())
    }

    /// The built-in recognisers with an operator's column overrides.
    pub fn with_columns(columns: ColumnMap) -> Detector {
        Detector { free: FreeText::new(), columns }
    }

    pub fn columns(&self) -> &ColumnMap {
        &self.columns
    }

    /// The spans of PHI in a document: a JSON object or array is read key
    /// by key with column semantics, an HL7 v2 message field by field, and
    /// anything else as free text.
    pub fn detect(&self, text: &str) -> Vec<Span> {
        let mut spans = Vec::new();
        self.detect_into(text, &mut spans);
        spans
    }

    /// [`Detector::detect`] into a caller's buffer (cleared first), so a
    /// loop over clean texts allocates nothing.
    pub fn detect_into(&self, text: &str, out: &mut Vec<Span>) {
        out.clear();
        let head = text.trim_start();
        if head.starts_with('{') || head.starts_with('[') {
            structured::scan_json(self, text, out);
        } else if structured::looks_like_hl7(text) {
            structured::scan_hl7(self, text, out);
        } else {
            self.free_text(text, 0, out);
        }
        normalise(out);
    }

    /// The spans of PHI in one column value under `rule` (see
    /// [`ColumnMap::classify`]), appended to `out` with `base` added.
    pub fn detect_value(&self, rule: ColumnRule, value: &str, base: usize, out: &mut Vec<Span>) {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("null") {
            return;
        }
        let lead = value.len() - value.trim_start().len();
        let whole = Span { start: base + lead, end: base + lead + trimmed.len(), class: PhiClass::Name };
        match rule {
            ColumnRule::NotPhi => {}
            ColumnRule::FreeText => self.free_text(value, base, out),
            ColumnRule::Phi(PhiClass::Age90Plus) => {
                let age = trimmed.trim_end_matches(|c: char| !c.is_ascii_digit());
                if age.parse::<u32>().is_ok_and(|a| a >= 90) || trimmed.starts_with("90+") {
                    out.push(Span { class: PhiClass::Age90Plus, ..whole });
                }
            }
            ColumnRule::Phi(PhiClass::Date) if iso_date_prefix(trimmed) => {
                // The common case, `2022-01-06` or `2022-01-06 13:46:07`: the
                // date is masked, the time of day is not an identifier.
                out.push(Span { end: whole.start + 10, class: PhiClass::Date, ..whole });
            }
            ColumnRule::Phi(PhiClass::Date) => {
                let before = out.len();
                self.free.scan(value, base, out);
                out.retain_from(before, |s| s.class == PhiClass::Date);
                if out.len() == before {
                    out.push(Span { class: PhiClass::Date, ..whole });
                }
            }
            ColumnRule::Phi(class) => out.push(Span { class, ..whole }),
        }
    }

    /// Free text: the pattern recognisers, then names.
    pub(crate) fn free_text(&self, text: &str, base: usize, out: &mut Vec<Span>) {
        self.free.scan(text, base, out);
        names::scan(text, base, out);
    }
}

/// `YYYY-MM-DD` alone or followed by a time (`T` or space).
fn iso_date_prefix(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && (b.len() == 10 || matches!(b[10], b'T' | b' '))
}

/// `Vec::retain` over the elements from `from` on.
trait RetainFrom<T> {
    fn retain_from(&mut self, from: usize, keep: impl FnMut(&T) -> bool);
}

impl<T> RetainFrom<T> for Vec<T> {
    fn retain_from(&mut self, from: usize, mut keep: impl FnMut(&T) -> bool) {
        let mut i = from;
        while i < self.len() {
            if keep(&self[i]) {
                i += 1;
            } else {
                self.remove(i);
            }
        }
    }
}

/// Sorts spans and merges overlapping ones (the longer one names the
/// merged span).
pub(crate) fn normalise(spans: &mut Vec<Span>) {
    if spans.len() < 2 {
        spans.retain(|s| s.start < s.end);
        return;
    }
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans.drain(..).filter(|s| s.start < s.end) {
        match merged.last_mut() {
            Some(last) if s.start < last.end => {
                if s.end > last.end {
                    if s.end - s.start > last.end - last.start {
                        last.class = s.class;
                    }
                    last.end = s.end;
                }
            }
            _ => merged.push(s),
        }
    }
    *spans = merged;
}
