//! Retention: which recording payloads are due for deletion.
//!
//! Owns: [`PruneRule`] (a connection's retention, from config),
//! [`PrunePlan`] (what is due, per connection) and
//! [`AuditReader::prune_plan`], which finds it.
//! Does not: delete anything. [`crate::AuditLog::prune`] deletes a plan's
//! payloads and records a `payloads_pruned` entry in the same transaction,
//! through the single writer; the chunk records and their hashes stay, so
//! the log and its checkpoints still verify.

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
    pub payload_days: u32,
    /// Nothing of this connection is due while set.
    pub legal_hold: bool,
}

/// The payloads of one connection that are due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    pub connection: String,
    /// Chunks recorded before this time (RFC 3339) are due.
    pub cutoff: String,
    /// `retention (payload_days = N)`.
    pub reason: String,
    /// `(seq of the chunk record, payload bytes)`, in seq order.
    pub chunks: Vec<(u64, u64)>,
    /// When the oldest due chunk was recorded.
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
        for rule in rules.iter().filter(|r| !r.legal_hold) {
            let cutoff = format_time(truncate_time(now - Duration::days(i64::from(rule.payload_days))));
            let due = store.expired_payloads(&rule.connection, &cutoff).await.map_err(|e| self.query_error(e))?;
            if due.is_empty() {
                continue;
            }
            plans.push(PrunePlan {
                connection: rule.connection.clone(),
                reason: format!("retention (payload_days = {})", rule.payload_days),
                oldest: due.first().map(|(_, time, _)| time.clone()),
                chunks: due.into_iter().map(|(seq, _, bytes)| (seq.max(0) as u64, bytes.max(0) as u64)).collect(),
                cutoff,
            });
        }
        Ok(plans)
    }
}
