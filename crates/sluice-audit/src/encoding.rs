//! Canonical record encoding and the hash chain.
//!
//! Owns: the exact bytes of a record body, the chain hash over them, the
//! record type handed to readers, and a fast index-only view of a body used
//! by verify.
//! Does not: touch a store. Everything here is pure and deterministic, so an
//! auditor can re-implement it from the crate documentation.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_model::AuditEvent;

use crate::AuditError;

/// The `prev_hash` of the first record: 32 zero bytes, in hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record as stored: its place in the chain, its time, its event and the
/// two hashes that link it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the writer sequenced the record (microsecond precision, UTC).
    pub time: DateTime<Utc>,
    pub event: AuditEvent,
    /// `hash` of record `seq - 1` (or [`GENESIS_HASH`]), lowercase hex.
    pub prev_hash: String,
    /// `hex(SHA-256(prev_hash as 32 raw bytes ‖ body))`.
    pub hash: String,
}

/// The body as serialised: field order is the canonical order.
#[derive(Serialize)]
struct CanonicalBody<'a> {
    seq: u64,
    time: &'a str,
    event: &'a AuditEvent,
}

/// The body as read back in full (for search).
#[derive(Deserialize)]
struct OwnedBody {
    seq: u64,
    time: String,
    event: AuditEvent,
}

/// `time` rounded down to whole microseconds, the precision the log keeps.
pub fn truncate_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// RFC 3339, UTC, always six fractional digits, `Z` suffix:
/// `2026-11-05T09:30:00.000250Z`. Sorts as text in time order.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, AuditError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| AuditError::Corrupt(format!("bad record time {text:?}: {e}")))
}

/// The canonical body of a record: compact JSON of `{seq, time, event}` in
/// that order, `time` as [`format_time`] (after [`truncate_time`]).
pub fn encode_body(seq: u64, time: DateTime<Utc>, event: &AuditEvent) -> String {
    let time = format_time(truncate_time(time));
    // Serialising plain structs of strings, integers and bools cannot fail.
    serde_json::to_string(&CanonicalBody { seq, time: &time, event }).unwrap_or_default()
}

/// The compact JSON of an event, computed by the caller of `append` so the
/// writer only splices it in.
pub(crate) fn encode_event(event: &AuditEvent) -> String {
    serde_json::to_string(event).unwrap_or_default()
}

/// Same bytes as [`encode_body`], from an event already encoded by
/// [`encode_event`] and a time already formatted by [`format_time`].
pub(crate) fn splice_body(seq: u64, time: &str, event_json: &str) -> String {
    let mut body = String::with_capacity(event_json.len() + 64);
    body.push_str("{\"seq\":");
    body.push_str(&seq.to_string());
    body.push_str(",\"time\":\"");
    body.push_str(time);
    body.push_str("\",\"event\":");
    body.push_str(event_json);
    body.push('}');
    body
}

/// Decodes a stored body back into its parts.
pub fn decode_body(body: &str) -> Result<(u64, DateTime<Utc>, AuditEvent), AuditError> {
    let owned: OwnedBody = serde_json::from_str(body)
        .map_err(|e| AuditError::Corrupt(format!("record body is not a valid event: {e}")))?;
    Ok((owned.seq, parse_time(&owned.time)?, owned.event))
}

/// The value of each hex digit (either case); `0xff` for any other byte.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        table[b"0123456789ABCDEF"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes a stored hash: 64 hex digits (either case) into the 32 bytes
/// they spell, `None` for anything else. By table: verify decodes every
/// record's hash, and `hex` took twice as long.
pub(crate) fn decode_hash(hash: &str) -> Option<[u8; 32]> {
    let digits: &[u8; 64] = hash.as_bytes().try_into().ok()?;
    let mut raw = [0u8; 32];
    let mut invalid = 0;
    for (byte, pair) in raw.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (HEX_DIGITS[usize::from(pair[0])], HEX_DIGITS[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = (high << 4) | low;
    }
    (invalid < 16).then_some(raw)
}

/// `SHA-256(prev ‖ body)` with `prev` as 32 raw bytes.
pub(crate) fn chain_digest(prev: &[u8; 32], body: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(body.as_bytes());
    hasher.finalize().into()
}

/// The hash of a record whose predecessor's hash is `prev_hash` (64 hex
/// digits). `None` if `prev_hash` is not 64 hex digits.
pub fn record_hash(prev_hash: &str, body: &str) -> Option<String> {
    decode_hash(prev_hash).map(|prev| hex::encode(chain_digest(&prev, body)))
}

/// The fields of a body that the index columns copy, plus the request id,
/// borrowed from the body where it has no escapes. Unknown fields are skipped
/// so this stays valid as events grow.
#[derive(Deserialize)]
pub(crate) struct BodyIndex<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub time: Text<'a>,
    #[serde(borrow)]
    pub event: EventIndex<'a>,
}

#[derive(Deserialize)]
pub(crate) struct EventIndex<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Text<'a>,
    #[serde(default, borrow)]
    pub session_id: Option<Text<'a>>,
    /// A string, or a `Principal` object whose `subject` is the index value.
    #[serde(default, borrow)]
    pub principal: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub connection: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub request_id: Option<Text<'a>>,
    /// A recording chunk's payload hash.
    #[serde(default, borrow)]
    pub payload_sha256: Option<Text<'a>>,
}

impl<'a> BodyIndex<'a> {
    pub(crate) fn parse(body: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// The few body fields verify keeps track of, read from a canonical body
/// by position and key instead of a JSON parse (see [`BodyFacts::scan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyFacts<'a> {
    pub seq: u64,
    pub kind: Cow<'a, str>,
    pub request_id: Option<Cow<'a, str>>,
    pub payload_sha256: Option<Cow<'a, str>>,
}

impl<'a> BodyFacts<'a> {
    /// Reads a body in the canonical layout `{"seq":N,"time":"..","event":{"type":"..",..}}`.
    /// A key is found by its first unescaped occurrence: inside a JSON string
    /// every quote is escaped, so `"request_id":"` can only be a key. `None`
    /// for anything unusual (an escape in a value, another layout): the
    /// caller then parses the body as JSON. Only used on a body whose chain
    /// hash already matched, that is, one Sluice wrote.
    pub(crate) fn scan(body: &'a str) -> Option<Self> {
        let rest = body.strip_prefix("{\"seq\":")?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let seq = rest[..digits].parse().ok()?;
        // The time is always 27 bytes (`format_time`).
        let rest = rest[digits..].strip_prefix(",\"time\":\"")?.get(TIME_LEN..)?;
        let (kind, rest) = rest.strip_prefix("\",\"event\":{\"type\":\"")?.split_once('"')?;
        let field = |key: &str| -> Option<Option<Cow<'a, str>>> {
            let start = match rest.strip_prefix(',').filter(|r| r.starts_with(key)) {
                Some(_) => 1,
                None => match rest.find(key) {
                    Some(start) => start,
                    None => return Some(None),
                },
            };
            let (value, _) = rest[start + key.len()..].split_once('"')?;
            (!value.contains('\\')).then_some(Some(Cow::Borrowed(value)))
        };
        let (request_id, payload_sha256) = match kind {
            "request" | "outcome" => (field("\"request_id\":\"")?, None),
            "recording_chunk" => (None, field("\"payload_sha256\":\"")?),
            _ => (None, None),
        };
        (!kind.contains('\\')).then_some(BodyFacts { seq, kind: Cow::Borrowed(kind), request_id, payload_sha256 })
    }
}

/// Bytes of a formatted time: `2026-11-05T09:30:00.000250Z`.
const TIME_LEN: usize = 27;

impl<'a> From<&BodyIndex<'a>> for BodyFacts<'a> {
    fn from(index: &BodyIndex<'a>) -> Self {
        BodyFacts {
            seq: index.seq,
            kind: index.event.kind.0.clone(),
            request_id: index.event.request_id.as_ref().map(|t| t.0.clone()),
            payload_sha256: index.event.payload_sha256.as_ref().map(|t| t.0.clone()),
        }
    }
}

/// A string from a body: borrowed when it had no escapes. Also accepts an
/// object and keeps its `subject` field, which is how a `Principal` is indexed.
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an object with a subject")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut subject = None;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    if key.as_str() == "subject" && subject.is_none() {
                        subject = Some(map.next_value::<Text<'de>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                subject.ok_or_else(|| de::Error::missing_field("subject"))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::{AuditEvent, AuthFailure};

    #[test]
    fn splice_matches_struct_serialisation() {
        let event = AuditEvent::AuthFailure(AuthFailure {
            protocol: "postgres".into(),
            client_addr: "127.0.0.1:5000".into(),
            connection: Some("db \"prod\"".into()),
            reason: "expired token\n".into(),
        });
        let time = truncate_time(Utc::now());
        let spliced = splice_body(7, &format_time(time), &encode_event(&event));
        assert_eq!(spliced, encode_body(7, time, &event));
        let index = BodyIndex::parse(&spliced).expect("index view");
        assert_eq!(index.seq, 7);
        assert_eq!(index.event.kind.as_str(), "auth_failure");
        assert_eq!(index.event.connection.as_ref().map(Text::as_str), Some("db \"prod\""));
        assert!(index.event.principal.is_none());
    }

    #[test]
    fn scanned_facts_equal_parsed_facts() {
        let time = format_time(truncate_time(Utc::now()));
        let bodies = [
            splice_body(
                3,
                &time,
                r#"{"type":"request","request_id":"s:1","session_id":"s","statement":"select '\"request_id\":\"x'"}"#,
            ),
            splice_body(4, &time, r#"{"type":"outcome","request_id":"s:1","status":"ok"}"#),
            splice_body(
                5,
                &time,
                r#"{"type":"recording_chunk","session_id":"s","principal":"a\"payload_sha256\":\"no","payload_sha256":"ab12"}"#,
            ),
            splice_body(6, &time, r#"{"type":"session_open","session_id":"s"}"#),
        ];
        for body in &bodies {
            let parsed = BodyIndex::parse(body).expect("parses");
            assert_eq!(BodyFacts::scan(body), Some(BodyFacts::from(&parsed)), "{body}");
        }
        let escaped = splice_body(7, &time, r#"{"type":"request","request_id":"s\"1"}"#);
        assert_eq!(BodyFacts::scan(&escaped), None, "an escape in a value: parse instead");
        assert_eq!(BodyFacts::scan("{\"time\":1}"), None);
    }

    #[test]
    fn hashes_decode_as_hex_does() {
        let cases = ["ab".repeat(32), "AB".repeat(32), "0123456789abcdefABCDEF".repeat(3)[..64].to_owned()];
        for hash in cases.iter().map(String::as_str).chain(["", "ab", &"g0".repeat(32), &"ab".repeat(33)]) {
            let mut raw = [0u8; 32];
            let expected = hex::decode_to_slice(hash, &mut raw).ok().map(|()| raw);
            assert_eq!(decode_hash(hash), expected, "{hash}");
        }
    }
}
