//! One forwarded event: the JSON object every sink carries, built from an
//! audit record or a signed checkpoint.
//!
//! Owns: the event's fields and their names, its id, the statement option
//! (`full`, `fingerprint`, `none`), the summary fields a sink can carry
//! beside the JSON (syslog structured data, OTLP attributes), and the
//! severity of each event (on syslog's scale; `otlp` maps it to OTLP's).
//! Does not: frame, send or remember anything.

use serde::Serialize;
use sluice_audit::{AuditRecord, StoredCheckpoint};
use sluice_config::StatementOption;
use sluice_model::{AuditEvent, OutcomeStatus, Verdict};

/// The `type` of a forwarded signed checkpoint (record types are the audit
/// event kinds: `request`, `outcome`, `session_open`, ...).
pub const CHECKPOINT_TYPE: &str = "checkpoint";

/// One event as sinks send it. `event_id` is stable: the same record is
/// always the same id, so a receiver can drop a repeat (delivery is at
/// least once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiemEvent {
    /// `sluice/<seq>` for a record, `sluice/checkpoint/<size>` for a checkpoint.
    pub event_id: String,
    /// The audit event kind, or `checkpoint`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the record was sequenced (or the checkpoint signed), RFC 3339 UTC.
    pub time: String,
    /// The record's seq; for a checkpoint, the last record it covers.
    pub record: u64,
    /// The record's chain hash, so an event can be matched against the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionFields>,
    /// The statement text as the client sent it; only under `statement = "full"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The classifier's fingerprint: a hash, the same for statements that
    /// differ only in constants, so it carries no data. Under
    /// `full` and `fingerprint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeFields>,
    /// The rest of a record that is neither a request nor an outcome
    /// (session, login failure, approval, alert delivery, recording chunk),
    /// as the audit log holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointFields>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionFields {
    pub verdict: Verdict,
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The masking profile the response went through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeFields {
    pub status: OutcomeStatus,
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_tag: Option<String>,
    /// The error text the client saw; it may quote data, so only under
    /// `statement = "full"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointFields {
    pub size: u64,
    pub root: String,
    /// The C2SP signed note, verifiable with the log's public key.
    pub note: String,
}

/// Syslog severities (RFC 5424 section 6.2.1) Sluice uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning = 4,
    Notice = 5,
    Informational = 6,
}

/// The id of record `seq`.
pub fn record_id(seq: u64) -> String {
    format!("sluice/{seq}")
}

/// The id of the checkpoint over the first `size` records.
pub fn checkpoint_id(size: u64) -> String {
    format!("sluice/checkpoint/{size}")
}

impl SiemEvent {
    /// The event for one audit record, with the statement as `statement` says.
    pub fn from_record(record: &AuditRecord, statement: StatementOption) -> SiemEvent {
        let event = &record.event;
        let mut out = SiemEvent {
            event_id: record_id(record.seq),
            kind: event.kind().to_string(),
            time: sluice_audit::format_time(record.time),
            record: record.seq,
            hash: Some(record.hash.clone()),
            principal: event.principal().map(str::to_string),
            connection: event.connection().map(str::to_string),
            session_id: event.session_id().map(str::to_string),
            request_id: None,
            decision: None,
            statement: None,
            fingerprint: None,
            outcome: None,
            detail: None,
            checkpoint: None,
        };
        match event {
            AuditEvent::Request(request) => {
                out.request_id = Some(request.request_id.clone());
                out.decision = Some(DecisionFields {
                    verdict: request.decision.verdict,
                    policies: request.decision.policies.clone(),
                    reason: request.decision.reason.clone(),
                    mask_profile: request.mask_profile.clone(),
                });
                if statement == StatementOption::Full {
                    out.statement = Some(request.statement.clone());
                }
                if statement != StatementOption::None {
                    out.fingerprint = request.classification.as_ref().map(|c| c.fingerprint.clone());
                }
            }
            AuditEvent::Outcome(outcome) => {
                out.request_id = Some(outcome.request_id.clone());
                out.outcome = Some(OutcomeFields {
                    status: outcome.status,
                    rows: outcome.rows,
                    sqlstate: outcome.sqlstate.clone(),
                    command_tag: outcome.command_tag.clone(),
                    error: outcome.error.clone().filter(|_| statement == StatementOption::Full),
                    duration_us: outcome.duration_us,
                });
            }
            other => {
                let mut detail = serde_json::to_value(other).unwrap_or_default();
                if let Some(fields) = detail.as_object_mut() {
                    // Already top-level fields of the event.
                    for key in ["type", "session_id", "connection"] {
                        fields.remove(key);
                    }
                }
                out.detail = Some(detail);
            }
        }
        out
    }

    /// The event for one signed checkpoint.
    pub fn from_checkpoint(checkpoint: &StoredCheckpoint) -> SiemEvent {
        SiemEvent {
            event_id: checkpoint_id(checkpoint.size),
            kind: CHECKPOINT_TYPE.to_string(),
            time: checkpoint.time.clone(),
            record: checkpoint.size,
            hash: None,
            principal: None,
            connection: None,
            session_id: None,
            request_id: None,
            decision: None,
            statement: None,
            fingerprint: None,
            outcome: None,
            detail: None,
            checkpoint: Some(CheckpointFields {
                size: checkpoint.size,
                root: checkpoint.root.clone(),
                note: checkpoint.note.clone(),
            }),
        }
    }

    /// The fields a collector can index without parsing the JSON, as
    /// (name, value), those the event has, in this order: `event_id`,
    /// `record`, `principal`, `connection`, `session_id`, `request_id`,
    /// `verdict` (the decision's), `status` (the outcome's). Syslog sends
    /// them as structured data, OTLP as log record attributes.
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let fields = [
            ("event_id", Some(self.event_id.clone())),
            ("record", Some(self.record.to_string())),
            ("principal", self.principal.clone()),
            ("connection", self.connection.clone()),
            ("session_id", self.session_id.clone()),
            ("request_id", self.request_id.clone()),
            ("verdict", self.decision.as_ref().map(|d| serde_plain(&d.verdict))),
            ("status", self.outcome.as_ref().map(|o| serde_plain(&o.status))),
        ];
        fields.into_iter().filter_map(|(name, value)| Some((name, value?))).collect()
    }

    /// The event as one line of compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a SiemEvent always serialises")
    }

    /// How loud the event is: refusals and failed logins are warnings,
    /// errors and holds notices, the rest informational.
    pub fn severity(&self) -> Severity {
        if self.kind == "auth_failure" {
            return Severity::Warning;
        }
        match (&self.decision, &self.outcome) {
            (Some(d), _) if d.verdict == Verdict::Deny => Severity::Warning,
            (Some(d), _) if d.verdict == Verdict::Hold => Severity::Notice,
            (_, Some(o)) if o.status == OutcomeStatus::Refused => Severity::Warning,
            (_, Some(o)) if matches!(o.status, OutcomeStatus::Error | OutcomeStatus::Truncated) => Severity::Notice,
            _ => Severity::Informational,
        }
    }
}

/// An enum's serde name (`allow`, `refused`).
fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{Severity, SiemEvent};
    use sluice_audit::{AuditRecord, StoredCheckpoint};
    use sluice_config::StatementOption;
    use sluice_model::AuditEvent;

    fn record(seq: u64, event: serde_json::Value) -> AuditRecord {
        let event: AuditEvent = serde_json::from_value(event).unwrap();
        AuditRecord {
            seq,
            time: "2026-11-05T09:30:00.000250Z".parse().unwrap(),
            event,
            prev_hash: "00".repeat(32),
            hash: "ab".repeat(32),
        }
    }

    fn request(verdict: &str) -> AuditRecord {
        record(
            7,
            serde_json::json!({
                "type": "request", "request_id": "s1:1", "session_id": "s1", "principal": "agent-1",
                "connection": "patients", "client_addr": "127.0.0.1:5000",
                "statement": "select * from p where ssn = '123-45-6789'", "param_count": 0, "params_sha256": null,
                "decision": {"verdict": verdict, "policies": ["p1"], "reason": null},
                "classification": {"kind": "read", "statements": 1, "tables_read": ["p"], "tables_written": [],
                    "functions": [], "flags": serde_json::to_value(sluice_model::SqlFlags::default()).unwrap(), "fingerprint": "select * from p where ssn = $1"},
                "mask_profile": "safe_harbor"
            }),
        )
    }

    #[test]
    fn request_fields_follow_the_statement_option() {
        let cases = [
            (StatementOption::Full, Some("select * from p where ssn = '123-45-6789'"), true),
            (StatementOption::Fingerprint, None, true),
            (StatementOption::None, None, false),
        ];
        for (option, statement, has_fingerprint) in cases {
            let event = SiemEvent::from_record(&request("allow"), option);
            assert_eq!(event.statement.as_deref(), statement, "{option:?}");
            assert_eq!(event.fingerprint.is_some(), has_fingerprint, "{option:?}");
            let json = event.to_json();
            assert_eq!(json.contains("123-45-6789"), option == StatementOption::Full, "{json}");
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(value["event_id"], "sluice/7");
            assert_eq!(value["type"], "request");
            assert_eq!(value["record"], 7);
            assert_eq!(value["time"], "2026-11-05T09:30:00.000250Z");
            assert_eq!(value["principal"], "agent-1");
            assert_eq!(value["connection"], "patients");
            assert_eq!(value["session_id"], "s1");
            assert_eq!(value["request_id"], "s1:1");
            assert_eq!(value["decision"]["verdict"], "allow");
            assert_eq!(value["decision"]["policies"][0], "p1");
            assert_eq!(value["decision"]["mask_profile"], "safe_harbor");
        }
        assert_eq!(
            SiemEvent::from_record(&request("allow"), StatementOption::Full).severity(),
            Severity::Informational
        );
        assert_eq!(SiemEvent::from_record(&request("deny"), StatementOption::Full).severity(), Severity::Warning);
        assert_eq!(SiemEvent::from_record(&request("hold"), StatementOption::Full).severity(), Severity::Notice);
    }

    #[test]
    fn outcome_error_text_only_under_full() {
        let outcome = record(
            8,
            serde_json::json!({
                "type": "outcome", "request_id": "s1:1", "session_id": "s1", "principal": "agent-1",
                "connection": "patients", "status": "error", "command_tag": null, "rows": 0,
                "sqlstate": "23505", "error": "duplicate key (ssn)=(123-45-6789)", "bytes_out": 10, "duration_us": 5
            }),
        );
        let full = SiemEvent::from_record(&outcome, StatementOption::Full);
        let value: serde_json::Value = serde_json::from_str(&full.to_json()).unwrap();
        assert_eq!(value["outcome"]["status"], "error");
        assert_eq!(value["outcome"]["sqlstate"], "23505");
        assert_eq!(value["outcome"]["rows"], 0);
        assert!(value["outcome"]["error"].as_str().unwrap().contains("duplicate"));
        assert_eq!(full.severity(), Severity::Notice);
        let bare = SiemEvent::from_record(&outcome, StatementOption::Fingerprint);
        assert!(!bare.to_json().contains("123-45-6789"));
    }

    #[test]
    fn other_records_carry_their_detail_and_checkpoints_their_note() {
        let failure = record(
            3,
            serde_json::json!({"type": "auth_failure", "protocol": "postgres", "client_addr": "127.0.0.1:1",
                "connection": "patients", "reason": "unknown API key"}),
        );
        let event = SiemEvent::from_record(&failure, StatementOption::Full);
        let value: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(value["type"], "auth_failure");
        assert_eq!(value["connection"], "patients");
        assert_eq!(value["detail"]["reason"], "unknown API key");
        assert!(value["detail"].get("type").is_none());
        assert!(value.get("principal").is_none());
        assert_eq!(event.severity(), Severity::Warning);

        let checkpoint = StoredCheckpoint {
            size: 42,
            time: "2026-11-05T09:31:00Z".into(),
            root: "cd".repeat(32),
            note: "sluice/abc\n42\nzd==\n\n— sluice/abc sig\n".into(),
        };
        let event = SiemEvent::from_checkpoint(&checkpoint);
        let value: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(value["event_id"], "sluice/checkpoint/42");
        assert_eq!(value["type"], "checkpoint");
        assert_eq!(value["record"], 42);
        assert_eq!(value["checkpoint"]["size"], 42);
        assert_eq!(value["checkpoint"]["note"], checkpoint.note);
    }
}
