//! The hold phase: a request policy holds waits, in its session, for a
//! reviewer; or runs at once on a one-time grant approved earlier.
//!
//! Owns: turning a `Hold` decision into a grant, a wait with the client told
//! what it waits on, and the run or refusal that ends it. Does not: store
//! approvals or apply reviewer rules (`Approvals` and sluice-approval do).

use crate::approvals::HoldOutcome;
use crate::exchange::RefusalKind;
use crate::session::{Adapter, Session};
use sluice_approval::{ApprovalRequest, NewApprovalRequest, Ruling};
use sluice_model::{Action, Decision, Denial, DenialCause, HoldRule, Plan, StatementKind};

/// How a held request's wait ended.
pub(crate) enum Review {
    /// Approved in the window: run it, once, under this plan.
    Run(Plan),
    Refuse(RefusalKind),
}

/// A held request that a reviewer already approved (after an earlier
/// window passed) runs once now; any other stays held. A store that cannot
/// be read denies (fail closed).
pub(crate) async fn grant_or_hold(session: &Session, action: &Action, rule: HoldRule, request_id: &str) -> Decision {
    let approvals = session.gateway().approvals();
    let new = new_request(session, action, &rule);
    match approvals.take_grant(&new, request_id, session.id()).await {
        Ok(Some(grant)) => Decision::Allow(approved_plan(rule, &grant)),
        Ok(None) => Decision::Hold(rule),
        Err(e) => Decision::Deny(Denial::by_policy(
            rule.policy,
            format!("this statement requires approval, and Sluice cannot read approvals: {e}"),
            None,
        )),
    }
}

/// Records the held request for reviewers, tells the client, and waits up
/// to the hold window for a decision.
pub(crate) async fn wait_for_review<A: Adapter>(
    session: &Session,
    adapter: &mut A,
    request: &A::Request,
    action: &Action,
    rule: HoldRule,
    request_id: &str,
) -> Review {
    let approvals = session.gateway().approvals();
    let mut new = new_request(session, action, &rule);
    // Reviewers see how many rows a single write without parameters would
    // touch (a statement with parameters is planned only with its values).
    let Action::Sql(sql) = action;
    let single_write = sql.classification.as_ref().is_some_and(|c| c.kind == StatementKind::Write && c.statements == 1);
    if single_write && sql.param_count == 0 {
        new.row_estimate = adapter.estimate_rows(request).await;
    }
    let held = match approvals.request(new.clone(), request_id, session.id()).await {
        Ok(held) => held,
        Err(e) => return Review::Refuse(RefusalKind::AuditUnavailable(e.to_string())),
    };
    let approval = held.id.to_string();
    let connection = &session.connection().name;
    if approvals.rules().reviewer_groups_for(connection).is_empty() {
        let note = format!("no reviewer group is configured for connection \"{connection}\", so nobody can approve it");
        return Review::Refuse(RefusalKind::Held { rule, approval, note: Some(note) });
    }
    let window = approvals.rules().hold_window;
    let mut notice = format!(
        "Sluice: this statement requires approval (policy \"{}\": {}). Approval request {approval} is pending; \
         waiting up to {}s for a reviewer to run: sluice approvals approve {approval}",
        rule.policy,
        rule.reason,
        window.as_secs()
    );
    if let Some(rows) = held.row_estimate {
        notice.push_str(&format!(" The target estimates it touches {rows} rows."));
    }
    if let Some(link) = approvals.link(held.id) {
        notice.push_str(&format!(" (or POST {link}/approve)"));
    }
    // A client that cannot be told is refused below all the same.
    let _ = adapter.notice(&notice).await;
    match approvals.wait(held, &new, request_id, session.id()).await {
        Ok(HoldOutcome::Granted(grant)) => Review::Run(approved_plan(rule, &grant)),
        Ok(HoldOutcome::Denied(denied)) => Review::Refuse(RefusalKind::Policy(denial(rule, &denied))),
        Ok(HoldOutcome::Pending) => Review::Refuse(RefusalKind::Held { rule, approval, note: None }),
        Err(e) => Review::Refuse(RefusalKind::AuditUnavailable(e.to_string())),
    }
}

/// What reviewers see and grants are matched on.
fn new_request(session: &Session, action: &Action, rule: &HoldRule) -> NewApprovalRequest {
    let Action::Sql(sql) = action;
    NewApprovalRequest {
        principal: session.principal().clone(),
        connection: session.connection().name.clone(),
        statement: sql.text.clone(),
        params_sha256: sql.params_sha256.clone(),
        hold: rule.clone(),
        classification: sql.classification.as_deref().cloned(),
        row_estimate: None,
    }
}

/// An approved request runs under the obligations of the policy that held
/// it; the approval is named among its policies in the audit record.
fn approved_plan(rule: HoldRule, grant: &ApprovalRequest) -> Plan {
    Plan {
        policies: vec![rule.policy, format!("approval:{}", grant.id)],
        mask_profile: rule.mask_profile,
        budget: rule.budget,
    }
}

/// The refusal of a denied request, with the reviewer's comment.
fn denial(rule: HoldRule, denied: &ApprovalRequest) -> Denial {
    let by = denied.decisions.iter().rev().find(|d| d.ruling == Ruling::Deny);
    let (reviewer, comment) = by.map_or(("a reviewer", ""), |d| (d.reviewer.as_str(), d.comment.as_str()));
    let reason = format!("approval {} was denied by {reviewer}: {comment}", denied.id);
    Denial { cause: DenialCause::Review, ..Denial::by_policy(rule.policy, reason, None) }
}
