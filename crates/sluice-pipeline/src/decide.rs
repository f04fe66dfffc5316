//! The decide phase: Cedar policies when `[policy] dir` is set, the built-in
//! guardrails otherwise.
//!
//! Owns: turning a `PolicyDecision` into the model's `Decision`, failing
//! closed on what this version cannot carry out yet.
//! Does not: evaluate policy itself (sluice-policy does) or do IO.

use crate::guardrails::Guardrails;
use sluice_model::{Action, Decision, Denial, HoldRule, Plan, Principal};
use sluice_policy::{PolicyDecision, PolicyEngine, PreparedPrincipal, SqlRequest};
use std::net::IpAddr;

#[derive(Debug)]
pub(crate) enum Decider {
    Guardrails(Guardrails),
    Cedar(Box<PolicyEngine>),
}

/// What a session keeps for its decisions.
#[derive(Debug)]
pub(crate) enum SessionPolicy {
    None,
    /// The principal's Cedar entities, built once per session.
    Prepared(Box<PreparedPrincipal>),
}

impl Decider {
    pub(crate) fn prepare(&self, principal: &Principal, connection: &str) -> SessionPolicy {
        match self {
            Decider::Guardrails(_) => SessionPolicy::None,
            Decider::Cedar(engine) => SessionPolicy::Prepared(Box::new(engine.prepare(principal, connection))),
        }
    }

    pub(crate) fn decide(
        &self,
        session: &SessionPolicy,
        principal: &Principal,
        connection: &str,
        client_ip: Option<IpAddr>,
        action: &Action,
    ) -> Decision {
        let engine = match self {
            Decider::Guardrails(guardrails) => return guardrails.decide(principal, action),
            Decider::Cedar(engine) => engine,
        };
        let Action::Sql(sql) = action;
        let Some(classification) = &sql.classification else {
            return Decision::Deny(Denial::by_policy(
                "sluice.unclassified",
                "the statement could not be classified",
                None,
            ));
        };
        let request = SqlRequest {
            principal,
            connection,
            classification,
            client_addr: client_ip,
            now: chrono::Utc::now(),
            default_schema: sql.default_schema.as_deref(),
        };
        let decision = match session {
            SessionPolicy::Prepared(prepared) => engine.decide_prepared(prepared, &request),
            SessionPolicy::None => engine.decide(&request),
        };
        into_decision(decision)
    }
}

/// The model's decision. The masking profile and the budget travel in the
/// plan; the session resolves the one and enforces the other.
fn into_decision(decision: PolicyDecision) -> Decision {
    match decision {
        PolicyDecision::Allow { policies, mask_profile, budget } => {
            Decision::Allow(Plan { policies, mask_profile, budget })
        }
        PolicyDecision::Deny { policies, reason, remedy } => {
            let policy = if policies.is_empty() { "default-deny".to_string() } else { policies.join(",") };
            Decision::Deny(Denial::by_policy(policy, reason, Some(remedy)))
        }
        PolicyDecision::Hold { policies, reason, mask_profile, budget } => {
            Decision::Hold(HoldRule { policy: policies.join(","), reason, mask_profile, budget })
        }
    }
}
