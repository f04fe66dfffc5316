//! The public data of a decision: the request, the decision, its budget, and
//! the settings the engine takes from config.
//!
//! Owns: plain data types and their small helpers.
//! Does not: decide (see `engine`).

use chrono::{DateTime, Utc};
pub use sluice_model::Budget;
use sluice_model::{Principal, SqlClassification, Verdict};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One SQL request to decide.
#[derive(Debug, Clone, Copy)]
pub struct SqlRequest<'a> {
    pub principal: &'a Principal,
    /// The connection the client named (the Cedar resource `Sluice::Connection::"<name>"`).
    pub connection: &'a str,
    pub classification: &'a SqlClassification,
    /// The client's address; `None` for Unix-socket clients (then
    /// `context has client_ip` is false).
    pub client_addr: Option<IpAddr>,
    /// When the request was made; gives `context.now`, `hour` and `weekday`.
    pub now: DateTime<Utc>,
    /// The schema an unqualified table name resolves to in this session (the
    /// first schema of its `search_path`), when the gateway knows it. With
    /// `Some("public")`, `patients` appears in the context as
    /// `public.patients`; with `None`, unqualified names stay unqualified, so
    /// an allow-list of qualified names denies them (fail closed).
    pub default_schema: Option<&'a str>,
}

/// The verdict on a request, naming the policies (by `@id`, or `file:line`)
/// that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    /// Run it. `policies` are the satisfied permits without `@hold`;
    /// the mask profile and budget are their obligations.
    Allow { policies: Vec<String>, mask_profile: Option<String>, budget: Budget },
    /// Refuse it. `policies` is empty for the default deny (no permit).
    Deny { policies: Vec<String>, reason: String, remedy: String },
    /// Wait for approval. `policies` are the held permits, or the `@hold`
    /// forbids that hold it first followed by the permits that would allow
    /// it; the mask profile and budget apply if it is approved.
    Hold { policies: Vec<String>, reason: String, mask_profile: Option<String>, budget: Budget },
}

impl PolicyDecision {
    pub fn verdict(&self) -> Verdict {
        match self {
            PolicyDecision::Allow { .. } => Verdict::Allow,
            PolicyDecision::Deny { .. } => Verdict::Deny,
            PolicyDecision::Hold { .. } => Verdict::Hold,
        }
    }

    /// The policies that made the decision.
    pub fn policies(&self) -> &[String] {
        match self {
            PolicyDecision::Allow { policies, .. }
            | PolicyDecision::Deny { policies, .. }
            | PolicyDecision::Hold { policies, .. } => policies,
        }
    }
}

/// What the engine takes from config besides the policy files.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    /// Connection attributes by connection name. A connection not listed
    /// gets the defaults (`environment = "production"`).
    pub connections: BTreeMap<String, ConnectionAttrs>,
    /// Parent groups by group: `analysts = ["readers"]` makes every member of
    /// `analysts` also `in Sluice::Group::"readers"` (transitively).
    pub group_parents: BTreeMap<String, Vec<String>>,
    /// Mask profiles from most to least restrictive. When the permits that
    /// allow a request name different profiles, the first in this order wins;
    /// profiles not listed come after, in name order.
    pub mask_order: Vec<String>,
}

/// A connection's attributes as policies see them (`resource.environment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionAttrs {
    /// e.g. "production", "staging", "development". Default "production".
    pub environment: String,
}

impl Default for ConnectionAttrs {
    fn default() -> Self {
        ConnectionAttrs { environment: "production".into() }
    }
}
