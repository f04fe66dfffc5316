//! Splunk HTTP Event Collector: a batch of events as one POST.
//!
//! Owns: the HEC payload (newline-separated `{"time", "host", "source",
//! "sourcetype", "event"}` objects) and its `Authorization: Splunk <token>`
//! header.
//! Does not: retry (the runner does), read the token from config, or
//! decide which answers count as received (`http` does: any 2xx).

use std::path::Path;

use crate::SinkError;
use crate::event::SiemEvent;
use crate::http::Endpoint;

/// The HEC endpoint under the collector's base URL.
pub const HEC_PATH: &str = "/services/collector/event";

/// The HEC body for `events`: one JSON object per event, newline-separated.
/// `time` is epoch seconds with microseconds, taken from the event.
pub fn payload(events: &[SiemEvent], host: &str) -> String {
    let mut body = String::new();
    for event in events {
        let time = chrono::DateTime::parse_from_rfc3339(&event.time)
            .map(|t| format!("{}.{:06}", t.timestamp(), t.timestamp_subsec_micros()))
            .unwrap_or_else(|_| "0".into());
        let host = serde_json::to_string(host).expect("a string serialises");
        body.push_str(&format!(
            "{{\"time\":{time},\"host\":{host},\"source\":\"sluice\",\"sourcetype\":\"sluice\",\"event\":{}}}\n",
            event.to_json()
        ));
    }
    body
}

/// One HEC collector.
#[derive(Debug)]
pub struct HecSink {
    endpoint: Endpoint,
    host: String,
}

impl HecSink {
    /// A sink posting to `<url>/services/collector/event` with `token`;
    /// HTTPS servers are checked against `ca_file` when given.
    pub fn new(url: &str, token: &str, ca_file: Option<&Path>) -> Result<HecSink, SinkError> {
        let endpoint = format!("{}{HEC_PATH}", url.trim_end_matches('/'));
        let authorization = format!("Splunk {token}");
        Ok(HecSink {
            endpoint: Endpoint::new(&endpoint, [("authorization", authorization.as_str())], ca_file)?,
            host: crate::syslog::local_hostname(),
        })
    }

    /// Posts `events` as one request; `Ok` on any 2xx.
    pub async fn send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        self.endpoint.post(payload(events, &self.host)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::payload;
    use crate::event::SiemEvent;
    use sluice_audit::StoredCheckpoint;

    #[test]
    fn payload_is_one_hec_event_per_line() {
        let events: Vec<SiemEvent> = [3u64, 9]
            .iter()
            .map(|&size| {
                SiemEvent::from_checkpoint(&StoredCheckpoint {
                    size,
                    time: "2026-11-05T09:30:00.000250Z".into(),
                    root: "00".repeat(32),
                    note: "n\n".into(),
                })
            })
            .collect();
        let body = payload(&events, "gw\"1");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(body.ends_with('\n'));
        for (line, size) in lines.iter().zip([3, 9]) {
            assert!(line.starts_with("{\"time\":1793871000.000250,"), "{line}");
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["host"], "gw\"1");
            assert_eq!(value["source"], "sluice");
            assert_eq!(value["sourcetype"], "sluice");
            assert_eq!(value["event"]["event_id"], format!("sluice/checkpoint/{size}"));
            assert_eq!(value["event"]["type"], "checkpoint");
        }
    }
}
