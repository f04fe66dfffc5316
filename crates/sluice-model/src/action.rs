//! What is being asked: a protocol-neutral description of one request.

use serde::{Deserialize, Serialize};

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
}
