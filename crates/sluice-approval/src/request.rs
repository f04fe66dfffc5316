//! The approval record: what was asked, by whom, and what reviewers said.
//!
//! Owns: `ApprovalRequest` and its parts, `NewApprovalRequest` (what the
//! pipeline knows when a decision is `Hold`), the status and the reviewers'
//! decisions, and the request fingerprint.
//! Does not: store anything or apply rules (see `store` and `rules`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sluice_model::{HoldRule, Principal, PrincipalKind, SqlClassification};
use uuid::Uuid;

/// Where a request is in its life; see the crate docs for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// Waiting for reviewers.
    Pending,
    /// Enough distinct reviewers approved; usable once until `grant_expires_at`.
    Approved,
    /// A reviewer denied it. Final.
    Denied,
    /// Nobody decided before `expires_at`. Final.
    Expired,
    /// An approved request that has run (or been handed out to run). Final.
    Used,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
        ApprovalStatus::Used,
    ];

    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Used => "used",
        }
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApprovalStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApprovalStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown approval status `{s}` (pending, approved, denied, expired, used)"))
    }
}

/// What a reviewer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ruling {
    Approve,
    Deny,
}

impl Ruling {
    pub fn as_str(self) -> &'static str {
        match self {
            Ruling::Approve => "approve",
            Ruling::Deny => "deny",
        }
    }
}

impl FromStr for Ruling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approve" => Ok(Ruling::Approve),
            "deny" => Ok(Ruling::Deny),
            other => Err(format!("unknown ruling `{other}` (approve, deny)")),
        }
    }
}

/// One reviewer's decision on one request. A request holds a list of them
/// because a quorum needs several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDecision {
    /// The reviewer's principal subject.
    pub reviewer: String,
    pub ruling: Ruling,
    /// Shown to the requester when the ruling is a deny.
    pub comment: String,
    pub decided_at: DateTime<Utc>,
}

/// Who asked. A copy of the parts of their `Principal` that reviewers need
/// and that grants are matched on, as they were when the request was held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub subject: String,
    pub kind: PrincipalKind,
    pub groups: Vec<String>,
    /// Who vouched for the subject (`api-key` or the OIDC issuer): a grant
    /// is matched on subject *and* issuer, since two issuers may both have
    /// an `alice`.
    pub issuer: String,
}

impl From<&Principal> for Requester {
    fn from(principal: &Principal) -> Self {
        Requester {
            subject: principal.subject.clone(),
            kind: principal.kind,
            groups: principal.groups.clone(),
            issuer: principal.issuer.clone(),
        }
    }
}

/// What the pipeline knows about a request when policy says `Hold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApprovalRequest {
    pub principal: Principal,
    pub connection: String,
    /// The statement text exactly as the client sent it.
    pub statement: String,
    /// SHA-256 (hex) over the bound parameter values, as the adapter
    /// computes it for the audit record; `None` without parameters.
    pub params_sha256: Option<String>,
    /// The policy that held the request, and why.
    pub hold: HoldRule,
    pub classification: Option<SqlClassification>,
    /// Rows the upstream expects the statement to touch (`EXPLAIN`), when known.
    pub row_estimate: Option<u64>,
}

impl NewApprovalRequest {
    /// The request's fingerprint; see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(
            &self.connection,
            &self.principal.subject,
            self.classification.as_ref().map_or("", |c| c.fingerprint.as_str()),
            &self.statement,
            self.params_sha256.as_deref(),
        )
    }
}

/// A held request, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// A UUID v7, so ids sort by creation time.
    pub id: Uuid,
    pub principal: Requester,
    pub connection: String,
    /// See [`fingerprint`]: a grant is used only by a request with the same one.
    pub fingerprint: String,
    pub statement: String,
    pub params_sha256: Option<String>,
    /// The policy that held it.
    pub policy: String,
    pub reason: String,
    pub classification: Option<SqlClassification>,
    pub row_estimate: Option<u64>,
    /// Distinct approvals needed, fixed when the request was created so a
    /// config change does not move the goalposts of a pending request.
    pub approvals_required: u32,
    /// How long an approval stays usable, fixed when the request was created.
    pub grant_ttl: Duration,
    pub created_at: DateTime<Utc>,
    /// Still pending at this time, it becomes `expired`.
    pub expires_at: DateTime<Utc>,
    pub status: ApprovalStatus,
    /// When the last approval the quorum needed was given.
    pub approved_at: Option<DateTime<Utc>>,
    /// `approved_at + grant_ttl`: the grant may be taken before this time.
    pub grant_expires_at: Option<DateTime<Utc>>,
    /// When the grant was taken.
    pub used_at: Option<DateTime<Utc>>,
    /// Every reviewer's decision, oldest first.
    pub decisions: Vec<ReviewDecision>,
}

impl ApprovalRequest {
    /// Approvals given so far (each reviewer decides at most once).
    pub fn approvals(&self) -> u32 {
        let approvals = self.decisions.iter().filter(|d| d.ruling == Ruling::Approve).count();
        u32::try_from(approvals).unwrap_or(u32::MAX)
    }
}

/// Version tag hashed first, so a future change of the inputs cannot
/// collide with today's fingerprints.
const FINGERPRINT_DOMAIN: &str = "sluice-approval-fingerprint-v1";

/// The request fingerprint: lowercase hex SHA-256 over the length-prefixed
/// fields listed in the crate docs (*The fingerprint*), in that order.
pub fn fingerprint(
    connection: &str,
    subject: &str,
    classifier_fingerprint: &str,
    statement: &str,
    params_sha256: Option<&str>,
) -> String {
    let mut hash = Sha256::new();
    for field in
        [FINGERPRINT_DOMAIN, connection, subject, classifier_fingerprint, statement, params_sha256.unwrap_or("")]
    {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field.as_bytes());
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_the_documented_bytes() {
        let mut bytes = Vec::new();
        for field in [FINGERPRINT_DOMAIN, "clinic", "agent-7", "fp", "DELETE FROM t", ""] {
            bytes.extend((field.len() as u64).to_be_bytes());
            bytes.extend(field.as_bytes());
        }
        let expected = hex::encode(Sha256::digest(&bytes));
        assert_eq!(fingerprint("clinic", "agent-7", "fp", "DELETE FROM t", None), expected);
    }

    /// Each row changes one input; every fingerprint must differ from the
    /// base and from each other (fields cannot run together).
    #[test]
    fn every_field_changes_the_fingerprint() {
        let rows = [
            ("clinic", "agent-7", "fp", "DELETE FROM t", None),
            ("clinic2", "agent-7", "fp", "DELETE FROM t", None),
            ("clinic", "agent-8", "fp", "DELETE FROM t", None),
            ("clinic", "agent-7", "fq", "DELETE FROM t", None),
            ("clinic", "agent-7", "fp", "DELETE FROM  t", None),
            ("clinic", "agent-7", "fp", "DELETE FROM t", Some("00ff")),
            ("clinica", "gent-7", "fp", "DELETE FROM t", None),
            ("clinic", "agent-7fp", "", "DELETE FROM t", None),
        ];
        let mut seen = std::collections::HashSet::new();
        for (connection, subject, fp, statement, params) in rows {
            let fingerprint = fingerprint(connection, subject, fp, statement, params);
            assert_eq!(fingerprint.len(), 64);
            assert!(seen.insert(fingerprint), "collision for {connection:?} {subject:?} {fp:?} {statement:?}");
        }
    }

    #[test]
    fn status_and_ruling_names_round_trip() {
        for status in ApprovalStatus::ALL {
            assert_eq!(status.as_str().parse::<ApprovalStatus>(), Ok(status));
        }
        assert!("done".parse::<ApprovalStatus>().is_err());
        for ruling in [Ruling::Approve, Ruling::Deny] {
            assert_eq!(ruling.as_str().parse::<Ruling>(), Ok(ruling));
        }
        assert!("maybe".parse::<Ruling>().is_err());
    }
}
