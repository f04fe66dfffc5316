//! The alert vocabulary: [`EventKind`] (the event names webhooks subscribe
//! to) and [`AlertEvent`] (what a `json` webhook receives, field for field).
//!
//! Owns: the names, the JSON shape of an event, and the builder that keeps
//! call sites short. Does not: send anything.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What happened. The names are the `type` field of an event, the
/// `X-Sluice-Event` header, and what `alerts.webhooks[].events` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A statement is held for a reviewer.
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    /// A reviewer approved or denied a held statement.
    #[serde(rename = "approval.decided")]
    ApprovalDecided,
    /// A held statement was not decided in time.
    #[serde(rename = "approval.expired")]
    ApprovalExpired,
    /// A high-risk policy or a guardrail refused a request.
    #[serde(rename = "request.blocked")]
    RequestBlocked,
    /// The audit store could not be written, so requests are being refused.
    #[serde(rename = "audit.store_unavailable")]
    AuditStoreUnavailable,
}

impl EventKind {
    /// Every kind, in the order of `sluice_config::ALERT_EVENTS`.
    pub const ALL: [EventKind; 5] = [
        EventKind::ApprovalRequested,
        EventKind::ApprovalDecided,
        EventKind::ApprovalExpired,
        EventKind::RequestBlocked,
        EventKind::AuditStoreUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ApprovalDecided => "approval.decided",
            EventKind::ApprovalExpired => "approval.expired",
            EventKind::RequestBlocked => "request.blocked",
            EventKind::AuditStoreUnavailable => "audit.store_unavailable",
        }
    }

    /// A short human title, for chat payloads.
    pub fn title(self) -> &'static str {
        match self {
            EventKind::ApprovalRequested => "Approval requested",
            EventKind::ApprovalDecided => "Approval decided",
            EventKind::ApprovalExpired => "Approval expired",
            EventKind::RequestBlocked => "Request blocked",
            EventKind::AuditStoreUnavailable => "Audit store unavailable",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event name that is not one of [`EventKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event `{0}` (expected one of approval.requested, approval.decided, approval.expired, \
         request.blocked, audit.store_unavailable)"
)]
pub struct UnknownEvent(pub String);

impl FromStr for EventKind {
    type Err = UnknownEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == s).ok_or_else(|| UnknownEvent(s.to_string()))
    }
}

/// One alert, as a `json` webhook receives it. Absent fields are left out of
/// the JSON, not sent as `null`.
///
/// ```
/// use sluice_alerts::{AlertEvent, EventKind};
/// let event = AlertEvent::new(EventKind::ApprovalRequested)
///     .with_principal("agent-7")
///     .with_connection("patients")
///     .with_statement("DELETE FROM visits")
///     .with_row_estimate(1200);
/// assert_eq!(event.kind.as_str(), "approval.requested");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// A UUID v7, unique per event; the `X-Sluice-Delivery` header. The same
    /// on every retry, so a receiver can drop duplicates.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When the event happened (RFC 3339, UTC).
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// The statement as reviewers see it (parameters masked upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The policies or guardrail that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    /// `approved` or `denied`, on `approval.decided`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The approval's status after the event (`pending`, `approved`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The approval in the API (`.../api/approvals/<id>`); chat payloads add
    /// `/approve` and `/deny` to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The planner's row estimate for DML, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `with_<field>(value)` setters for the optional text fields.
macro_rules! text_setters {
    ($($(#[$doc:meta])* $setter:ident => $field:ident;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $setter(mut self, value: impl Into<String>) -> AlertEvent {
                self.$field = Some(value.into());
                self
            }
        )*
    };
}

impl AlertEvent {
    /// A new event of `kind`, with a fresh id and the current time.
    pub fn new(kind: EventKind) -> AlertEvent {
        AlertEvent {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            time: Utc::now(),
            principal: None,
            connection: None,
            approval_id: None,
            statement: None,
            policy: None,
            reason: None,
            reviewer: None,
            decision: None,
            comment: None,
            status: None,
            link: None,
            row_estimate: None,
            request_id: None,
            error: None,
        }
    }

    text_setters! {
        with_principal => principal;
        with_connection => connection;
        with_approval_id => approval_id;
        with_statement => statement;
        with_policy => policy;
        with_reason => reason;
        with_reviewer => reviewer;
        with_decision => decision;
        with_comment => comment;
        with_status => status;
        /// The approval's URL in the API, without `/approve` or `/deny`.
        with_link => link;
        with_request_id => request_id;
        with_error => error;
    }

    #[must_use]
    pub fn with_row_estimate(mut self, rows: u64) -> AlertEvent {
        self.row_estimate = Some(rows);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{AlertEvent, EventKind};

    #[test]
    fn names_round_trip_and_match_the_config() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, sluice_config::ALERT_EVENTS);
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let err = "approval.denied".parse::<EventKind>().unwrap_err();
        assert!(err.to_string().contains("`approval.denied`"), "{err}");
    }

    #[test]
    fn json_has_type_and_leaves_absent_fields_out() {
        let event = AlertEvent::new(EventKind::RequestBlocked).with_principal("agent").with_row_estimate(3);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "request.blocked");
        assert_eq!(json["principal"], "agent");
        assert_eq!(json["row_estimate"], 3);
        assert!(json.get("statement").is_none());
        assert!(json.get("kind").is_none());
        let time = json["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        let id = uuid::Uuid::parse_str(json["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let back: AlertEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
