//! What is being asked: a protocol-neutral description of one request.

use crate::SqlClassification;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One request, described by its adapter in terms policy and audit understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum Action {
    /// One SQL request: a simple Query (which may hold several statements) or
    /// one Execute of a prepared statement.
    Sql(SqlStatement),
}

impl Action {
    /// The text a human reads in the audit trail.
    pub fn text(&self) -> &str {
        match self {
            Action::Sql(sql) => &sql.text,
        }
    }

    /// Whether the request reads and changes nothing, so its audit commit
    /// may overlap the round trip (its result is still held until durable).
    /// Unclassified requests are never pure reads.
    pub fn is_pure_read(&self) -> bool {
        match self {
            Action::Sql(sql) => sql.classification.as_ref().is_some_and(|c| c.is_pure_read()),
        }
    }
}

/// A SQL request as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlStatement {
    pub text: String,
    /// Number of bound parameter values (0 for a simple query).
    pub param_count: u32,
    /// SHA-256 (hex) over the parameter values, so the log can prove which
    /// values ran without holding PHI. `None` when there are no parameters.
    pub params_sha256: Option<String>,
    /// `true` for the extended protocol (Parse/Bind/Execute).
    pub extended: bool,
    /// What the classifier made of the text; `None` until one has run.
    pub classification: Option<Arc<SqlClassification>>,
    /// The schema an unqualified table name resolves to in this session,
    /// when the adapter knows it (policy qualifies names with it); `None`
    /// leaves unqualified names unqualified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_schema: Option<Arc<str>>,
}
