//! `sluice check`: is this config usable here, now?
//!
//! Owns: logging in to every upstream, running discovery against every
//! identity provider, opening the audit store, loading the policies and
//! building the masking profiles they name, and setting up every SIEM sink
//! (without contacting it), each reported on a line.
//! Does not: serve anything, or change the store beyond creating its schema.

use sluice_audit::{AuditLog, AuditOptions, StoreHealth};
use sluice_config::{Config, ConnectionKind};
use sluice_identity::Authenticator;
use sluice_pg::upstream::UpstreamTarget;
use sluice_policy::PolicyEngine;
use std::sync::Arc;

/// One line of the check report.
#[derive(Debug, Clone)]
pub struct CheckLine {
    pub what: String,
    pub result: Result<String, String>,
}

pub async fn check(config: &Config) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    lines.push(CheckLine {
        what: "config".into(),
        result: Ok(format!(
            "{} connection(s), {} API key(s), {} OIDC provider(s)",
            config.connections.len(),
            config.identity.api_keys.len(),
            config.identity.oidc.len()
        )),
    });
    lines.push(CheckLine {
        what: format!("audit store {}", redact_url(&config.storage.url)),
        // Opening for writing creates the store and its schema if this is a
        // fresh install, exactly as `serve` would.
        result: match AuditLog::open(&config.storage.url, AuditOptions::default()).await {
            Ok(log) => {
                let health = log.health();
                log.shutdown().await;
                match health {
                    StoreHealth::Healthy => Ok("opened for writing".into()),
                    StoreHealth::Unavailable { error, .. } => Err(error),
                }
            }
            // A running server holds the writer's lock: the store is fine.
            Err(sluice_audit::AuditError::WriterBusy(_)) => {
                match sluice_audit::AuditReader::open(&config.storage.url).await {
                    Ok(_) => Ok("in use by a running Sluice (its writer); readable".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        },
    });
    if let Some(path) = &config.audit.signing_key_file {
        lines.push(CheckLine {
            what: format!("checkpoint signing key {}", path.display()),
            result: crate::load_signing_key(path)
                .map(|key| format!("key {:?}, log id {}", key.name(), key.log_id()))
                .map_err(|e| e.to_string()),
        });
    }
    let policies = crate::policy::load(config);
    if let Some(dir) = &config.policy.dir {
        lines.push(CheckLine {
            what: format!("policies in {}", dir.display()),
            result: match &policies {
                Ok(engine) => {
                    let count = engine.as_ref().map_or(0, |e| e.policy_names().count());
                    Ok(format!("{count} policies valid against the schema"))
                }
                Err(e) => Err(e.to_string()),
            },
        });
    }
    lines.push(CheckLine { what: "masking".into(), result: check_masking(config, policies.ok().flatten().as_ref()) });
    match Authenticator::new(&config.identity) {
        Ok(authenticator) => {
            for (issuer, result) in authenticator.check_providers().await {
                lines.push(CheckLine {
                    what: format!("identity provider {issuer}"),
                    result: result.map(|()| "discovery and JWKS fetched".into()).map_err(|e| e.to_string()),
                });
            }
        }
        Err(e) => lines.push(CheckLine { what: "identity".into(), result: Err(e.to_string()) }),
    }
    for connection in &config.connections {
        let what = format!("connection {} ({:?} at {})", connection.name, connection.kind, connection.upstream);
        let ConnectionKind::Postgres = connection.kind;
        let result = match UpstreamTarget::new(Arc::new(connection.clone())) {
            Ok(target) => match target.connect(&[], &[]).await {
                Ok(upstream) => Ok(format!("logged in{}", if upstream.stream.is_tls() { " over TLS" } else { "" })),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        lines.push(CheckLine { what, result });
    }
    for sink in &config.siem.sinks {
        // Built as `serve` builds it: its token or header variables read,
        // its CA file loaded. Not contacted: a sink that is down is retried.
        let result = sluice_siem::Sink::build(sink)
            .map(|_| "set up (credentials and CA read; not contacted, delivery is retried)".to_owned())
            .map_err(|e| e.to_string());
        lines.push(CheckLine { what: format!("SIEM sink {} ({})", sink.name, sink.kind), result });
    }
    lines
}

/// The masking registry builds (key readable, classes known) and holds
/// every profile the policies (when they loaded) and `mask_order` name.
fn check_masking(config: &Config, policies: Option<&PolicyEngine>) -> Result<String, String> {
    let masking = crate::masking::build(config).map_err(|e| e.to_string())?;
    crate::masking::check_profiles(&masking, config, policies).map_err(|e| e.to_string())?;
    Ok(format!(
        "{} profile(s) besides the built-in ones, default `{}`, {} column override(s)",
        config.masking.profiles.len(),
        masking.default_profile(),
        config.masking.columns.len()
    ))
}

/// A storage URL without its password, for printing.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}
