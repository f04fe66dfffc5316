//! Delivery over real HTTP: a small axum receiver on 127.0.0.1 records what
//! arrives and answers as each test scripts it. Covers headers and the
//! signature (checked with an independent HMAC), event filters, retries,
//! statuses that are not retried, timeouts, a receiver that comes back,
//! Slack payloads, ordering, dropped events and the one-second promise.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_alerts::{
    AlertEvent, Alerter, Backoff, DeliveryObserver, DeliveryReport, DeliverySettings, DeliveryStatus, EventKind,
};
use sluice_config::{InlineSecret, WebhookConfig};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The receiver: what arrived, and the answers to give next (status and a
/// delay before answering); once the script runs out, 200 at once.
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<(u16, u64)>>,
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn on(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }
}

async fn record(
    State(receiver): State<Arc<Receiver>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received = Received { path: uri.path().to_string(), headers, body, at: Instant::now() };
    receiver.received.lock().unwrap().push(received);
    let (status, delay) = receiver.script.lock().unwrap().pop_front().unwrap_or((200, 0));
    tokio::time::sleep(Duration::from_millis(delay)).await;
    StatusCode::from_u16(status).unwrap()
}

async fn serve_on(listener: tokio::net::TcpListener, receiver: Arc<Receiver>) {
    let app = axum::Router::new().fallback(axum::routing::post(record)).with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

async fn start(script: &[(u16, u64)]) -> (SocketAddr, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    receiver.script.lock().unwrap().extend(script.iter().copied());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve_on(listener, Arc::clone(&receiver)).await;
    (addr, receiver)
}

fn webhook(addr: SocketAddr, path: &str) -> WebhookConfig {
    WebhookConfig {
        url: format!("http://{addr}{path}"),
        secret_env: None,
        secret: None,
        format: "json".into(),
        events: None,
    }
}

fn fast() -> DeliverySettings {
    DeliverySettings {
        backoff: Backoff { first: Duration::from_millis(20), max: Duration::from_millis(100), attempts: 8 },
        ..DeliverySettings::default()
    }
}

/// An observer that keeps every report.
fn reports() -> (DeliveryObserver, Arc<Mutex<Vec<DeliveryReport>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&kept);
    (Arc::new(move |report| sink.lock().unwrap().push(report)), kept)
}

/// Polls `done` until it holds, failing after 10 s.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn event(kind: EventKind) -> AlertEvent {
    AlertEvent::new(kind).with_principal("agent-7").with_connection("patients").with_statement("DELETE FROM visits")
}

#[tokio::test]
async fn requests_carry_the_headers_and_a_signature_that_verifies() {
    let (addr, receiver) = start(&[]).await;
    let mut signed = webhook(addr, "/signed");
    signed.secret = Some(InlineSecret::new("webhook-secret"));
    let alerter = Alerter::new(&[signed, webhook(addr, "/unsigned")], None).unwrap();
    let sent = event(EventKind::ApprovalRequested).with_link("http://sluice.example/api/approvals/a1");
    alerter.send(sent.clone());
    wait_for("both deliveries", || receiver.received().len() == 2).await;

    let got = &receiver.on("/signed")[0];
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("user-agent"), format!("sluice/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(got.header("x-sluice-event"), "approval.requested");
    assert_eq!(got.header("x-sluice-delivery"), sent.id);
    let timestamp: u64 = got.header("x-sluice-timestamp").parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(timestamp.abs_diff(now) <= 5, "{timestamp} vs {now}");

    let mut mac = Hmac::<Sha256>::new_from_slice(b"webhook-secret").unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&got.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(got.header("x-sluice-signature"), expected);

    let body: AlertEvent = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body, sent);
    assert_eq!(got.json()["type"], "approval.requested");

    let unsigned = &receiver.on("/unsigned")[0];
    assert!(unsigned.headers.get("x-sluice-signature").is_none());
    assert_eq!(unsigned.header("x-sluice-delivery"), sent.id);
}

#[tokio::test]
async fn a_webhook_gets_only_the_events_it_subscribes_to() {
    let (addr, receiver) = start(&[]).await;
    let mut filtered = webhook(addr, "/filtered");
    filtered.events = Some(vec!["approval.expired".into(), "request.blocked".into()]);
    let alerter = Alerter::new(&[filtered, webhook(addr, "/all")], None).unwrap();
    for kind in EventKind::ALL {
        alerter.send(event(kind));
    }
    wait_for("every event at /all", || receiver.on("/all").len() == 5).await;
    wait_for("two events at /filtered", || receiver.on("/filtered").len() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let types: Vec<String> = receiver.on("/filtered").iter().map(|r| r.header("x-sluice-event").to_string()).collect();
    assert_eq!(types, ["approval.expired", "request.blocked"]);
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let (addr, receiver) = start(&[(500, 0), (500, 0)]).await;
    let (observer, reports) = reports();
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), fast()).unwrap();
    let sent = event(EventKind::RequestBlocked);
    alerter.send(sent.clone());
    wait_for("a report", || !reports.lock().unwrap().is_empty()).await;

    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report.status, DeliveryStatus::Delivered);
    assert_eq!(report.attempts, 3);
    assert_eq!(report.http_status, Some(200));
    assert_eq!(report.event_id, sent.id);
    assert_eq!(report.event_type, EventKind::RequestBlocked);
    assert_eq!(report.url, format!("http://{addr}/hook"));
    let attempts = receiver.received();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|r| r.header("x-sluice-delivery") == sent.id));
}

#[tokio::test]
async fn client_errors_other_than_429_are_not_retried() {
    let (addr, receiver) = start(&[(429, 0), (400, 0)]).await;
    let (observer, reports) = reports();
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), fast()).unwrap();
    alerter.send(event(EventKind::ApprovalDecided));
    wait_for("a report", || !reports.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report.status, DeliveryStatus::Failed);
    assert_eq!(report.attempts, 2, "the 429 is retried, the 400 is not");
    assert_eq!(report.http_status, Some(400));
    assert!(report.error.unwrap().contains("400"));
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_bare_400_fails_after_one_attempt() {
    let (addr, receiver) = start(&[(400, 0)]).await;
    let (observer, reports) = reports();
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), fast()).unwrap();
    alerter.send(event(EventKind::ApprovalExpired));
    wait_for("a report", || !reports.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!((report.status, report.attempts, report.http_status), (DeliveryStatus::Failed, 1, Some(400)));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn retries_give_up_after_the_last_attempt() {
    let (addr, receiver) = start(&[(503, 0), (503, 0), (503, 0), (503, 0)]).await;
    let (observer, reports) = reports();
    let mut settings = fast();
    settings.backoff.attempts = 3;
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), settings).unwrap();
    alerter.send(event(EventKind::AuditStoreUnavailable));
    wait_for("a report", || !reports.lock().unwrap().is_empty()).await;
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!((report.status, report.attempts, report.http_status), (DeliveryStatus::Failed, 3, Some(503)));
    assert!(report.error.unwrap().contains("gave up after 3 attempts"));
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let (addr, receiver) = start(&[(200, 1_000)]).await;
    let (observer, reports) = reports();
    let settings = DeliverySettings { attempt_timeout: Duration::from_millis(200), ..fast() };
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), settings).unwrap();
    alerter.send(event(EventKind::ApprovalRequested));
    wait_for("a report", || !reports.lock().unwrap().is_empty()).await;
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!((report.status, report.attempts), (DeliveryStatus::Delivered, 2));
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_when_it_comes_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (observer, reports) = reports();
    // Room for many attempts, so a slow machine cannot exhaust them before the receiver is back.
    let mut settings = fast();
    settings.backoff.attempts = 50;
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), settings).unwrap();
    let sent = event(EventKind::ApprovalExpired);
    alerter.send(sent.clone());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(reports.lock().unwrap().is_empty(), "still retrying");

    let receiver = Arc::new(Receiver::default());
    serve_on(tokio::net::TcpListener::bind(addr).await.unwrap(), Arc::clone(&receiver)).await;
    wait_for("a report", || !reports.lock().unwrap().is_empty()).await;
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report.status, DeliveryStatus::Delivered);
    assert!(report.attempts > 1, "{report:?}");
    assert_eq!(receiver.received()[0].header("x-sluice-delivery"), sent.id);
}

#[tokio::test]
async fn slack_format_sends_blocks_with_the_statement() {
    let (addr, receiver) = start(&[]).await;
    let mut slack = webhook(addr, "/slack");
    slack.format = "slack".into();
    let alerter = Alerter::new(&[slack], None).unwrap();
    alerter.send(
        event(EventKind::ApprovalRequested)
            .with_reason("where-less delete")
            .with_approval_id("a1")
            .with_link("http://sluice.example/api/approvals/a1"),
    );
    wait_for("the delivery", || receiver.received().len() == 1).await;
    let got = &receiver.received()[0];
    assert_eq!(got.header("x-sluice-event"), "approval.requested");
    let body = got.json();
    assert!(body["text"].as_str().unwrap().contains("agent-7"));
    let blocks = body["blocks"].as_array().expect("blocks");
    let all = serde_json::to_string(blocks).unwrap();
    for expected in ["```DELETE FROM visits```", "patients", "where-less delete", "a1", "Open in Sluice", "/approve"] {
        assert!(all.contains(expected), "{expected} missing from {all}");
    }
}

#[tokio::test]
async fn events_arrive_in_order_even_across_a_retry() {
    let (addr, receiver) = start(&[(503, 0)]).await;
    let (observer, reports) = reports();
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), fast()).unwrap();
    let sent: Vec<AlertEvent> =
        (0..20).map(|i| event(EventKind::RequestBlocked).with_request_id(i.to_string())).collect();
    for e in &sent {
        alerter.send(e.clone());
    }
    wait_for("twenty reports", || reports.lock().unwrap().len() == 20).await;
    let arrived: Vec<String> =
        receiver.received().iter().skip(1).map(|r| r.header("x-sluice-delivery").into()).collect();
    let expected: Vec<String> = sent.iter().map(|e| e.id.clone()).collect();
    assert_eq!(arrived, expected);
    let reported: Vec<String> = reports.lock().unwrap().iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(reported, expected);
}

#[tokio::test]
async fn delivery_starts_within_a_second() {
    let (addr, receiver) = start(&[]).await;
    let alerter = Alerter::new(&[webhook(addr, "/hook")], None).unwrap();
    for kind in [EventKind::ApprovalRequested, EventKind::ApprovalDecided] {
        let sent_at = Instant::now();
        alerter.send(event(kind));
        wait_for("the delivery", || receiver.received().iter().any(|r| r.header("x-sluice-event") == kind.as_str()))
            .await;
        let got = receiver.received().into_iter().find(|r| r.header("x-sluice-event") == kind.as_str()).unwrap();
        let took = got.at - sent_at;
        assert!(took < Duration::from_secs(1), "{kind} took {took:?}");
    }
}

#[tokio::test]
async fn a_full_queue_drops_and_reports_the_event() {
    // The first request is held for a while, so the queue (one slot) fills.
    let (addr, receiver) = start(&[(200, 500)]).await;
    let (observer, reports) = reports();
    let settings = DeliverySettings { queue_capacity: 1, ..fast() };
    let alerter = Alerter::with_settings(&[webhook(addr, "/hook")], Some(observer), settings).unwrap();
    let sent: Vec<AlertEvent> = (0..3).map(|_| event(EventKind::RequestBlocked)).collect();
    alerter.send(sent[0].clone());
    wait_for("the first request", || receiver.received().len() == 1).await;
    alerter.send(sent[1].clone());
    alerter.send(sent[2].clone());

    let dropped = reports.lock().unwrap()[0].clone();
    assert_eq!(dropped.event_id, sent[2].id);
    assert_eq!((dropped.status, dropped.attempts), (DeliveryStatus::Dropped, 0));
    assert!(dropped.error.unwrap().contains("queue is full"));
    wait_for("three reports", || reports.lock().unwrap().len() == 3).await;
    let delivered: Vec<String> = receiver.received().iter().map(|r| r.header("x-sluice-delivery").into()).collect();
    assert_eq!(delivered, [sent[0].id.clone(), sent[1].id.clone()]);
}
