//! Wiring from config: builds the gateway, binds the listeners, serves the
//! REST API (`/healthz`, `/metrics`, the reviewer API), expires overdue
//! approval requests, starts the SIEM sinks (`sluice-siem`), and shuts
//! everything down in order.
//!
//! Owns: the order of startup (audit store, identity, policies, masking,
//! gateway, adapters, listeners) and of shutdown (stop accepting, drain
//! sessions, flush audit, then let the SIEM sinks send what is left).
//! Does not: carry protocol logic (adapters do) or decide anything.
//!
//! # Layout
//! - [`api`]: the HTTP routes, the reviewer API and its OpenAPI document.
//! - [`check`]: `sluice check`, config plus live upstream and IdP checks.
//! - [`masking`]: the masking registry built from `[masking]`, and the check
//!   that every profile policies name exists.
//! - [`policy`]: the policy engine loaded with the settings config gives it.
//! - [`retention`]: prune rules from config and the hourly retention job.

pub mod api;
pub mod check;
pub mod masking;
pub mod policy;
pub mod retention;

use sluice_audit::{AuditLog, AuditOptions};
use sluice_config::Config;
use sluice_identity::Authenticator;
use sluice_pg::PgContext;
use sluice_pipeline::{Approvals, Gateway, Metrics};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("audit store: {0}")]
    Audit(#[from] sluice_audit::AuditError),
    #[error("identity: {0}")]
    Identity(#[from] sluice_identity::IdentityError),
    #[error("{0}")]
    Postgres(#[from] sluice_pg::PgError),
    #[error("policies: {0}")]
    Policy(#[from] sluice_policy::PolicyError),
    #[error("masking: {0}")]
    Masking(#[from] masking::MaskingSetupError),
    #[error("alerts: {0}")]
    Alerts(#[from] sluice_alerts::AlertError),
    #[error("{0}")]
    Approvals(#[from] sluice_approval::ApprovalError),
    #[error("siem: {0}")]
    Siem(#[from] sluice_siem::SinkError),
    #[error("audit.signing_key_file {path}: {reason}")]
    SigningKey { path: std::path::PathBuf, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Where the server actually listens (ports may have been 0 in config).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct BoundAddrs {
    pub postgres: Option<SocketAddr>,
    pub api: Option<SocketAddr>,
}

/// A started, listening server.
#[derive(Debug)]
pub struct Server {
    gateway: Gateway,
    config: Arc<Config>,
    pg: Option<(Arc<PgContext>, TcpListener)>,
    api: Option<TcpListener>,
    /// The SIEM sinks, forwarding from their cursors; stopped after the
    /// audit log is flushed so they send its last records.
    siem: sluice_siem::Forwarder,
    evidence: Arc<api::Evidence>,
    registry: Arc<prometheus_client::registry::Registry>,
}

impl Server {
    /// Opens the audit store and binds every listener; nothing is served yet.
    pub async fn start(config: Arc<Config>) -> Result<Server, ServerError> {
        let metrics = Metrics::default();
        let commit_metrics = metrics.clone();
        let signing_key = config.audit.signing_key_file.as_deref().map(load_signing_key).transpose()?.map(Arc::new);
        let options = AuditOptions {
            max_batch: config.audit.max_batch,
            signing_key: signing_key.clone(),
            on_commit: Some(Arc::new(move |stats: sluice_audit::CommitStats| {
                commit_metrics.audit_commit_seconds.observe(stats.latency.as_secs_f64());
                commit_metrics.audit_records_committed.inc_by(stats.records as u64);
            })),
        };
        let audit = AuditLog::open(&config.storage.url, options).await?;
        let evidence = Arc::new(api::Evidence {
            reader: sluice_audit::AuditReader::open(&config.storage.url).await?,
            verifier: signing_key.map(|key| key.verifier().clone()),
        });
        let authenticator = Authenticator::new(&config.identity)?;
        let policies = policy::load(&config)?;
        let masking = masking::build(&config)?;
        masking::check_profiles(&masking, &config, policies.as_ref())?;
        let api = match config.server.api_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?),
            None => None,
        };
        let api_base = api.as_ref().and_then(|l| l.local_addr().ok()).map(|addr| format!("http://{addr}"));
        let alerter = sluice_alerts::Alerter::new(&config.alerts.webhooks, Some(record_deliveries(audit.clone())))?;
        let approvals =
            Approvals::open(&config.storage.url, config.approvals.clone(), audit.clone(), alerter, api_base).await?;
        let gateway = Gateway::new(config.clone(), authenticator, audit, metrics.clone(), policies, masking, approvals);

        let pg = match config.listeners.postgres {
            Some(addr) => {
                let ctx = PgContext::new(gateway.clone())?;
                let listener = TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?;
                Some((ctx, listener))
            }
            None => None,
        };
        let siem = sluice_siem::Forwarder::start(&config.siem.sinks, &config.storage.url).await?;
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        Ok(Server { gateway, config, pg, api, evidence, siem, registry: Arc::new(registry) })
    }

    pub fn addrs(&self) -> BoundAddrs {
        BoundAddrs {
            postgres: self.pg.as_ref().and_then(|(_, l)| l.local_addr().ok()),
            api: self.api.as_ref().and_then(|l| l.local_addr().ok()),
        }
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets sessions
    /// finish their in-flight statements for up to `shutdown_grace`, and
    /// flushes the audit store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server { gateway, config, pg, api, evidence, siem, registry } = self;
        if let Some((ctx, listener)) = pg {
            tokio::spawn(sluice_pg::serve(ctx, listener));
        }
        if let Some(listener) = api {
            let router = api::router(gateway.clone(), evidence.clone(), registry);
            let token = gateway.shutdown_token().clone();
            tokio::spawn(async move {
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                let served =
                    axum::serve(listener, service).with_graceful_shutdown(async move { token.cancelled().await }).await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "API server failed");
                }
            });
        }
        // Pending requests past `expires_after` become `expired` (recorded,
        // alerted) within a second, until shutdown.
        let approvals = gateway.approvals().clone();
        let token = gateway.shutdown_token().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = approvals.expire_due().await {
                            tracing::error!(error = %e, "cannot expire overdue approval requests; retrying");
                        }
                    }
                }
            }
        });
        retention::spawn(&config, evidence.clone(), gateway.audit().clone(), gateway.shutdown_token().clone());
        // A signed checkpoint of whatever was added, every interval; the
        // writer signs a last one when it stops.
        let audit = gateway.audit().clone();
        let token = gateway.shutdown_token().clone();
        let interval = config.audit.checkpoint_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = audit.checkpoint().await {
                            tracing::error!(error = %e, "cannot store a signed checkpoint; retrying at the next interval");
                        }
                    }
                }
            }
        });
        shutdown.await;
        tracing::info!(grace = ?config.server.shutdown_grace, "shutting down: no new sessions; draining");
        let cut = gateway.drain(config.server.shutdown_grace).await;
        if cut > 0 {
            tracing::warn!(sessions = cut, "grace period over; cutting remaining sessions");
        }
        gateway.audit().shutdown().await;
        siem.shutdown(std::time::Duration::from_secs(5)).await;
        tracing::info!("audit log flushed; stopped");
    }
}

/// Reads the checkpoint signing key, and warns when others may read it.
pub(crate) fn load_signing_key(path: &std::path::Path) -> Result<sluice_evidence::SigningKey, ServerError> {
    let fail = |reason: String| ServerError::SigningKey { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let key = sluice_evidence::SigningKey::from_key_file(&text).map_err(|e| fail(e.to_string()))?;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the checkpoint signing key is readable by others; chmod 600 it");
        }
    }
    Ok(key)
}

/// Every webhook delivery's final result becomes an `alert_delivery` audit
/// record (lazy: it rides with the next commit).
fn record_deliveries(audit: AuditLog) -> sluice_alerts::DeliveryObserver {
    Arc::new(move |report: sluice_alerts::DeliveryReport| {
        let status = match report.status {
            sluice_alerts::DeliveryStatus::Delivered => "delivered",
            sluice_alerts::DeliveryStatus::Failed => "failed",
            sluice_alerts::DeliveryStatus::Dropped => "dropped",
        };
        audit.append_lazy(sluice_model::AuditEvent::AlertDelivery(sluice_model::AlertDelivery {
            event_id: report.event_id,
            event_type: report.event_type.as_str().to_string(),
            url: report.url,
            status: status.to_string(),
            attempts: report.attempts,
            http_status: report.http_status,
            error: report.error,
        }));
    })
}
