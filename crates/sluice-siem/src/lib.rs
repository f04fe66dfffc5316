//! SIEM forwarding: every audit record and every signed checkpoint, sent to
//! syslog collectors, Splunk HEC endpoints, NATS JetStream streams and
//! OpenTelemetry collectors (OTLP logs over HTTP).
//!
//! Owns: the forwarded event ([`SiemEvent`]), one task per configured sink
//! ([`Forwarder`]), each sink's durable cursor in the audit store's
//! database, and the four transports.
//! Does not: write the audit log, sign checkpoints (the audit writer does),
//! or decide what is recorded. It only reads the log, through its own
//! [`sluice_audit::AuditReader`].
//!
//! # Layout
//! - [`event`]: [`SiemEvent`], the JSON object every sink carries, from a record or a checkpoint.
//! - [`cursor`]: the `siem_cursors` table: how far each sink was acknowledged.
//! - [`syslog`]: RFC 5424 formatting; UDP, octet-counted TCP (RFC 6587) and TLS (RFC 5425).
//! - `http`: what HEC and OTLP share: the client, the POST, which answers count as received.
//! - [`hec`]: Splunk HEC: batched events, `Authorization: Splunk <token>`.
//! - [`otlp`]: OTLP/HTTP logs: a batch as one `ExportLogsServiceRequest` (JSON), the event id as `event.id`.
//! - [`nats`]: JetStream: subject per event type, acked publishes, `Nats-Msg-Id`.
//! - [`runner`]: [`Forwarder`]: the per-sink loop, cursor advance, backoff, shutdown.
//!
//! # Delivery: at least once, in order, never skipping
//! A sink's task reads the records after its cursor (`batch` at a time),
//! sends them, and saves the cursor at the last one only once the sink
//! acknowledged the whole batch: JetStream acks, a 2xx from HEC or the
//! OTLP collector, or for syslog a connection that stayed up for a moment
//! after the write (see [`syslog`]). Any failure, the store's included,
//! keeps the cursor where it was; the same records are sent again after
//! 200 ms, 400 ms, ... at most 10 s, forever. So a sink that is down
//! catches up from its cursor when it returns, and a record is never
//! skipped. An HTTP receiver that refuses a batch (a 4xx other than 429:
//! a wrong URL or credential) is retried the same way, its error logged
//! as a rejection. A batch that was received but whose acknowledgement was
//! lost is sent twice: every event carries a stable `event_id`
//! (`sluice/<seq>`, `sluice/checkpoint/<size>`; in OTLP the `event.id`
//! attribute) so the receiver can tell, and JetStream drops the repeat
//! itself (`Nats-Msg-Id`, within the stream's duplicate window).
//!
//! A signed checkpoint is sent once the sink has every record it covers,
//! ahead of later records; its cursor is separate (`checkpoint_size`).
//!
//! # What leaves Sluice
//! Each event carries its id, type, time, record seq and hash, principal,
//! connection, session and request ids, the decision (verdict, policies,
//! reason, masking profile), the outcome (status, rows, SQLSTATE, command
//! tag, duration) and, for other records, their fields (`detail`). The
//! statement text is the client's and may hold PHI: per sink,
//! `statement = "full"` sends it (and the outcome's error text),
//! `"fingerprint"` only the classifier's fingerprint (a hash, equal for
//! statements that differ only in constants), `"none"` neither.

pub mod cursor;
pub mod event;
pub mod hec;
mod http;
pub mod nats;
pub mod otlp;
pub mod runner;
pub mod syslog;

pub use event::SiemEvent;
pub use runner::{Backoff, Forwarder, Sink};

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink cannot be built from its config (token, CA file, TLS name).
    #[error("{0}")]
    Setup(String),
    /// The destination did not take the batch; it will be sent again.
    #[error("{0}")]
    Unavailable(String),
    /// The destination answered, refusing the batch itself (an HTTP 4xx
    /// other than 429: a wrong URL, header or token). It is sent again all
    /// the same, so nothing is skipped once the config is put right.
    #[error("{0}")]
    Rejected(String),
    /// The audit store or the cursor table could not be read or written.
    #[error("store: {0}")]
    Store(String),
}

impl SinkError {
    /// The error, naming the sink it belongs to.
    pub(crate) fn in_sink(self, sink: &str) -> SinkError {
        match self {
            SinkError::Setup(m) => SinkError::Setup(format!("sink `{sink}`: {m}")),
            SinkError::Unavailable(m) => SinkError::Unavailable(format!("sink `{sink}`: {m}")),
            SinkError::Rejected(m) => SinkError::Rejected(format!("sink `{sink}`: {m}")),
            SinkError::Store(m) => SinkError::Store(format!("sink `{sink}`: {m}")),
        }
    }
}
