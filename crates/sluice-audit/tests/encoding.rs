//! Canonical encoding and hash-chain vectors, as data tables.
//!
//! Owns: the exact bytes of each kind of body, their round trip, and chain
//! hashes computed independently (Python `hashlib`), so a change to the
//! encoding or the hash fails here first.
//! Does not: touch a store.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{auth_failure, outcome, request, session_close, session_open};
use sluice_audit::{GENESIS_HASH, decode_body, encode_body, format_time, record_hash, truncate_time};
use sluice_model::AuditEvent;

fn at(secs: u32, nanos: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 5, 9, 30, secs).unwrap() + chrono::Duration::nanoseconds(i64::from(nanos))
}

/// (seq, time, event, exact body, hash chained from the previous row).
fn vectors() -> Vec<(u64, DateTime<Utc>, AuditEvent, &'static str, &'static str)> {
    vec![
        (
            1,
            at(0, 250_000),
            session_open("s1", "agent-7", "clinic"),
            r#"{"seq":1,"time":"2026-11-05T09:30:00.000250Z","event":{"type":"session_open","session_id":"s1","principal":{"subject":"agent-7","kind":"agent","groups":["analysts"],"issuer":"api-key","token_id":null},"connection":"clinic","protocol":"postgres","client_addr":"127.0.0.1:50000","client_tls":false}}"#,
            "a90d011213d29840acefecddf26c1e5014f32877ea0db6971512815a7e73eddd",
        ),
        (
            2,
            at(0, 250_999), // below a microsecond: truncated, not rounded
            request("s1", 1, "agent-7", "clinic"),
            r#"{"seq":2,"time":"2026-11-05T09:30:00.000250Z","event":{"type":"request","request_id":"s1:1","session_id":"s1","principal":"agent-7","connection":"clinic","client_addr":"127.0.0.1:50000","statement":"SELECT name, dob FROM patients WHERE id = 1 AND note <> 'a \"quoted\" word'","param_count":0,"params_sha256":null,"decision":{"verdict":"allow","policies":["allow-read"],"reason":null}}}"#,
            "43f4480f0265b43ce855df30f9692af8ad7f6c2123dcb5c672dc33c55a753aab",
        ),
        (
            3,
            at(1, 123_456_789),
            outcome("s1", 1, "agent-7", "clinic"),
            r#"{"seq":3,"time":"2026-11-05T09:30:01.123456Z","event":{"type":"outcome","request_id":"s1:1","session_id":"s1","principal":"agent-7","connection":"clinic","status":"ok","command_tag":"SELECT 1","rows":1,"sqlstate":null,"error":null,"bytes_out":96,"duration_us":420}}"#,
            "cf0332787e2daf6417818fb86843fff328140042e1f1fecf03a0de94f757edf3",
        ),
        (
            4,
            at(1, 123_456_000),
            session_close("s1", "agent-7", "clinic"),
            r#"{"seq":4,"time":"2026-11-05T09:30:01.123456Z","event":{"type":"session_close","session_id":"s1","principal":"agent-7","connection":"clinic","reason":"client_terminated","requests":1,"duration_us":1000}}"#,
            "0b72312d239b786154587b14ea98f74c6310ce69e0e653bb11ea54cf5fd73142",
        ),
        (
            5,
            at(2, 0), // whole second: still six digits
            auth_failure("jeton expiré\n"),
            r#"{"seq":5,"time":"2026-11-05T09:30:02.000000Z","event":{"type":"auth_failure","protocol":"postgres","client_addr":"10.0.0.9:4000","connection":null,"reason":"jeton expiré\n"}}"#,
            "785423312143a7d324915ed27388c69dcbbca277d309e29c08d2f2c81f3607c8",
        ),
    ]
}

#[test]
fn bodies_are_canonical_and_round_trip() {
    for (seq, time, event, body, _) in vectors() {
        assert_eq!(encode_body(seq, time, &event), body, "body of record {seq}");
        let (decoded_seq, decoded_time, decoded_event) = decode_body(body).expect("decode");
        assert_eq!(decoded_seq, seq);
        assert_eq!(decoded_time, truncate_time(time), "time of record {seq}");
        assert_eq!(decoded_event, event, "event of record {seq}");
        // Re-encoding what was decoded gives the same bytes.
        assert_eq!(encode_body(decoded_seq, decoded_time, &decoded_event), body);
    }
}

#[test]
fn chain_from_genesis_matches_independent_hashes() {
    let mut prev = GENESIS_HASH.to_owned();
    for (seq, _, _, body, expected) in vectors() {
        let hash = record_hash(&prev, body).expect("prev is 64 hex digits");
        assert_eq!(hash, expected, "hash of record {seq}");
        prev = hash;
    }
}

#[test]
fn record_hash_vectors() {
    // (prev_hash, body, expected hash or None for a malformed prev_hash)
    let cases: &[(&str, &str, Option<&str>)] = &[
        (GENESIS_HASH, "", Some("66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925")),
        (
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "{}",
            Some("96e63e2c37631040e8da445e98593290a953178d85b32d985193229d0291c865"),
        ),
        ("00", "{}", None),
        ("zz00000000000000000000000000000000000000000000000000000000000000", "{}", None),
    ];
    for (prev, body, expected) in cases {
        assert_eq!(record_hash(prev, body).as_deref(), *expected, "prev {prev:?} body {body:?}");
    }
}

#[test]
fn time_format_table() {
    let cases = [
        (at(0, 0), "2026-11-05T09:30:00.000000Z"),
        (at(0, 1), "2026-11-05T09:30:00.000000Z"),
        (at(59, 999_999_999), "2026-11-05T09:30:59.999999Z"),
        (at(7, 10_000), "2026-11-05T09:30:07.000010Z"),
    ];
    for (time, text) in cases {
        assert_eq!(format_time(truncate_time(time)), text);
    }
}

#[test]
fn malformed_bodies_are_refused() {
    let cases = [
        "",
        "{}",
        r#"{"seq":1,"time":"not a time","event":{"type":"auth_failure","protocol":"p","client_addr":"a","connection":null,"reason":"r"}}"#,
        r#"{"seq":1,"time":"2026-11-05T09:30:02.000000Z","event":{"type":"no_such_kind"}}"#,
        r#"{"seq":-1,"time":"2026-11-05T09:30:02.000000Z","event":{"type":"auth_failure","protocol":"p","client_addr":"a","connection":null,"reason":"r"}}"#,
    ];
    for body in cases {
        assert!(decode_body(body).is_err(), "{body:?} should not decode");
    }
}
