//! Just-in-time approval: a held request, its reviewers' decisions, and the
//! one-time grant an approval becomes.
//!
//! Owns: [`ApprovalRequest`] (what was held, by whom, and what reviewers
//! said), the reviewer rules, and [`ApprovalStore`], which keeps requests in
//! the audit store's database (SQLite or PostgreSQL) so a restart loses
//! nothing, and makes every state change one transaction.
//! Does not: hold requests in a session, talk to clients or reviewers, send
//! alerts or write audit records. Every change returns what happened
//! ([`Decided`], the expired requests, the taken grant) so the pipeline,
//! the API and the alerting can.
//!
//! # Layout
//! - `request`: [`ApprovalRequest`] and its parts, [`NewApprovalRequest`], [`fingerprint`].
//! - `rules`: who may decide and what decisions add up to ([`Outcome`]). Pure.
//! - `store`: [`ApprovalStore`]: tables, transactions, both backends.
//! - `error`: [`ApprovalError`], the crate's one error type.
//!
//! # The fingerprint
//! A grant is used only by the request that was approved: same connection,
//! same principal, same statement, same parameter values. The fingerprint
//! is the lowercase hex SHA-256 over these fields, in this order, each
//! written as its byte length (8 bytes, big-endian) then its UTF-8 bytes:
//!
//! ```text
//! "sluice-approval-fingerprint-v1" ‖ connection ‖ principal subject
//!   ‖ classifier fingerprint ("" when unclassified) ‖ statement text (byte for byte)
//!   ‖ params_sha256 in hex ("" without parameters)
//! ```
//!
//! The text is hashed exactly as sent: a statement that differs only in
//! whitespace or a constant is a different request. `params_sha256` is the
//! adapter's hash of the bound values (as in the audit record), so values
//! count without being stored. A grant is also matched on the principal's
//! subject and issuer directly, not only through the hash.
//!
//! # The state machine
//! ```text
//!                 decide: approve, quorum not reached (the approval is counted)
//!                 ┌──────┐
//!                 ▼      │
//!   create ──► pending ──┴─► approved ──► used         (take_grant, once, before grant_expires_at)
//!                 │   decide: approve,
//!                 │   quorum reached
//!                 ├────────► denied                    (decide: deny, by any one reviewer)
//!                 └────────► expired                   (expire_due, at or after expires_at)
//! ```
//!
//! - `create` makes a `pending` request; `expires_at = now + expires_after`,
//!   and the quorum (`approvals_required`) and `grant_ttl` are fixed then.
//! - `decide` needs: a reviewer in one of the connection's reviewer groups;
//!   who is not the requester (same subject); a `pending` request not yet at
//!   `expires_at`; a reviewer who has not decided it before. One deny makes
//!   it `denied`; approvals from `approvals_required` distinct reviewers make
//!   it `approved` (`grant_expires_at = approved_at + grant_ttl`).
//! - `expire_due` turns `pending` requests at or past `expires_at` into
//!   `expired`. A pending request past its expiry can no longer be decided
//!   even before the sweep runs.
//! - `take_grant` turns one `approved` request with the same fingerprint,
//!   subject and issuer, before its `grant_expires_at`, into `used`, once.
//!   The session holding the request in its window takes it the same way
//!   when it sees the approval; an approval no held session takes stays a
//!   grant for a later identical request.
//! - `denied`, `expired` and `used` are final.

mod error;
mod request;
mod rules;
mod store;

pub use error::ApprovalError;
pub use request::{
    ApprovalRequest, ApprovalStatus, NewApprovalRequest, Requester, ReviewDecision, Ruling, fingerprint,
};
pub use rules::Outcome;
pub use store::{ApprovalStore, Decided};
