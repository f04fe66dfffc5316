//! Retention from config: each connection's `retention` as prune rules, and
//! the server's hourly job that deletes due recording payloads, redacts due
//! statement text and expires due records.
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

/// One rule per connection that sets `retention.payload_days`,
/// `statement_days` or `index_days`.
pub fn prune_rules(config: &Config) -> Vec<PruneRule> {
    config
        .connections
        .iter()
        .map(|c| (c, &c.retention))
        .filter(|(_, r)| r.payload_days.is_some() || r.statement_days.is_some() || r.index_days.is_some())
        .map(|(c, r)| PruneRule {
            connection: c.name.clone(),
            payload_days: r.payload_days,
            statement_days: r.statement_days,
            index_days: r.index_days,
            legal_hold: r.legal_hold,
        })
        .collect()
}

/// Prunes what is due now: the plan, then the deletion and its records.
/// Returns how many payloads, statements and records went.
pub async fn prune_due(
    reader: &AuditReader,
    audit: &AuditLog,
    rules: &[PruneRule],
) -> Result<u64, sluice_audit::AuditError> {
    let plans = reader.prune_plan(rules, chrono::Utc::now()).await?;
    let items = plans.iter().map(|p| p.items() as u64).sum();
    if items > 0 {
        audit.prune(plans).await?;
    }
    Ok(items)
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
                    Ok(items) => tracing::info!(items, "retention: payloads deleted, statement text redacted, records expired"),
                    Err(e) => tracing::error!(error = %e, "retention: pruning failed; retrying at the next run"),
                },
            }
        }
    });
}
