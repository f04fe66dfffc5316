//! PostgreSQL protocol for Sluice: a sans-IO codec and the gateway adapter.
//!
//! Owns: everything PostgreSQL-specific — the wire codec, client startup and
//! TLS, the upstream login with stored credentials, relaying the full
//! protocol (simple and extended query, COPY, notices, notifications,
//! cancellation), and rendering refusals as `ErrorResponse`s.
//! Does not: decide, mask or record by itself: each request goes through
//! `sluice_pipeline::Session::submit`, and the session's recording is
//! written by sluice-pipeline's `Recorder`, which the relay feeds with what
//! the client already got.
//!
//! # Layout
//! - [`codec`]: framing and typed message views (sans-IO, fuzzable).
//! - [`frontend`]: a client connection from accept to a running session.
//! - [`relay`]: the session loop and the request/response bookkeeping.
//! - [`upstream`]: Sluice's own login to the target.
//! - [`cancel`]: client cancel keys mapped to upstream backends.
//! - [`tls`]: rustls configs for both sides.
//! - [`stream`]: plain-or-TLS sockets.

pub mod cancel;
pub mod codec;
pub mod frontend;
mod mask;
pub mod relay;
pub mod stream;
pub mod tls;
pub mod upstream;

use cancel::CancelRegistry;
use sluice_config::{ConnectionKind, PlaintextAuth};
use sluice_pipeline::Gateway;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use upstream::{UpstreamError, UpstreamTarget};

/// Distinct statement texts whose classification is kept.
const CLASSIFIER_CACHE_ENTRIES: usize = 16_384;

/// PostgreSQL messages may be up to 1 GiB; anything longer is refused.
pub const MAX_FRAME: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("connection \"{name}\": {source}")]
    Target { name: String, source: UpstreamError },
    #[error("client TLS: {0}")]
    Tls(#[from] tls::TlsSetupError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// What every PostgreSQL session of one listener shares.
pub struct PgContext {
    gateway: Gateway,
    targets: HashMap<String, Arc<UpstreamTarget>>,
    tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    plaintext_auth: PlaintextAuth,
    cancels: Arc<CancelRegistry>,
    /// Shared by every session, so a statement any client sent before is a
    /// cache hit for all.
    classifier: sluice_sql::Classifier,
    max_frame: usize,
}

impl std::fmt::Debug for PgContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgContext")
            .field("targets", &self.targets.keys())
            .field("client_tls", &self.tls_acceptor.is_some())
            .finish()
    }
}

impl PgContext {
    /// Builds targets (resolving their secrets) and the client TLS acceptor.
    pub fn new(gateway: Gateway) -> Result<Arc<PgContext>, PgError> {
        let config = gateway.config();
        let mut targets = HashMap::new();
        for connection in config.connections.iter().filter(|c| c.kind == ConnectionKind::Postgres) {
            let target = UpstreamTarget::new(Arc::new(connection.clone()))
                .map_err(|source| PgError::Target { name: connection.name.clone(), source })?;
            targets.insert(connection.name.clone(), Arc::new(target));
        }
        let tls_acceptor = config.client_tls.as_ref().map(tls::client_acceptor).transpose()?;
        let plaintext_auth = config.listeners.plaintext_auth;
        Ok(Arc::new(PgContext {
            gateway,
            targets,
            tls_acceptor,
            plaintext_auth,
            cancels: Arc::default(),
            classifier: sluice_sql::Classifier::new(CLASSIFIER_CACHE_ENTRIES),
            max_frame: MAX_FRAME,
        }))
    }

    /// The targets, for `sluice check`.
    pub fn targets(&self) -> impl Iterator<Item = &Arc<UpstreamTarget>> {
        self.targets.values()
    }
}

/// Accepts clients until shutdown. Each session runs as a tracked task, so
/// shutdown can wait for it to drain.
pub async fn serve(ctx: Arc<PgContext>, listener: TcpListener) {
    let shutdown = ctx.gateway.shutdown_token().clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let ctx = ctx.clone();
                ctx.gateway.sessions().clone().spawn(frontend::serve_client(ctx, tcp, peer));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
