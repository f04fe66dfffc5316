//! The audit log: canonical records, hash chain, group commit, verify and search.
//!
//! Owns: turning `AuditEvent`s into durable, hash-chained records in SQLite or
//! PostgreSQL; telling the pipeline when each record is durable (or that the
//! store failed, so it can fail closed); searching and verifying the log.
//! Does not: know protocols, decide policy, or forward to SIEM sinks. Merkle
//! checkpoints and signatures are not built yet (see "What the chain proves").
//!
//! # Layout
//! - [`encoding`]: the canonical body, the chain hash, `AuditRecord`. Pure.
//! - `store`: the SQLite and PostgreSQL backends behind one enum: URLs, schema, writes, search.
//! - `scan`: verify's bulk page reads (many records packed in one value) and their parser.
//! - `writer`: [`AuditLog`], the single writer task, group commit, health, shutdown.
//! - `reader`: [`AuditReader`] and [`SearchFilter`].
//! - `verify`: [`AuditReader::verify`], [`VerifyReport`], [`Broken`].
//! - `error`: [`AuditError`], the crate's one error type.
//!
//! # Record encoding (for auditors re-implementing verify)
//! Each record has a `seq` (1, 2, 3, ... without gaps), a `time` and an
//! `event`. Its **body** is the compact JSON (no whitespace) of
//!
//! ```text
//! {"seq":<seq>,"time":"<time>","event":<event>}
//! ```
//!
//! in exactly that field order, where
//! - `<time>` is RFC 3339 in UTC with exactly six fractional digits and a `Z`:
//!   `2026-11-05T09:30:00.000250Z`;
//! - `<event>` is the `serde_json` encoding of `sluice_model::AuditEvent`:
//!   an object whose first field is `"type"` (`session_open`, `session_close`,
//!   `request`, `outcome`, `auth_failure`), then the event's fields in
//!   declaration order. There are no floating-point numbers anywhere.
//!
//! The body is stored as text, byte for byte, and it is what is hashed; a
//! verifier never re-encodes, it hashes the stored bytes (UTF-8):
//!
//! ```text
//! hash(seq) = hex( SHA-256( raw32(prev_hash) ‖ body ) )
//! prev_hash(1) = "00…00" (64 zeros)        prev_hash(n) = hash(n - 1)
//! ```
//!
//! where `raw32` is the 32 bytes the 64 lowercase hex digits spell.
//!
//! # The table
//! `audit_records(seq, time, kind, session_id, principal, connection, body,
//! prev_hash, hash)`. `time`, `kind`, `session_id`, `principal` (the
//! principal's subject) and `connection` are copies of body fields for search;
//! verify checks that they equal the body. All records of one commit share
//! one `time`: when the writer sequenced them.
//!
//! # Durability
//! [`AuditLog::append`] returns a [`Durable`] future that resolves only after
//! the transaction holding the record has committed: on SQLite in WAL mode
//! with `synchronous=FULL` (so the WAL is fsynced), on PostgreSQL with the
//! server's `synchronous_commit`. Concurrent appends share a commit (group
//! commit). If a batch fails, its callers get
//! [`AuditError::StoreUnavailable`] and the chain does not advance.
//!
//! # Speed
//! Measured on the 2-core development VM (release build, `benches/throughput.rs`):
//! SQLite, 512 sessions each awaiting its record: about 70,000-88,000
//! durable records/s, about 260 records per commit; verify about
//! 600,000-750,000 records/s (the store packs a page of records into one
//! value, see `scan`, and pages are checked while the next is read).
//! PostgreSQL on the same VM: about 64,000-72,000 records/s appended, 250,000/s verified.
//!
//! # What the chain proves
//! Verify finds any changed, reordered or deleted record *inside* the log,
//! and any index column that disagrees with its body. It cannot by itself
//! tell that the newest records were cut off, or that the whole tail was
//! rewritten with fresh hashes: compare [`VerifyReport::head_hash`] and
//! `records` with a head noted elsewhere (the signed checkpoints planned in
//! DESIGN.md do this).
//!
//! One store holds one log with one writer: two Sluice nodes must not open
//! the same table for writing.

pub mod encoding;
mod error;
mod reader;
mod scan;
mod sqlite_writer;
mod store;
mod verify;
mod writer;

pub use encoding::{AuditRecord, GENESIS_HASH, decode_body, encode_body, format_time, record_hash, truncate_time};
pub use error::AuditError;
pub use reader::{AuditReader, SearchFilter};
pub use store::StoreUrl;
pub use verify::{BreakReason, Broken, VerifyReport};
pub use writer::{AuditLog, AuditOptions, CommitStats, Durable, StoreHealth};
