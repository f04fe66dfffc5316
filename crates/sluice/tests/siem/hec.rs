//! Splunk HEC end to end (part of the `siem` test): an HTTP receiver
//! speaking HEC answers 503 for a while, is stopped and started again on
//! the same port mid-run, and must end with every audit record and a
//! signed checkpoint at least once, each event as HEC wraps it and with
//! `statement = "fingerprint"` keeping the statement text home.
//!
//! Owns: what a HEC request must look like (path, `Splunk` token) and the
//! events taken from one.

use super::Gateway;
use super::http_receiver::{Handler, HttpReceiver, Request, Response};
use crate::support::unique;

/// The HEC events endpoint guarded by `token`, and every event it took.
struct Hec {
    token: String,
    /// Every accepted HEC event, one JSON object each.
    events: Vec<serde_json::Value>,
}

impl Handler for Hec {
    const BUSY: &'static str = r#"{"text":"Server is busy","code":9}"#;

    fn check(&self, request: &Request) -> Result<(), (Response, Vec<String>)> {
        let target = (request.method.as_str(), request.path.as_str(), request.version.as_str());
        if target != ("POST", "/services/collector/event", "HTTP/1.1") {
            return Err((("404 Not Found", r#"{"text":"Not found","code":404}"#), vec![request.line()]));
        }
        let authorization = request.header("authorization");
        if authorization != Some(format!("Splunk {}", self.token).as_str()) {
            let refusal = ("401 Unauthorized", r#"{"text":"Invalid token","code":4}"#);
            return Err((refusal, vec![format!("authorization: {authorization:?}")]));
        }
        Ok(())
    }

    fn take(&mut self, request: Request, bad: &mut Vec<String>) -> Response {
        for line in request.body.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(event) => self.events.push(event),
                Err(e) => bad.push(format!("not JSON ({e}): {line}")),
            }
        }
        ("200 OK", r#"{"text":"Success","code":0}"#)
    }

    fn ids(&self) -> Vec<String> {
        self.events.iter().map(|e| e["event"]["event_id"].as_str().unwrap().to_string()).collect()
    }
}

#[test]
fn hec_receiver_gets_every_record_through_503s_and_a_restart() {
    let token = format!("hec-{}", unique("token"));
    let mut hec = HttpReceiver::start(Hec { token: token.clone(), events: Vec::new() });
    hec.set_busy(true);
    let sink = format!(
        "[[siem.sinks]]\nname = \"splunk\"\nkind = \"hec\"\nurl = \"http://127.0.0.1:{}\"\ntoken_env = \"SIEM_TEST_HEC_TOKEN\"\nstatement = \"fingerprint\"\nbatch = 7\n",
        hec.port
    );
    let gateway = Gateway::start(&sink, &[("SIEM_TEST_HEC_TOKEN", &token)]);
    gateway.run("busy", 2);
    // Busy: every attempt is refused, nothing is taken.
    hec.wait_out_503s(&gateway);

    // Stopped mid-run, then back on the same port.
    let before = gateway.failures();
    hec.stop();
    gateway.run("while-down", 3);
    gateway.wait_for_failure(before);
    hec.spawn();
    gateway.run("after", 2);
    let counts = gateway.wait_for_everything("hec", || hec.ids());

    let bad_requests = hec.bad_requests();
    assert!(bad_requests.is_empty(), "{bad_requests:?}");
    let taken = hec.handler();
    let mut requests = 0;
    for event in &taken.events {
        assert_eq!(event["sourcetype"], "sluice", "{event}");
        assert_eq!(event["source"], "sluice", "{event}");
        assert!(event["time"].as_f64().unwrap() > 1.7e9, "{event}");
        let inner = &event["event"];
        assert!(inner["time"].is_string() && inner["type"].is_string() && inner["record"].is_u64(), "{event}");
        if inner["type"] == "request" {
            requests += 1;
            // statement = "fingerprint": the text (with its constants) stays home.
            assert!(inner.get("statement").is_none(), "{event}");
            assert!(!inner.to_string().contains("marker-"), "{event}");
            assert!(inner["fingerprint"].as_str().is_some_and(|f| !f.is_empty()), "{event}");
            assert_eq!(inner["principal"], "test-agent");
            assert_eq!(inner["decision"]["verdict"], "allow");
        }
        if inner["type"] == "checkpoint" {
            assert!(inner["checkpoint"]["note"].as_str().unwrap().starts_with("sluice/"), "{event}");
        }
    }
    assert!(requests >= 7, "{requests} request events");
    let repeats: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!("hec: {} events, repeated: {repeats:?}", counts.len());
    drop(taken);

    gateway.stop_with_everything_sent("splunk", || hec.ids());
}
