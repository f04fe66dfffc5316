//! Who is asking: the identity a validated credential becomes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of caller, as declared by configuration or the identity provider.
/// Policy treats the three differently (an agent gets the least privilege).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Agent,
    Human,
    Service,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Agent => "agent",
            PrincipalKind::Human => "human",
            PrincipalKind::Service => "service",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caller whose credential Sluice has validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable name of the caller: the API key's configured name, or the JWT `sub`.
    pub subject: String,
    pub kind: PrincipalKind,
    /// Groups, which policy maps to privileges; sorted and de-duplicated.
    pub groups: Vec<String>,
    /// Who vouched for the caller: `api-key`, or the OIDC issuer URL.
    pub issuer: String,
    /// The token's own id (`jti`) when it has one, so one token can be traced
    /// across sessions without storing the token.
    pub token_id: Option<String>,
}

impl Principal {
    /// A principal with its groups sorted and de-duplicated, as every
    /// identity source builds it.
    pub fn new(
        subject: String,
        kind: PrincipalKind,
        mut groups: Vec<String>,
        issuer: String,
        token_id: Option<String>,
    ) -> Principal {
        groups.sort();
        groups.dedup();
        Principal { subject, kind, groups, issuer, token_id }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}
