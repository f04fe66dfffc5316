//! `ApprovalError`, the crate's one error type.
//!
//! Owns: every way opening the store, reading it, or applying a rule can
//! fail, each with a message a reviewer or an operator can act on.
//! Does not: carry secrets; a store URL is named without its password.

use uuid::Uuid;

use crate::ApprovalStatus;

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The store URL is malformed, or the store cannot be reached or set up.
    #[error("approval store: cannot open {0}")]
    Open(String),
    /// The store failed a read or a write; nothing was changed.
    #[error("approval store: {0}")]
    Store(#[from] sqlx::Error),
    /// A stored row cannot be read back (a value this version does not know).
    #[error("approval store: request {id}: {message}")]
    Corrupt { id: String, message: String },
    #[error("no approval request with id {0}")]
    UnknownRequest(Uuid),
    /// Decisions are only taken on pending requests.
    #[error("approval request {id} is {status}, not pending; it can no longer be decided")]
    NotPending { id: Uuid, status: ApprovalStatus },
    /// Pending, but past its `expires_at`: it awaits `expire_due`, and no
    /// decision is taken any more.
    #[error("approval request {id} expired at {expires_at}; it can no longer be decided")]
    Expired { id: Uuid, expires_at: chrono::DateTime<chrono::Utc> },
    #[error("{reviewer} asked for approval request {id} and cannot decide it")]
    SelfApproval { id: Uuid, reviewer: String },
    #[error("{reviewer} is not a reviewer for connection `{connection}` (reviewers are in: {})", if .allowed.is_empty() { "no group is configured".to_string() } else { .allowed.join(", ") })]
    NotAReviewer { reviewer: String, connection: String, allowed: Vec<String> },
    #[error("{reviewer} has already decided approval request {id}")]
    AlreadyDecided { id: Uuid, reviewer: String },
}
