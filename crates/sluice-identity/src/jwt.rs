//! JWTs: shape, the algorithm allow-list, signature, claims, `Principal`.
//!
//! Owns: telling a JWT from an API key, reading the header and the
//! (unverified) `iss` only to route a token to its provider, refusing any
//! algorithm that is not asymmetric before a key is looked up, verifying the
//! signature with the key `jwks` chose, and checking the claims (`iss` exact,
//! `aud`/`azp`/`client_id`, `exp`, `nbf`, leeway).
//! Does not: fetch keys or talk to a provider (see `provider`), or pick among
//! JWKs (see `jwks`). Nothing here does IO, so it is tested with tables.

use crate::IdentityError;
use crate::error::printable;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sluice_model::{Principal, PrincipalKind};

/// The only algorithms a token may use: asymmetric signatures.
/// `none` and every `HS*` are refused by construction (there is no variant).
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl TokenAlgorithm {
    /// The allow-list. Anything else (`none`, `None`, `HS256`, `ES512`, ...) is refused.
    pub(crate) fn allowed(name: &str) -> Result<TokenAlgorithm, IdentityError> {
        use TokenAlgorithm as A;
        Ok(match name {
            "RS256" => A::RS256,
            "RS384" => A::RS384,
            "RS512" => A::RS512,
            "PS256" => A::PS256,
            "PS384" => A::PS384,
            "PS512" => A::PS512,
            "ES256" => A::ES256,
            "ES384" => A::ES384,
            "EdDSA" => A::EdDSA,
            other => return Err(IdentityError::AlgorithmNotAllowed(printable(other, 16))),
        })
    }

    pub(crate) fn name(self) -> &'static str {
        use TokenAlgorithm as A;
        match self {
            A::RS256 => "RS256",
            A::RS384 => "RS384",
            A::RS512 => "RS512",
            A::PS256 => "PS256",
            A::PS384 => "PS384",
            A::PS512 => "PS512",
            A::ES256 => "ES256",
            A::ES384 => "ES384",
            A::EdDSA => "EdDSA",
        }
    }

    fn jsonwebtoken(self) -> Algorithm {
        use TokenAlgorithm as A;
        match self {
            A::RS256 => Algorithm::RS256,
            A::RS384 => Algorithm::RS384,
            A::RS512 => Algorithm::RS512,
            A::PS256 => Algorithm::PS256,
            A::PS384 => Algorithm::PS384,
            A::PS512 => Algorithm::PS512,
            A::ES256 => Algorithm::ES256,
            A::ES384 => Algorithm::ES384,
            A::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// Whether a credential has a JWS compact shape: three base64url segments
/// (the last may be empty, as in an `alg=none` token, which is then refused
/// as a token rather than tried as an API key).
pub(crate) fn looks_like_jwt(credential: &str) -> bool {
    let is_b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut parts = credential.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => {
            !h.is_empty() && !p.is_empty() && is_b64url(h) && is_b64url(p) && is_b64url(s)
        }
        _ => false,
    }
}

/// What may be read from a token before its signature is checked: enough to
/// refuse a bad algorithm and to find the provider, nothing that is trusted.
#[derive(Debug)]
pub(crate) struct UnverifiedToken {
    pub(crate) alg: TokenAlgorithm,
    pub(crate) kid: Option<String>,
    /// Routing only; the verified claims are checked again in [`check_claims`].
    pub(crate) issuer: String,
}

impl UnverifiedToken {
    /// Header first: the algorithm is refused before anything else is read.
    pub(crate) fn parse(token: &str) -> Result<UnverifiedToken, IdentityError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
            return Err(IdentityError::Malformed("not a JWT"));
        };
        let header = decode_json_object(header, "token header is not base64url JSON")?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => TokenAlgorithm::allowed(alg)?,
            Some(_) => return Err(IdentityError::Malformed("token header `alg` is not a string")),
            None => return Err(IdentityError::Malformed("token header has no `alg`")),
        };
        // RFC 7515 4.1.11: extensions we do not understand must not be ignored.
        if header.contains_key("crit") {
            return Err(IdentityError::Malformed("token header has unsupported `crit` extensions"));
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(IdentityError::Malformed("token header `kid` is not a string")),
        };
        let claims = decode_json_object(payload, "token payload is not base64url JSON")?;
        let issuer = match claims.get("iss") {
            Some(Value::String(iss)) => iss.clone(),
            Some(_) => return Err(IdentityError::InvalidClaim("iss".into())),
            None => return Err(IdentityError::MissingClaim("iss".into())),
        };
        Ok(UnverifiedToken { alg, kid, issuer })
    }
}

fn decode_json_object(segment: &str, what: &'static str) -> Result<Map<String, Value>, IdentityError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| IdentityError::Malformed(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdentityError::Malformed(what)),
    }
}

/// Checks the signature with `key` (which `jwks` matched to `alg`) and
/// returns the claims. Claims are not judged here; see [`check_claims`].
pub(crate) fn verify_signature(
    token: &str,
    alg: TokenAlgorithm,
    key: &DecodingKey,
) -> Result<Map<String, Value>, IdentityError> {
    let mut validation = Validation::new(alg.jsonwebtoken());
    // Claims are checked by `check_claims`, which implements Sluice's rules
    // (exact `iss`, the `azp`/`client_id` fallback) rather than the crate's.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => IdentityError::AlgorithmMismatch(alg.name()),
            jsonwebtoken::errors::ErrorKind::InvalidToken
            | jsonwebtoken::errors::ErrorKind::Base64(_)
            | jsonwebtoken::errors::ErrorKind::Json(_)
            | jsonwebtoken::errors::ErrorKind::Utf8(_) => IdentityError::Malformed("token does not decode"),
            jsonwebtoken::errors::ErrorKind::InvalidSignature => IdentityError::BadSignature,
            other => {
                // A key the provider published that the crypto library cannot
                // use, or an internal failure: refuse, and tell the operator.
                tracing::warn!(error = ?other, alg = alg.name(), "token verification failed");
                IdentityError::BadSignature
            }
        }),
    }
}

/// How one provider's tokens become principals.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) subject_claim: String,
    pub(crate) groups_claim: String,
    pub(crate) kind: PrincipalKind,
    pub(crate) leeway_secs: f64,
}

/// Judges verified claims at time `now` (seconds since the epoch).
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules,
    now: f64,
) -> Result<Principal, IdentityError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => {}
        Some(Value::String(_)) => return Err(IdentityError::IssuerMismatch),
        Some(_) => return Err(IdentityError::InvalidClaim("iss".into())),
        None => return Err(IdentityError::MissingClaim("iss".into())),
    }

    let exp = numeric_date(claims, "exp")?.ok_or_else(|| IdentityError::MissingClaim("exp".into()))?;
    if now >= exp + rules.leeway_secs {
        return Err(IdentityError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now + rules.leeway_secs < nbf
    {
        return Err(IdentityError::NotYetValid);
    }

    check_audience(claims, &rules.audience)?;

    let subject = match claims.get(&rules.subject_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => return Err(IdentityError::MissingClaim(rules.subject_claim.clone())),
        Some(_) => return Err(IdentityError::InvalidClaim(rules.subject_claim.clone())),
    };

    let groups = match claims.get(&rules.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| IdentityError::InvalidClaim(rules.groups_claim.clone()))?,
        Some(_) => return Err(IdentityError::InvalidClaim(rules.groups_claim.clone())),
    };
    let token_id = claims.get("jti").and_then(Value::as_str).map(str::to_string);

    Ok(Principal::new(subject, rules.kind, groups, rules.issuer.clone(), token_id))
}

/// `aud` must contain the audience. Only when `aud` is absent, `null` or
/// empty may `azp` or `client_id` stand in for it; an `aud` naming others
/// is refused even if `azp` matches.
fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), IdentityError> {
    let listed: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(aud)) if aud.is_empty() => Vec::new(),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| IdentityError::InvalidClaim("aud".into()))?,
        Some(_) => return Err(IdentityError::InvalidClaim("aud".into())),
    };
    let accepted = if listed.is_empty() {
        ["azp", "client_id"].iter().any(|name| claims.get(*name).and_then(Value::as_str) == Some(audience))
    } else {
        listed.contains(&audience)
    };
    if accepted { Ok(()) } else { Err(IdentityError::WrongAudience) }
}

/// A NumericDate claim: absent (or `null`) is `None`; anything but a finite
/// number is refused.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, IdentityError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_f64() {
            Some(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(IdentityError::InvalidClaim(name.into())),
        },
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
