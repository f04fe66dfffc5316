//! Sluice's shared vocabulary: the types every other crate speaks.
//!
//! Owns: `Principal` (who), `Action` (what), `Decision` (the verdict with its
//! plan or denial, with the masking profile it names) and the audit
//! events that record all of it.
//! Does not: depend on any other Sluice crate, or do any IO. Everything here is
//! plain data with serde derives so it can cross crate and process boundaries.
//!
//! # Layout
//! - [`principal`]: identities produced by `sluice-identity`.
//! - [`action`]: the protocol-neutral description of one request.
//! - [`decision`]: `Decision::{Allow, Deny, Hold}` and what each carries.
//! - [`audit`]: the events written to the audit log.
//! - [`sql`]: what the SQL classifier says of a request.

pub mod action;
pub mod audit;
pub mod decision;
pub mod principal;
pub mod sql;

pub use action::{Action, SqlStatement};
pub use audit::{
    AlertDelivery, ApprovalEvent, AuditEvent, AuthFailure, ExpiredRecord, OutcomeEvent, OutcomeStatus, PayloadsPruned,
    REDACTED_STATEMENT, RecordingChunk, RequestEvent, RewrittenRecord, SessionClose, SessionOpen,
};
pub use decision::{Budget, Decision, DecisionSummary, Denial, DenialCause, HoldRule, Plan, Verdict};
pub use principal::{Principal, PrincipalKind};
pub use sql::{SqlClassification, SqlFlags, StatementKind};
