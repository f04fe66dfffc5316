//! API keys: a presented key to the `Principal` its config entry names.
//!
//! Owns: the table of configured key hashes and the constant-time lookup.
//! Does not: store or log a key (only its SHA-256 is held), or know JWTs.
//!
//! The lookup hashes the presented key once, then compares the digest with
//! every entry using `subtle`, without an early exit, so neither the position
//! of a match nor how many bytes matched shows in the timing.

use crate::IdentityError;
use sha2::{Digest, Sha256};
use sluice_model::Principal;
use std::collections::HashSet;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// The issuer every API-key principal carries.
pub(crate) const API_KEY_ISSUER: &str = "api-key";

/// The configured API keys, ready for lookup.
pub(crate) struct ApiKeys {
    entries: Vec<Entry>,
}

struct Entry {
    /// SHA-256 of the key, decoded from the config's hex.
    digest: [u8; 32],
    /// What a match becomes; cloned per successful lookup.
    principal: Principal,
}

impl ApiKeys {
    /// Checks each entry the way `Authenticator::new` must: a name, 64 hex
    /// digits, no name or hash twice.
    pub(crate) fn new(config: &[sluice_config::ApiKey]) -> Result<ApiKeys, IdentityError> {
        let mut names = HashSet::new();
        let mut digests = HashSet::new();
        let mut entries = Vec::with_capacity(config.len());
        for (i, key) in config.iter().enumerate() {
            let at = |message: &str| IdentityError::Config(format!("api_keys[{i}]: {message}"));
            if key.name.trim().is_empty() {
                return Err(at("name must not be empty"));
            }
            if !names.insert(key.name.as_str()) {
                return Err(at("duplicate API key name"));
            }
            let digest: [u8; 32] = match hex::decode(&key.key_sha256) {
                Ok(bytes) => bytes.try_into().map_err(|_| at("key_sha256 must be 64 hex digits"))?,
                Err(_) => return Err(at("key_sha256 must be 64 hex digits")),
            };
            if !digests.insert(digest) {
                return Err(at("the same key is configured twice"));
            }
            let principal =
                Principal::new(key.name.clone(), key.kind, key.groups.clone(), API_KEY_ISSUER.to_string(), None);
            entries.push(Entry { digest, principal });
        }
        Ok(ApiKeys { entries })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal whose configured hash equals SHA-256(`key`).
    pub(crate) fn authenticate(&self, key: &str) -> Result<Principal, IdentityError> {
        if key.is_empty() {
            return Err(IdentityError::MissingCredential);
        }
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut matched = Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let equal = entry.digest.ct_eq(&presented);
            index = u64::conditional_select(&index, &(i as u64), equal);
            matched |= equal;
        }
        if !bool::from(matched) {
            return Err(IdentityError::UnknownApiKey);
        }
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|entry| entry.principal.clone())
            .ok_or(IdentityError::UnknownApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_config::ApiKey;
    use sluice_model::PrincipalKind;

    fn sha256_hex(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn entry(name: &str, kind: PrincipalKind, groups: &[&str], key: &str) -> ApiKey {
        ApiKey {
            name: name.into(),
            kind,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            key_sha256: sha256_hex(key),
        }
    }

    fn table() -> ApiKeys {
        let config = [
            entry("billing-agent", PrincipalKind::Agent, &["b", "analysts", "b"], "key-one"),
            entry("nightly-etl", PrincipalKind::Service, &[], "key-two"),
            // Upper-case hex is what some tools print; it must still match.
            ApiKey {
                key_sha256: sha256_hex("key-three").to_uppercase(),
                ..entry("alice", PrincipalKind::Human, &["ops"], "")
            },
        ];
        match ApiKeys::new(&config) {
            Ok(keys) => keys,
            Err(e) => panic!("valid config refused: {e}"),
        }
    }

    #[test]
    fn lookup_table() {
        let keys = table();
        // (presented key, expected subject or error)
        let cases: &[(&str, Result<&str, IdentityError>)] = &[
            ("key-one", Ok("billing-agent")),
            ("key-two", Ok("nightly-etl")),
            ("key-three", Ok("alice")),
            ("key-one ", Err(IdentityError::UnknownApiKey)),
            ("KEY-ONE", Err(IdentityError::UnknownApiKey)),
            ("key-on", Err(IdentityError::UnknownApiKey)),
            ("wrong", Err(IdentityError::UnknownApiKey)),
            ("", Err(IdentityError::MissingCredential)),
            // The hash of another entry is not that entry's key.
            (&sha256_hex("key-one"), Err(IdentityError::UnknownApiKey)),
        ];
        for (key, want) in cases {
            let got = keys.authenticate(key).map(|p| p.subject);
            assert_eq!(got.as_deref().map_err(Clone::clone), want.clone(), "key {key:?}");
        }
    }

    #[test]
    fn principal_carries_kind_sorted_groups_and_issuer() {
        let keys = table();
        let principal = keys.authenticate("key-one").map_err(|e| e.to_string());
        assert_eq!(
            principal,
            Ok(Principal {
                subject: "billing-agent".into(),
                kind: PrincipalKind::Agent,
                groups: vec!["analysts".into(), "b".into()],
                issuer: "api-key".into(),
                token_id: None,
            })
        );
        let alice = keys.authenticate("key-three").map(|p| (p.kind, p.groups));
        assert_eq!(alice, Ok((PrincipalKind::Human, vec!["ops".to_string()])));
    }

    #[test]
    fn config_it_cannot_use_is_refused() {
        let good = entry("a", PrincipalKind::Agent, &[], "k");
        let cases: Vec<(Vec<ApiKey>, &str)> = vec![
            (vec![ApiKey { name: " ".into(), ..good.clone() }], "name must not be empty"),
            (vec![good.clone(), entry("a", PrincipalKind::Agent, &[], "other")], "duplicate"),
            (vec![good.clone(), entry("b", PrincipalKind::Agent, &[], "k")], "configured twice"),
            (vec![ApiKey { key_sha256: "abc".into(), ..good.clone() }], "64 hex digits"),
            (vec![ApiKey { key_sha256: "zz".repeat(32), ..good.clone() }], "64 hex digits"),
            (vec![ApiKey { key_sha256: "ab".repeat(33), ..good.clone() }], "64 hex digits"),
        ];
        for (config, want) in cases {
            match ApiKeys::new(&config) {
                Ok(_) => panic!("accepted bad config, wanted {want:?}"),
                Err(IdentityError::Config(message)) => {
                    assert!(message.contains(want), "{message:?} lacks {want:?}")
                }
                Err(other) => panic!("wrong error {other:?}"),
            }
        }
    }

    #[test]
    fn no_keys_configured_refuses_everything() {
        let keys = match ApiKeys::new(&[]) {
            Ok(keys) => keys,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(keys.authenticate("anything"), Err(IdentityError::UnknownApiKey));
    }
}
