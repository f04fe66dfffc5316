//! Retention from config: each connection's `retention` as prune rules, and
//! the server's hourly job that deletes due recording payloads and redacts
//! due statement text.
//!
//! Owns: turning `[[connections]] retention` into [`PruneRule`]s, and when
//! the job runs.
//! Does not: decide what is due or delete it (`sluice-audit`'s
//! `AuditReader::prune_plan` and `AuditLog::prune` do).

use std::sync::Arc;
use std::time::Duration;

use sluice_audit::{AuditLog, AuditReader, PruneRule};
use sluice_config::Config;
use tokio_util::sync::CancellationToken;

/// How often the server looks for due payloads (and once shortly after start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One rule per connection that sets `retention.payload_days` or
/// `retention.statement_days`.
pub fn prune_rules(config: &Config) -> Vec<PruneRule> {
    config
        .connections
        .iter()
        .filter(|c| c.retention.payload_days.is_some() || c.retention.statement_days.is_some())
        .map(|c| PruneRule {
            connection: c.name.clone(),
            payload_days: c.retention.payload_days,
            statement_days: c.retention.statement_days,
            legal_hold: c.retention.legal_hold,
        })
        .collect()
}

/// Prunes what is due now: the plan, then the deletion and its records.
/// Returns how many payloads and statements went.
pub async fn prune_due(
    reader: &AuditReader,
    audit: &AuditLog,
    rules: &[PruneRule],
) -> Result<u64, sluice_audit::AuditError> {
    let plans = reader.prune_plan(rules, chrono::Utc::now()).await?;
    let chunks = plans.iter().map(|p| (p.chunks.len() + p.statements.len()) as u64).sum();
    if chunks > 0 {
        audit.prune(plans).await?;
    }
    Ok(chunks)
}

/// Runs [`prune_due`] shortly after start and then every hour, until
/// `token` is cancelled. Does nothing without rules.
pub fn spawn(config: &Config, reader: Arc<crate::api::Evidence>, audit: AuditLog, token: CancellationToken) {
    let rules = prune_rules(config);
    if rules.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(10), PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                _ = tick.tick() => match prune_due(&reader.reader, &audit, &rules).await {
                    Ok(0) => {}
                    Ok(items) => tracing::info!(items, "retention: recording payloads deleted, statement text redacted"),
                    Err(e) => tracing::error!(error = %e, "retention: pruning failed; retrying at the next run"),
                },
            }
        }
    });
}
