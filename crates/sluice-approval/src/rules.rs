//! The reviewer rules, as pure functions over a request and a ballot.
//!
//! Owns: who may decide (reviewer groups, not the requester), when a
//! decision is taken (pending, not past expiry, first decision of this
//! reviewer), and what the decisions add up to (one deny denies; a quorum
//! of distinct approvals approves).
//! Does not: read or write the store; `store` runs these inside the
//! transaction that holds the request's lock.

use chrono::{DateTime, Utc};
use sluice_model::Principal;

use crate::{ApprovalError, ApprovalRequest, ApprovalStatus, ReviewDecision, Ruling};

/// What a decision did to its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An approval was counted; the request stays pending until the quorum.
    Counted { approvals: u32, required: u32 },
    /// The quorum was reached: the request is approved.
    Approved,
    /// A reviewer denied it.
    Denied,
}

impl Outcome {
    /// The status the request has after this outcome.
    pub fn status(self) -> ApprovalStatus {
        match self {
            Outcome::Counted { .. } => ApprovalStatus::Pending,
            Outcome::Approved => ApprovalStatus::Approved,
            Outcome::Denied => ApprovalStatus::Denied,
        }
    }
}

/// Whether `reviewer` may decide `request` now. `allowed_groups` are the
/// reviewer groups configured for the request's connection. Checked in
/// this order: reviewer group, self-approval, status, expiry, a second
/// decision by the same reviewer.
pub(crate) fn check_ballot(
    request: &ApprovalRequest,
    reviewer: &Principal,
    allowed_groups: &[String],
    now: DateTime<Utc>,
) -> Result<(), ApprovalError> {
    let id = request.id;
    if !allowed_groups.iter().any(|group| reviewer.in_group(group)) {
        return Err(ApprovalError::NotAReviewer {
            reviewer: reviewer.subject.clone(),
            connection: request.connection.clone(),
            allowed: allowed_groups.to_vec(),
        });
    }
    if reviewer.subject == request.principal.subject {
        return Err(ApprovalError::SelfApproval { id, reviewer: reviewer.subject.clone() });
    }
    if request.status != ApprovalStatus::Pending {
        return Err(ApprovalError::NotPending { id, status: request.status });
    }
    if now >= request.expires_at {
        return Err(ApprovalError::Expired { id, expires_at: request.expires_at });
    }
    if request.decisions.iter().any(|d| d.reviewer == reviewer.subject) {
        return Err(ApprovalError::AlreadyDecided { id, reviewer: reviewer.subject.clone() });
    }
    Ok(())
}

/// What `decisions` (one per reviewer) add up to under a quorum of `required`.
pub(crate) fn tally(decisions: &[ReviewDecision], required: u32) -> Outcome {
    if decisions.iter().any(|d| d.ruling == Ruling::Deny) {
        return Outcome::Denied;
    }
    let approvals = u32::try_from(decisions.len()).unwrap_or(u32::MAX);
    if approvals >= required { Outcome::Approved } else { Outcome::Counted { approvals, required } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Requester;
    use sluice_model::PrincipalKind;
    use std::time::Duration;

    fn principal(subject: &str, groups: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            kind: PrincipalKind::Human,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            issuer: "api-key".into(),
            token_id: None,
        }
    }

    fn decision(reviewer: &str, ruling: Ruling) -> ReviewDecision {
        ReviewDecision { reviewer: reviewer.into(), ruling, comment: String::new(), decided_at: at(10) }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("time")
    }

    fn request(status: ApprovalStatus, decisions: Vec<ReviewDecision>) -> ApprovalRequest {
        ApprovalRequest {
            id: uuid::Uuid::nil(),
            principal: Requester::from(&principal("agent-7", &["analysts", "reviewers"])),
            connection: "clinic".into(),
            fingerprint: String::new(),
            statement: "DELETE FROM visits".into(),
            params_sha256: None,
            policy: "hold-where-less".into(),
            reason: "no WHERE".into(),
            classification: None,
            row_estimate: None,
            approvals_required: 2,
            grant_ttl: Duration::from_secs(60),
            created_at: at(0),
            expires_at: at(100),
            status,
            approved_at: None,
            grant_expires_at: None,
            used_at: None,
            decisions,
        }
    }

    /// One row of `ballots`: request status, its decisions, the reviewer,
    /// the time, and the expected error's start (`None`: allowed).
    type Ballot = (ApprovalStatus, Vec<ReviewDecision>, Principal, i64, Option<&'static str>);

    #[test]
    fn ballots() {
        let reviewers = ["reviewers".to_string()];
        let pending = ApprovalStatus::Pending;
        let rows: Vec<Ballot> = vec![
            (pending, vec![], principal("rita", &["reviewers"]), 50, None),
            (pending, vec![decision("sam", Ruling::Approve)], principal("rita", &["reviewers"]), 50, None),
            (pending, vec![], principal("rita", &["analysts"]), 50, Some("rita is not a reviewer")),
            (pending, vec![], principal("rita", &[]), 50, Some("rita is not a reviewer")),
            (pending, vec![], principal("agent-7", &["reviewers"]), 50, Some("agent-7 asked for")),
            (ApprovalStatus::Approved, vec![], principal("rita", &["reviewers"]), 50, Some("approval request")),
            (ApprovalStatus::Used, vec![], principal("rita", &["reviewers"]), 50, Some("approval request")),
            (pending, vec![], principal("rita", &["reviewers"]), 100, Some("approval request")),
            (
                pending,
                vec![decision("rita", Ruling::Approve)],
                principal("rita", &["reviewers"]),
                50,
                Some("rita has already decided"),
            ),
        ];
        for (status, decisions, reviewer, now, expected) in rows {
            let request = request(status, decisions);
            let result = check_ballot(&request, &reviewer, &reviewers, at(now));
            match (expected, result) {
                (None, Ok(())) => {}
                (Some(start), Err(e)) => {
                    assert!(e.to_string().starts_with(start), "{}: `{e}` should start with `{start}`", reviewer.subject)
                }
                (expected, result) => panic!("{} at {now}: expected {expected:?}, got {result:?}", reviewer.subject),
            }
        }
    }

    #[test]
    fn not_pending_and_expired_say_so() {
        let rita = principal("rita", &["reviewers"]);
        let reviewers = ["reviewers".to_string()];
        let denied = request(ApprovalStatus::Denied, vec![]);
        assert!(matches!(
            check_ballot(&denied, &rita, &reviewers, at(1)),
            Err(ApprovalError::NotPending { status: ApprovalStatus::Denied, .. })
        ));
        let pending = request(ApprovalStatus::Pending, vec![]);
        assert!(matches!(check_ballot(&pending, &rita, &reviewers, at(100)), Err(ApprovalError::Expired { .. })));
        let err = check_ballot(&pending, &rita, &[], at(1)).expect_err("no reviewer groups").to_string();
        assert!(err.contains("no group is configured"), "{err}");
    }

    #[test]
    fn tallies() {
        let approve = |r: &str| decision(r, Ruling::Approve);
        let deny = |r: &str| decision(r, Ruling::Deny);
        let rows: Vec<(Vec<ReviewDecision>, u32, Outcome)> = vec![
            (vec![approve("a")], 1, Outcome::Approved),
            (vec![approve("a")], 2, Outcome::Counted { approvals: 1, required: 2 }),
            (vec![approve("a"), approve("b")], 2, Outcome::Approved),
            (vec![deny("a")], 1, Outcome::Denied),
            (vec![approve("a"), deny("b")], 2, Outcome::Denied),
            (vec![approve("a"), approve("b"), deny("c")], 3, Outcome::Denied),
        ];
        for (decisions, required, expected) in rows {
            assert_eq!(tally(&decisions, required), expected, "{decisions:?} with quorum {required}");
        }
    }
}
