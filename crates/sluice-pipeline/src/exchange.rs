//! An admitted request on its way (`Exchange`), and a refused one (`Refusal`).
//!
//! Owns: the mask plan a response must go through, and the outcome record that
//! closes every request — also when the adapter drops the exchange without
//! finishing it (recorded as interrupted, so nothing is lost silently).
//! Does not: touch bytes of any protocol.

use crate::session::SessionMeta;
use sluice_audit::AuditLog;
use sluice_model::{AuditEvent, Denial, HoldRule, MaskPlan, OutcomeEvent, OutcomeStatus, Plan};
use std::sync::Arc;
use std::time::Instant;

/// Identity of one request, for its outcome record.
#[derive(Debug)]
pub(crate) struct RequestMeta {
    pub(crate) session: Arc<SessionMeta>,
    pub(crate) audit: AuditLog,
    pub(crate) request_id: String,
    pub(crate) started: Instant,
}

impl RequestMeta {
    /// The outcome follows the request record; it is not awaited (the
    /// request record already made the exchange durable). If Sluice dies
    /// before it is written, verify reports "outcome unknown".
    pub(crate) fn record_outcome(&self, outcome: Outcome) {
        let event = AuditEvent::Outcome(OutcomeEvent {
            request_id: self.request_id.clone(),
            session_id: self.session.id.clone(),
            principal: self.session.principal.subject.clone(),
            connection: self.session.connection.name.clone(),
            status: outcome.status,
            command_tag: outcome.command_tag,
            rows: outcome.rows,
            sqlstate: outcome.sqlstate,
            error: outcome.error,
            bytes_out: outcome.bytes_out,
            duration_us: self.started.elapsed().as_micros() as u64,
        });
        drop(self.audit.append(event));
    }
}

/// How a request ended, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: OutcomeStatus,
    pub command_tag: Option<String>,
    pub rows: u64,
    pub sqlstate: Option<String>,
    pub error: Option<String>,
    pub bytes_out: u64,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome { status: OutcomeStatus::Ok, command_tag: None, rows: 0, sqlstate: None, error: None, bytes_out: 0 }
    }
}

/// An allowed request whose record is durable. The adapter forwards it, masks
/// the response with [`Exchange::mask_plan`], and ends it with
/// [`Exchange::complete`].
#[derive(Debug)]
#[must_use = "an exchange records its outcome when completed or dropped"]
pub struct Exchange {
    meta: RequestMeta,
    plan: Plan,
    completed: bool,
}

impl Exchange {
    pub(crate) fn new(meta: RequestMeta, plan: Plan) -> Exchange {
        Exchange { meta, plan, completed: false }
    }

    pub fn request_id(&self) -> &str {
        &self.meta.request_id
    }

    /// Phase mask: how the response must be rewritten before it reaches the client.
    pub fn mask_plan(&self) -> &MaskPlan {
        &self.plan.mask
    }

    /// Phase record (outcome): closes the request in the audit log.
    pub fn complete(mut self, outcome: Outcome) {
        self.completed = true;
        self.meta.record_outcome(outcome);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.completed {
            self.meta.record_outcome(Outcome {
                status: OutcomeStatus::Interrupted,
                error: Some("the session ended before the target answered".into()),
                ..Outcome::default()
            });
        }
    }
}

/// A request Sluice will not forward, already recorded. The adapter renders
/// it as the protocol's native error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub request_id: String,
    pub kind: RefusalKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalKind {
    /// Policy denied it.
    Policy(Denial),
    /// Policy requires approval first.
    Hold(HoldRule),
    /// The audit store could not record it, so it may not run (fail closed).
    AuditUnavailable(String),
}

impl Refusal {
    /// The message the client reads.
    pub fn message(&self) -> String {
        match &self.kind {
            RefusalKind::Policy(denial) => {
                let mut text = format!("refused by Sluice policy \"{}\": {}", denial.policy, denial.reason);
                if let Some(remedy) = &denial.remedy {
                    text.push_str("; ");
                    text.push_str(remedy);
                }
                text
            }
            RefusalKind::Hold(rule) => {
                format!(
                    "requires approval (policy \"{}\": {}); request id {}",
                    rule.policy, rule.reason, self.request_id
                )
            }
            RefusalKind::AuditUnavailable(why) => {
                format!("Sluice cannot record this statement, so it was not run: {why}")
            }
        }
    }
}
