//! Checks that serde cannot express. Each failure names the offending key.

use crate::{Config, Invalid};
use std::collections::HashSet;

pub(crate) fn validate(config: &Config) -> Result<(), Invalid> {
    let invalid = |key: String, message: &str| Invalid { key, message: message.to_string() };

    if config.listeners.postgres.is_none() {
        return Err(invalid("listeners".into(), "no listener configured; set `postgres = \"127.0.0.1:15432\"`"));
    }
    let url = &config.storage.url;
    if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid("storage.url".into(), "must start with sqlite:// or postgres://"));
    }
    if config.audit.max_batch == 0 {
        return Err(invalid("audit.max_batch".into(), "must be at least 1"));
    }

    let mut key_names = HashSet::new();
    let mut key_hashes = HashSet::new();
    for (i, key) in config.identity.api_keys.iter().enumerate() {
        let at = |field: &str| format!("identity.api_keys[{i}].{field}");
        if key.name.trim().is_empty() {
            return Err(invalid(at("name"), "must not be empty"));
        }
        if !key_names.insert(key.name.as_str()) {
            return Err(invalid(at("name"), "duplicate API key name"));
        }
        let hash = &key.key_sha256;
        if hash.len() != 64 || hex::decode(hash).is_err() {
            return Err(invalid(at("key_sha256"), "must be 64 hex digits (the SHA-256 of the key)"));
        }
        if !key_hashes.insert(hash.to_ascii_lowercase()) {
            return Err(invalid(at("key_sha256"), "the same key is configured twice"));
        }
    }

    for (i, provider) in config.identity.oidc.iter().enumerate() {
        let at = |field: &str| format!("identity.oidc[{i}].{field}");
        if !(provider.issuer.starts_with("https://") || provider.issuer.starts_with("http://")) {
            return Err(invalid(at("issuer"), "must be an http(s) URL"));
        }
        if provider.audience.is_empty() {
            return Err(invalid(at("audience"), "must not be empty"));
        }
    }

    let mut names = HashSet::new();
    for (i, conn) in config.connections.iter().enumerate() {
        let at = |field: &str| format!("connections[{i}].{field}");
        if conn.name.is_empty() || !conn.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid(at("name"), "must be non-empty and use only letters, digits, `_` and `-`"));
        }
        if !names.insert(conn.name.as_str()) {
            return Err(invalid(at("name"), "duplicate connection name"));
        }
        if conn.inline_password.is_some() {
            return Err(invalid(
                at("password"),
                "inline passwords are not accepted; use password_env or password_file",
            ));
        }
        if conn.password_env.is_some() && conn.password_file.is_some() {
            return Err(invalid(at("password_env"), "set password_env or password_file, not both"));
        }
        match conn.upstream.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(invalid(at("upstream"), "must be host:port")),
        }
    }
    Ok(())
}
