//! The one error type of this crate.
//!
//! Owns: `IdentityError`, whose messages are safe to show a client and to log.
//! Does not: carry a token, a key or a key hash, ever. Text taken from a token
//! (an `alg`, an `iss`) is passed through [`printable`] first, so a hostile
//! token cannot inject log lines or blow up a log record.

/// Why a credential was refused, or why the identity config is unusable.
///
/// Every message is safe to send to the client and to write to a log: none
/// includes the credential, a key or a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The `[identity]` config cannot be used (found by `Authenticator::new`).
    #[error("identity config: {0}")]
    Config(String),

    /// The client presented an empty credential.
    #[error("no credential was presented")]
    MissingCredential,

    /// The credential is not a well-formed token (bad base64, bad JSON, too long).
    #[error("malformed credential: {0}")]
    Malformed(&'static str),

    /// No configured API key has this SHA-256.
    #[error("unknown API key")]
    UnknownApiKey,

    /// The token's `alg` is not on the allow-list (`none`, any `HS*`, anything
    /// unknown). Refused before any key is looked up.
    #[error("token algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),

    /// The token's `iss` names no configured OIDC provider.
    #[error("token issuer {0} is not a configured identity provider")]
    UnknownIssuer(String),

    /// The token's `kid` is not in the provider's JWKS, even after a re-fetch.
    #[error("token signing key is not published by its identity provider")]
    UnknownKey,

    /// The token's `alg` does not fit the key its `kid` names (key type,
    /// curve, or the JWK's own `alg`).
    #[error("token algorithm {0} does not match its signing key")]
    AlgorithmMismatch(&'static str),

    /// The signature does not verify with the provider's key.
    #[error("token signature is invalid")]
    BadSignature,

    /// `exp` is in the past, beyond the configured leeway.
    #[error("token has expired")]
    Expired,

    /// `nbf` is in the future, beyond the configured leeway.
    #[error("token is not valid yet")]
    NotYetValid,

    /// The verified `iss` is not exactly the provider's issuer.
    #[error("token issuer does not match its identity provider")]
    IssuerMismatch,

    /// `aud` does not contain the configured audience (or, with no `aud`,
    /// neither `azp` nor `client_id` equals it).
    #[error("token is not meant for this audience")]
    WrongAudience,

    /// A claim Sluice needs is absent (`exp`, `iss`, the subject claim).
    #[error("token lacks the `{0}` claim")]
    MissingClaim(String),

    /// A claim is present but has the wrong type or an unusable value.
    #[error("token claim `{0}` has the wrong type or value")]
    InvalidClaim(String),

    /// Discovery or the JWKS fetch failed, and no usable keys are cached.
    #[error("identity provider {issuer} is unavailable: {reason}")]
    ProviderUnavailable { issuer: String, reason: String },
}

/// Text from an untrusted token, made fit for an error message: control
/// characters become `?` and anything past `max` characters is cut.
pub(crate) fn printable(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    format!("`{out}`")
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_strips_control_characters_and_truncates() {
        let cases: &[(&str, usize, &str)] = &[
            ("RS256", 16, "`RS256`"),
            ("none\n", 16, "`none?`"),
            ("x\u{1b}[31m", 16, "`x?[31m`"),
            ("abcdefgh", 4, "`abcd…`"),
            ("", 4, "``"),
        ];
        for (input, max, want) in cases {
            assert_eq!(printable(input, *max), *want, "input {input:?}");
        }
    }
}
