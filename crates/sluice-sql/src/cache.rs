//! The classification cache: bounded LRU keyed by (dialect and its string
//! mode, text).
//!
//! Owns: [`Cache`], [`Dialect`], its bounds (entries and bytes) and its
//! locking.
//! Does not own: classification.
//!
//! A hit costs one hash of the text (outside the lock), then under the lock
//! one probe of a `u64` key, one comparison of the stored text with the
//! asked text (so a hash collision is a miss, never a wrong answer) and a
//! clone of the `Arc`. Texts longer than [`MAX_CACHED_TEXT`] are not cached
//! (classified each time), and the cache also holds at most `max_bytes` of
//! text and classification, evicting least-recently-used entries first.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use sluice_model::sql::SqlClassification;

use crate::mysql::MySqlMode;
use crate::string_mode::PgStringMode;

/// Longest statement text that is cached.
pub const MAX_CACHED_TEXT: usize = 64 * 1024;

/// Fixed bookkeeping cost counted per entry.
const ENTRY_OVERHEAD: usize = 256;

/// Which grammar, in which string mode, a text was classified with: part
/// of the key, so a PostgreSQL and a MySQL classification of the same text
/// (or two modes of one dialect) never share an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dialect {
    Postgres(PgStringMode),
    MySql(MySqlMode),
}

struct Entry {
    mode: Dialect,
    text: Box<str>,
    value: Arc<SqlClassification>,
    cost: usize,
}

struct Inner {
    lru: LruCache<u64, Entry>,
    bytes: usize,
}

/// A bounded LRU of classifications.
pub(crate) struct Cache {
    inner: Mutex<Inner>,
    hasher: RandomState,
    max_bytes: usize,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Cache")
            .field("entries", &inner.lru.len())
            .field("capacity", &inner.lru.cap())
            .field("bytes", &inner.bytes)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

fn cost_of(text: &str, c: &SqlClassification) -> usize {
    let strings: usize = c.tables_read.iter().chain(&c.tables_written).chain(&c.functions).map(|s| s.len() + 24).sum();
    ENTRY_OVERHEAD + text.len() + strings + c.fingerprint.len()
}

impl Cache {
    /// `None` when `capacity` is zero (no caching).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Option<Cache> {
        let capacity = NonZeroUsize::new(capacity)?;
        Some(Cache {
            inner: Mutex::new(Inner { lru: LruCache::new(capacity), bytes: 0 }),
            hasher: RandomState::new(),
            max_bytes,
        })
    }

    /// The key of a (dialect, text) pair; computed before taking the lock.
    pub(crate) fn key(&self, sql: &str, mode: Dialect) -> u64 {
        let mut h = self.hasher.build_hasher();
        mode.hash(&mut h);
        sql.hash(&mut h);
        h.finish()
    }

    pub(crate) fn get(&self, key: u64, sql: &str, mode: Dialect) -> Option<Arc<SqlClassification>> {
        let mut inner = self.inner.lock();
        match inner.lru.get(&key) {
            Some(e) if e.mode == mode && &*e.text == sql => Some(Arc::clone(&e.value)),
            _ => None,
        }
    }

    pub(crate) fn insert(&self, key: u64, sql: &str, mode: Dialect, value: Arc<SqlClassification>) {
        if sql.len() > MAX_CACHED_TEXT {
            return;
        }
        let cost = cost_of(sql, &value);
        if cost > self.max_bytes {
            return;
        }
        let entry = Entry { mode, text: sql.into(), value, cost };
        let mut evicted = Vec::new();
        {
            let mut inner = self.inner.lock();
            if let Some((_, old)) = inner.lru.push(key, entry) {
                inner.bytes = inner.bytes.saturating_sub(old.cost);
                evicted.push(old);
            }
            inner.bytes += cost;
            while inner.bytes > self.max_bytes {
                match inner.lru.pop_lru() {
                    Some((_, old)) => {
                        inner.bytes = inner.bytes.saturating_sub(old.cost);
                        evicted.push(old);
                    }
                    None => break,
                }
            }
        }
        // Evicted classifications are freed outside the lock.
        drop(evicted);
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().lru.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}
