//! OTLP logs over HTTP end to end (part of the `siem` test): a collector
//! stand-in on a fixed port answers 503 for a while, is stopped and started
//! again on the same port mid-run, and must end with every audit record and
//! a signed checkpoint exactly once by `event.id`, in OTLP/JSON requests
//! that the OpenTelemetry project's own bindings (Python
//! `opentelemetry-proto`) parse as `ExportLogsServiceRequest`s agreeing
//! with what the test reads itself.
//!
//! Owns: what an OTLP/HTTP request must look like (path, content type,
//! headers), the request bodies taken, and reading them with
//! `opentelemetry-proto`.

use super::Gateway;
use super::http_receiver::{Handler, HttpReceiver, Request, Response};
use crate::support::{psql, unique, workspace_root};
use std::collections::BTreeMap;
use std::process::Command;

/// An OTLP/HTTP logs endpoint guarded by `authorization`, and every
/// request body it took.
struct Otlp {
    authorization: String,
    /// Every accepted request body.
    bodies: Vec<String>,
}

impl Handler for Otlp {
    const BUSY: &'static str = r#"{"code":14,"message":"collector is busy"}"#;

    fn check(&self, request: &Request) -> Result<(), (Response, Vec<String>)> {
        let line = request.line();
        let expected = [
            ("request line", Some(line.as_str()), "POST /v1/logs HTTP/1.1"),
            ("content-type", request.header("content-type"), "application/json"),
            ("authorization", request.header("authorization"), &self.authorization),
            ("x-scope-orgid", request.header("x-scope-orgid"), "clinic"),
        ];
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(_, got, want)| *got != Some(*want))
            .map(|(what, got, _)| format!("{what}: {got:?}"))
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err((("400 Bad Request", r#"{"code":3,"message":"unexpected request"}"#), wrong))
        }
    }

    fn take(&mut self, request: Request, bad: &mut Vec<String>) -> Response {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&request.body) {
            bad.push(format!("not JSON ({e}): {}", request.body));
            return ("400 Bad Request", r#"{"code":3,"message":"not JSON"}"#);
        }
        self.bodies.push(request.body);
        ("200 OK", r#"{"partialSuccess":{}}"#)
    }

    /// Every `event.id` received, repeats included.
    fn ids(&self) -> Vec<String> {
        self.bodies.iter().flat_map(|body| log_records(body)).map(|record| attribute(&record, "event.id")).collect()
    }
}

/// The log records of one request, in order.
fn log_records(body: &str) -> Vec<serde_json::Value> {
    let request: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut records = Vec::new();
    for resource_logs in request["resourceLogs"].as_array().unwrap() {
        for scope_logs in resource_logs["scopeLogs"].as_array().unwrap() {
            records.extend(scope_logs["logRecords"].as_array().unwrap().iter().cloned());
        }
    }
    records
}

/// A string attribute of a log record or resource (`""` when absent).
fn attribute(holder: &serde_json::Value, key: &str) -> String {
    let found = holder["attributes"].as_array().unwrap().iter().find(|kv| kv["key"] == key);
    found.and_then(|kv| kv["value"]["stringValue"].as_str()).unwrap_or_default().to_string()
}

/// Parses every body with `opentelemetry-proto`'s `ExportLogsServiceRequest`
/// (protobuf's JSON parser refuses unknown fields and mistyped values) and
/// prints one JSON line per log record, as the proto bindings read it.
const PROTO_READER: &str = r#"
import json, pathlib, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json"), key=lambda p: int(p.stem)):
    request = json_format.Parse(path.read_text(), ExportLogsServiceRequest())
    for resource_logs in request.resource_logs:
        resource = {a.key: a.value.string_value for a in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for r in scope_logs.log_records:
                print(json.dumps({"service": resource["service.name"], "scope": scope_logs.scope.name,
                    "attributes": {a.key: a.value.string_value for a in r.attributes}, "time": r.time_unix_nano,
                    "observed": r.observed_time_unix_nano, "severity": r.severity_number,
                    "severity_text": r.severity_text, "body": r.body.string_value}))
"#;

/// What `opentelemetry-proto` reads in `bodies`, one JSON object per log record.
fn read_with_opentelemetry_proto(bodies: &[String]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    for (i, body) in bodies.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.json")), body).unwrap();
    }
    let out = Command::new("python3").args(["-c", PROTO_READER]).arg(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "pip install -r {}: {stderr}",
        workspace_root().join("tests/clients/requirements.txt").display()
    );
    assert!(out.status.success(), "opentelemetry-proto refused a request: {stderr}");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn otlp_collector_gets_every_record_once_through_503s_and_a_restart() {
    let authorization = format!("Bearer {}", unique("otlp"));
    let mut collector = HttpReceiver::start(Otlp { authorization: authorization.clone(), bodies: Vec::new() });
    collector.set_busy(true);
    let sink = format!(
        "[[siem.sinks]]\nname = \"otel\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:{}/v1/logs\"\n\
         headers = {{ \"X-Scope-OrgID\" = \"clinic\" }}\nheaders_env = {{ Authorization = \"SIEM_TEST_OTLP_AUTH\" }}\n\
         batch = 7\n",
        collector.port
    );
    let gateway = Gateway::start(&sink, &[("SIEM_TEST_OTLP_AUTH", &authorization)]);
    gateway.run("busy", 2);
    // Busy: every attempt is refused, nothing is taken.
    collector.wait_out_503s(&gateway);

    // Stopped mid-run, then back on the same port; a failed login on the way.
    let before = gateway.failures();
    collector.stop();
    gateway.run("while-down", 3);
    let (ok, _, _) = psql(&gateway.sluice.dsn("clinic", "not-a-key"), "select 1");
    assert!(!ok, "a wrong key logs in");
    gateway.wait_for_failure(before);
    collector.spawn();
    gateway.run("after", 2);
    let counts = gateway.wait_for_everything("otlp", || collector.ids());
    let repeats: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeats.is_empty(), "every acknowledged batch reached Sluice, yet records came twice: {repeats:?}");

    let bad_requests = collector.bad_requests();
    assert!(bad_requests.is_empty(), "{bad_requests:?}");
    let state = collector.handler();
    let per_request: Vec<usize> = state.bodies.iter().map(|b| log_records(b).len()).collect();
    assert!(per_request.iter().all(|n| (1..=7).contains(n)), "batch = 7: {per_request:?}");
    assert!(per_request.iter().any(|n| *n > 1), "records are batched: {per_request:?}");
    let ours: Vec<serde_json::Value> = state.bodies.iter().flat_map(|b| log_records(b)).collect();
    let theirs = read_with_opentelemetry_proto(&state.bodies);
    assert_eq!(theirs.len(), ours.len(), "opentelemetry-proto read another number of log records");
    let mut seen = BTreeMap::<String, usize>::new();
    for (record, proto) in ours.iter().zip(&theirs) {
        let event: serde_json::Value = serde_json::from_str(record["body"]["stringValue"].as_str().unwrap()).unwrap();
        let id = attribute(record, "event.id");
        assert_eq!(id, event["event_id"].as_str().unwrap(), "{record}");
        assert_eq!(attribute(record, "sluice.type"), event["type"].as_str().unwrap(), "{record}");
        assert_eq!(attribute(record, "sluice.record"), event["record"].to_string(), "{record}");
        // The proto bindings read the same record: times as 64-bit numbers,
        // the event's own time to the nanosecond.
        let time = chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).unwrap();
        assert_eq!(proto["time"].as_u64(), time.timestamp_nanos_opt().map(|n| n as u64), "{proto}");
        assert_eq!(proto["time"].to_string(), record["timeUnixNano"].as_str().unwrap(), "{record}");
        assert_eq!(proto["observed"].to_string(), record["observedTimeUnixNano"].as_str().unwrap(), "{record}");
        assert!(proto["observed"].as_u64() >= proto["time"].as_u64(), "observed before it happened: {proto}");
        assert_eq!(proto["attributes"]["event.id"], id.as_str(), "{proto}");
        assert_eq!(proto["service"], "sluice", "{proto}");
        assert_eq!(proto["scope"], "sluice-siem", "{proto}");
        assert_eq!(proto["body"], record["body"]["stringValue"], "{proto}");
        let severity = (proto["severity"].as_u64().unwrap(), proto["severity_text"].as_str().unwrap());
        assert_eq!(severity.0, record["severityNumber"].as_u64().unwrap(), "{record}");
        let kind = event["type"].as_str().unwrap();
        assert_eq!(severity, if kind == "auth_failure" { (13, "WARN") } else { (9, "INFO") }, "{record}");
        if kind == "request" {
            assert!(event["statement"].as_str().unwrap().contains("marker-"), "statement = full: {event}");
            assert_eq!(attribute(record, "sluice.principal"), "test-agent", "{record}");
            assert_eq!(attribute(record, "sluice.connection"), "clinic", "{record}");
            assert_eq!(attribute(record, "sluice.verdict"), "allow", "{record}");
        }
        if kind == "checkpoint" {
            assert!(event["checkpoint"]["note"].as_str().unwrap().starts_with("sluice/"), "{event}");
        }
        *seen.entry(kind.to_string()).or_default() += 1;
    }
    assert_eq!(seen.get("auth_failure"), Some(&1), "{seen:?}");
    assert!(seen.get("request").is_some_and(|n| *n >= 7), "{seen:?}");
    eprintln!("otlp: {} requests, {} log records by type: {seen:?}", state.bodies.len(), ours.len());
    drop(state);

    gateway.stop_with_everything_sent("otel", || collector.ids());
}
