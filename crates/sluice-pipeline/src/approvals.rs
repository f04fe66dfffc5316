//! Just-in-time approval in the gateway: holding a request in its session
//! until a reviewer decides, one-time grants, reviewers' decisions, expiry,
//! and the audit records and alerts each step produces.
//!
//! Owns: [`Approvals`], the service the session (hold, grant) and the
//! reviewer API (list, show, decide) share; waking a held session the
//! moment its request is decided; and the gateway's other operator alerts
//! (`request.blocked`, `audit.store_unavailable`), sent through the same
//! alerter. Does not: store requests or apply the
//! reviewer rules (sluice-approval does), or speak HTTP (sluice-server does).

use chrono::Utc;
use sluice_alerts::{AlertEvent, Alerter, EventKind};
use sluice_approval::{
    ApprovalError, ApprovalRequest, ApprovalStatus, ApprovalStore, Decided, NewApprovalRequest, Ruling,
};
use sluice_audit::AuditLog;
use sluice_model::{ApprovalEvent, AuditEvent, Denial, Principal};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// A step of the workflow failed: in the approval store, or because its
/// audit record could not be written (the step is then not taken, or, for a
/// decision already stored, reported as unrecorded).
#[derive(Debug, thiserror::Error)]
pub enum ApprovalsError {
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error("{step}, but the audit log cannot be written: {source}")]
    Unrecorded { step: &'static str, source: sluice_audit::AuditError },
}

/// How often a held session re-reads its request, besides being woken by a
/// decision taken in this process (a decision made by another Sluice node
/// sharing the store is seen within this).
const HOLD_POLL: Duration = Duration::from_secs(1);

/// The approval workflow of one gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Approvals {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: ApprovalStore,
    rules: sluice_config::Approvals,
    audit: AuditLog,
    alerter: Alerter,
    /// Where reviewers find a request: `<api>/api/approvals/<id>`.
    api_base: Option<String>,
    /// Sessions waiting on a request, woken when it is decided.
    waiters: Mutex<HashMap<Uuid, Arc<Notify>>>,
    /// When `audit.store_unavailable` was last sent (unix seconds): at most
    /// one a minute, however many requests are refused.
    store_alerted_at: AtomicI64,
}

/// Minimum seconds between two `audit.store_unavailable` alerts.
const STORE_ALERT_EVERY: i64 = 60;

/// Where a held request stands when its session stops waiting.
#[derive(Debug, Clone)]
pub(crate) enum HoldOutcome {
    /// Approved: this session took the one-time grant and may run it.
    Granted(ApprovalRequest),
    /// A reviewer denied it.
    Denied(ApprovalRequest),
    /// Still pending (or expired) when the window passed.
    Pending,
}

impl Approvals {
    /// Opens the approval store in the audit store's database.
    pub async fn open(
        url: &str,
        rules: sluice_config::Approvals,
        audit: AuditLog,
        alerter: Alerter,
        api_base: Option<String>,
    ) -> Result<Approvals, ApprovalError> {
        let store = ApprovalStore::open(url).await?;
        let inner = Inner {
            store,
            rules,
            audit,
            alerter,
            api_base,
            waiters: Mutex::default(),
            store_alerted_at: AtomicI64::new(0),
        };
        Ok(Approvals { inner: Arc::new(inner) })
    }

    pub fn rules(&self) -> &sluice_config::Approvals {
        &self.inner.rules
    }

    /// The API address of a request, for notices and alerts.
    pub fn link(&self, id: Uuid) -> Option<String> {
        self.inner.api_base.as_ref().map(|base| format!("{base}/api/approvals/{id}"))
    }

    pub async fn list(&self, status: Option<ApprovalStatus>) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        self.inner.store.list(status).await
    }

    pub async fn get(&self, id: Uuid) -> Result<ApprovalRequest, ApprovalError> {
        self.inner.store.get(id).await
    }

    /// A reviewer's decision, under the reviewer rules. It is recorded in
    /// the audit log (durable before this returns), a session holding the
    /// request is woken, and `approval.decided` is sent.
    pub async fn decide(
        &self,
        id: Uuid,
        reviewer: &Principal,
        ruling: Ruling,
        comment: &str,
    ) -> Result<Decided, ApprovalsError> {
        let decided = self.inner.store.decide(id, reviewer, ruling, comment, &self.inner.rules, Utc::now()).await?;
        let request = &decided.request;
        let mut event = approval_event(request, ruling.as_str(), &reviewer.subject, None, None);
        event.comment = (!comment.is_empty()).then(|| comment.to_string());
        // The decision is in the store; the record follows it. If the log
        // cannot be written the reviewer is told, and the held session
        // still sees the decision (the store is the authority).
        let recorded = self.inner.audit.append(AuditEvent::Approval(event)).await;
        self.wake(id);
        self.alert(EventKind::ApprovalDecided, request, |e| {
            e.with_reviewer(&reviewer.subject).with_decision(ruling.as_str()).with_comment(comment)
        });
        recorded.map_err(|source| ApprovalsError::Unrecorded { step: "the decision was stored", source })?;
        Ok(decided)
    }

    /// Turns every pending request past its expiry into `expired`, records
    /// each and sends `approval.expired`. Run periodically by the server.
    pub async fn expire_due(&self) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let expired = self.inner.store.expire_due(Utc::now()).await?;
        for request in &expired {
            let event = approval_event(request, "expired", "sluice", None, None);
            self.inner.audit.append_lazy(AuditEvent::Approval(event));
            self.wake(request.id);
            self.alert(EventKind::ApprovalExpired, request, |e| e);
        }
        Ok(expired)
    }

    /// Takes the one-time grant for exactly this request from this
    /// principal, if a reviewer approved it. The grant's use is recorded
    /// with `request_id`, the audit request that runs it.
    pub(crate) async fn take_grant(
        &self,
        new: &NewApprovalRequest,
        request_id: &str,
        session_id: &str,
    ) -> Result<Option<ApprovalRequest>, ApprovalsError> {
        let taken = self.inner.store.take_grant(&new.fingerprint(), &new.principal, Utc::now()).await?;
        if let Some(grant) = &taken {
            let event = approval_event(grant, "granted", &new.principal.subject, Some(request_id), Some(session_id));
            self.inner
                .audit
                .append(AuditEvent::Approval(event))
                .await
                .map_err(|source| ApprovalsError::Unrecorded { step: "the grant was taken", source })?;
        }
        Ok(taken)
    }

    /// Records a held request as pending (store, audit record) and sends
    /// `approval.requested`.
    pub(crate) async fn request(
        &self,
        new: NewApprovalRequest,
        request_id: &str,
        session_id: &str,
    ) -> Result<ApprovalRequest, ApprovalsError> {
        let subject = new.principal.subject.clone();
        let request = self.inner.store.create(new, &self.inner.rules, Utc::now()).await?;
        let event = approval_event(&request, "requested", &subject, Some(request_id), Some(session_id));
        self.inner
            .audit
            .append(AuditEvent::Approval(event))
            .await
            .map_err(|source| ApprovalsError::Unrecorded { step: "the held request was stored", source })?;
        self.alert(EventKind::ApprovalRequested, &request, |e| e);
        Ok(request)
    }

    /// Waits up to the hold window for a decision on `request`; an approval
    /// in the window is taken as this session's grant at once.
    pub(crate) async fn wait(
        &self,
        request: ApprovalRequest,
        new: &NewApprovalRequest,
        request_id: &str,
        session_id: &str,
    ) -> Result<HoldOutcome, ApprovalsError> {
        let id = request.id;
        let notify = self.waiter(id);
        let deadline = tokio::time::Instant::now() + self.inner.rules.hold_window;
        let mut current = request;
        let outcome = loop {
            match current.status {
                ApprovalStatus::Approved => match self.take_grant(new, request_id, session_id).await? {
                    Some(grant) => break HoldOutcome::Granted(grant),
                    None => break HoldOutcome::Pending,
                },
                ApprovalStatus::Denied => break HoldOutcome::Denied(current),
                ApprovalStatus::Expired | ApprovalStatus::Used => break HoldOutcome::Pending,
                ApprovalStatus::Pending => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break HoldOutcome::Pending;
            }
            let nap = HOLD_POLL.min(deadline - now);
            let _ = tokio::time::timeout(nap, notify.notified()).await;
            current = self.inner.store.get(id).await?;
        };
        self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        Ok(outcome)
    }

    /// `request.blocked`: a forbid policy or a guardrail refused a request.
    pub(crate) fn alert_blocked(
        &self,
        principal: &str,
        connection: &str,
        statement: &str,
        denial: &Denial,
        request_id: &str,
    ) {
        let event = AlertEvent::new(EventKind::RequestBlocked)
            .with_principal(principal)
            .with_connection(connection)
            .with_statement(statement)
            .with_policy(&denial.policy)
            .with_reason(&denial.reason)
            .with_request_id(request_id);
        self.inner.alerter.send(event);
    }

    /// `audit.store_unavailable`: a session or a request was refused because
    /// its record could not be written. Sent at most once a minute.
    pub(crate) fn alert_store_unavailable(&self, error: &str) {
        let now = Utc::now().timestamp();
        let last = self.inner.store_alerted_at.load(Ordering::Relaxed);
        if now - last < STORE_ALERT_EVERY
            || self.inner.store_alerted_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        self.inner.alerter.send(AlertEvent::new(EventKind::AuditStoreUnavailable).with_error(error));
    }

    fn waiter(&self, id: Uuid) -> Arc<Notify> {
        self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone()
    }

    fn wake(&self, id: Uuid) {
        if let Some(notify) = self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            notify.notify_one();
        }
    }

    fn alert(&self, kind: EventKind, request: &ApprovalRequest, extra: impl FnOnce(AlertEvent) -> AlertEvent) {
        let mut event = AlertEvent::new(kind)
            .with_principal(&request.principal.subject)
            .with_connection(&request.connection)
            .with_approval_id(request.id.to_string())
            .with_statement(&request.statement)
            .with_policy(&request.policy)
            .with_reason(&request.reason)
            .with_status(request.status.as_str());
        if let Some(link) = self.link(request.id) {
            event = event.with_link(link);
        }
        if let Some(rows) = request.row_estimate {
            event = event.with_row_estimate(rows);
        }
        self.inner.alerter.send(extra(event));
    }
}

/// The audit record of one step of `request`.
fn approval_event(
    request: &ApprovalRequest,
    action: &str,
    actor: &str,
    request_id: Option<&str>,
    session_id: Option<&str>,
) -> ApprovalEvent {
    ApprovalEvent {
        approval_id: request.id.to_string(),
        action: action.to_string(),
        status: request.status.as_str().to_string(),
        actor: actor.to_string(),
        principal: request.principal.subject.clone(),
        connection: request.connection.clone(),
        request_id: request_id.map(str::to_string),
        session_id: session_id.map(str::to_string),
        comment: None,
        row_estimate: request.row_estimate,
    }
}
