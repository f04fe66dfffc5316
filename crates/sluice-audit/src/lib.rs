//! The audit log: canonical records, hash chain, Merkle tree, signed
//! checkpoints, group commit, verify, export, retention and search.
//!
//! Owns: turning `AuditEvent`s into durable, hash-chained records in SQLite or
//! PostgreSQL, each a leaf of an RFC 9162 Merkle tree whose head is signed
//! as a checkpoint; telling the pipeline when each record is durable (or that
//! the store failed, so it can fail closed); proofs; searching, verifying
//! and exporting the log; pruning recording payloads.
//! Does not: know protocols, forward to SIEM sinks (sluice-siem), or define
//! the tree hashes and note formats (sluice-evidence).
//!
//! # Layout
//! - [`encoding`]: the canonical body, the chain hash, `AuditRecord`. Pure.
//! - `store`: the SQLite and PostgreSQL backends behind one enum: URLs, schema, writes, search.
//! - `scan`: verify's bulk page reads (many records packed in one value) and their parser.
//! - `writer`: [`AuditLog`], the single writer task, group commit, the tree, checkpoints, prune, health, shutdown.
//! - `tree`: the writer's Merkle state (block roots + tail) and the leaf source proofs read.
//! - `reader`: [`AuditReader`] and [`SearchFilter`].
//! - `proofs`: checkpoints, inclusion and consistency proofs, records and payloads in seq order.
//! - `verify`: [`AuditReader::verify`], [`VerifyReport`], [`Broken`], the shared record-by-record check.
//! - `export`: [`AuditReader::export`] and [`verify_export`]: the folder an auditor verifies offline.
//! - `prune`: [`PruneRule`], [`PrunePlan`]: which recording payloads retention deletes.
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
//! Measured on the 2-core development VM (release build, `benches/throughput.rs`,
//! `bench/audit.sh`), SQLite, 1,000,000 records:
//! - appends: 512 sessions each awaiting its record, a checkpoint signed every
//!   second: about 113,000-129,000 durable records/s, about 275 records per
//!   commit (the Merkle leaf and block roots are computed in the writer);
//! - verify of the live store (chain, index columns, tree, checkpoints):
//!   about 540,000-570,000 records/s;
//! - verify of an export (`verify_export`, chain, tree, checkpoints, records
//!   prepared on both cores): about 1,040,000-1,270,000 records/s.
//!
//! PostgreSQL on the same VM (before the tree): about 64,000-72,000 records/s
//! appended, 250,000/s verified.
//!
//! # What the chain and the tree prove
//! The chain finds any changed, reordered or deleted record *inside* the
//! log, and any index column that disagrees with its body. The Merkle tree
//! and its signed checkpoints (`[audit] signing_key_file`) add what the
//! chain cannot: a tail cut after a checkpoint, or a log rewritten with fresh
//! hashes, no longer matches a root signed with a key the store does not
//! hold. Leaf `i` is `SHA-256(0x00 ‖ body of record i + 1)`; see
//! sluice-evidence for the tree and the note format, and `export` for the
//! folder `sluice audit verify DIR --key PUB` checks.
//!
//! One store holds one log with one writer: a second writer is refused (a
//! lock file beside a SQLite log, an advisory lock on PostgreSQL).

pub mod encoding;
mod error;
mod export;
mod prepare;
mod proofs;
mod prune;
mod reader;
mod scan;
mod sqlite_writer;
mod store;
mod tree;
mod verify;
mod writer;

pub use encoding::{AuditRecord, GENESIS_HASH, decode_body, encode_body, format_time, record_hash, truncate_time};
pub use error::AuditError;
pub use export::{EXPORT_FORMAT, ExportSummary, verify_export};
pub use proofs::{ConsistencyProof, InclusionProof};
pub use prune::{PrunePlan, PruneRule};
pub use reader::{AuditReader, SearchFilter};
pub use store::{SidePool, StoreUrl, StoredCheckpoint};
pub use verify::{BreakReason, Broken, VerifyReport};
pub use writer::{AuditLog, AuditOptions, CommitStats, Durable, StoreHealth, checkpoint_origin};
