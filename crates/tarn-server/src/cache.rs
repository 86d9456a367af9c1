//! A small in-memory cache of artifact bodies. Artifacts are immutable (the name is the
//! content hash), so a cached body can only go stale by deletion, which the server's own
//! DELETE and GC paths report through [`ObjectCache::remove`]. Sharded: no global lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;
use bytes::Bytes;

use crate::storage::ObjectMeta;

const SHARDS: usize = 32;
/// Objects larger than this are never cached.
pub(crate) const MAX_ENTRY: u64 = 1 << 20;

/// A cached artifact with its response headers preformatted.
pub(crate) struct Cached {
    /// Content.
    pub body: Bytes,
    /// Metadata.
    pub meta: ObjectMeta,
    /// `Last-Modified`.
    pub last_modified: HeaderValue,
    /// `ETag`.
    pub etag: HeaderValue,
    /// `Content-Length`.
    pub content_length: HeaderValue,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Arc<Cached>>,
    order: VecDeque<String>,
    bytes: usize,
}

/// The cache.
pub(crate) struct ObjectCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

fn shard_of(key: &str) -> usize {
    // FNV-1a over the key; the hash part at the end spreads well anyway.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h as usize) % SHARDS
}

impl ObjectCache {
    /// A cache of at most `budget` bytes (0 disables it).
    pub(crate) fn new(budget: u64) -> ObjectCache {
        ObjectCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: (budget as usize) / SHARDS,
        }
    }

    /// Whether caching is on.
    pub(crate) fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    /// A cached entry.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Cached>> {
        if !self.enabled() {
            return None;
        }
        let s = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        s.map.get(key).cloned()
    }

    /// Caches `body` (FIFO eviction within the shard).
    pub(crate) fn insert(&self, key: &str, entry: Cached) -> Arc<Cached> {
        let entry = Arc::new(entry);
        let len = entry.body.len();
        if !self.enabled() || len as u64 > MAX_ENTRY || len > self.per_shard {
            return entry;
        }
        let mut s = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if s.map.contains_key(key) {
            return entry;
        }
        while s.bytes + len > self.per_shard {
            let Some(old) = s.order.pop_front() else {
                break;
            };
            if let Some(e) = s.map.remove(&old) {
                s.bytes -= e.body.len();
            }
        }
        s.bytes += len;
        s.order.push_back(key.to_string());
        s.map.insert(key.to_string(), entry.clone());
        entry
    }

    /// Forgets `key` (after a deletion).
    pub(crate) fn remove(&self, key: &str) {
        if !self.enabled() {
            return;
        }
        let mut s = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(e) = s.map.remove(key) {
            s.bytes -= e.body.len();
            s.order.retain(|k| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Cached {
        Cached {
            body: Bytes::from(vec![0u8; n]),
            meta: ObjectMeta {
                len: n as u64,
                modified: std::time::UNIX_EPOCH,
            },
            last_modified: HeaderValue::from_static("x"),
            etag: HeaderValue::from_static("x"),
            content_length: HeaderValue::from(n),
        }
    }

    #[test]
    fn evicts_and_removes() {
        let c = ObjectCache::new(SHARDS as u64 * 100);
        c.insert("a", entry(60));
        assert!(c.get("a").is_some());
        c.remove("a");
        assert!(c.get("a").is_none());
        // Two 60-byte entries in one shard do not fit: the older goes.
        let (k1, mut k2) = ("k1".to_string(), String::new());
        for i in 0.. {
            let k = format!("x{i}");
            if shard_of(&k) == shard_of(&k1) {
                k2 = k;
                break;
            }
        }
        c.insert(&k1, entry(60));
        c.insert(&k2, entry(60));
        assert!(c.get(&k1).is_none());
        assert!(c.get(&k2).is_some());
        assert!(ObjectCache::new(0).get("a").is_none());
    }
}
