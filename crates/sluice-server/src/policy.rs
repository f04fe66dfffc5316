//! The policy engine as configured: `[policy] dir` loaded with the settings
//! `sluice.toml` gives it.
//!
//! Owns: turning `[policy.groups]`, `[policy] mask_order` and each
//! connection's `environment` into [`PolicySettings`], and loading the engine
//! with them, for `serve`, `check` and the `sluice policy` commands alike.
//! Does not: decide (sluice-policy does) or validate config (sluice-config does).

use sluice_config::Config;
use sluice_policy::{ConnectionAttrs, PolicyEngine, PolicyError, PolicySettings};

/// What the engine takes from config besides the policy files.
pub fn settings(config: &Config) -> PolicySettings {
    PolicySettings {
        connections: config
            .connections
            .iter()
            .map(|c| (c.name.clone(), ConnectionAttrs { environment: c.environment.clone() }))
            .collect(),
        group_parents: config.policy.groups.clone(),
        mask_order: config.policy.mask_order.clone(),
    }
}

/// Loads `[policy] dir` with the configured settings; `None` without a dir
/// (the built-in guardrails decide then).
pub fn load(config: &Config) -> Result<Option<PolicyEngine>, PolicyError> {
    let Some(dir) = &config.policy.dir else { return Ok(None) };
    PolicyEngine::load_dir_with(dir, &settings(config)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn settings_carry_environments_groups_and_mask_order() {
        let text = r#"
[listeners]
postgres = "127.0.0.1:0"
[storage]
url = "sqlite://x.db"
[policy]
mask_order = ["strict", "phi"]
[policy.groups]
analysts = ["readers"]
[[connections]]
name = "scratch"
kind = "postgres"
upstream = "h:1"
database = "d"
user = "u"
environment = "staging"
[[connections]]
name = "patients"
kind = "postgres"
upstream = "h:1"
database = "d"
user = "u"
"#;
        let config = Config::from_toml(text, Path::new("/")).unwrap();
        let settings = settings(&config);
        assert_eq!(settings.connections["scratch"], ConnectionAttrs { environment: "staging".into() });
        assert_eq!(settings.connections["patients"], ConnectionAttrs { environment: "production".into() });
        assert_eq!(settings.group_parents["analysts"], ["readers"]);
        assert_eq!(settings.mask_order, ["strict", "phi"]);
        assert!(load(&config).unwrap().is_none());
    }
}
