//! The verdict on a request: allow with a plan, deny with a reason, or hold.

use serde::{Deserialize, Serialize};

/// What the decide phase returns. Never a bool: each arm carries what the
/// later phases need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Plan),
    Deny(Denial),
    Hold(HoldRule),
}

impl Decision {
    pub fn verdict(&self) -> Verdict {
        match self {
            Decision::Allow(_) => Verdict::Allow,
            Decision::Deny(_) => Verdict::Deny,
            Decision::Hold(_) => Verdict::Hold,
        }
    }

    /// The part of the decision that goes into the audit record.
    pub fn summary(&self) -> DecisionSummary {
        let (policies, reason) = match self {
            Decision::Allow(plan) => (plan.policies.clone(), None),
            Decision::Deny(denial) => (vec![denial.policy.clone()], Some(denial.reason.clone())),
            Decision::Hold(rule) => (vec![rule.policy.clone()], Some(rule.reason.clone())),
        };
        DecisionSummary { verdict: self.verdict(), policies, reason }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    Hold,
}

/// What an allowed request carries into forward, mask and record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The policies that allowed the request, for the audit record.
    pub policies: Vec<String>,
    /// The masking profile the permitting policy named (`@mask`); `None`:
    /// the gateway's default profile applies.
    pub mask_profile: Option<String>,
    /// How much of the response may reach the caller (`@budget`).
    pub budget: Budget,
}

/// Row and byte limits on what a request returns; `None` is unlimited.
/// When several policies set the same limit, the smallest wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub rows_per_statement: Option<u64>,
    pub bytes_per_statement: Option<u64>,
    /// Rows returned per principal and connection over a rolling hour.
    pub rows_per_hour: Option<u64>,
}

impl Budget {
    pub fn is_unlimited(&self) -> bool {
        *self == Budget::default()
    }

    /// The tighter of two budgets, limit by limit.
    pub fn tighten(&mut self, other: &Budget) {
        fn min(a: &mut Option<u64>, b: Option<u64>) {
            *a = match (*a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
        }
        min(&mut self.rows_per_statement, other.rows_per_statement);
        min(&mut self.bytes_per_statement, other.bytes_per_statement);
        min(&mut self.rows_per_hour, other.rows_per_hour);
    }
}

/// Why a request was refused, in words the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule or policy id that refused it.
    pub policy: String,
    pub reason: String,
    /// What the caller could ask for to be allowed.
    pub remedy: Option<String>,
    pub cause: DenialCause,
}

impl Denial {
    /// A denial by a policy (or guardrail) named `policy`.
    pub fn by_policy(policy: impl Into<String>, reason: impl Into<String>, remedy: Option<String>) -> Denial {
        Denial { policy: policy.into(), reason: reason.into(), remedy, cause: DenialCause::Policy }
    }
}

/// What kind of limit a denial enforces; protocols answer each with their
/// own error code (PostgreSQL: 42501 for policy, 54000 for budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenialCause {
    /// A policy does not permit the request.
    #[default]
    Policy,
    /// A reviewer denied the request a policy held for approval.
    Review,
    /// The request is permitted, but its budget is spent.
    Budget,
}

/// A request that must wait for a reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HoldRule {
    pub policy: String,
    pub reason: String,
    /// The obligations it runs under once approved (`@mask`, `@budget` of
    /// the policies that held it).
    pub mask_profile: Option<String>,
    pub budget: Budget,
}

/// The decision as written into the audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionSummary {
    pub verdict: Verdict,
    pub policies: Vec<String>,
    pub reason: Option<String>,
}
