//! Webhook alerts: what Sluice tells operators when a statement is held,
//! decided, expires or is blocked, or when the audit store is unavailable.
//!
//! Owns: the event vocabulary ([`EventKind`], [`AlertEvent`]), the
//! [`Alerter`] built from `[[alerts.webhooks]]`, signed delivery with
//! retries, the Slack payload, and the [`DeliveryReport`] of every delivery
//! (which the caller records in its audit log through the observer).
//! Does not: decide when an event happens (the pipeline, approvals and
//! audit writer do), or record anything itself.
//!
//! # Delivery
//! [`Alerter::send`] never waits on the network: it puts the event on the
//! queue of every webhook subscribed to its type and returns. Each webhook
//! has one task that takes its queue in order, so one receiver gets events
//! in the order they were sent; the first attempt starts as soon as the
//! event reaches the front. A full queue drops the event (a warning, and a
//! [`DeliveryStatus::Dropped`] report).
//!
//! An attempt is limited to 5 s. Connection errors, timeouts, 429 and 5xx
//! are retried after 250 ms, 500 ms, 1 s, 2 s, ... (at most 30 s apart), for
//! at most 8 attempts; any other non-2xx status is final. Redirects are not
//! followed. Every attempt carries the same event id, so a receiver that
//! saw an attempt whose response was lost can drop the repeat.
//! Because a receiver gets its events in order, one that keeps failing
//! delays the events behind it (by up to about 32 s of backoff plus 8
//! attempt timeouts) but never other receivers.
//!
//! # The request
//! `POST <url>` with body either the [`AlertEvent`] as JSON (`format =
//! "json"`) or a Slack/Mattermost incoming-webhook message (`"slack"`), and:
//!
//! | header | value |
//! | --- | --- |
//! | `Content-Type` | `application/json` |
//! | `User-Agent` | `sluice/<version>` |
//! | `X-Sluice-Event` | the event type, e.g. `approval.requested` |
//! | `X-Sluice-Delivery` | the event id (a UUID v7) |
//! | `X-Sluice-Timestamp` | when this attempt was sent, in Unix seconds |
//! | `X-Sluice-Signature` | `sha256=<hex>`, only when the webhook has a secret |
//!
//! # Verifying a signature
//! The signature is the lower-case hex HMAC-SHA256, keyed with the secret's
//! UTF-8 bytes, of exactly these bytes:
//!
//! ```text
//! <X-Sluice-Timestamp, as sent> "." <the request body, byte for byte>
//! ```
//!
//! e.g. for timestamp `1700000000` and body `{"a":1}`, the HMAC of
//! `1700000000.{"a":1}`. A receiver recomputes it over the raw body (before
//! any JSON parsing), compares it in constant time with the header after
//! `sha256=`, and should refuse timestamps more than a few minutes old. Each
//! retry is signed afresh with its own timestamp.

mod deliver;
mod event;
mod slack;

pub use deliver::{Backoff, DeliveryObserver, DeliveryReport, DeliverySettings, DeliveryStatus, signature};
pub use event::{AlertEvent, EventKind, UnknownEvent};

use deliver::Target;
use sluice_config::WebhookConfig;
use std::fmt;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Why an [`Alerter`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A webhook setting Sluice cannot use, naming its key.
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot build the HTTP client for alerts: {0}")]
    Client(String),
    #[error("webhooks need a tokio runtime to deliver from")]
    NoRuntime,
}

/// Sends alerts to the configured webhooks. Cheap to clone; the delivery
/// tasks finish what is queued and stop once every clone is dropped.
#[derive(Clone)]
pub struct Alerter {
    inner: Arc<Inner>,
}

struct Inner {
    webhooks: Vec<Webhook>,
    observer: Option<DeliveryObserver>,
}

/// A webhook as `send` sees it: what it wants, and its queue.
struct Webhook {
    events: Vec<EventKind>,
    shown_url: String,
    queue: mpsc::Sender<Arc<AlertEvent>>,
}

impl fmt::Debug for Alerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs as reports show them: no credentials, no query strings.
        let urls: Vec<&str> = self.inner.webhooks.iter().map(|w| w.shown_url.as_str()).collect();
        f.debug_struct("Alerter").field("webhooks", &urls).field("observer", &self.inner.observer.is_some()).finish()
    }
}

impl Alerter {
    /// An alerter for `webhooks` (`config.alerts.webhooks`) with the default
    /// [`DeliverySettings`]. Secrets are read now; no network is touched.
    /// With webhooks, it must be called inside a tokio runtime, where the
    /// delivery tasks run.
    pub fn new(webhooks: &[WebhookConfig], observer: Option<DeliveryObserver>) -> Result<Alerter, AlertError> {
        Alerter::with_settings(webhooks, observer, DeliverySettings::default())
    }

    /// [`Alerter::new`] with other retry, timeout or queue settings.
    pub fn with_settings(
        webhooks: &[WebhookConfig],
        observer: Option<DeliveryObserver>,
        settings: DeliverySettings,
    ) -> Result<Alerter, AlertError> {
        if webhooks.is_empty() {
            return Ok(Alerter { inner: Arc::new(Inner { webhooks: Vec::new(), observer }) });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AlertError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.attempt_timeout)
            // A webhook is delivered where the operator said; a redirect
            // would also turn the POST into a GET.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AlertError::Client(e.to_string()))?;
        let targets = webhooks.iter().enumerate().map(|(i, hook)| resolve(i, hook)).collect::<Result<Vec<_>, _>>()?;
        let mut resolved = Vec::with_capacity(targets.len());
        for (target, events) in targets {
            let (queue, receiver) = mpsc::channel(settings.queue_capacity.max(1));
            let shown_url = target.shown_url.clone();
            runtime.spawn(deliver::run(client.clone(), target, settings, observer.clone(), receiver));
            resolved.push(Webhook { events, shown_url, queue });
        }
        Ok(Alerter { inner: Arc::new(Inner { webhooks: resolved, observer }) })
    }

    /// An alerter with no webhooks: `send` does nothing.
    pub fn disabled() -> Alerter {
        Alerter { inner: Arc::new(Inner { webhooks: Vec::new(), observer: None }) }
    }

    /// Queues `event` for every webhook subscribed to its type and returns
    /// at once. Never blocks and needs no runtime.
    pub fn send(&self, event: AlertEvent) {
        let event = Arc::new(event);
        for webhook in self.inner.webhooks.iter().filter(|w| w.events.contains(&event.kind)) {
            let reason = match webhook.queue.try_send(Arc::clone(&event)) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => "the webhook's queue is full",
                Err(mpsc::error::TrySendError::Closed(_)) => "the webhook's delivery task has stopped",
            };
            tracing::warn!(event = %event.kind, id = %event.id, url = %webhook.shown_url, reason, "alert dropped");
            if let Some(observe) = &self.inner.observer {
                observe(DeliveryReport {
                    event_id: event.id.clone(),
                    event_type: event.kind,
                    url: webhook.shown_url.clone(),
                    attempts: 0,
                    status: DeliveryStatus::Dropped,
                    http_status: None,
                    error: Some(reason.to_string()),
                });
            }
        }
    }
}

/// Checks and resolves webhook `i`: its URL, format, events and secret.
fn resolve(i: usize, hook: &WebhookConfig) -> Result<(Target, Vec<EventKind>), AlertError> {
    let invalid =
        |field: &str, message: String| AlertError::Invalid { key: format!("alerts.webhooks[{i}].{field}"), message };
    let url = reqwest::Url::parse(&hook.url).map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(invalid("url", "must be an http:// or https:// URL with a host".into()));
    }
    let format = hook.format().map_err(|message| invalid("format", message))?;
    let events = match &hook.events {
        None => EventKind::ALL.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(j, name)| name.parse().map_err(|e: UnknownEvent| invalid(&format!("events[{j}]"), e.to_string())))
            .collect::<Result<_, _>>()?,
    };
    if hook.secret_env.is_some() && hook.secret.is_some() {
        return Err(invalid("secret", "set secret_env or secret, not both".into()));
    }
    let secret = match hook.secret() {
        Some((field, secret)) => Some(secret.resolve().map_err(|message| invalid(field, message))?.into_bytes()),
        None => None,
    };
    if secret.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(hook.secret().map_or("secret", |(field, _)| field), "the secret is empty".into()));
    }
    let shown_url = shown_url(&url);
    Ok((Target { url, shown_url, secret, format }, events))
}

/// `url` fit for logs and audit records: scheme, host, port and path, with
/// no user, password, query or fragment, and `***` for any path segment that
/// looks like a token (16 or more characters mixing letters and digits, as
/// in Slack, Mattermost and Discord webhook URLs).
fn shown_url(url: &reqwest::Url) -> String {
    let looks_like_token = |segment: &str| {
        segment.len() >= 16
            && segment.chars().any(|c| c.is_ascii_digit())
            && segment.chars().any(|c| c.is_ascii_alphabetic())
    };
    let path: Vec<&str> =
        url.path().split('/').map(|segment| if looks_like_token(segment) { "***" } else { segment }).collect();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}{}", url.scheme(), url.host_str().unwrap_or_default(), path.join("/"))
}

#[cfg(test)]
mod tests {
    use super::{AlertError, Alerter, shown_url};
    use sluice_config::{InlineSecret, WebhookConfig};

    fn hook(url: &str) -> WebhookConfig {
        WebhookConfig { url: url.into(), secret_env: None, secret: None, format: "json".into(), events: None }
    }

    fn key_of(result: Result<Alerter, AlertError>) -> String {
        match result {
            Err(AlertError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn shown_urls_carry_no_secrets() {
        let url = |s: &str| shown_url(&reqwest::Url::parse(s).unwrap());
        assert_eq!(url("https://user:pw@hooks.example:8443/sluice?token=abc#x"), "https://hooks.example:8443/sluice");
        assert_eq!(
            url("https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXX1234XXXXXXXX"),
            "https://hooks.slack.com/services/T0001/B0001/***"
        );
        assert_eq!(
            url("http://[::1]:9000/hooks/sluice-approvals-webhook"),
            "http://[::1]:9000/hooks/sluice-approvals-webhook"
        );
    }

    #[tokio::test]
    async fn settings_it_cannot_use_name_their_key() {
        let mut bad = hook("https://h.example");
        bad.events = Some(vec!["approval.requested".into(), "nope".into()]);
        assert_eq!(key_of(Alerter::new(&[hook("https://ok.example"), bad], None)), "alerts.webhooks[1].events[1]");

        let mut bad = hook("https://h.example");
        bad.format = "xml".into();
        assert_eq!(key_of(Alerter::new(&[bad], None)), "alerts.webhooks[0].format");

        assert_eq!(key_of(Alerter::new(&[hook("ftp://h.example")], None)), "alerts.webhooks[0].url");

        let mut bad = hook("https://h.example");
        bad.secret_env = Some("SLUICE_ALERTS_TEST_UNSET_SECRET".into());
        assert_eq!(key_of(Alerter::new(&[bad.clone()], None)), "alerts.webhooks[0].secret_env");

        bad.secret = Some(InlineSecret::new("x"));
        assert_eq!(key_of(Alerter::new(&[bad], None)), "alerts.webhooks[0].secret");
    }

    #[test]
    fn without_webhooks_no_runtime_is_needed() {
        Alerter::new(&[], None).unwrap().send(crate::AlertEvent::new(crate::EventKind::RequestBlocked));
        Alerter::disabled().send(crate::AlertEvent::new(crate::EventKind::ApprovalExpired));
        assert!(matches!(Alerter::new(&[hook("https://h.example")], None), Err(AlertError::NoRuntime)));
    }
}
