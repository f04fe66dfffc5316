//! An admitted request on its way (`Exchange`), and a refused one (`Refusal`).
//!
//! Owns: the masker a response must go through, the patient identifiers it
//! disclosed (as pseudonyms, for the outcome), and the outcome record that
//! closes every request — also when the adapter drops the exchange without
//! finishing it (recorded as interrupted, so nothing is lost silently).
//! Does not: touch bytes of any protocol.

use crate::budget::ResultLimit;
use crate::session::SessionMeta;
use sluice_audit::{AuditLog, Durable};
use sluice_mask::{ClassCounts, ColumnMap, Detector, Masker, Subjects};
use sluice_model::{AuditEvent, Denial, DenialCause, HoldRule, OutcomeEvent, OutcomeStatus};
use std::sync::{Arc, OnceLock};
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
    pub(crate) fn record_outcome(&self, outcome: Outcome, rows_charged: u64, subjects: Option<&Subjects>) {
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
            rows_charged,
            masked: outcome.masked.iter().map(|(class, n)| (class.as_str().to_string(), n)).collect(),
            subjects: subjects.map(Subjects::by_class).unwrap_or_default(),
            subjects_omitted: subjects.map_or(0, Subjects::omitted),
        });
        self.audit.append_lazy(event);
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
    /// Result rows relayed to the client (data rows, COPY OUT rows). The
    /// exchange charges them to its hourly budget, if it has one.
    pub rows_returned: u64,
    /// Values masked in the response, per PHI class (counts only).
    pub masked: ClassCounts,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome {
            status: OutcomeStatus::Ok,
            command_tag: None,
            rows: 0,
            sqlstate: None,
            error: None,
            bytes_out: 0,
            rows_returned: 0,
            masked: ClassCounts::default(),
        }
    }
}

/// An allowed request on its way. The adapter forwards it, holds its
/// response until [`Exchange::release`] says so, masks it with
/// [`Exchange::masker`], and ends it with [`Exchange::complete`].
///
/// A write-ahead request is released from the start. A pure read is
/// forwarded while its record commits (the fsync overlaps the round trip);
/// its response is released only once the adapter has awaited the
/// [`PendingCommit`] it takes from the exchange. An adapter that never awaits
/// it never releases the response: the failure mode is a stall, not a leak.
#[derive(Debug)]
#[must_use = "an exchange records its outcome when completed or dropped"]
pub struct Exchange {
    meta: RequestMeta,
    limit: Option<ResultLimit>,
    /// `None` when the request's profile keeps everything.
    masker: Option<Arc<Masker>>,
    /// The patient identifiers the response carried (accounting of
    /// disclosures), and the column rules that find them; `None` when no
    /// pseudonym key is configured.
    subjects: Option<(Subjects, Arc<Detector>)>,
    completed: bool,
    commit: Arc<OnceLock<Result<(), String>>>,
    pending: Option<Durable>,
}

/// Whether an exchange's response may reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release<'a> {
    /// The request record is durable: relay the response.
    Released,
    /// The record is still committing: hold the response.
    Held,
    /// The record could not be written: the response must not reach the
    /// client; answer with this reason instead (fail closed).
    Refused(&'a str),
}

/// The commit of an overlapped request's record, for the adapter to await
/// before it forwards anything after the request.
#[derive(Debug)]
#[must_use = "the response stays held until the commit is awaited"]
pub struct PendingCommit {
    durable: Durable,
    commit: Arc<OnceLock<Result<(), String>>>,
}

impl PendingCommit {
    /// Waits for the record and releases (or refuses) the exchange's response.
    pub async fn wait(self) -> Result<(), String> {
        let result = self.durable.await.map(|_| ()).map_err(|e| e.to_string());
        let _ = self.commit.set(result.clone());
        result
    }
}

impl Exchange {
    /// An exchange whose request record is already durable.
    pub(crate) fn new(meta: RequestMeta, limit: Option<ResultLimit>, masker: Option<Arc<Masker>>) -> Exchange {
        let commit = Arc::new(OnceLock::from(Ok(())));
        Exchange { meta, limit, masker, subjects: None, completed: false, commit, pending: None }
    }

    /// An exchange forwarded while its request record commits.
    pub(crate) fn overlapped(
        meta: RequestMeta,
        limit: Option<ResultLimit>,
        masker: Option<Arc<Masker>>,
        durable: Durable,
    ) -> Exchange {
        let commit = Arc::new(OnceLock::new());
        Exchange { meta, limit, masker, subjects: None, completed: false, commit, pending: Some(durable) }
    }

    /// Collects the response's patient identifiers into `subjects`.
    pub(crate) fn with_subjects(mut self, subjects: Option<(Subjects, Arc<Detector>)>) -> Exchange {
        self.subjects = subjects;
        self
    }

    pub fn request_id(&self) -> &str {
        &self.meta.request_id
    }

    /// The commit to await, for an overlapped request (once; `None` after).
    pub fn take_pending_commit(&mut self) -> Option<PendingCommit> {
        self.pending.take().map(|durable| PendingCommit { durable, commit: self.commit.clone() })
    }

    /// Whether the response may be relayed yet.
    pub fn release(&self) -> Release<'_> {
        match self.commit.get() {
            Some(Ok(())) => Release::Released,
            Some(Err(reason)) => Release::Refused(reason),
            None => Release::Held,
        }
    }

    /// Phase mask: the masker every response value goes through before it
    /// reaches the client; `None` when the request's profile keeps
    /// everything (the response passes through untouched).
    pub fn masker(&self) -> Option<&Arc<Masker>> {
        self.masker.as_ref()
    }

    /// Phase mask, accounting of disclosures: the column rules that say
    /// which result columns hold MRN, SSN and NAME values, when they are
    /// collected (also under a profile that keeps everything).
    pub fn subject_columns(&self) -> Option<&ColumnMap> {
        self.subjects.as_ref().map(|(_, detector)| detector.columns())
    }

    /// Where the adapter adds each relayed value of a subject column (and
    /// ends each row); the outcome record carries their pseudonyms.
    pub fn subjects_mut(&mut self) -> Option<&mut Subjects> {
        self.subjects.as_mut().map(|(subjects, _)| subjects)
    }

    /// The budget the response must stay within (`None`: unlimited). The
    /// adapter checks each result row against it and, at the first row that
    /// would cross it, stops relaying and ends the request with its message.
    pub fn result_limit(&self) -> Option<&ResultLimit> {
        self.limit.as_ref()
    }

    /// Phase record (outcome): closes the request in the audit log, and
    /// charges the rows returned to the hourly budget, if there is one.
    pub fn complete(mut self, outcome: Outcome) {
        self.completed = true;
        let window = self.limit.as_ref().and_then(|limit| limit.window.as_ref());
        let rows_charged = window.map_or(0, |window| {
            window.charge(outcome.rows_returned);
            outcome.rows_returned
        });
        self.meta.record_outcome(outcome, rows_charged, self.subjects.as_ref().map(|(s, _)| s));
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.completed {
            self.meta.record_outcome(
                Outcome {
                    status: OutcomeStatus::Interrupted,
                    error: Some("the session ended before the target answered".into()),
                    ..Outcome::default()
                },
                0,
                // Rows relayed before the end were disclosed all the same.
                self.subjects.as_ref().map(|(s, _)| s),
            );
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
    /// Policy requires approval, and none was given in the hold window:
    /// the approval request stays pending (or, with `note`, cannot be
    /// decided by anyone).
    Held { rule: HoldRule, approval: String, note: Option<String> },
    /// The audit store could not record it, so it may not run (fail closed).
    AuditUnavailable(String),
}

impl Refusal {
    /// The message the client reads.
    pub fn message(&self) -> String {
        match &self.kind {
            RefusalKind::Policy(denial) => {
                let by = match denial.cause {
                    DenialCause::Policy => "policy",
                    DenialCause::Budget => "budget of policy",
                    DenialCause::Review => "review under policy",
                };
                let mut text = format!("refused by Sluice {by} \"{}\": {}", denial.policy, denial.reason);
                if let Some(remedy) = &denial.remedy {
                    text.push_str("; ");
                    text.push_str(remedy);
                }
                text
            }
            RefusalKind::Held { rule, approval, note } => {
                let next = match note {
                    Some(note) => note.clone(),
                    None => format!("run it again once a reviewer approves it (sluice approvals approve {approval})"),
                };
                format!(
                    "approval pending: {approval}: this statement requires approval (policy \"{}\": {}); {next}",
                    rule.policy, rule.reason
                )
            }
            RefusalKind::AuditUnavailable(why) => {
                format!("Sluice cannot record this statement, so it was not run: {why}")
            }
        }
    }
}
