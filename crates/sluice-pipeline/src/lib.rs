//! The one enforcement pipeline every protocol adapter goes through.
//!
//! Owns: the phase order (identify → describe → decide → hold → record →
//! forward or refuse → mask → record outcome → respond), the [`Adapter`] trait each
//! protocol implements, sessions, metrics counters and graceful shutdown.
//! Does not: know any one protocol. Adapters never call policy or audit
//! directly; they hand requests to [`Session::submit`] and finish them through
//! the [`Exchange`] it gives back.
//!
//! # Layout
//! - [`gateway`]: `Gateway`, the shared state built once from config; `identify`
//!   and `open_session` live here.
//! - [`session`]: `Session::submit`, the function that owns the phase order.
//! - [`exchange`]: `Exchange` (an admitted request on its way) and `Refusal`.
//! - [`budget`]: row and byte budgets (`@budget`): the per-request
//!   `ResultLimit` and the hourly windows, seeded from the audit store.
//! - `decide`: Cedar policies (`sluice-policy`) or, without a policy dir,
//!   the built-in [`guardrails`].
//! - [`guardrails`]: the built-in `decide` for configs without policies.
//! - `hold`: a `Hold` decision becomes a one-time grant's run, or a wait
//!   in the session for a reviewer.
//! - [`approvals`]: `Approvals`, the approval workflow the session and the
//!   reviewer API share (store, audit records, alerts, waking held sessions).
//! - [`masking`]: `Masking`, the configured profiles; which one a request gets.
//! - [`metrics`]: Prometheus counters the server exposes.
//! - [`recording`]: `Recorder`, the session's exchange as the client saw it
//!   (masked), in hash-committed chunks of the audit log, for replay.

pub mod approvals;
pub mod budget;
mod decide;
pub mod exchange;
pub mod gateway;
pub mod guardrails;
mod hold;
pub mod masking;
pub mod metrics;
pub mod recording;
pub mod session;

pub use approvals::{Approvals, ApprovalsError};
pub use budget::ResultLimit;
pub use exchange::{Exchange, Outcome, PendingCommit, Refusal, RefusalKind, Release};
pub use gateway::{Gateway, GatewayError};
pub use masking::{AppliedMask, Masking};
pub use metrics::Metrics;
pub use recording::{RecordedStatement, Recorder};
pub use session::{Adapter, Session};
