//! Retention: which recording payloads are due for deletion, which request
//! records are due to lose their statement text, which records are due to
//! expire whole, and what a rewritten body is.
//!
//! Owns: [`PruneRule`] (a connection's retention, from config),
//! [`PrunePlan`] (what is due, per connection), [`AuditReader::prune_plan`],
//! which finds it, and [`Rewriting`], the pure body rewrites.
//! Does not: delete anything. [`crate::AuditLog::prune`] deletes a plan's
//! payloads, rewrites its bodies (keeping each original leaf hash in
//! `audit_redactions`), and records a `payloads_pruned` entry listing both,
//! in the same transaction, through the single writer; the tree and its
//! checkpoints still verify.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sluice_model::{AuditEvent, ExpiredRecord, REDACTED_STATEMENT};

use crate::AuditError;
use crate::encoding::{self, format_time, truncate_time};
use crate::reader::AuditReader;
use crate::store::Rewrite;

/// One connection's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRule {
    pub connection: String,
    /// Recording payloads older than this many days are due.
    pub payload_days: Option<u32>,
    /// Request records older than this many days lose their statement text.
    pub statement_days: Option<u32>,
    /// Records older than this many days expire whole: only their kind,
    /// connection, place and leaf hash stay.
    pub index_days: Option<u32>,
    /// Nothing of this connection is due while set.
    pub legal_hold: bool,
}

/// What of one connection is due under one of its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    pub connection: String,
    /// Chunks recorded before this time (RFC 3339) are due.
    pub cutoff: String,
    /// `retention (payload_days = N)`, `retention (statement_days = N)` or
    /// `retention (index_days = N)`.
    pub reason: String,
    /// `(seq of the chunk record, payload bytes)`, in seq order.
    pub chunks: Vec<(u64, u64)>,
    /// Seqs of request records whose statement text goes, in order.
    pub statements: Vec<u64>,
    /// Seqs of records that expire, in order.
    pub expired: Vec<u64>,
    /// When the oldest due item was recorded.
    pub oldest: Option<String>,
}

impl PrunePlan {
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|(_, bytes)| bytes).sum()
    }

    /// Payloads, statements and records due, in all.
    pub fn items(&self) -> usize {
        self.chunks.len() + self.statements.len() + self.expired.len()
    }

    /// This plan in pieces of at most `most` items each (one transaction
    /// and one `payloads_pruned` record each).
    pub(crate) fn split(self, most: usize) -> Vec<PrunePlan> {
        let most = most.max(1);
        let piece = |chunks: &[(u64, u64)], statements: &[u64], expired: &[u64]| PrunePlan {
            connection: self.connection.clone(),
            cutoff: self.cutoff.clone(),
            reason: self.reason.clone(),
            chunks: chunks.to_vec(),
            statements: statements.to_vec(),
            expired: expired.to_vec(),
            oldest: self.oldest.clone(),
        };
        let mut pieces: Vec<PrunePlan> = self.chunks.chunks(most).map(|c| piece(c, &[], &[])).collect();
        pieces.extend(self.statements.chunks(most).map(|s| piece(&[], s, &[])));
        pieces.extend(self.expired.chunks(most).map(|e| piece(&[], &[], e)));
        pieces
    }
}

/// How retention rewrites a body it keeps the place of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewriting {
    /// A request record's statement text is replaced by
    /// [`REDACTED_STATEMENT`].
    Statement,
    /// The record becomes an [`ExpiredRecord`].
    Expiry,
}

impl Rewriting {
    /// The records of connection `$1` sequenced before `$2` this rewrite
    /// has not reached yet: `(seq, time)`, in order. Retention's own records
    /// never expire.
    fn due_sql(self) -> &'static str {
        match self {
            Rewriting::Statement => {
                "SELECT seq, time FROM audit_records WHERE kind = 'request' AND connection = $1 AND time < $2 \
                 AND seq NOT IN (SELECT seq FROM audit_redactions) ORDER BY seq"
            }
            Rewriting::Expiry => {
                "SELECT seq, time FROM audit_records WHERE connection = $1 AND time < $2 \
                 AND kind NOT IN ('expired', 'payloads_pruned') ORDER BY seq"
            }
        }
    }

    /// Record `seq`'s `body` rewritten, with the index columns that go with
    /// it and the leaf of `body`, and the kind the record was; `None` when
    /// there is nothing to rewrite (not a request, already redacted or
    /// expired, a retention record, or a body of another seq).
    pub(crate) fn rewrite(self, seq: u64, body: &str) -> Result<Option<(Rewrite, &'static str)>, AuditError> {
        let (found, time, event) = encoding::decode_body(body)?;
        let was = event.kind();
        if found != seq {
            return Ok(None);
        }
        let event = match (self, event) {
            (Rewriting::Statement, AuditEvent::Request(mut request)) if request.statement != REDACTED_STATEMENT => {
                request.statement = REDACTED_STATEMENT.to_owned();
                AuditEvent::Request(request)
            }
            (Rewriting::Statement, _) => return Ok(None),
            (Rewriting::Expiry, AuditEvent::Expired(_) | AuditEvent::PayloadsPruned(_)) => return Ok(None),
            (Rewriting::Expiry, event) => AuditEvent::Expired(ExpiredRecord {
                kind: was.to_owned(),
                connection: event.connection().unwrap_or_default().to_owned(),
            }),
        };
        let rewrite = Rewrite {
            seq,
            body: encoding::encode_body(seq, time, &event),
            kind: event.kind(),
            session_id: event.session_id().map(str::to_owned),
            principal: event.principal().map(str::to_owned),
            leaf: sluice_evidence::leaf_hash(body.as_bytes()),
        };
        Ok(Some((rewrite, was)))
    }
}

impl AuditReader {
    /// What `rules` make due at `now`: one plan per connection and rule with
    /// at least one item due. Connections on legal hold are skipped.
    pub async fn prune_plan(&self, rules: &[PruneRule], now: DateTime<Utc>) -> Result<Vec<PrunePlan>, AuditError> {
        let mut plans = Vec::new();
        let mut store = self.store.lock().await;
        let cutoff = |days: u32| format_time(truncate_time(now - Duration::days(i64::from(days))));
        for rule in rules.iter().filter(|r| !r.legal_hold) {
            let plan = |cutoff: String, reason: String| PrunePlan {
                connection: rule.connection.clone(),
                cutoff,
                reason,
                chunks: Vec::new(),
                statements: Vec::new(),
                expired: Vec::new(),
                oldest: None,
            };
            if let Some(days) = rule.payload_days {
                let cutoff = cutoff(days);
                let due = store.expired_payloads(&rule.connection, &cutoff).await.map_err(|e| self.query_error(e))?;
                if !due.is_empty() {
                    let mut plan = plan(cutoff, format!("retention (payload_days = {days})"));
                    plan.oldest = due.first().map(|(_, time, _)| time.clone());
                    plan.chunks =
                        due.into_iter().map(|(seq, _, bytes)| (seq.max(0) as u64, bytes.max(0) as u64)).collect();
                    plans.push(plan);
                }
            }
            let rewrites = [
                ("statement_days", rule.statement_days, Rewriting::Statement),
                ("index_days", rule.index_days, Rewriting::Expiry),
            ];
            for (key, days, rewriting) in rewrites {
                let Some(days) = days else { continue };
                let cutoff = cutoff(days);
                let due = store
                    .due_for_rewrite(rewriting.due_sql(), &rule.connection, &cutoff)
                    .await
                    .map_err(|e| self.query_error(e))?;
                if due.is_empty() {
                    continue;
                }
                let mut plan = plan(cutoff, format!("retention ({key} = {days})"));
                plan.oldest = due.first().map(|(_, time)| time.clone());
                let seqs = due.into_iter().map(|(seq, _)| seq.max(0) as u64).collect();
                match rewriting {
                    Rewriting::Statement => plan.statements = seqs,
                    Rewriting::Expiry => plan.expired = seqs,
                }
                plans.push(plan);
            }
        }
        Ok(plans)
    }
}
