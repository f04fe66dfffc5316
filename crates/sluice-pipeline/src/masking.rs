//! The masking profiles a gateway can apply, and which one applies to an
//! allowed request.
//!
//! Owns: the registry of named profiles (built-in and configured), the
//! default profile for requests whose policy names none, and resolving a
//! decision's `@mask` obligation to the [`Masker`] the adapter runs.
//! Also owns: the accounting of disclosures' key and column rules, from
//! which each allowed request gets its own [`Subjects`] set (also under
//! `unmasked`), when a pseudonym key is configured.
//! Does not: detect or rewrite (sluice-mask does), or read config (the
//! server builds the registry from `[masking]`).

use sluice_mask::{Detector, DisclosureKey, Masker, Subjects};
use std::collections::HashMap;
use std::sync::Arc;

/// The profile that applies to one request: its name, for the audit
/// record, and the masker (`None` when the profile keeps everything, so the
/// response passes through untouched).
#[derive(Debug, Clone)]
pub struct AppliedMask {
    pub profile: Arc<str>,
    pub masker: Option<Arc<Masker>>,
}

/// Every profile by name, and the default.
#[derive(Debug, Clone)]
pub struct Masking {
    profiles: HashMap<String, AppliedMask>,
    default_profile: String,
    /// Tables named by `table.column` overrides, sorted.
    override_tables: Vec<String>,
    /// The accounting of disclosures: the key and the column rules that
    /// say which columns hold MRN, SSN and NAME. `None`: nothing collected.
    disclosures: Option<(Arc<DisclosureKey>, Arc<Detector>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the default masking profile `{0}` is not defined")]
pub struct UnknownDefaultProfile(pub String);

impl Masking {
    /// A registry of `maskers` (each named by its profile) with
    /// `default_profile` for requests whose policy sets no `@mask`.
    pub fn new(
        maskers: impl IntoIterator<Item = Masker>,
        default_profile: &str,
    ) -> Result<Masking, UnknownDefaultProfile> {
        let mut override_tables = Vec::new();
        let profiles: HashMap<String, AppliedMask> = maskers
            .into_iter()
            .map(|masker| {
                override_tables.extend(masker.detector().columns().override_tables().map(str::to_string));
                let name = masker.profile().name().to_string();
                let applied = AppliedMask {
                    profile: Arc::from(name.as_str()),
                    masker: (!masker.profile().is_unmasked()).then(|| Arc::new(masker)),
                };
                (name, applied)
            })
            .collect();
        if !profiles.contains_key(default_profile) {
            return Err(UnknownDefaultProfile(default_profile.to_string()));
        }
        override_tables.sort();
        override_tables.dedup();
        Ok(Masking { profiles, default_profile: default_profile.to_string(), override_tables, disclosures: None })
    }

    /// Collects, for every allowed request, the pseudonyms of the MRN, SSN
    /// and NAME values its response returns, keyed with `key`, in the
    /// columns `detector`'s rules class so (the profiles' detector).
    pub fn with_disclosures(mut self, key: DisclosureKey, detector: Arc<Detector>) -> Masking {
        self.disclosures = Some((Arc::new(key), detector));
        self
    }

    /// A fresh set of disclosed subjects for one request, and the column
    /// rules to find them by; `None` when no key is configured.
    pub fn subjects(&self) -> Option<(Subjects, Arc<Detector>)> {
        self.disclosures.as_ref().map(|(key, detector)| (Subjects::new(key.clone()), detector.clone()))
    }

    /// The profile a request gets: the one its policy named, or the
    /// default. `None` if the policy names a profile that does not exist
    /// (startup validation refuses such policies; the caller fails closed).
    pub fn resolve(&self, requested: Option<&str>) -> Option<&AppliedMask> {
        self.profiles.get(requested.unwrap_or(&self.default_profile))
    }

    /// Whether a profile of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.profiles.contains_key(name)
    }

    /// The tables `table.column` overrides name: adapters map their
    /// protocol's table ids to these names.
    pub fn override_tables(&self) -> &[String] {
        &self.override_tables
    }

    pub fn default_profile(&self) -> &str {
        &self.default_profile
    }

    /// The masker a profile runs, for `sluice mask --config`.
    pub fn masker(&self, name: &str) -> Option<Option<&Arc<Masker>>> {
        self.profiles.get(name).map(|applied| applied.masker.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_mask::{Detector, Profile};

    /// The built-in profiles with the built-in recognisers, Safe Harbor by default.
    fn built_in() -> Masking {
        let detector = Arc::new(Detector::new());
        let maskers = Profile::BUILT_IN
            .iter()
            .filter_map(|name| Profile::built_in(name).ok())
            .map(|profile| Masker::new(detector.clone(), profile));
        Masking::new(maskers, "safe_harbor").expect("safe_harbor is built in")
    }

    #[test]
    fn default_and_named_profiles_resolve() {
        let masking = built_in();
        let default = masking.resolve(None).expect("default exists");
        assert_eq!(&*default.profile, "safe_harbor");
        assert!(default.masker.is_some());
        let clear = masking.resolve(Some("unmasked")).expect("built in");
        assert!(clear.masker.is_none(), "unmasked passes bytes through");
        assert!(masking.resolve(Some("nope")).is_none());
    }

    #[test]
    fn an_undefined_default_is_refused() {
        let err = Masking::new([Masker::safe_harbor()], "strict").unwrap_err();
        assert_eq!(err, UnknownDefaultProfile("strict".into()));
    }
}
