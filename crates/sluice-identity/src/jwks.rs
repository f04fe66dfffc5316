//! JWK sets: a provider's published keys, and which one may verify a token.
//!
//! Owns: parsing a JWKS document into verification keys, skipping any key we
//! must not use (`use` other than `sig`, `key_ops` without `verify`,
//! symmetric keys, unknown types or curves), and matching a token's `kid` and
//! `alg` to exactly one key.
//! Does not: fetch anything (see `provider`), or look at claims (see `jwt`).

use crate::IdentityError;
use crate::jwt::TokenAlgorithm;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

/// The usable signing keys of one JWKS document.
#[derive(Debug)]
pub(crate) struct KeySet {
    keys: Vec<VerifyKey>,
}

/// One key that may verify signatures, with what it may verify.
#[derive(Debug)]
pub(crate) struct VerifyKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's own `alg`; when present, only that algorithm may use the key.
    alg: Option<TokenAlgorithm>,
    pub(crate) key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// The result of looking a token's key up in a [`KeySet`].
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(&'a VerifyKey),
    /// No key with this `kid` (or, for a token without `kid`, no key fits):
    /// worth a JWKS re-fetch.
    NotFound,
    /// Keys with this `kid` exist but none fits the token's `alg`.
    Mismatch,
    /// A token without `kid`, and more than one key fits: refuse rather than guess.
    Ambiguous,
}

impl KeySet {
    /// Parses `{"keys": [...]}`. Keys that are unusable are skipped; a document
    /// with no usable key at all is an error, so a broken JWKS never replaces a
    /// working cache.
    pub(crate) fn parse(body: &[u8]) -> Result<KeySet, String> {
        let document: Value = serde_json::from_slice(body).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let Some(entries) = document.get("keys").and_then(Value::as_array) else {
            return Err("JWKS has no `keys` array".into());
        };
        let keys: Vec<VerifyKey> = entries.iter().filter_map(VerifyKey::from_jwk).collect();
        if keys.is_empty() {
            return Err(format!("JWKS has no usable signing key (of {} keys)", entries.len()));
        }
        Ok(KeySet { keys })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The one key that may verify a token with this `kid` and `alg`.
    pub(crate) fn find(&self, kid: Option<&str>, alg: TokenAlgorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
                if named.peek().is_none() {
                    return Lookup::NotFound;
                }
                named.find(|k| k.fits(alg)).map_or(Lookup::Mismatch, Lookup::Found)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Lookup::Found(key),
                    (None, _) => Lookup::NotFound,
                    (Some(_), Some(_)) => Lookup::Ambiguous,
                }
            }
        }
    }
}

impl Lookup<'_> {
    /// The lookup as the final answer (no more re-fetching).
    pub(crate) fn into_result(self, alg: TokenAlgorithm) -> Result<DecodingKey, IdentityError> {
        match self {
            Lookup::Found(key) => Ok(key.key.clone()),
            Lookup::Mismatch => Err(IdentityError::AlgorithmMismatch(alg.name())),
            Lookup::NotFound | Lookup::Ambiguous => Err(IdentityError::UnknownKey),
        }
    }
}

impl VerifyKey {
    /// Whether this key may verify `alg`: the key type and curve must be the
    /// algorithm's, and the JWK's own `alg`, if any, must be the same.
    fn fits(&self, alg: TokenAlgorithm) -> bool {
        kind_fits(self.kind, alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// One JWK, or `None` when it must not (or cannot) verify signatures.
    fn from_jwk(jwk: &Value) -> Option<VerifyKey> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return None;
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verifies = ops.as_array()?.iter().any(|op| op.as_str() == Some("verify"));
            if !verifies {
                return None;
            }
        }
        let kid = match jwk.get("kid") {
            None | Some(Value::Null) => None,
            Some(kid) => Some(kid.as_str()?.to_string()),
        };
        // A key declared for an algorithm we do not allow (HS256, RSA-OAEP, ...)
        // verifies nothing here.
        let alg = match jwk.get("alg") {
            None | Some(Value::Null) => None,
            Some(alg) => Some(TokenAlgorithm::allowed(alg.as_str()?).ok()?),
        };
        let (kind, key) = match (text("kty")?, text("crv")) {
            ("RSA", _) => (KeyKind::Rsa, DecodingKey::from_rsa_components(text("n")?, text("e")?)),
            ("EC", Some("P-256")) => (KeyKind::P256, ec_key(jwk)?),
            ("EC", Some("P-384")) => (KeyKind::P384, ec_key(jwk)?),
            ("OKP", Some("Ed25519")) => (KeyKind::Ed25519, DecodingKey::from_ed_components(text("x")?)),
            _ => return None,
        };
        let key = key.ok()?;
        if alg.is_some_and(|alg| !kind_fits(kind, alg)) {
            return None;
        }
        Some(VerifyKey { kid, kind, alg, key })
    }
}

fn ec_key(jwk: &Value) -> Option<Result<DecodingKey, jsonwebtoken::errors::Error>> {
    let x = jwk.get("x")?.as_str()?;
    let y = jwk.get("y")?.as_str()?;
    Some(DecodingKey::from_ec_components(x, y))
}

fn kind_fits(kind: KeyKind, alg: TokenAlgorithm) -> bool {
    use TokenAlgorithm as A;
    match kind {
        KeyKind::Rsa => matches!(alg, A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512),
        KeyKind::P256 => alg == A::ES256,
        KeyKind::P384 => alg == A::ES384,
        KeyKind::Ed25519 => alg == A::EdDSA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Public halves of throwaway keys; the values only need to decode.
    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn rsa(kid: &str, extra: Value) -> Value {
        let mut key = json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"});
        merge(&mut key, extra);
        key
    }

    fn merge(key: &mut Value, extra: Value) {
        if let (Some(key), Value::Object(extra)) = (key.as_object_mut(), extra) {
            key.extend(extra);
        }
    }

    fn set(keys: Vec<Value>) -> Result<KeySet, String> {
        KeySet::parse(json!({ "keys": keys }).to_string().as_bytes())
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let keys = vec![
            rsa("sig", json!({"use": "sig"})),
            rsa("plain", json!({})),
            rsa("enc", json!({"use": "enc"})),
            rsa("odd-use", json!({"use": 7})),
            rsa("ops-sign-only", json!({"key_ops": ["sign"]})),
            rsa("ops-verify", json!({"key_ops": ["verify"]})),
            rsa("oaep", json!({"alg": "RSA-OAEP"})),
            rsa("hs", json!({"alg": "HS256"})),
            rsa("es-on-rsa", json!({"alg": "ES256"})),
            rsa("bad-n", json!({"n": "***"})),
            json!({"kty": "oct", "kid": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": EC_X, "y": EC_Y}),
            json!({"kty": "EC", "kid": "p256", "crv": "P-256", "x": EC_X, "y": EC_Y}),
            json!({"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": ED_X}),
            json!({"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": ED_X}),
            json!({"kty": "RSA", "kid": 5, "n": N, "e": "AQAB"}),
            json!("not an object"),
        ];
        let parsed = match set(keys) {
            Ok(set) => set,
            Err(e) => panic!("{e}"),
        };
        let kids: Vec<_> = parsed.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["sig", "plain", "ops-verify", "p256", "ed"]);
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"not json",
            b"[]",
            br#"{"keys": {}}"#,
            br#"{"keys": []}"#,
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
        ];
        for body in cases {
            assert!(KeySet::parse(body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn lookup_table() {
        use TokenAlgorithm as A;
        let keys = match set(vec![
            rsa("r1", json!({"alg": "RS256"})),
            rsa("r2", json!({})),
            json!({"kty": "EC", "kid": "e1", "crv": "P-256", "x": EC_X, "y": EC_Y}),
            json!({"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": ED_X}),
        ]) {
            Ok(set) => set,
            Err(e) => panic!("{e}"),
        };
        // (kid, alg, expected: Some(kid found) / "notfound" / "mismatch" / "ambiguous")
        let cases: &[(Option<&str>, A, &str)] = &[
            (Some("r1"), A::RS256, "r1"),
            (Some("r1"), A::PS256, "mismatch"), // the JWK says RS256 only
            (Some("r1"), A::ES256, "mismatch"),
            (Some("r2"), A::PS512, "r2"),
            (Some("r2"), A::RS384, "r2"),
            (Some("r2"), A::EdDSA, "mismatch"),
            (Some("e1"), A::ES256, "e1"),
            (Some("e1"), A::ES384, "mismatch"),
            (Some("e1"), A::RS256, "mismatch"),
            (Some("d1"), A::EdDSA, "d1"),
            (Some("d1"), A::ES256, "mismatch"),
            (Some("nope"), A::RS256, "notfound"),
            (None, A::ES256, "e1"),
            (None, A::EdDSA, "d1"),
            (None, A::RS256, "ambiguous"),
            (None, A::ES384, "notfound"),
        ];
        for (kid, alg, want) in cases {
            let got = match keys.find(*kid, *alg) {
                Lookup::Found(key) => key.kid.clone().unwrap_or_default(),
                Lookup::NotFound => "notfound".into(),
                Lookup::Mismatch => "mismatch".into(),
                Lookup::Ambiguous => "ambiguous".into(),
            };
            assert_eq!(got, *want, "kid {kid:?} alg {alg:?}");
        }
    }
}
