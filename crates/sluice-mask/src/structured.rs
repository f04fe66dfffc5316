//! Structured documents: JSON (database rows serialised as objects, FHIR
//! resources) read key by key, and HL7 v2 messages read field by field.
//!
//! Owns: the JSON key path → column rule (including FHIR's `system`/`url`
//! hints for generic `value` keys) and the HL7 v2 field map.

use crate::PhiClass;
use crate::column::{ColumnRule, classify_name, classify_name_cached};
use crate::detect::{Detector, Span};

/// An open JSON object or array.
#[derive(Debug, Clone, Copy)]
struct Frame {
    object: bool,
    /// Object: the key read last. Array: the key the array is the value of.
    key: Option<(usize, usize)>,
    /// The key this container is the value of.
    parent_key: Option<(usize, usize)>,
    /// A class announced by a sibling (`"system": "phone"`, `"url": ".../health-plan"`).
    hint: Option<PhiClass>,
    expect_key: bool,
}

/// Keys whose value names the meaning of a sibling `value`.
const HINT_KEYS: &[&str] = &["system", "url", "code", "type", "text"];
/// Keys that carry the value described by the hint or the parent key.
const GENERIC_KEYS: &[&str] = &["value", "text", "display", "valueString", "valueCode", "valueIdentifier", "div"];

/// Reads `text` as JSON, best effort: malformed input is read as far as it
/// makes sense and never panics.
pub(crate) fn scan_json(detector: &Detector, text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                let parent_key = stack.last().and_then(|f| f.key);
                let object = bytes[i] == b'{';
                let key = if object { None } else { parent_key };
                stack.push(Frame { object, key, parent_key, hint: None, expect_key: object });
                i += 1;
            }
            b'}' | b']' => {
                if let Some(done) = stack.pop() {
                    let from_type = done.parent_key.is_some_and(|k| matches_any(&text[k.0..k.1], &["type", "coding"]));
                    if let (Some(hint), true, Some(top)) = (done.hint, from_type, stack.last_mut()) {
                        top.hint = Some(hint);
                    }
                }
                i += 1;
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.expect_key = top.object;
                }
                i += 1;
            }
            b':' => {
                if let Some(top) = stack.last_mut() {
                    top.expect_key = false;
                }
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                let end = string_end(bytes, start);
                match stack.last_mut() {
                    Some(top) if top.object && top.expect_key => top.key = Some((start, end)),
                    _ => value(detector, text, &mut stack, start, end, out),
                }
                i = end + 1;
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b',' | b'}' | b']' | b':' | b'"')
                    && !bytes[i].is_ascii_whitespace()
                {
                    i += 1;
                }
                let scalar = &text[start..i];
                if !matches!(scalar, "null" | "true" | "false") {
                    value(detector, text, &mut stack, start, i, out);
                }
            }
        }
    }
}

/// The end of a JSON string whose contents start at `start`: the index of
/// the closing quote, or the end of the text.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn value(detector: &Detector, text: &str, stack: &mut [Frame], start: usize, end: usize, out: &mut Vec<Span>) {
    let end = end.min(text.len());
    let raw = &text[start..end];
    let Some(top) = stack.last().copied() else {
        detector.free_text(raw, start, out);
        return;
    };
    let key = top.key.map(|(s, e)| &text[s..e]);
    let rule = match key {
        Some(k) if top.object && matches_any(k, HINT_KEYS) && top.hint.is_none() => {
            if let Some(hint) = hint_from(raw)
                && let Some(frame) = stack.last_mut()
            {
                frame.hint = Some(hint);
            }
            if matches_any(k, GENERIC_KEYS) { generic_rule(text, stack, top) } else { ColumnRule::NotPhi }
        }
        Some(k) if matches_any(k, GENERIC_KEYS) => generic_rule(text, stack, top),
        Some(k) => detector.columns().classify(None, k, None),
        None => ColumnRule::FreeText,
    };
    detector.detect_value(rule, raw, start, out);
}

/// The rule for a generic key (`value`, `text`, `display`): the sibling
/// hint, else what the enclosing key says, else free text.
fn generic_rule(text: &str, stack: &[Frame], top: Frame) -> ColumnRule {
    if let Some(hint) = top.hint {
        return ColumnRule::Phi(hint);
    }
    let enclosing = if top.object { top.parent_key } else { stack.iter().rev().nth(1).and_then(|f| f.parent_key) };
    match enclosing.map(|(s, e)| classify_name_cached(&text[s..e])) {
        Some(ColumnRule::Phi(class)) => ColumnRule::Phi(class),
        _ => ColumnRule::FreeText,
    }
}

/// The class a hint value announces: `"phone"`, `"MRN"`,
/// `"http://hospital.example.org/mrn"`, or the US SSN OID.
fn hint_from(value: &str) -> Option<PhiClass> {
    if value.ends_with("2.16.840.1.113883.4.1") {
        return Some(PhiClass::Ssn);
    }
    let last = value.trim_end_matches('/').rsplit(['/', ':', '#']).next().unwrap_or(value);
    match classify_name(last) {
        ColumnRule::Phi(class) => Some(class),
        _ => None,
    }
}

fn matches_any(key: &str, keys: &[&str]) -> bool {
    keys.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// An HL7 v2 message: starts with a segment name and `|`, and has an MSH or
/// PID segment.
pub(crate) fn looks_like_hl7(text: &str) -> bool {
    text.starts_with("MSH|") || text.contains("\rPID|") || text.contains("\nPID|") || text.starts_with("PID|")
}

/// How one HL7 field is masked.
#[derive(Debug, Clone, Copy)]
enum Hl7Field {
    /// Every component is this class.
    All(PhiClass),
    /// Only the first component (the id of an `id^^^authority` field).
    First(PhiClass),
    /// An XAD address: street, other, city, state, ZIP.
    Address,
    /// An XCN person: id, family, given, middle.
    Person,
}

/// The identifying fields of the segments that carry a person (HL7 v2.5).
fn hl7_field(segment: &str, index: usize) -> Option<Hl7Field> {
    use Hl7Field::*;
    use PhiClass as C;
    Some(match (segment, index) {
        ("PID", 2..=4) => First(C::Mrn),
        ("PID", 5 | 6 | 9) | ("NK1", 2) | ("GT1", 3) | ("IN1", 16) => All(C::Name),
        ("PID", 7 | 29) | ("GT1", 8) | ("IN1", 18) => First(C::Date),
        ("PID", 11) | ("NK1", 4) | ("GT1", 5) | ("IN1", 19) => Address,
        ("PID", 13 | 14) | ("NK1", 5 | 6) | ("GT1", 6 | 7) => All(C::Phone),
        ("PID", 18) => First(C::Account),
        ("PID", 19) | ("GT1", 12) => All(C::Ssn),
        ("PID", 20) => First(C::License),
        // IN1-36 is the policy number; some senders shift it one field right.
        ("IN1", 36 | 37 | 49) => First(C::HealthPlanId),
        ("PV1", 7 | 8 | 9 | 17) | ("ORC", 12) | ("OBR", 16) => Person,
        _ => return None,
    })
}

/// Reads an HL7 v2 message field by field; free-text fields (OBX-5,
/// NTE-3) go to the free-text recognisers, other fields not in the map
/// are left alone (facility names, codes, control ids).
pub(crate) fn scan_hl7(detector: &Detector, text: &str, out: &mut Vec<Span>) {
    let mut seg_start = 0;
    for segment in text.split(['\r', '\n']) {
        let base = seg_start;
        seg_start += segment.len() + 1;
        let name = segment.get(..3).unwrap_or("");
        let mut field_start = base;
        for (index, field) in segment.split('|').enumerate() {
            let start = field_start;
            field_start += field.len() + 1;
            if field.is_empty() {
                continue;
            }
            match (name, index) {
                ("OBX", 5) | ("NTE", 3) => detector.free_text(field, start, out),
                _ => {
                    if let Some(kind) = hl7_field(name, index) {
                        hl7_components(kind, field, start, out);
                    }
                }
            }
        }
    }
}

fn hl7_components(kind: Hl7Field, field: &str, start: usize, out: &mut Vec<Span>) {
    let mut offset = start;
    for repetition in field.split('~') {
        let rep_start = offset;
        offset += repetition.len() + 1;
        let mut comp_start = rep_start;
        for (c, component) in repetition.split('^').enumerate() {
            let s = comp_start;
            comp_start += component.len() + 1;
            let class = match kind {
                Hl7Field::All(class) => Some(class),
                Hl7Field::First(class) => (c == 0).then_some(class),
                Hl7Field::Address => match c {
                    0 | 1 => Some(PhiClass::Address),
                    2 => Some(PhiClass::City),
                    4 => Some(PhiClass::Zip),
                    _ => None,
                },
                Hl7Field::Person => match c {
                    0 => Some(PhiClass::License),
                    1..=3 => Some(PhiClass::Name),
                    _ => None,
                },
            };
            if let Some(class) = class
                && !component.is_empty()
            {
                out.push(Span { start: s, end: s + component.len(), class });
            }
        }
    }
}
