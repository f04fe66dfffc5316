//! Delivery to one webhook: the worker task that takes its queue in order,
//! the signed POST, the retry schedule, and the [`DeliveryReport`] each
//! event ends with.
//!
//! Owns: headers and signature bytes, what is retried (connection errors,
//! timeouts, 429, 5xx) and what is not (any other status), the backoff.

use crate::{AlertEvent, EventKind};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sluice_config::WebhookFormat;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Called with every final delivery result, from the webhook's task (keep
/// it quick; hand slow work such as an audit append to a channel or task).
pub type DeliveryObserver = Arc<dyn Fn(DeliveryReport) + Send + Sync>;

/// How one event ended at one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub event_id: String,
    pub event_type: EventKind,
    /// The webhook URL without credentials, query string or fragment.
    pub url: String,
    /// HTTP attempts made (0 when the event was dropped before any).
    pub attempts: u32,
    pub status: DeliveryStatus,
    /// The status of the last response, if there was one.
    pub http_status: Option<u16>,
    /// Why the last attempt failed, or why the event was dropped.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// A 2xx response.
    Delivered,
    /// Retries ran out, or the receiver answered with a status not retried.
    Failed,
    /// Never attempted: the webhook's queue was full or its task had stopped.
    Dropped,
}

/// When to try again: `first`, then doubling, never more than `max`, for at
/// most `attempts` attempts in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Backoff {
    /// 250 ms, 500 ms, 1 s, 2 s, ... capped at 30 s; 8 attempts.
    fn default() -> Self {
        Backoff { first: Duration::from_millis(250), max: Duration::from_secs(30), attempts: 8 }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// How deliveries behave; [`Default`] is what a gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    pub backoff: Backoff,
    /// Limit on one attempt, connection to response headers.
    pub attempt_timeout: Duration,
    /// Events waiting per webhook before new ones are dropped.
    pub queue_capacity: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            backoff: Backoff::default(),
            attempt_timeout: Duration::from_secs(5),
            queue_capacity: 10_000,
        }
    }
}

/// One webhook, resolved: what its task needs.
pub(crate) struct Target {
    pub(crate) url: reqwest::Url,
    /// `url` as reports show it.
    pub(crate) shown_url: String,
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) format: WebhookFormat,
}

/// `X-Sluice-Signature` for `body` sent at `timestamp`: the HMAC-SHA256,
/// keyed with the secret, of the ASCII decimal timestamp, a `.`, and the
/// body bytes exactly as sent.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers `queue` to `target` one event at a time, in order, until every
/// sender is gone and the queue is empty.
pub(crate) async fn run(
    client: reqwest::Client,
    target: Target,
    settings: DeliverySettings,
    observer: Option<DeliveryObserver>,
    mut queue: mpsc::Receiver<Arc<AlertEvent>>,
) {
    while let Some(event) = queue.recv().await {
        let report = deliver(&client, &target, &settings, &event).await;
        let (kind, id, url, attempts) = (event.kind, &event.id, &target.shown_url, report.attempts);
        if report.status == DeliveryStatus::Delivered {
            tracing::debug!(event = %kind, %id, %url, attempts, "alert delivered");
        } else {
            let error = report.error.as_deref().unwrap_or("");
            let http_status = report.http_status;
            tracing::warn!(event = %kind, %id, %url, attempts, http_status, error, "alert not delivered");
        }
        if let Some(observe) = &observer {
            observe(report);
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered(u16),
    /// Worth another try: no response, 429 or 5xx.
    Retry(Option<u16>, String),
    /// The receiver refused it; trying again will not help.
    Refused(u16),
}

async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    settings: &DeliverySettings,
    event: &AlertEvent,
) -> DeliveryReport {
    let body = match target.format {
        WebhookFormat::Json => serde_json::to_vec(event),
        WebhookFormat::Slack => serde_json::to_vec(&crate::slack::payload(event)),
    }
    .expect("an alert serialises to JSON");
    let report = |attempts, status, http_status, error| DeliveryReport {
        event_id: event.id.clone(),
        event_type: event.kind,
        url: target.shown_url.clone(),
        attempts,
        status,
        http_status,
        error,
    };
    let attempts = settings.backoff.attempts.max(1);
    let mut last = (None, String::new());
    for attempt in 1..=attempts {
        match attempt_once(client, target, settings, event, &body).await {
            Attempt::Delivered(status) => return report(attempt, DeliveryStatus::Delivered, Some(status), None),
            Attempt::Refused(status) => {
                let error = format!("the receiver answered HTTP {status}, which is not retried");
                return report(attempt, DeliveryStatus::Failed, Some(status), Some(error));
            }
            Attempt::Retry(status, error) => {
                let url = &target.shown_url;
                tracing::debug!(event = %event.kind, id = %event.id, %url, attempt, %error, "alert attempt failed");
                last = (status, error);
            }
        }
        if attempt < attempts {
            tokio::time::sleep(settings.backoff.delay(attempt)).await;
        }
    }
    let (status, error) = last;
    report(attempts, DeliveryStatus::Failed, status, Some(format!("gave up after {attempts} attempts: {error}")))
}

async fn attempt_once(
    client: &reqwest::Client,
    target: &Target,
    settings: &DeliverySettings,
    event: &AlertEvent,
    body: &[u8],
) -> Attempt {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut request = client
        .post(target.url.clone())
        .timeout(settings.attempt_timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Sluice-Event", event.kind.as_str())
        .header("X-Sluice-Delivery", &event.id)
        .header("X-Sluice-Timestamp", timestamp.to_string());
    if let Some(secret) = &target.secret {
        request = request.header("X-Sluice-Signature", signature(secret, timestamp, body));
    }
    match request.body(body.to_vec()).send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Attempt::Delivered(status.as_u16())
            } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                Attempt::Retry(Some(status.as_u16()), format!("HTTP {}", status.as_u16()))
            } else {
                Attempt::Refused(status.as_u16())
            }
        }
        // `without_url`: the URL may carry a token in its query string.
        Err(error) => Attempt::Retry(None, describe(&error.without_url())),
    }
}

/// The error and its causes on one line (reqwest's own message is terse).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{Backoff, signature};
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_250ms_up_to_30s() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (1..=9).map(|n| backoff.delay(n).as_millis() as u64).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff.attempts, 8);
        assert_eq!(backoff.delay(40), Duration::from_secs(30));
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Computed independently with
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", 1_700_000_000, br#"{"a":1}"#),
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }
}
