//! OpenTelemetry logs over HTTP (OTLP/HTTP, JSON encoding): a batch of
//! events as one `ExportLogsServiceRequest` POSTed to the collector's logs
//! URL (`http://collector:4318/v1/logs`).
//!
//! Owns: the OTLP/JSON payload, the mapping of Sluice's severities onto
//! OTLP's, and reading a collector's partial-success answer.
//! Does not: retry (the runner does), read header values from config, or
//! decide which answers count as received (`http` does: any 2xx; 429 and
//! 5xx are retried as a collector that is down, other 4xx too, logged as a
//! rejection).
//!
//! # The request
//! ```text
//! {"resourceLogs": [{
//!   "resource": {"attributes": [service.name = "sluice", service.version, host.name]},
//!   "scopeLogs": [{"scope": {"name": "sluice-siem", "version"},
//!     "logRecords": [{"timeUnixNano": "1793871000000250000", "observedTimeUnixNano": "...",
//!       "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": "<the event's JSON>"},
//!       "attributes": [event.id = "sluice/7", sluice.type = "request", sluice.record = "7", ...]}]}]}]}
//! ```
//! One log record per event, in order. The 64-bit times are decimal
//! strings, as the OTLP/JSON encoding writes them. The body is the same
//! JSON every sink carries; the attributes are the event's type and its
//! [`SiemEvent::summary`] (`event.id`, then `sluice.<field>`), so a
//! collector can route and deduplicate by `event.id` without parsing the
//! body.
//!
//! # Partial success
//! A collector may take a request but drop some of its records, saying so
//! in `partialSuccess`. OTLP forbids sending such a request again, so the
//! batch counts as received and the loss is logged as a warning.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::SinkError;
use crate::event::{Severity, SiemEvent};
use crate::http::Endpoint;

/// The resource's `service.name`.
pub const SERVICE_NAME: &str = "sluice";

/// The instrumentation scope's name.
pub const SCOPE_NAME: &str = "sluice-siem";

/// The attribute holding the event id.
pub const EVENT_ID_ATTRIBUTE: &str = "event.id";

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// OTLP's severity number and text for one of Sluice's (the OpenTelemetry
/// log data model's mapping of syslog severities).
pub fn severity(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Warning => (13, "WARN"),
        Severity::Notice => (10, "INFO2"),
        Severity::Informational => (9, "INFO"),
    }
}

/// The `ExportLogsServiceRequest` for `events`, in the OTLP/JSON encoding.
/// `observed` is when the batch was read, in nanoseconds since the epoch.
pub fn payload(events: &[SiemEvent], host: &str, observed: u64) -> String {
    let resource =
        [attribute("service.name", SERVICE_NAME), attribute("service.version", VERSION), attribute("host.name", host)];
    let records: Vec<Value> = events.iter().map(|event| log_record(event, observed)).collect();
    json!({
        "resourceLogs": [{
            "resource": {"attributes": resource},
            "scopeLogs": [{"scope": {"name": SCOPE_NAME, "version": VERSION}, "logRecords": records}],
        }]
    })
    .to_string()
}

fn log_record(event: &SiemEvent, observed: u64) -> Value {
    let (number, text) = severity(event.severity());
    let mut attributes = vec![attribute("sluice.type", &event.kind)];
    for (name, value) in event.summary() {
        let name = if name == "event_id" { EVENT_ID_ATTRIBUTE.to_string() } else { format!("sluice.{name}") };
        attributes.push(attribute(&name, &value));
    }
    json!({
        "timeUnixNano": unix_nanos(&event.time).to_string(),
        "observedTimeUnixNano": observed.to_string(),
        "severityNumber": number,
        "severityText": text,
        "body": {"stringValue": event.to_json()},
        "attributes": attributes,
    })
}

/// A string-valued `KeyValue`.
fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// An RFC 3339 time in nanoseconds since the epoch; 0 (OTLP's "unknown")
/// when it cannot be read.
fn unix_nanos(time: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// The records a collector's answer says it dropped, with its message:
/// `partialSuccess.rejectedLogRecords` above zero (a JSON string or number).
pub fn rejected_records(answer: &str) -> Option<(u64, String)> {
    let value: Value = serde_json::from_str(answer).ok()?;
    let partial = value.get("partialSuccess")?;
    let rejected = match partial.get("rejectedLogRecords")? {
        Value::String(n) => n.parse().ok()?,
        n => n.as_u64()?,
    };
    let message = partial.get("errorMessage").and_then(Value::as_str).unwrap_or_default();
    (rejected > 0).then(|| (rejected, message.to_string()))
}

/// One OTLP/HTTP logs endpoint.
#[derive(Debug)]
pub struct OtlpSink {
    endpoint: Endpoint,
    host: String,
}

impl OtlpSink {
    /// A sink posting to `url` as it is, with `headers` on every request;
    /// HTTPS servers are checked against `ca_file` when given.
    pub fn new(url: &str, headers: &[(String, String)], ca_file: Option<&Path>) -> Result<OtlpSink, SinkError> {
        let headers = headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        Ok(OtlpSink { endpoint: Endpoint::new(url, headers, ca_file)?, host: crate::syslog::local_hostname() })
    }

    /// Posts `events` as one request; `Ok` on any 2xx.
    pub async fn send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        let observed =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let answer = self.endpoint.post(payload(events, &self.host, observed)).await?;
        if let Some((rejected, message)) = rejected_records(&answer) {
            tracing::warn!(
                endpoint = %self.endpoint.url(),
                rejected,
                message,
                "the OTLP collector took the batch but dropped some of its log records; OTLP forbids sending them again"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{payload, rejected_records, severity};
    use crate::event::{Severity, SiemEvent};
    use sluice_audit::{AuditRecord, StoredCheckpoint};
    use sluice_config::StatementOption;

    fn request(seq: u64, verdict: &str) -> SiemEvent {
        let event = serde_json::json!({
            "type": "request", "request_id": "s:1", "session_id": "s", "principal": "agent-\"1\"",
            "connection": "db", "client_addr": "127.0.0.1:1", "statement": "select 1", "param_count": 0,
            "params_sha256": null, "decision": {"verdict": verdict, "policies": ["p"], "reason": null}
        });
        let record = AuditRecord {
            seq,
            time: "2026-11-05T09:30:00.000250Z".parse().unwrap(),
            event: serde_json::from_value(event).unwrap(),
            prev_hash: "00".repeat(32),
            hash: "11".repeat(32),
        };
        SiemEvent::from_record(&record, StatementOption::Full)
    }

    fn attributes(value: &serde_json::Value) -> Vec<(String, String)> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().into(), kv["value"]["stringValue"].as_str().unwrap().into()))
            .collect()
    }

    #[test]
    fn payload_is_one_export_request_with_a_log_record_per_event() {
        let checkpoint = SiemEvent::from_checkpoint(&StoredCheckpoint {
            size: 8,
            time: "2026-11-05T09:31:00Z".into(),
            root: "cd".repeat(32),
            note: "sluice/x\n8\n".into(),
        });
        let events = [request(7, "allow"), request(8, "deny"), checkpoint];
        let body = payload(&events, "gw-1", 1_793_871_061_000_000_123);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 1, "{body}");
        let resource_logs = value["resourceLogs"].as_array().unwrap();
        assert_eq!(resource_logs.len(), 1);
        let resource = attributes(&resource_logs[0]["resource"]["attributes"]);
        assert_eq!(resource[0], ("service.name".into(), "sluice".into()));
        assert_eq!(resource[1], ("service.version".into(), env!("CARGO_PKG_VERSION").into()));
        assert_eq!(resource[2], ("host.name".into(), "gw-1".into()));
        let scope_logs = resource_logs[0]["scopeLogs"].as_array().unwrap();
        assert_eq!(scope_logs.len(), 1);
        assert_eq!(scope_logs[0]["scope"]["name"], "sluice-siem");
        let records = scope_logs[0]["logRecords"].as_array().unwrap();
        assert_eq!(records.len(), 3);

        let allowed = &records[0];
        assert_eq!(allowed["timeUnixNano"], "1793871000000250000", "a string, to the nanosecond");
        assert_eq!(allowed["observedTimeUnixNano"], "1793871061000000123");
        assert_eq!(allowed["severityNumber"], 9);
        assert_eq!(allowed["severityText"], "INFO");
        let inner: serde_json::Value = serde_json::from_str(allowed["body"]["stringValue"].as_str().unwrap()).unwrap();
        assert_eq!(inner, serde_json::from_str::<serde_json::Value>(&events[0].to_json()).unwrap());
        assert_eq!(
            attributes(&allowed["attributes"]),
            [
                ("sluice.type", "request"),
                ("event.id", "sluice/7"),
                ("sluice.record", "7"),
                ("sluice.principal", "agent-\"1\""),
                ("sluice.connection", "db"),
                ("sluice.session_id", "s"),
                ("sluice.request_id", "s:1"),
                ("sluice.verdict", "allow"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );

        let denied = &records[1];
        assert_eq!((denied["severityNumber"].as_u64(), denied["severityText"].as_str()), (Some(13), Some("WARN")));
        assert!(attributes(&denied["attributes"]).contains(&("sluice.verdict".into(), "deny".into())));

        let signed = &records[2];
        assert_eq!(signed["timeUnixNano"], "1793871060000000000");
        assert_eq!(
            attributes(&signed["attributes"]),
            [("sluice.type", "checkpoint"), ("event.id", "sluice/checkpoint/8"), ("sluice.record", "8")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(signed["body"]["stringValue"].as_str().unwrap().contains("\"note\":\"sluice/x\\n8\\n\""));
    }

    #[test]
    fn severities_follow_the_otel_mapping_of_syslog() {
        assert_eq!(severity(Severity::Warning), (13, "WARN"));
        assert_eq!(severity(Severity::Notice), (10, "INFO2"));
        assert_eq!(severity(Severity::Informational), (9, "INFO"));
        let mut unreadable = request(1, "hold");
        assert_eq!(severity(unreadable.severity()), (10, "INFO2"));
        unreadable.time = "yesterday".into();
        let value: serde_json::Value = serde_json::from_str(&payload(&[unreadable], "-", 5)).unwrap();
        assert_eq!(value["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["timeUnixNano"], "0");
    }

    #[test]
    fn only_a_partial_success_with_rejections_is_reported() {
        let cases = [
            ("", None),
            ("{}", None),
            (r#"{"partialSuccess":{}}"#, None),
            (r#"{"partialSuccess":{"rejectedLogRecords":"0"}}"#, None),
            (r#"{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"too big"}}"#, Some((3, "too big"))),
            (r#"{"partialSuccess":{"rejectedLogRecords":2}}"#, Some((2, ""))),
        ];
        for (answer, expected) in cases {
            assert_eq!(rejected_records(answer), expected.map(|(n, m)| (n, m.to_string())), "{answer}");
        }
    }
}
