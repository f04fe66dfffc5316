//! `Gateway`: the state every session shares, built once from config.
//!
//! Owns: the identify phase, opening sessions (their durable `session_open`
//! record), and the shutdown signal with its session tracker.
//! Does not: speak any protocol, or hold per-request state.

use crate::approvals::Approvals;
use crate::budget::Budgets;
use crate::decide::Decider;
use crate::guardrails::Guardrails;
use crate::masking::Masking;
use crate::metrics::Metrics;
use crate::session::Session;
use sluice_audit::{AuditError, AuditLog};
use sluice_config::{Config, Connection};
use sluice_identity::{Authenticator, IdentityError};
use sluice_model::{AuditEvent, AuthFailure, Principal, SessionOpen};
use sluice_policy::PolicyEngine;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by every listener and session; cheap to clone.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    pub(crate) authenticator: Authenticator,
    pub(crate) audit: AuditLog,
    /// Cedar policies, or the built-in guardrails when none are configured.
    pub(crate) decider: Decider,
    /// Hourly row windows, by principal and connection.
    pub(crate) budgets: Budgets,
    /// The masking profiles, and the default for requests whose policy sets none.
    pub(crate) masking: Masking,
    /// Held requests, grants and reviewers' decisions.
    pub(crate) approvals: Approvals,
    /// Connections by name, shared with the sessions that use them.
    pub(crate) connections: HashMap<String, Arc<Connection>>,
    pub(crate) metrics: Metrics,
    /// Cancelled on SIGTERM: listeners stop accepting, sessions finish their
    /// current request and close.
    pub(crate) shutdown: CancellationToken,
    /// Every session task, so shutdown can wait for them to drain.
    pub(crate) sessions: TaskTracker,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("authentication failed: {0}")]
    Unauthenticated(#[from] IdentityError),
    /// The client named a database that is not a configured connection. The
    /// message names only what the client sent.
    #[error("no connection named \"{0}\" is configured in Sluice")]
    UnknownConnection(String),
    #[error("the audit store cannot be written, so Sluice refuses new work: {0}")]
    AuditUnavailable(#[from] AuditError),
}

/// Where a client came from and what it asked for, before it is identified.
#[derive(Debug, Clone)]
pub struct ClientHello<'a> {
    pub protocol: &'static str,
    pub client_addr: String,
    pub client_tls: bool,
    pub connection: &'a str,
}

impl Gateway {
    /// `policies`: the loaded Cedar policies, or `None` for the built-in
    /// guardrails only. `masking`: the profiles `@mask` may name, and the
    /// default every other allowed request is masked with.
    pub fn new(
        config: Arc<Config>,
        authenticator: Authenticator,
        audit: AuditLog,
        metrics: Metrics,
        policies: Option<PolicyEngine>,
        masking: Masking,
        approvals: Approvals,
    ) -> Gateway {
        let decider = match policies {
            Some(engine) => Decider::Cedar(Box::new(engine)),
            None => Decider::Guardrails(Guardrails::new(&config.policy.deny_statements)),
        };
        let connections = config.connections.iter().map(|c| (c.name.clone(), Arc::new(c.clone()))).collect();
        let budgets = Budgets::new(config.storage.url.clone());
        Gateway {
            inner: Arc::new(Inner {
                config,
                authenticator,
                audit,
                decider,
                budgets,
                masking,
                approvals,
                connections,
                metrics,
                shutdown: CancellationToken::new(),
                sessions: TaskTracker::new(),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// The approval workflow: the reviewer API lists and decides through it.
    pub fn approvals(&self) -> &Approvals {
        &self.inner.approvals
    }

    /// Authenticates a credential presented outside a database session (the
    /// reviewer API): an API key or OIDC token becomes a `Principal`. A
    /// refusal is recorded (without the credential), as at login.
    pub async fn authenticate(
        &self,
        protocol: &'static str,
        client_addr: &str,
        credential: &str,
    ) -> Result<Principal, GatewayError> {
        let outcome = self.inner.authenticator.authenticate(credential).await.map_err(GatewayError::Unauthenticated);
        if let Err(error) = &outcome {
            self.record_auth_failure(protocol, client_addr, None, error);
        }
        outcome
    }

    /// The masking profiles and their column rules.
    pub fn masking(&self) -> &Masking {
        &self.inner.masking
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The signal listeners and sessions watch for shutdown.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Tracks a session task so [`Gateway::drain`] waits for it.
    pub fn sessions(&self) -> &TaskTracker {
        &self.inner.sessions
    }

    /// Stops new sessions and waits up to `grace` for the running ones.
    /// Returns the number of sessions still running when the grace ran out.
    pub async fn drain(&self, grace: std::time::Duration) -> usize {
        self.inner.shutdown.cancel();
        self.inner.sessions.close();
        match tokio::time::timeout(grace, self.inner.sessions.wait()).await {
            Ok(()) => 0,
            Err(_) => self.inner.sessions.len(),
        }
    }

    /// Phase 1, identify: the credential the client presented becomes a
    /// `Principal`, and the connection it named is looked up. A refusal is
    /// recorded (without the credential).
    pub async fn identify(
        &self,
        hello: &ClientHello<'_>,
        credential: &str,
    ) -> Result<(Principal, Arc<Connection>), GatewayError> {
        let outcome = match self.inner.authenticator.authenticate(credential).await {
            Ok(principal) => match self.connection(hello.connection) {
                Some(connection) => Ok((principal, connection)),
                None => Err(GatewayError::UnknownConnection(hello.connection.to_string())),
            },
            Err(e) => Err(GatewayError::Unauthenticated(e)),
        };
        if let Err(error) = &outcome {
            self.record_auth_failure(hello.protocol, &hello.client_addr, Some(hello.connection), error);
        }
        outcome
    }

    fn record_auth_failure(&self, protocol: &str, client_addr: &str, connection: Option<&str>, error: &GatewayError) {
        self.inner.metrics.auth_failures.inc();
        // Recorded, not awaited: nothing was exchanged that needs the record first.
        self.inner.audit.append_lazy(AuditEvent::AuthFailure(AuthFailure {
            protocol: protocol.to_string(),
            client_addr: client_addr.to_string(),
            connection: connection.map(str::to_string),
            reason: error.to_string(),
        }));
    }

    fn connection(&self, name: &str) -> Option<Arc<Connection>> {
        self.inner.connections.get(name).cloned()
    }

    /// Opens a session for an identified principal. Its `session_open` record
    /// is durable before this returns: no session runs unrecorded.
    pub async fn open_session(
        &self,
        hello: &ClientHello<'_>,
        principal: Principal,
        connection: Arc<Connection>,
    ) -> Result<Session, GatewayError> {
        let session_id = uuid::Uuid::now_v7().to_string();
        let event = AuditEvent::SessionOpen(SessionOpen {
            session_id: session_id.clone(),
            principal: principal.clone(),
            connection: connection.name.clone(),
            protocol: hello.protocol.to_string(),
            client_addr: hello.client_addr.clone(),
            client_tls: hello.client_tls,
        });
        if let Err(e) = self.inner.audit.append(event).await {
            self.inner.approvals.alert_store_unavailable(&e.to_string());
            return Err(e.into());
        }
        self.inner.metrics.sessions_opened.inc();
        self.inner.metrics.sessions_active.inc();
        let policy = self.inner.decider.prepare(&principal, &connection.name);
        Ok(Session::new(self.clone(), session_id, principal, connection, hello.client_addr.clone(), policy))
    }
}
