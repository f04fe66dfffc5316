//! The masking registry as configured: `[masking]` turned into the
//! [`Masking`] the gateway applies, and the check that every profile a
//! policy or `[policy] mask_order` names exists.
//!
//! Owns: resolving the pseudonym key, the column overrides and the one
//! shared [`Detector`], the built-in and configured profiles, for `serve`,
//! `check` and `sluice mask --config` alike.
//! Does not: detect or rewrite (sluice-mask does), pick a request's profile
//! (sluice-pipeline does) or check what needs no PHI class names
//! (sluice-config does).

use sluice_config::Config;
use sluice_mask::{ColumnMap, ColumnRule, Detector, DisclosureKey, Masker, PhiClass, Profile, Strategy};
use sluice_pipeline::Masking;
use sluice_policy::PolicyEngine;
use std::collections::HashSet;
use std::sync::Arc;

/// Shortest pseudonym key accepted: shorter keys make pseudonyms guessable.
const MIN_KEY_BYTES: usize = 16;

/// Why `[masking]`, or a profile a policy names, cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskingSetupError {
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error(
        "policy `{policy}` names @mask(\"{profile}\"), but no masking profile `{profile}` is defined \
         (built in: safe_harbor, unmasked; others under [masking.profiles])"
    )]
    UndefinedProfile { policy: String, profile: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> MaskingSetupError {
    MaskingSetupError::Invalid { key: key.into(), message: message.into() }
}

/// The built-in profiles (`safe_harbor`, `unmasked`) and every profile of
/// `[masking.profiles]`, all sharing one detector with the configured column
/// overrides, with `[masking] default_profile` as the default.
pub fn build(config: &Config) -> Result<Masking, MaskingSetupError> {
    let masking = &config.masking;
    let key = pseudonym_key(config)?;
    let detector = Arc::new(Detector::with_columns(column_map(config)?));
    let keyed = |profile: Profile| match &key {
        Some(key) => profile.with_key(key),
        None => profile,
    };
    let mut maskers = Vec::with_capacity(Profile::BUILT_IN.len() + masking.profiles.len());
    for name in Profile::BUILT_IN {
        let profile = Profile::built_in(name).map_err(|e| invalid("masking", e.to_string()))?;
        maskers.push(Masker::new(detector.clone(), keyed(profile)));
    }
    for (name, configured) in &masking.profiles {
        let at = format!("masking.profiles.{name}");
        let base = Profile::built_in(&configured.base).map_err(|e| invalid(format!("{at}.base"), e.to_string()))?;
        let mut profile = keyed(base.renamed(name));
        let mut seen = HashSet::new();
        for (class_name, strategy) in &configured.strategies {
            let key = format!("{at}.strategies.{class_name}");
            let class: PhiClass =
                class_name.parse().map_err(|e: sluice_mask::UnknownClass| invalid(&key, e.to_string()))?;
            if !seen.insert(class) {
                return Err(invalid(key, format!("class {class} is given a strategy twice")));
            }
            let strategy: Strategy =
                strategy.parse().map_err(|e: sluice_mask::MaskError| invalid(&key, e.to_string()))?;
            profile = profile.with_strategy(class, strategy).map_err(|e| invalid(&key, e.to_string()))?;
        }
        maskers.push(Masker::new(detector.clone(), profile));
    }
    let registry = Masking::new(maskers, &masking.default_profile)
        .map_err(|e| invalid("masking.default_profile", e.to_string()))?;
    // Accounting of disclosures needs the key: without one, nothing is collected.
    Ok(match key {
        Some(key) => registry.with_disclosures(DisclosureKey::new(&key), detector),
        None => registry,
    })
}

/// The key of the accounting of disclosures (the pseudonym key), for
/// `sluice audit subject`; `None` when `[masking]` configures none.
pub fn disclosure_key(config: &Config) -> Result<Option<DisclosureKey>, MaskingSetupError> {
    Ok(pseudonym_key(config)?.map(|key| DisclosureKey::new(&key)))
}

/// Every `@mask` profile of the loaded policies and every name in
/// `[policy] mask_order` must be a profile of `masking`: a request must
/// never find at run time that its obligation cannot be met.
pub fn check_profiles(
    masking: &Masking,
    config: &Config,
    policies: Option<&PolicyEngine>,
) -> Result<(), MaskingSetupError> {
    for (policy, profile) in policies.into_iter().flat_map(PolicyEngine::mask_profiles) {
        if !masking.contains(profile) {
            return Err(MaskingSetupError::UndefinedProfile { policy: policy.into(), profile: profile.into() });
        }
    }
    for (i, profile) in config.policy.mask_order.iter().enumerate() {
        if !masking.contains(profile) {
            return Err(invalid(
                format!("policy.mask_order[{i}]"),
                format!(
                    "no masking profile `{profile}` is defined \
                     (built in: safe_harbor, unmasked; others under [masking.profiles])"
                ),
            ));
        }
    }
    Ok(())
}

/// The pseudonym key, read from its configured source, if there is one.
fn pseudonym_key(config: &Config) -> Result<Option<Vec<u8>>, MaskingSetupError> {
    let Some((key, secret)) = config.masking.pseudonym_key() else { return Ok(None) };
    let value = secret.resolve().map_err(|e| invalid(key, e))?;
    if value.len() < MIN_KEY_BYTES {
        // Only the length is said: the key is a secret.
        return Err(invalid(
            key,
            format!(
                "the pseudonym key is {} bytes; at least {MIN_KEY_BYTES} are required \
                 (e.g. `openssl rand -hex 32`)",
                value.len()
            ),
        ));
    }
    Ok(Some(value.into_bytes()))
}

/// `[masking.columns]` as a [`ColumnMap`].
fn column_map(config: &Config) -> Result<ColumnMap, MaskingSetupError> {
    let mut map = ColumnMap::new();
    for (column, value) in &config.masking.columns {
        let rule = match value.as_str() {
            "free_text" => ColumnRule::FreeText,
            "not_phi" => ColumnRule::NotPhi,
            class => ColumnRule::Phi(class.parse().map_err(|e: sluice_mask::UnknownClass| {
                invalid(format!("masking.columns.\"{column}\""), format!("{e}, or free_text, or not_phi"))
            })?),
        };
        map = map.with_override(column, rule);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_mask::ClassCounts;
    use std::path::Path;

    const BASE: &str = "[listeners]\npostgres = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://x.db\"\n";

    /// A config with `masking` appended and a key file holding `key` next
    /// to it (kept alive by the returned dir).
    fn config(masking: &str, key: &str) -> (Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pseudonym.key"), key).unwrap();
        let config = Config::from_toml(&format!("{BASE}{masking}"), dir.path()).unwrap();
        (config, dir)
    }

    fn masked(masking: &Masking, profile: &str, table: &str, column: &str, value: &str) -> String {
        let masker = masking.masker(profile).expect("profile defined").expect("profile masks");
        masker.mask_value(Some(table), column, None, value, &mut ClassCounts::default()).into_owned()
    }

    const RESEARCH: &str = "[masking]\npseudonym_key_file = \"pseudonym.key\"\n\
        [masking.profiles.research]\nstrategies = { NAME = \"pseudonym\" }\n";

    #[test]
    fn a_pseudonym_profile_masks_names_deterministically() {
        let (config, _dir) = config(RESEARCH, "0123456789abcdef0123456789abcdef\n");
        let masking = build(&config).unwrap();
        assert_eq!(masking.default_profile(), "safe_harbor");
        let first = masked(&masking, "research", "notes", "body", "Patient: Ann Lee, SSN 123-45-6789");
        let again = masked(&masking, "research", "notes", "body", "Patient: Ann Lee, SSN 123-45-6789");
        assert_eq!(first, again);
        assert!(first.starts_with("Patient: [NAME:") && first.ends_with(", SSN [SSN]"), "{first}");
        assert!(!first.contains("Ann"), "{first}");
        let safe = masked(&masking, "safe_harbor", "notes", "body", "Patient: Ann Lee");
        assert_eq!(safe, "Patient: [NAME] [NAME]");
        assert!(masking.masker("unmasked").unwrap().is_none(), "unmasked passes through");
    }

    #[test]
    fn the_trailing_newline_of_a_key_file_is_not_part_of_the_key() {
        let (with_newline, _a) = config(RESEARCH, "0123456789abcdef0123456789abcdef\n");
        let (without, _b) = config(RESEARCH, "0123456789abcdef0123456789abcdef");
        let a = masked(&build(&with_newline).unwrap(), "research", "t", "patient_name", "Ann Lee");
        let b = masked(&build(&without).unwrap(), "research", "t", "patient_name", "Ann Lee");
        assert_eq!(a, b);
    }

    #[test]
    fn disclosures_are_collected_only_under_a_pseudonym_key() {
        let (keyed, _a) = config(RESEARCH, "0123456789abcdef0123456789abcdef\n");
        let masking = build(&keyed).unwrap();
        let (mut subjects, detector) = masking.subjects().expect("a key: disclosures are collected");
        assert_eq!(detector.columns().classify(None, "mrn", None), ColumnRule::Phi(PhiClass::Mrn));
        subjects.add(PhiClass::Mrn, "MRN0100001");
        let key = disclosure_key(&keyed).unwrap().unwrap();
        assert_eq!(subjects.by_class()["MRN"], [key.pseudonym(PhiClass::Mrn, "MRN0100001").unwrap()]);
        let (plain, _b) = config("", "");
        assert!(build(&plain).unwrap().subjects().is_none(), "no key: nothing collected");
        assert!(disclosure_key(&plain).unwrap().is_none());
    }

    #[test]
    fn a_column_override_is_honoured() {
        let text = "Patient: Ann Lee, SSN 123-45-6789";
        let (plain, _a) = config("", "");
        assert_ne!(masked(&build(&plain).unwrap(), "safe_harbor", "visits", "notes", text), text);
        let (overridden, _b) = config("[masking.columns]\n\"*.notes\" = \"not_phi\"\n\"visits.code\" = \"MRN\"\n", "");
        let masking = build(&overridden).unwrap();
        assert_eq!(masked(&masking, "safe_harbor", "visits", "notes", text), text);
        assert_eq!(masked(&masking, "safe_harbor", "visits", "code", "A1234"), "[MRN]");
    }

    #[test]
    fn an_unknown_class_is_refused_naming_the_key() {
        let (config_, _a) = config("[masking.profiles.p]\nstrategies = { NAMES = \"redact\" }\n", "");
        let err = build(&config_).unwrap_err().to_string();
        assert!(err.contains("`masking.profiles.p.strategies.NAMES`") && err.contains("unknown PHI class"), "{err}");
        let (config_, _b) = config("[masking.columns]\n\"patients.photo\" = \"PHOTO\"\n", "");
        let err = build(&config_).unwrap_err().to_string();
        assert!(err.contains("`masking.columns.\"patients.photo\"`") && err.contains("PHOTO"), "{err}");
    }

    #[test]
    fn a_missing_or_short_pseudonym_key_is_refused() {
        let (config_, dir) = config(RESEARCH, "short\n");
        let err = build(&config_).unwrap_err().to_string();
        assert!(err.contains("`masking.pseudonym_key_file`") && err.contains("5 bytes"), "{err}");
        assert!(!err.contains("short"), "the key is not shown: {err}");
        std::fs::remove_file(dir.path().join("pseudonym.key")).unwrap();
        let err = build(&config_).unwrap_err().to_string();
        assert!(err.contains("`masking.pseudonym_key_file`") && err.contains("cannot read"), "{err}");
        let text = format!(
            "{BASE}[masking]\npseudonym_key_env = \"SLUICE_TEST_UNSET_KEY_4b1d\"\n\
             [masking.profiles.research]\nstrategies = {{ NAME = \"pseudonym\" }}\n"
        );
        let config_ = Config::from_toml(&text, Path::new("/")).unwrap();
        let err = build(&config_).unwrap_err().to_string();
        assert!(err.contains("`masking.pseudonym_key_env`") && err.contains("not set"), "{err}");
    }

    #[test]
    fn the_shipped_example_builds_with_its_profiles() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.example.toml");
        let mut example = Config::load(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("pseudonym.key");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
        // The example reads the key from the environment; tests cannot set it.
        example.masking.pseudonym_key_env = None;
        example.masking.pseudonym_key_file = Some(key);
        let masking = build(&example).unwrap();
        assert!(masking.contains("research"));
        assert_eq!(check_profiles(&masking, &example, None), Ok(()));
    }

    #[test]
    fn a_mask_naming_an_undefined_profile_is_refused() {
        let (config_, _a) = config(RESEARCH, "0123456789abcdef0123456789abcdef");
        let masking = build(&config_).unwrap();
        let policies = |profile: &str| {
            let text = format!("@id(\"readers\")\n@mask(\"{profile}\")\npermit (principal, action, resource);\n");
            PolicyEngine::from_sources(&[("p.cedar".into(), text)]).unwrap()
        };
        assert_eq!(check_profiles(&masking, &config_, Some(&policies("research"))), Ok(()));
        assert_eq!(check_profiles(&masking, &config_, Some(&policies("unmasked"))), Ok(()));
        let err = check_profiles(&masking, &config_, Some(&policies("strict"))).unwrap_err();
        assert_eq!(err, MaskingSetupError::UndefinedProfile { policy: "readers".into(), profile: "strict".into() });
        assert!(err.to_string().contains("policy `readers`") && err.to_string().contains("\"strict\""));

        let text = format!("{BASE}[policy]\nmask_order = [\"safe_harbor\", \"strict\"]\n");
        let ordered = Config::from_toml(&text, Path::new("/")).unwrap();
        let err = check_profiles(&build(&ordered).unwrap(), &ordered, None).unwrap_err().to_string();
        assert!(err.contains("`policy.mask_order[1]`") && err.contains("`strict`"), "{err}");
    }
}
