//! `[alerts]`: the webhooks that hear about approvals, blocked requests and
//! an unavailable audit store, and the checks on them.
//!
//! Owns: the section's types, the event and format names a webhook may use,
//! and their validation (URL shape, one secret source, known formats and
//! events). Delivery, signing and payloads belong to `sluice-alerts`, which
//! resolves the secrets when it is built.

use crate::{Invalid, Secret};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// Every event a webhook can subscribe to, in the order `sluice-alerts`
/// declares them. A webhook without `events` gets all of them.
pub const ALERT_EVENTS: [&str; 5] =
    ["approval.requested", "approval.decided", "approval.expired", "request.blocked", "audit.store_unavailable"];

/// `[alerts]`. Absent: no webhooks, nothing is sent anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// `[[alerts.webhooks]]`: one receiver.
///
/// `format` and `events` stay text here so that a wrong value is refused by
/// [`crate::Config::from_toml`] naming its key (`alerts.webhooks[0].events[1]`)
/// rather than as a bare parse error; [`WebhookConfig::format`] and
/// [`ALERT_EVENTS`] give them meaning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where events are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret.
    pub secret_env: Option<String>,
    /// The signing secret itself. At most one of `secret_env` and `secret`;
    /// with neither, requests carry no signature header.
    pub secret: Option<InlineSecret>,
    /// `"json"` (default): the event itself; `"slack"`: a Slack or
    /// Mattermost incoming-webhook payload.
    #[serde(default = "default_format")]
    pub format: String,
    /// The event names this receiver gets; absent: all of [`ALERT_EVENTS`].
    pub events: Option<Vec<String>>,
}

fn default_format() -> String {
    WebhookFormat::Json.as_str().into()
}

impl WebhookConfig {
    /// The payload format; `Err` names what is wrong (the caller adds the key).
    pub fn format(&self) -> Result<WebhookFormat, String> {
        self.format.parse()
    }

    /// Where the signing secret comes from, with the config field that
    /// names it (for errors); `None` when requests go unsigned.
    pub fn secret(&self) -> Option<(&'static str, WebhookSecret<'_>)> {
        match (&self.secret_env, &self.secret) {
            (Some(var), _) => Some(("secret_env", WebhookSecret::Named(Secret::Env(var.clone())))),
            (None, Some(inline)) => Some(("secret", WebhookSecret::Inline(inline))),
            (None, None) => None,
        }
    }

    /// Whether this receiver wants events named `event`.
    pub fn subscribes_to(&self, event: &str) -> bool {
        self.events.as_ref().is_none_or(|events| events.iter().any(|e| e == event))
    }
}

/// A webhook's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        }
    }
}

impl FromStr for WebhookFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(format!("unknown format `{other}` (expected json or slack)")),
        }
    }
}

/// A signing secret written into the config file. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct InlineSecret(String);

impl InlineSecret {
    pub fn new(secret: impl Into<String>) -> InlineSecret {
        InlineSecret(secret.into())
    }

    /// The secret text, for whoever signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InlineSecret(<redacted>)")
    }
}

/// Where a webhook's signing secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSecret<'a> {
    /// Read when asked, like a connection's `password_env`.
    Named(Secret),
    /// Written in the file.
    Inline(&'a InlineSecret),
}

impl WebhookSecret<'_> {
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            WebhookSecret::Named(secret) => secret.resolve(),
            WebhookSecret::Inline(inline) => Ok(inline.expose().to_string()),
        }
    }
}

pub(crate) fn validate(alerts: &Alerts) -> Result<(), Invalid> {
    for (i, hook) in alerts.webhooks.iter().enumerate() {
        let at = |field: &str, message: String| Invalid { key: format!("alerts.webhooks[{i}].{field}"), message };
        check_url(&hook.url).map_err(|message| at("url", message))?;
        if hook.secret_env.is_some() && hook.secret.is_some() {
            return Err(at("secret", "set secret_env or secret, not both".into()));
        }
        if hook.secret_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(at("secret_env", "must name an environment variable".into()));
        }
        if hook.secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            return Err(at("secret", "must not be empty (leave it out to send unsigned requests)".into()));
        }
        hook.format().map_err(|message| at("format", message))?;
        let Some(events) = &hook.events else { continue };
        if events.is_empty() {
            return Err(at("events", "must name at least one event (leave it out to get every event)".into()));
        }
        let mut seen = HashSet::new();
        for (j, event) in events.iter().enumerate() {
            let field = format!("events[{j}]");
            if !ALERT_EVENTS.contains(&event.as_str()) {
                return Err(at(
                    &field,
                    format!("unknown event `{event}` (expected one of {})", ALERT_EVENTS.join(", ")),
                ));
            }
            if !seen.insert(event.as_str()) {
                return Err(at(&field, format!("event `{event}` is listed twice")));
            }
        }
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host, and no spaces.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => (host, Some(after.strip_prefix(':').unwrap_or(after))),
            None => return Err(format!("`{url}` has an unclosed `[` in its host")),
        },
        None => host_port.rsplit_once(':').map_or((host_port, None), |(host, port)| (host, Some(port))),
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("`{url}` has a port that is not a number from 0 to 65535"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ALERT_EVENTS, WebhookFormat, WebhookSecret};
    use crate::{Config, LoadError, Secret};
    use std::path::Path;

    const BASE: &str = "[listeners]\npostgres = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://x.db\"\n";

    fn load(alerts: &str) -> Result<Config, LoadError> {
        Config::from_toml(&format!("{BASE}{alerts}"), Path::new("/etc/sluice"))
    }

    fn hook(body: &str) -> String {
        format!("[[alerts.webhooks]]\n{body}")
    }

    fn refused(alerts: &str, key: &str, words: &str) {
        match load(alerts) {
            Err(LoadError::Invalid(invalid)) => {
                assert_eq!(invalid.key, key, "{alerts}: {}", invalid.message);
                assert!(invalid.message.contains(words), "{alerts}: {}", invalid.message);
            }
            other => panic!("{alerts}: expected a refusal naming {key}, got {other:?}"),
        }
    }

    #[test]
    fn absent_section_means_no_webhooks() {
        assert!(load("").unwrap().alerts.webhooks.is_empty());
        assert!(load("[alerts]\n").unwrap().alerts.webhooks.is_empty());
    }

    #[test]
    fn full_webhooks_load_with_defaults() {
        let config = load(
            r#"
[[alerts.webhooks]]
url = "https://hooks.example/sluice"
secret_env = "SLUICE_WEBHOOK_SECRET"
format = "slack"
events = ["approval.requested", "approval.expired", "request.blocked"]
[[alerts.webhooks]]
url = "http://127.0.0.1:9000/hook?channel=ops"
secret = "s3cret"
[[alerts.webhooks]]
url = "http://[::1]:8080"
"#,
        )
        .unwrap();
        let hooks = &config.alerts.webhooks;
        assert_eq!(hooks.len(), 3);
        assert_eq!(hooks[0].format(), Ok(WebhookFormat::Slack));
        let (field, secret) = hooks[0].secret().unwrap();
        assert_eq!(field, "secret_env");
        assert_eq!(secret, WebhookSecret::Named(Secret::Env("SLUICE_WEBHOOK_SECRET".into())));
        assert!(hooks[0].subscribes_to("approval.expired"));
        assert!(!hooks[0].subscribes_to("approval.decided"));

        assert_eq!(hooks[1].format(), Ok(WebhookFormat::Json));
        let (field, secret) = hooks[1].secret().unwrap();
        assert_eq!(field, "secret");
        assert_eq!(secret.resolve().unwrap(), "s3cret");
        assert!(ALERT_EVENTS.iter().all(|e| hooks[1].subscribes_to(e)));

        assert!(hooks[2].secret().is_none());
    }

    #[test]
    fn inline_secret_is_not_printed() {
        let config = load(&hook("url = \"https://h.example\"\nsecret = \"hunter2-very-secret\"\n")).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["hooks.example/sluice", "ftp://hooks.example", "https://", "https:///path", "http://h:port/x"] {
            refused(&hook(&format!("url = \"{url}\"\n")), "alerts.webhooks[0].url", "");
        }
        refused(&hook("url = \"https://h.example/a b\"\n"), "alerts.webhooks[0].url", "spaces");
        refused(&hook("url = \"http://h:99999\"\n"), "alerts.webhooks[0].url", "port");
        refused(&hook("url = \"mailto:ops@example.com\"\n"), "alerts.webhooks[0].url", "not an http");
    }

    #[test]
    fn both_secret_forms_are_refused() {
        refused(
            &hook("url = \"https://h.example\"\nsecret_env = \"S\"\nsecret = \"x\"\n"),
            "alerts.webhooks[0].secret",
            "not both",
        );
    }

    #[test]
    fn empty_secrets_are_refused() {
        refused(
            &hook("url = \"https://h.example\"\nsecret_env = \" \"\n"),
            "alerts.webhooks[0].secret_env",
            "variable",
        );
        refused(&hook("url = \"https://h.example\"\nsecret = \"\"\n"), "alerts.webhooks[0].secret", "empty");
    }

    #[test]
    fn unknown_format_is_refused() {
        refused(&hook("url = \"https://h.example\"\nformat = \"xml\"\n"), "alerts.webhooks[0].format", "`xml`");
    }

    #[test]
    fn unknown_events_are_refused_naming_their_index() {
        let ok = hook("url = \"https://ok.example\"\n");
        refused(
            &format!(
                "{ok}{}",
                hook("url = \"https://h.example\"\nevents = [\"approval.requested\", \"approval.denied\"]\n")
            ),
            "alerts.webhooks[1].events[1]",
            "unknown event `approval.denied`",
        );
        refused(
            &hook("url = \"https://h.example\"\nevents = [\"request.blocked\", \"request.blocked\"]\n"),
            "alerts.webhooks[0].events[1]",
            "twice",
        );
        refused(&hook("url = \"https://h.example\"\nevents = []\n"), "alerts.webhooks[0].events", "at least one");
    }

    #[test]
    fn unknown_keys_and_missing_url_are_refused() {
        let err = load(&hook("url = \"https://h.example\"\nheaders = {}\n")).unwrap_err().to_string();
        assert!(err.contains("unknown field `headers`"), "{err}");
        let err = load("[alerts]\nwebhook = []\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `webhook`"), "{err}");
        let err = load(&hook("format = \"json\"\n")).unwrap_err().to_string();
        assert!(err.contains("missing field `url`"), "{err}");
    }
}
