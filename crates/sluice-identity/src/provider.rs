//! One OIDC provider at run time: discovery, the JWKS cache, its refreshes.
//!
//! Owns: fetching `<issuer>/.well-known/openid-configuration` (lazily, and
//! again after a failure), fetching `jwks_uri`, caching the keys, and deciding
//! when a re-fetch is allowed: on an unknown `kid` at most once per refetch
//! interval (10 s by default), with concurrent callers sharing one fetch; and
//! after [`MAX_KEY_AGE`] so keys the provider withdrew stop being trusted.
//! Does not: parse tokens or judge claims (see `jwt`), or choose among keys
//! (see `jwks`). An unreachable provider refuses its tokens; it never stops
//! Sluice.

use crate::IdentityError;
use crate::jwks::{KeySet, Lookup};
use crate::jwt::{ClaimRules, TokenAlgorithm};
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Cached keys are re-fetched (on the next request) after this long, so a key
/// the provider removed stops verifying tokens.
const MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);
/// While no keys were ever fetched, a retry waits at least this long (or the
/// refetch interval, if shorter), so a down provider is not hammered.
const FIRST_FETCH_RETRY: Duration = Duration::from_secs(1);
/// Discovery documents and JWKS larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

pub(crate) struct Provider {
    pub(crate) rules: ClaimRules,
    http: reqwest::Client,
    /// The read path: requests clone the `Arc` and never wait on a fetch
    /// unless their key is missing.
    cache: RwLock<Option<CachedKeys>>,
    /// Held while fetching, so concurrent refreshes become one.
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Completed fetch attempts. A caller that saw `n` and finds more once it
    /// holds `refresh` knows someone fetched for it while it waited.
    attempts: AtomicU64,
    /// JWKS requests sent (diagnostics, see `Authenticator::jwks_fetches`).
    jwks_fetches: AtomicU64,
}

#[derive(Clone)]
struct CachedKeys {
    keys: Arc<KeySet>,
    refresh_after: Instant,
}

#[derive(Default)]
struct RefreshState {
    /// From discovery; forgotten when a JWKS fetch fails, so the next attempt
    /// discovers again.
    jwks_uri: Option<String>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl Provider {
    pub(crate) fn new(rules: ClaimRules, http: reqwest::Client) -> Provider {
        Provider {
            rules,
            http,
            cache: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            attempts: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.rules.issuer
    }

    pub(crate) fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::Relaxed)
    }

    fn cached(&self) -> Option<CachedKeys> {
        self.cache.read().map(|c| c.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn store(&self, keys: Option<CachedKeys>) {
        match self.cache.write() {
            Ok(mut cache) => *cache = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// The key that may verify a token with this `kid` and `alg`, fetching
    /// or re-fetching the JWKS when the cache cannot answer.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: TokenAlgorithm,
        refetch_interval: Duration,
    ) -> Result<DecodingKey, IdentityError> {
        let seen = self.attempts.load(Ordering::Acquire);
        if let Some(cached) = self.cached()
            && Instant::now() < cached.refresh_after
        {
            match cached.keys.find(kid, alg) {
                Lookup::NotFound => {}
                found => return found.into_result(alg),
            }
        }
        let keys = self.refresh(seen, refetch_interval).await?;
        keys.find(kid, alg).into_result(alg)
    }

    /// Fetches the JWKS unless another caller just did (then its result is
    /// shared) or the last attempt is too recent (then the cache answers).
    async fn refresh(&self, seen: u64, refetch_interval: Duration) -> Result<Arc<KeySet>, IdentityError> {
        let mut state = self.refresh.lock().await;
        let cached = self.cached();
        let shared = self.attempts.load(Ordering::Acquire) != seen;
        let min_gap = match cached {
            Some(_) => refetch_interval,
            None => refetch_interval.min(FIRST_FETCH_RETRY),
        };
        let too_soon = state.last_attempt.is_some_and(|at| at.elapsed() < min_gap);
        if shared || too_soon {
            return cached.map(|c| c.keys).ok_or_else(|| self.unavailable(&state));
        }

        let result = self.fetch(&mut state).await;
        state.last_attempt = Some(Instant::now());
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(keys) => {
                state.last_error = None;
                let keys = Arc::new(keys);
                self.store(Some(CachedKeys { keys: keys.clone(), refresh_after: Instant::now() + MAX_KEY_AGE }));
                Ok(keys)
            }
            Err(reason) => {
                tracing::warn!(issuer = %self.rules.issuer, %reason, "OIDC provider fetch failed");
                state.last_error = Some(reason);
                match cached {
                    // Keep trusting the keys we have; try again a little later.
                    Some(old) => {
                        let keys = old.keys.clone();
                        self.store(Some(CachedKeys {
                            keys: old.keys,
                            refresh_after: Instant::now() + refetch_interval,
                        }));
                        Ok(keys)
                    }
                    None => Err(self.unavailable(&state)),
                }
            }
        }
    }

    /// Discovery plus JWKS, now, whatever the cache holds (for `sluice check`).
    pub(crate) async fn check(&self) -> Result<(), IdentityError> {
        let mut state = self.refresh.lock().await;
        state.jwks_uri = None;
        let result = self.fetch(&mut state).await;
        state.last_attempt = Some(Instant::now());
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(keys) => {
                state.last_error = None;
                self.store(Some(CachedKeys { keys: Arc::new(keys), refresh_after: Instant::now() + MAX_KEY_AGE }));
                Ok(())
            }
            Err(reason) => {
                state.last_error = Some(reason.clone());
                Err(IdentityError::ProviderUnavailable { issuer: self.rules.issuer.clone(), reason })
            }
        }
    }

    fn unavailable(&self, state: &RefreshState) -> IdentityError {
        let reason = state.last_error.clone().unwrap_or_else(|| "no keys fetched yet".into());
        IdentityError::ProviderUnavailable { issuer: self.rules.issuer.clone(), reason }
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<KeySet, String> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.get(&jwks_uri).await.and_then(|body| KeySet::parse(&body));
        match result {
            Ok(keys) => {
                tracing::debug!(issuer = %self.rules.issuer, keys = keys.len(), "JWKS fetched");
                Ok(keys)
            }
            Err(reason) => {
                state.jwks_uri = None;
                Err(reason)
            }
        }
    }

    /// The discovery document's `jwks_uri`, after checking its `issuer` is
    /// exactly ours (OpenID Connect Discovery 1.0, section 4.3).
    async fn discover(&self) -> Result<String, String> {
        let issuer = &self.rules.issuer;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let body = self.get(&url).await?;
        let document: Value =
            serde_json::from_slice(&body).map_err(|e| format!("discovery document is not JSON: {e}"))?;
        match document.get("issuer").and_then(Value::as_str) {
            Some(found) if found == issuer => {}
            Some(found) => {
                return Err(format!("discovery document names issuer {found:?}, expected {issuer:?}"));
            }
            None => return Err("discovery document has no `issuer`".into()),
        }
        let jwks_uri =
            document.get("jwks_uri").and_then(Value::as_str).ok_or("discovery document has no `jwks_uri`")?;
        // Plain http only when the issuer itself is plain http (a loopback
        // provider in tests or development); otherwise TLS.
        let secure = jwks_uri.starts_with("https://");
        if !(secure || jwks_uri.starts_with("http://") && issuer.starts_with("http://")) {
            return Err(format!("jwks_uri {jwks_uri:?} must be an https URL"));
        }
        Ok(jwks_uri.to_string())
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let describe = |e: reqwest::Error| {
            let mut text = format!("GET {url}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        };
        let mut response =
            self.http.get(url).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(describe)?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: response larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
