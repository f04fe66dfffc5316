//! Prometheus counters for sessions, decisions, upstream errors and audit
//! commits. The server registers them and serves `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sluice_model::Verdict;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    pub decision: &'static str,
}

/// Cheap to clone: every field is an `Arc` inside.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub sessions_opened: Counter,
    pub sessions_active: Gauge,
    pub requests: Family<DecisionLabel, Counter>,
    pub auth_failures: Counter,
    /// Requests refused because the audit store could not record them.
    pub audit_refusals: Counter,
    pub upstream_errors: Counter,
    pub audit_commit_seconds: Histogram,
    pub audit_records_committed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];
        Metrics {
            sessions_opened: Counter::default(),
            sessions_active: Gauge::default(),
            requests: Family::default(),
            auth_failures: Counter::default(),
            audit_refusals: Counter::default(),
            upstream_errors: Counter::default(),
            audit_commit_seconds: Histogram::new(buckets),
            audit_records_committed: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn count_decision(&self, verdict: Verdict) {
        let decision = match verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Hold => "hold",
        };
        self.requests.get_or_create(&DecisionLabel { decision }).inc();
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register("sluice_sessions_opened", "Client sessions opened", self.sessions_opened.clone());
        registry.register("sluice_sessions_active", "Client sessions open now", self.sessions_active.clone());
        registry.register("sluice_requests", "Requests by decision", self.requests.clone());
        registry.register("sluice_auth_failures", "Credentials refused", self.auth_failures.clone());
        registry.register(
            "sluice_audit_refusals",
            "Requests refused because the audit store failed",
            self.audit_refusals.clone(),
        );
        registry.register(
            "sluice_upstream_errors",
            "Failures connecting to or talking with targets",
            self.upstream_errors.clone(),
        );
        registry.register(
            "sluice_audit_commit_seconds",
            "Latency of one audit group commit",
            self.audit_commit_seconds.clone(),
        );
        registry.register(
            "sluice_audit_records_committed",
            "Audit records made durable",
            self.audit_records_committed.clone(),
        );
    }
}
