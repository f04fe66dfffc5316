//! Retention: which recording payloads are due for deletion, and which
//! request records are due to lose their statement text.
//!
//! Owns: [`PruneRule`] (a connection's retention, from config),
//! [`PrunePlan`] (what is due, per connection) and
//! [`AuditReader::prune_plan`], which finds it.
//! Does not: delete anything. [`crate::AuditLog::prune`] deletes a plan's
//! payloads, rewrites its request bodies with the statement text replaced
//! (keeping each original leaf hash in `audit_redactions`), and records a
//! `payloads_pruned` entry listing both, in the same transaction, through
//! the single writer; the tree and its checkpoints still verify.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::AuditError;
use crate::encoding::{format_time, truncate_time};
use crate::reader::AuditReader;

/// One connection's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRule {
    pub connection: String,
    /// Recording payloads older than this many days are due.
    pub payload_days: Option<u32>,
    /// Request records older than this many days lose their statement text.
    pub statement_days: Option<u32>,
    /// Nothing of this connection is due while set.
    pub legal_hold: bool,
}

/// What of one connection is due under one of its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    pub connection: String,
    /// Chunks recorded before this time (RFC 3339) are due.
    pub cutoff: String,
    /// `retention (payload_days = N)` or `retention (statement_days = N)`.
    pub reason: String,
    /// `(seq of the chunk record, payload bytes)`, in seq order.
    pub chunks: Vec<(u64, u64)>,
    /// Seqs of request records whose statement text goes, in order.
    pub statements: Vec<u64>,
    /// When the oldest due item was recorded.
    pub oldest: Option<String>,
}

impl PrunePlan {
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|(_, bytes)| bytes).sum()
    }
}

impl AuditReader {
    /// What `rules` make due at `now`: one plan per connection with at least
    /// one due payload. Connections on legal hold are skipped.
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
            if let Some(days) = rule.statement_days {
                let cutoff = cutoff(days);
                let due = store.expired_statements(&rule.connection, &cutoff).await.map_err(|e| self.query_error(e))?;
                if !due.is_empty() {
                    let mut plan = plan(cutoff, format!("retention (statement_days = {days})"));
                    plan.oldest = due.first().map(|(_, time)| time.clone());
                    plan.statements = due.into_iter().map(|(seq, _)| seq.max(0) as u64).collect();
                    plans.push(plan);
                }
            }
        }
        Ok(plans)
    }
}
