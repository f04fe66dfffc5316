//! Checks that serde cannot express. Each failure names the offending key.

use crate::{Config, Invalid};
use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    if config.audit.checkpoint_interval < std::time::Duration::from_millis(100) {
        return Err(invalid("audit.checkpoint_interval".into(), "must be at least 100ms"));
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
        // Policies compare the environment exactly (`== "production"`), so a
        // `"Production"` would silently switch production guardrails off.
        let env = &conn.environment;
        if env.is_empty() || !env.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(invalid(
                at("environment"),
                "must be a lower-case name such as \"production\" or \"staging\" (a-z, 0-9, `_`, `-`); \
                 policies compare it exactly",
            ));
        }
        let retention = &conn.retention;
        if let Some(index_days) = retention.index_days {
            for (key, days) in [("payload_days", retention.payload_days), ("statement_days", retention.statement_days)]
            {
                if days.is_some_and(|days| days > index_days) {
                    return Err(invalid(
                        at("retention.index_days"),
                        &format!(
                            "is {index_days}, less than retention.{key} ({}): an expired record takes its \
                             payload and statement with it, so {key} would never apply",
                            days.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    validate_policy(&config.policy)?;
    validate_approvals(config)?;
    crate::masking::validate(&config.masking)?;
    crate::recording::validate(&config.recording)?;
    crate::alerts::validate(&config.alerts)?;
    crate::siem::validate(&config.siem)
}

fn validate_approvals(config: &Config) -> Result<(), Invalid> {
    let approvals = &config.approvals;
    let invalid = |key: String, message: String| Invalid { key, message };
    let check_groups = |key: String, groups: &[String]| {
        let mut seen = HashSet::new();
        for group in groups {
            if !is_group_name(group) {
                return Err(invalid(
                    key,
                    format!("group `{group}` must be non-empty, without leading or trailing spaces"),
                ));
            }
            if !seen.insert(group.as_str()) {
                return Err(invalid(key, format!("group `{group}` is listed twice")));
            }
        }
        Ok(())
    };
    check_groups("approvals.reviewer_groups".into(), &approvals.reviewer_groups)?;
    for (name, own) in &approvals.connections {
        let key = format!("approvals.connections.{name}.reviewer_groups");
        if config.connection(name).is_none() {
            return Err(invalid(format!("approvals.connections.{name}"), format!("no connection is named `{name}`")));
        }
        if own.reviewer_groups.is_empty() {
            return Err(invalid(
                key,
                "must name at least one group (leave the connection out to use approvals.reviewer_groups)".into(),
            ));
        }
        check_groups(key, &own.reviewer_groups)?;
    }
    for (key, value) in [
        ("approvals.hold_window", approvals.hold_window),
        ("approvals.grant_ttl", approvals.grant_ttl),
        ("approvals.expires_after", approvals.expires_after),
    ] {
        if value.is_zero() {
            return Err(invalid(key.into(), "must be longer than zero".into()));
        }
    }
    if approvals.hold_window > approvals.expires_after {
        return Err(invalid(
            "approvals.hold_window".into(),
            "must not be longer than approvals.expires_after (the request would expire while its client waits)".into(),
        ));
    }
    if approvals.approvals_required == 0 {
        return Err(invalid("approvals.approvals_required".into(), "must be at least 1".into()));
    }
    Ok(())
}

fn validate_policy(policy: &crate::Policy) -> Result<(), Invalid> {
    let invalid = |key: String, message: String| Invalid { key, message };
    for (group, parents) in &policy.groups {
        let key = format!("policy.groups.{group}");
        if !is_group_name(group) {
            return Err(invalid(key, "group names must be non-empty, without leading or trailing spaces".into()));
        }
        for parent in parents {
            if !is_group_name(parent) {
                return Err(invalid(
                    key,
                    format!("parent group `{parent}` must be non-empty, without leading or trailing spaces"),
                ));
            }
        }
    }
    if let Some(cycle) = group_cycle(&policy.groups) {
        return Err(invalid(
            format!("policy.groups.{}", cycle[0]),
            format!("groups form a cycle ({}); a group cannot be its own ancestor", cycle.join(" -> ")),
        ));
    }
    let mut profiles = HashSet::new();
    for (i, profile) in policy.mask_order.iter().enumerate() {
        let key = format!("policy.mask_order[{i}]");
        if profile.trim().is_empty() {
            return Err(invalid(key, "a mask profile name must not be empty".into()));
        }
        if !profiles.insert(profile.as_str()) {
            return Err(invalid(key, format!("mask profile `{profile}` is listed twice")));
        }
    }
    Ok(())
}

fn is_group_name(name: &str) -> bool {
    !name.is_empty() && name.trim() == name
}

/// The first cycle in the group graph, as the groups along it with the first
/// repeated at the end; `None` when the graph is acyclic.
fn group_cycle(parents: &BTreeMap<String, Vec<String>>) -> Option<Vec<&str>> {
    fn visit<'a>(
        parents: &'a BTreeMap<String, Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        let group = *path.last()?;
        for parent in parents.get(group).into_iter().flatten() {
            if let Some(start) = path.iter().position(|g| g == parent) {
                let mut cycle = path[start..].to_vec();
                cycle.push(parent);
                return Some(cycle);
            }
            if done.contains(parent.as_str()) {
                continue;
            }
            path.push(parent);
            if let Some(cycle) = visit(parents, path, done) {
                return Some(cycle);
            }
            path.pop();
        }
        done.insert(group);
        None
    }
    let mut done = BTreeSet::new();
    parents.keys().find_map(|group| {
        if done.contains(group.as_str()) {
            return None;
        }
        visit(parents, &mut vec![group.as_str()], &mut done)
    })
}
