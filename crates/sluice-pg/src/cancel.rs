//! Cancel keys: the BackendKeyData Sluice gives each client, mapped to the
//! upstream backend that runs its statements.
//!
//! Owns: issuing unguessable keys, and routing a client's CancelRequest to
//! the right upstream backend. An unknown key is ignored, as PostgreSQL does.
//! Does not: authenticate (a cancel request carries only the key).

use crate::upstream::{BackendKey, UpstreamTarget};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct CancelRegistry {
    sessions: Mutex<HashMap<BackendKey, (Arc<UpstreamTarget>, BackendKey)>>,
}

impl CancelRegistry {
    /// Issues a fresh client-facing key for an upstream backend.
    pub fn register(self: &Arc<Self>, target: Arc<UpstreamTarget>, upstream: BackendKey) -> CancelKey {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let key = loop {
            let candidate = BackendKey { process_id: rand::random(), secret_key: rand::random() };
            if !sessions.contains_key(&candidate) {
                break candidate;
            }
        };
        sessions.insert(key, (target, upstream));
        CancelKey { registry: self.clone(), key }
    }

    pub async fn cancel(&self, key: BackendKey) {
        let found = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        if let Some((target, upstream)) = found
            && let Err(e) = target.cancel(upstream).await
        {
            tracing::warn!(connection = %target.connection.name, error = %e, "cancel request to the target failed");
        }
    }
}

/// A registered key; unregisters itself when the session ends.
#[derive(Debug)]
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    pub key: BackendKey,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        self.registry.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}
