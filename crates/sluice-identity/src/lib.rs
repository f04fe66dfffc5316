//! Credentials to principals: API keys and OIDC JWTs.
//!
//! Owns: turning the credential a client presents (a PostgreSQL password, a
//! Bearer token) into a [`sluice_model::Principal`], or refusing it with an
//! [`IdentityError`] that is safe to show the client and to log.
//! Does not: know any protocol, decide anything (policy does), or keep a
//! token or key anywhere but the stack of the call that checks it.
//!
//! # Layout
//! - [`Authenticator`] (here): routes a credential. Three base64url segments
//!   make a JWT, checked against the OIDC provider its `iss` names; anything
//!   else is an API key.
//! - `api_key`: SHA-256 of the key, compared in constant time with the config.
//! - `jwt`: JWT shape, the algorithm allow-list (asymmetric only; `none` and
//!   `HS*` refused before any key lookup), signature, claims, `Principal`.
//! - `jwks`: parsing a JWK set and matching a token's `kid`/`alg` to one key.
//! - `provider`: discovery and the JWKS cache of one provider, fetched lazily,
//!   re-fetched on an unknown `kid` at most once per 10 s.
//! - `error`: [`IdentityError`], the crate's one error type.
//!
//! # Invariants
//! - `new` does no network IO; a provider that is down at startup only makes
//!   its own tokens fail until it is back.
//! - No input panics: every path from a credential returns a `Result`.
//! - Nothing here connects anywhere but the configured issuers and the
//!   `jwks_uri` their discovery documents name.

mod api_key;
mod error;
mod jwks;
mod jwt;
mod provider;

pub use error::IdentityError;

use api_key::ApiKeys;
use jwt::{ClaimRules, UnverifiedToken};
use provider::Provider;
use sluice_model::Principal;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest credential considered at all. Real JWTs are a few KiB.
const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;
/// Every HTTP request to a provider (connect plus response) ends by then.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default least gap between two JWKS fetches of one provider.
const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Validates credentials against the `[identity]` config.
///
/// Cheap to clone (the state is behind an `Arc`); clones share the JWKS
/// caches and their rate limits.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
    /// Least gap between JWKS fetches of one provider on unknown `kid`s.
    jwks_refetch_interval: Duration,
}

struct Inner {
    api_keys: ApiKeys,
    providers: Vec<Provider>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: no hashes, no keys.
        f.debug_struct("Authenticator")
            .field("api_keys", &self.inner.api_keys.len())
            .field("oidc_issuers", &self.inner.providers.iter().map(Provider::issuer).collect::<Vec<_>>())
            .field("jwks_refetch_interval", &self.jwks_refetch_interval)
            .finish()
    }
}

impl Authenticator {
    /// No network here. Fails on config it cannot use.
    pub fn new(config: &sluice_config::Identity) -> Result<Authenticator, IdentityError> {
        crypto_self_test()?;
        let api_keys = ApiKeys::new(&config.api_keys)?;
        let mut providers = Vec::with_capacity(config.oidc.len());
        if !config.oidc.is_empty() {
            let http = reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .connect_timeout(HTTP_TIMEOUT)
                // Discovery and JWKS come from where the operator said, not
                // from wherever a response points.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| IdentityError::Config(format!("cannot build the HTTP client: {e}")))?;
            let mut issuers = HashSet::new();
            for (i, provider) in config.oidc.iter().enumerate() {
                let at = |message: &str| IdentityError::Config(format!("oidc[{i}]: {message}"));
                let issuer = provider.issuer.as_str();
                if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                    return Err(at("issuer must be an http(s) URL"));
                }
                if !issuers.insert(issuer) {
                    return Err(at("the same issuer is configured twice"));
                }
                if provider.audience.is_empty() {
                    return Err(at("audience must not be empty"));
                }
                if provider.subject_claim.is_empty() || provider.groups_claim.is_empty() {
                    return Err(at("subject_claim and groups_claim must not be empty"));
                }
                let rules = ClaimRules {
                    issuer: provider.issuer.clone(),
                    audience: provider.audience.clone(),
                    subject_claim: provider.subject_claim.clone(),
                    groups_claim: provider.groups_claim.clone(),
                    kind: provider.kind,
                    leeway_secs: provider.leeway.as_secs_f64(),
                };
                providers.push(Provider::new(rules, http.clone()));
            }
        }
        Ok(Authenticator {
            inner: Arc::new(Inner { api_keys, providers }),
            jwks_refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
        })
    }

    /// Sets the least gap between two JWKS fetches of one provider caused by
    /// tokens naming unknown keys (default 10 s). For tests and tuning.
    pub fn with_jwks_refetch_interval(mut self, interval: Duration) -> Authenticator {
        self.jwks_refetch_interval = interval;
        self
    }

    /// A credential as the client presented it (a PostgreSQL password, a Bearer token).
    /// Looks like a JWT (three base64url segments) -> OIDC; otherwise an API key.
    pub async fn authenticate(&self, credential: &str) -> Result<Principal, IdentityError> {
        if credential.is_empty() {
            return Err(IdentityError::MissingCredential);
        }
        if credential.len() > MAX_CREDENTIAL_BYTES {
            return Err(IdentityError::Malformed("credential is too long"));
        }
        if !jwt::looks_like_jwt(credential) {
            return self.inner.api_keys.authenticate(credential);
        }

        // Header (algorithm allow-list) and unverified `iss`, only to route.
        let token = UnverifiedToken::parse(credential)?;
        let Some(provider) = self.inner.providers.iter().find(|p| p.issuer() == token.issuer) else {
            return Err(IdentityError::UnknownIssuer(error::printable(&token.issuer, 200)));
        };
        let key = provider.key_for(token.kid.as_deref(), token.alg, self.jwks_refetch_interval).await?;
        let claims = jwt::verify_signature(credential, token.alg, &key)?;
        // A clock before 1970 is broken: treat every token as expired.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(f64::INFINITY, |d| d.as_secs_f64());
        jwt::check_claims(&claims, &provider.rules, now)
    }

    /// For `sluice check`: runs discovery + JWKS fetch for each provider; (issuer, result).
    pub async fn check_providers(&self) -> Vec<(String, Result<(), IdentityError>)> {
        let mut results = Vec::with_capacity(self.inner.providers.len());
        for provider in &self.inner.providers {
            results.push((provider.issuer().to_string(), provider.check().await));
        }
        results
    }

    /// Diagnostics: JWKS requests sent so far, summed over all providers
    /// (clones share the count). Lets tests and metrics see the rate limit.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.providers.iter().map(Provider::jwks_fetches).sum()
    }
}

/// jsonwebtoken picks its crypto backend from cargo features and panics at
/// the first verification when it cannot (none or both enabled; see
/// DEPENDENCIES.md). Verify the RFC 8037 A.4 Ed25519 example once, so a bad
/// build fails at startup with a message instead of at the first token.
fn crypto_self_test() -> Result<(), IdentityError> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = RESULT.get_or_init(|| {
        const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        const MESSAGE: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        const SIGNATURE: &str =
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        let verify = || {
            let key = jsonwebtoken::DecodingKey::from_ed_components(X)?;
            jsonwebtoken::crypto::verify(SIGNATURE, MESSAGE.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA)
        };
        match std::panic::catch_unwind(verify) {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err("the RFC 8037 Ed25519 example did not verify".into()),
            Ok(Err(e)) => Err(format!("the RFC 8037 Ed25519 example failed: {e}")),
            Err(_) => Err("jsonwebtoken has no crypto provider (enable exactly one of its crypto features)".into()),
        }
    });
    result.clone().map_err(|message| IdentityError::Config(format!("JWT crypto self-test: {message}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_config::{ApiKey, Identity, OidcProvider};
    use sluice_model::PrincipalKind;

    fn provider(issuer: &str) -> OidcProvider {
        OidcProvider {
            issuer: issuer.into(),
            audience: "sluice".into(),
            groups_claim: "groups".into(),
            subject_claim: "sub".into(),
            kind: PrincipalKind::Agent,
            leeway: Duration::from_secs(30),
        }
    }

    fn key(name: &str, hash: &str) -> ApiKey {
        ApiKey { name: name.into(), kind: PrincipalKind::Service, groups: vec![], key_sha256: hash.into() }
    }

    const HASH_OF_TEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn crypto_provider_works() {
        assert_eq!(crypto_self_test(), Ok(()));
    }

    #[test]
    fn config_it_cannot_use_is_refused() {
        let cases: Vec<(Identity, &str)> = vec![
            (Identity { api_keys: vec![], oidc: vec![provider("ftp://idp")] }, "http(s) URL"),
            (Identity { api_keys: vec![], oidc: vec![provider("https://a"), provider("https://a")] }, "twice"),
            (
                Identity {
                    api_keys: vec![],
                    oidc: vec![OidcProvider { audience: "".into(), ..provider("https://a") }],
                },
                "audience",
            ),
            (
                Identity {
                    api_keys: vec![],
                    oidc: vec![OidcProvider { subject_claim: "".into(), ..provider("https://a") }],
                },
                "subject_claim",
            ),
            (Identity { api_keys: vec![key("a", "00")], oidc: vec![] }, "64 hex"),
        ];
        for (config, want) in cases {
            match Authenticator::new(&config) {
                Err(IdentityError::Config(message)) => assert!(message.contains(want), "{message:?} lacks {want:?}"),
                other => panic!("wanted a config error with {want:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_shows_no_secrets() {
        let config = Identity { api_keys: vec![key("billing", HASH_OF_TEST)], oidc: vec![provider("https://idp")] };
        let auth = match Authenticator::new(&config) {
            Ok(auth) => auth,
            Err(e) => panic!("{e}"),
        };
        let text = format!("{auth:?}");
        assert!(text.contains("https://idp"), "{text}");
        assert!(!text.contains(HASH_OF_TEST) && !text.contains("billing"), "{text}");
    }

    #[tokio::test]
    async fn garbage_is_refused_without_panicking() {
        let config = Identity { api_keys: vec![key("t", HASH_OF_TEST)], oidc: vec![provider("http://127.0.0.1:9")] };
        let auth = match Authenticator::new(&config) {
            Ok(auth) => auth,
            Err(e) => panic!("{e}"),
        };
        let huge = "a".repeat(1024 * 1024);
        let huge_jwt = format!("{0}.{0}.{0}", "A".repeat(400 * 1024));
        let cases: Vec<(&str, IdentityError)> = vec![
            ("", IdentityError::MissingCredential),
            (&huge, IdentityError::Malformed("credential is too long")),
            (&huge_jwt, IdentityError::Malformed("credential is too long")),
            ("a.b.c", IdentityError::Malformed("token header is not base64url JSON")),
            ("..", IdentityError::UnknownApiKey),
            ("\u{0}\u{ffff}", IdentityError::UnknownApiKey),
            ("____.____.____", IdentityError::Malformed("token header is not base64url JSON")),
            ("eyJhbGciOiJub25lIn0.e30.", IdentityError::AlgorithmNotAllowed("`none`".into())),
            (
                "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwifQ.c2ln",
                IdentityError::UnknownIssuer("`https://evil`".into()),
            ),
        ];
        for (credential, want) in cases {
            let shown: String = credential.chars().take(40).collect();
            assert_eq!(auth.authenticate(credential).await, Err(want), "{shown:?}");
        }
        assert_eq!(auth.authenticate("test").await.map(|p| p.subject), Ok("t".to_string()));
    }

    #[test]
    fn authenticator_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + Clone + fmt::Debug>() {}
        assert_bounds::<Authenticator>();
        fn assert_send<F: Send + 'static>(_: F) {}
        let config = Identity::default();
        if let Ok(auth) = Authenticator::new(&config) {
            assert_send(async move { auth.authenticate("x").await });
        }
    }
}
