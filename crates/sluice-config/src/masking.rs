//! `[masking]`: the default profile, the pseudonym key, named profiles and
//! column overrides, and the checks on them that need no knowledge of PHI
//! classes.
//!
//! Owns: the section's types and their validation (names, bases, strategy
//! names, key sources, column key shape). Class names (`NAME`, `SSN`, ...)
//! are checked where the masking registry is built (sluice-server), since
//! this crate does not depend on sluice-mask; that error names the key too.

use crate::{Invalid, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The profiles every gateway has, whatever the config says.
const BUILT_IN_PROFILES: [&str; 2] = ["safe_harbor", "unmasked"];

/// The strategy names a profile may give a class.
const STRATEGIES: [&str; 5] = ["redact", "partial", "pseudonym", "generalize", "keep"];

/// `[masking]`. Absent: Safe Harbor for every allowed request, no key, no
/// named profiles, no column overrides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Masking {
    /// The profile of an allowed request whose policy sets no `@mask`;
    /// `"unmasked"` turns masking off by default.
    #[serde(default = "default_profile")]
    pub default_profile: String,
    /// Environment variable holding the HMAC-SHA256 key for `pseudonym`.
    pub pseudonym_key_env: Option<String>,
    /// File holding the key (relative to the config file; a trailing
    /// newline is dropped). At most one of the two sources.
    pub pseudonym_key_file: Option<PathBuf>,
    /// Named profiles, for `@mask("name")`.
    #[serde(default)]
    pub profiles: BTreeMap<String, MaskingProfile>,
    /// `"table.column"` or `"*.column"` → a PHI class, `"free_text"` or
    /// `"not_phi"`, ahead of the built-in column-name rules.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

impl Default for Masking {
    fn default() -> Self {
        Masking {
            default_profile: default_profile(),
            pseudonym_key_env: None,
            pseudonym_key_file: None,
            profiles: BTreeMap::new(),
            columns: BTreeMap::new(),
        }
    }
}

fn default_profile() -> String {
    "safe_harbor".into()
}

/// `[masking.profiles.<name>]`: a built-in profile with some classes'
/// strategies changed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingProfile {
    /// `"safe_harbor"` (default) or `"unmasked"`.
    #[serde(default = "default_profile")]
    pub base: String,
    /// PHI class (`NAME`, `MRN`, ...) → strategy (`redact`, `partial`,
    /// `pseudonym`, `generalize`, `keep`).
    #[serde(default)]
    pub strategies: BTreeMap<String, String>,
}

impl Masking {
    /// Where the pseudonym key comes from, if configured, with the config
    /// key that names it (for errors).
    pub fn pseudonym_key(&self) -> Option<(&'static str, Secret)> {
        match (&self.pseudonym_key_env, &self.pseudonym_key_file) {
            (Some(var), _) => Some(("masking.pseudonym_key_env", Secret::Env(var.clone()))),
            (None, Some(path)) => Some(("masking.pseudonym_key_file", Secret::File(path.clone()))),
            (None, None) => None,
        }
    }
}

pub(crate) fn validate(masking: &Masking) -> Result<(), Invalid> {
    let invalid = |key: String, message: String| Invalid { key, message };
    if masking.pseudonym_key_env.is_some() && masking.pseudonym_key_file.is_some() {
        return Err(invalid(
            "masking.pseudonym_key_env".into(),
            "set pseudonym_key_env or pseudonym_key_file, not both".into(),
        ));
    }
    if masking.pseudonym_key_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
        return Err(invalid("masking.pseudonym_key_env".into(), "must name an environment variable".into()));
    }
    for (name, profile) in &masking.profiles {
        let key = format!("masking.profiles.{name}");
        if name.is_empty() || name.trim() != name {
            return Err(invalid(key, "a profile name must be non-empty, without leading or trailing spaces".into()));
        }
        if BUILT_IN_PROFILES.contains(&name.as_str()) {
            return Err(invalid(key, format!("`{name}` is built in and cannot be redefined; choose another name")));
        }
        if !BUILT_IN_PROFILES.contains(&profile.base.as_str()) {
            return Err(invalid(
                format!("{key}.base"),
                format!("`{}` is not a built-in profile (expected safe_harbor or unmasked)", profile.base),
            ));
        }
        for (class, strategy) in &profile.strategies {
            let key = format!("{key}.strategies.{class}");
            if !STRATEGIES.contains(&strategy.as_str()) {
                return Err(invalid(
                    key,
                    format!("unknown strategy `{strategy}` (expected redact, partial, pseudonym, generalize or keep)"),
                ));
            }
            if strategy == "pseudonym" && masking.pseudonym_key().is_none() {
                return Err(invalid(
                    key,
                    "the pseudonym strategy needs a key: set masking.pseudonym_key_env or masking.pseudonym_key_file"
                        .into(),
                ));
            }
        }
    }
    for column in masking.columns.keys() {
        if !is_column_key(column) {
            return Err(invalid(
                format!("masking.columns.\"{column}\""),
                "must be `table.column`, or `*.column` for a column of any table".into(),
            ));
        }
    }
    let default = &masking.default_profile;
    if !BUILT_IN_PROFILES.contains(&default.as_str()) && !masking.profiles.contains_key(default) {
        return Err(invalid(
            "masking.default_profile".into(),
            format!("no profile `{default}`: use safe_harbor, unmasked or a profile under [masking.profiles]"),
        ));
    }
    Ok(())
}

/// `table.column` or `*.column`: two non-empty parts, no spaces, `*` only
/// as the whole table part.
fn is_column_key(key: &str) -> bool {
    let Some((table, column)) = key.split_once('.') else { return false };
    let part_ok = |p: &str| !p.is_empty() && !p.contains(['*', '.']) && !p.chars().any(char::is_whitespace);
    (table == "*" || part_ok(table)) && part_ok(column)
}

#[cfg(test)]
mod tests {
    use crate::{Config, LoadError, Secret};
    use std::path::Path;

    const BASE: &str = "[listeners]\npostgres = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://x.db\"\n";

    fn load(masking: &str) -> Result<Config, LoadError> {
        Config::from_toml(&format!("{BASE}{masking}"), Path::new("/etc/sluice"))
    }

    fn refused(masking: &str, key: &str, words: &str) {
        match load(masking) {
            Err(LoadError::Invalid(invalid)) => {
                assert_eq!(invalid.key, key, "{masking}: {}", invalid.message);
                assert!(invalid.message.contains(words), "{masking}: {}", invalid.message);
            }
            other => panic!("{masking}: expected a refusal naming {key}, got {other:?}"),
        }
    }

    #[test]
    fn absent_section_means_safe_harbor_and_nothing_else() {
        let config = load("").unwrap();
        assert_eq!(config.masking, crate::Masking::default());
        assert_eq!(config.masking.default_profile, "safe_harbor");
        assert!(config.masking.pseudonym_key().is_none());
    }

    #[test]
    fn full_section_loads_with_anchored_key_file() {
        let config = load(
            r#"
[masking]
default_profile = "research"
pseudonym_key_file = "keys/pseudonym.key"
[masking.profiles.research]
base = "unmasked"
strategies = { NAME = "pseudonym", DATE = "generalize" }
[masking.profiles.strict]
[masking.columns]
"patients.photo" = "BIOMETRIC"
"*.notes" = "free_text"
"#,
        )
        .unwrap();
        let masking = &config.masking;
        assert_eq!(masking.profiles["research"].base, "unmasked");
        assert_eq!(masking.profiles["research"].strategies["NAME"], "pseudonym");
        assert_eq!(masking.profiles["strict"].base, "safe_harbor");
        assert_eq!(masking.columns["*.notes"], "free_text");
        let (key, secret) = masking.pseudonym_key().unwrap();
        assert_eq!(key, "masking.pseudonym_key_file");
        assert_eq!(secret, Secret::File("/etc/sluice/keys/pseudonym.key".into()));
    }

    #[test]
    fn each_bad_value_is_refused_naming_its_key() {
        refused(
            "[masking]\npseudonym_key_env = \"K\"\npseudonym_key_file = \"k\"\n",
            "masking.pseudonym_key_env",
            "not both",
        );
        refused("[masking]\npseudonym_key_env = \"\"\n", "masking.pseudonym_key_env", "environment variable");
        refused("[masking.profiles.\"\"]\n", "masking.profiles.", "non-empty");
        refused("[masking.profiles.safe_harbor]\n", "masking.profiles.safe_harbor", "built in");
        refused("[masking.profiles.unmasked]\n", "masking.profiles.unmasked", "built in");
        refused("[masking.profiles.p]\nbase = \"strict\"\n", "masking.profiles.p.base", "not a built-in");
        refused(
            "[masking.profiles.p]\nstrategies = { NAME = \"scramble\" }\n",
            "masking.profiles.p.strategies.NAME",
            "unknown strategy `scramble`",
        );
        refused(
            "[masking.profiles.p]\nstrategies = { MRN = \"pseudonym\" }\n",
            "masking.profiles.p.strategies.MRN",
            "needs a key",
        );
        refused("[masking.columns]\n\"photo\" = \"BIOMETRIC\"\n", "masking.columns.\"photo\"", "table.column");
        refused("[masking.columns]\n\"a.b.c\" = \"not_phi\"\n", "masking.columns.\"a.b.c\"", "table.column");
        refused("[masking.columns]\n\"t.*\" = \"not_phi\"\n", "masking.columns.\"t.*\"", "table.column");
        refused("[masking]\ndefault_profile = \"strict\"\n", "masking.default_profile", "no profile `strict`");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = load("[masking]\ndefault = \"unmasked\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `default`"), "{err}");
        let err = load("[masking.profiles.p]\nstrategy = {}\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `strategy`"), "{err}");
    }

    #[test]
    fn pseudonym_with_a_key_and_defined_default_load() {
        let config = load(
            "[masking]\ndefault_profile = \"p\"\npseudonym_key_env = \"K\"\n\
             [masking.profiles.p]\nstrategies = { NAME = \"pseudonym\" }\n[masking.columns]\n\"*.notes\" = \"not_phi\"\n",
        )
        .unwrap();
        assert_eq!(config.masking.pseudonym_key().unwrap().1, Secret::Env("K".into()));
    }
}
