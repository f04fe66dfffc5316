//! The events Sluice records. `sluice-audit` encodes, chains and stores them.
//!
//! Field order is part of the canonical encoding: append new fields at the end
//! of a struct, with `#[serde(default)]`, so old records still verify.

use crate::{DecisionSummary, Principal, SqlClassification};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    SessionOpen(SessionOpen),
    SessionClose(SessionClose),
    Request(RequestEvent),
    Outcome(OutcomeEvent),
    AuthFailure(AuthFailure),
    Approval(ApprovalEvent),
    AlertDelivery(AlertDelivery),
    RecordingChunk(RecordingChunk),
    PayloadsPruned(PayloadsPruned),
    Expired(ExpiredRecord),
}

impl AuditEvent {
    /// Short name used as the `kind` column of the store.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::SessionOpen(_) => "session_open",
            AuditEvent::SessionClose(_) => "session_close",
            AuditEvent::Request(_) => "request",
            AuditEvent::Outcome(_) => "outcome",
            AuditEvent::AuthFailure(_) => "auth_failure",
            AuditEvent::Approval(_) => "approval",
            AuditEvent::AlertDelivery(_) => "alert_delivery",
            AuditEvent::RecordingChunk(_) => "recording_chunk",
            AuditEvent::PayloadsPruned(_) => "payloads_pruned",
            AuditEvent::Expired(_) => "expired",
        }
    }

    pub fn session_id(&self) -> Option<&str> {
        match self {
            AuditEvent::SessionOpen(e) => Some(&e.session_id),
            AuditEvent::SessionClose(e) => Some(&e.session_id),
            AuditEvent::Request(e) => Some(&e.session_id),
            AuditEvent::Outcome(e) => Some(&e.session_id),
            AuditEvent::AuthFailure(_) => None,
            AuditEvent::Approval(e) => e.session_id.as_deref(),
            AuditEvent::AlertDelivery(_) => None,
            AuditEvent::RecordingChunk(e) => Some(&e.session_id),
            AuditEvent::PayloadsPruned(_) | AuditEvent::Expired(_) => None,
        }
    }

    /// The principal's subject, where the event has one (for search).
    pub fn principal(&self) -> Option<&str> {
        match self {
            AuditEvent::SessionOpen(e) => Some(&e.principal.subject),
            AuditEvent::SessionClose(e) => Some(&e.principal),
            AuditEvent::Request(e) => Some(&e.principal),
            AuditEvent::Outcome(e) => Some(&e.principal),
            AuditEvent::AuthFailure(_) => None,
            AuditEvent::Approval(e) => Some(&e.principal),
            AuditEvent::AlertDelivery(_) => None,
            AuditEvent::RecordingChunk(e) => Some(&e.principal),
            AuditEvent::PayloadsPruned(_) | AuditEvent::Expired(_) => None,
        }
    }

    /// The connection name, where the event has one (for search).
    pub fn connection(&self) -> Option<&str> {
        match self {
            AuditEvent::SessionOpen(e) => Some(&e.connection),
            AuditEvent::SessionClose(e) => Some(&e.connection),
            AuditEvent::Request(e) => Some(&e.connection),
            AuditEvent::Outcome(e) => Some(&e.connection),
            AuditEvent::AuthFailure(e) => e.connection.as_deref(),
            AuditEvent::Approval(e) => Some(&e.connection),
            AuditEvent::AlertDelivery(_) => None,
            AuditEvent::RecordingChunk(e) => Some(&e.connection),
            AuditEvent::PayloadsPruned(e) => Some(&e.connection),
            AuditEvent::Expired(e) => Some(&e.connection),
        }
    }
}

/// A client session was authenticated and bound to a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOpen {
    pub session_id: String,
    pub principal: Principal,
    pub connection: String,
    /// `postgres` (later: `mysql`, `ssh`, `http`, `mcp`).
    pub protocol: String,
    pub client_addr: String,
    /// Whether the client side of the session is encrypted.
    pub client_tls: bool,
}

/// One step of a held request's approval: the hold itself, each
/// reviewer's decision, its expiry, and the one use of its grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalEvent {
    pub approval_id: String,
    /// `requested`, `approve`, `deny`, `expired` or `granted` (the approved
    /// statement ran, once).
    pub action: String,
    /// The approval's status after this step: `pending`, `approved`,
    /// `denied`, `expired` or `used`.
    pub status: String,
    /// Who took the step: the requester (`requested`, `granted`), a
    /// reviewer (`approve`, `deny`), or `sluice` (`expired`).
    pub actor: String,
    /// The requester's subject.
    pub principal: String,
    pub connection: String,
    /// The audit request the step belongs to: the held request
    /// (`requested`) or the request that used the grant (`granted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// A reviewer's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Rows the target expected the statement to touch (`EXPLAIN`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<u64>,
}

/// How one alert reached (or failed to reach) one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    pub event_id: String,
    /// `approval.requested`, `request.blocked`, ...
    pub event_type: String,
    /// The webhook, without credentials or query.
    pub url: String,
    /// `delivered`, `failed` or `dropped`.
    pub status: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One chunk of a session's recording: what the client saw, masked, for
/// replay. The chunk's bytes are stored beside the record (the audit store's
/// payload table, keyed by this record's seq), not in it: the record carries
/// their SHA-256, so the record is the Merkle leaf that commits to them, and
/// retention can delete the bytes while the leaf and the log still verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingChunk {
    pub session_id: String,
    pub principal: String,
    pub connection: String,
    /// 0 for the session's first chunk, then 1, 2, ... without gaps.
    pub chunk: u32,
    /// Recorded entries (statements, results, notices, errors) in the chunk.
    pub entries: u32,
    /// `true` on the session's last chunk (written when the session ends).
    pub last: bool,
    /// Lowercase hex SHA-256 of the payload bytes.
    pub payload_sha256: String,
    pub payload_bytes: u64,
}

/// Retention deleted the payloads of these recording chunks, replaced the
/// statement text of these request records, or expired these records
/// whole. Written in the same transaction as the deletion; every record
/// keeps its place, chain hash and original leaf hash, so the log still
/// verifies, and verify accepts a missing payload or a rewritten body only
/// if a record like this released it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadsPruned {
    pub connection: String,
    /// Chunks recorded before this time were due (RFC 3339).
    pub cutoff: String,
    /// The seqs of the chunk records whose payloads were deleted.
    pub seqs: Vec<u64>,
    pub bytes: u64,
    /// Why: `retention (payload_days = N)`, `retention (statement_days =
    /// N)` or `retention (index_days = N)`.
    pub reason: String,
    /// Records whose body retention rewrote (statement text replaced, or
    /// the whole record expired), each with the SHA-256 of its body as
    /// rewritten: verify accepts a rewritten body only if it is listed here
    /// with exactly that hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<RewrittenRecord>,
}

/// One record whose body retention rewrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrittenRecord {
    pub seq: u64,
    /// Lowercase hex SHA-256 of the rewritten body.
    pub body_sha256: String,
}

/// The statement text a redacted request record carries.
pub const REDACTED_STATEMENT: &str = "[redacted by retention]";

/// What is left of a record once its connection's `index_days` passed: the
/// kind it was and its connection. Who, when within the session, what and
/// how it ended are gone (a recording chunk's payload with it); the store
/// keeps the original leaf hash, so the tree and its checkpoints still
/// verify, and a later `payloads_pruned` record lists this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredRecord {
    /// The original record's kind: `request`, `outcome`, `session_open`, ...
    pub kind: String,
    pub connection: String,
}

/// A session ended, for whatever reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClose {
    pub session_id: String,
    pub principal: String,
    pub connection: String,
    /// `client_terminated`, `client_disconnected`, `upstream_lost`, `shutdown`, ...
    pub reason: String,
    pub requests: u64,
    pub duration_us: u64,
}

/// One request, written before it is forwarded (write-ahead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// `<session_id>:<n>`, unique across the log; the outcome names it.
    pub request_id: String,
    pub session_id: String,
    pub principal: String,
    pub connection: String,
    pub client_addr: String,
    pub statement: String,
    pub param_count: u32,
    pub params_sha256: Option<String>,
    pub decision: DecisionSummary,
    /// What the classifier made of the statement (kind, tables, flags,
    /// fingerprint); absent in records written before classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Arc<SqlClassification>>,
    /// The masking profile an allowed request's response goes through
    /// (`unmasked` says a privileged caller saw clear values); absent for a
    /// refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_profile: Option<String>,
}

/// How a request ended. Follows its `RequestEvent`; a request with no outcome
/// in the log is "outcome unknown" (Sluice died in between).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    pub request_id: String,
    pub session_id: String,
    pub principal: String,
    pub connection: String,
    pub status: OutcomeStatus,
    /// The upstream's command tag (`SELECT 3`, `INSERT 0 1`, `COPY 10`).
    pub command_tag: Option<String>,
    pub rows: u64,
    /// SQLSTATE of the error the client saw, if any.
    pub sqlstate: Option<String>,
    pub error: Option<String>,
    /// Bytes of response sent to the client for this request.
    pub bytes_out: u64,
    pub duration_us: u64,
    /// Result rows (data rows and COPY OUT rows) relayed to the client and
    /// charged to the principal's hourly row budget on this connection:
    /// set only when a `rows_per_hour` budget allowed the request. A
    /// restarted Sluice sums these to resume the window. Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_charged: u64,
    /// How many values of each PHI class were masked in the response
    /// (`{"NAME": 12, "SSN": 4}`): counts only, never values. Absent when
    /// nothing was masked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked: BTreeMap<String, u64>,
    /// Accounting of disclosures: the patient identifiers the response
    /// carried, per class (`MRN`, `SSN`, `NAME`), as keyed pseudonyms
    /// (32 hex digits of an HMAC under the `[masking]` pseudonym key, sorted),
    /// taken before masking and also under `unmasked`; never clear values.
    /// `sluice audit subject` finds a patient's requests by them. Absent
    /// when none, or when no pseudonym key is configured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subjects: BTreeMap<String, Vec<String>>,
    /// Identifiers past the per-request cap (10,000), not kept in
    /// `subjects`: such a request may have returned any patient. Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub subjects_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// The upstream ran it and reported success.
    Ok,
    /// The upstream ran it (or tried) and reported an error.
    Error,
    /// Sluice refused it (policy, hold, or audit store unavailable); it never
    /// reached the upstream.
    Refused,
    /// Not run: an earlier message in the same extended-protocol batch failed,
    /// so the upstream discarded it.
    Skipped,
    /// The session ended before the upstream answered.
    Interrupted,
    /// The upstream ran it, but its result crossed a budget: Sluice relayed
    /// the part within the budget and ended it with a budget error.
    Truncated,
}

/// A credential was presented and refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailure {
    pub protocol: String,
    pub client_addr: String,
    pub connection: Option<String>,
    /// What was wrong, without the credential itself.
    pub reason: String,
}
