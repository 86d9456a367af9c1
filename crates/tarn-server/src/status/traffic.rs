//! Traffic over time and per scope, for the status page: requests and response bytes in
//! one-minute buckets over the last day (a ring of atomics, no lock on the request path),
//! and hits, misses and bytes served per scope.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::{Arc, RwLock};

/// Minutes kept: one day.
const MINUTES: u64 = 24 * 60;
/// Scopes counted at most; requests for further scopes are counted under none (the
/// totals in `/metrics` still have them). Bounds memory against clients probing names.
const MAX_SCOPES: usize = 4096;

struct Bucket {
    /// The minute (since the Unix epoch) the counts belong to.
    minute: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
}

/// Requests and bytes per minute over the last day. Counts at a minute boundary are
/// approximate (a request racing the bucket's reset may be lost); that is fine for a chart.
pub(crate) struct Traffic {
    buckets: Box<[Bucket]>,
    scopes: RwLock<HashMap<String, Arc<ScopeCounters>>>,
}

/// Reads of one scope's objects.
#[derive(Default)]
pub(crate) struct ScopeCounters {
    /// GET/HEAD answered with the object.
    pub hits: AtomicU64,
    /// GET/HEAD of an object that is not there.
    pub misses: AtomicU64,
    /// Object bytes sent.
    pub bytes: AtomicU64,
}

/// One scope's counts at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScopeCounts {
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Bytes served.
    pub bytes: u64,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            buckets: (0..MINUTES)
                .map(|_| Bucket {
                    minute: AtomicU64::new(u64::MAX),
                    requests: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                })
                .collect(),
            scopes: RwLock::new(HashMap::new()),
        }
    }
}

/// The current minute since the Unix epoch.
pub(crate) fn now_minute() -> u64 {
    super::now_unix() / 60
}

impl Traffic {
    /// Counts one answered request that sent `bytes` of body, at minute `minute`.
    pub(crate) fn request(&self, minute: u64, bytes: u64) {
        let b = &self.buckets[(minute % MINUTES) as usize];
        let seen = b.minute.load(Acquire);
        if seen != minute {
            if seen != u64::MAX && seen > minute {
                return; // the clock went back: drop rather than corrupt a newer bucket
            }
            if b.minute
                .compare_exchange(seen, minute, AcqRel, Acquire)
                .is_ok()
            {
                b.requests.store(0, Relaxed);
                b.bytes.store(0, Relaxed);
            }
        }
        b.requests.fetch_add(1, Relaxed);
        b.bytes.fetch_add(bytes, Relaxed);
    }

    /// `n` consecutive periods of `per` minutes each, oldest first, the last ending with
    /// minute `now`: (requests, bytes) per period.
    pub(crate) fn series(&self, now: u64, n: u64, per: u64) -> Vec<(u64, u64)> {
        let span = (n * per).min(MINUTES);
        let first = now.saturating_sub(span - 1);
        let mut out = vec![(0u64, 0u64); n as usize];
        for m in first..=now {
            let b = &self.buckets[(m % MINUTES) as usize];
            if b.minute.load(Acquire) != m {
                continue;
            }
            let slot = (n - 1 - (now - m) / per) as usize;
            if let Some(o) = out.get_mut(slot) {
                o.0 += b.requests.load(Relaxed);
                o.1 += b.bytes.load(Relaxed);
            }
        }
        out
    }

    fn counters(&self, scope: &str) -> Option<Arc<ScopeCounters>> {
        if let Some(c) = self
            .scopes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(scope)
        {
            return Some(c.clone());
        }
        let mut w = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        if w.len() >= MAX_SCOPES && !w.contains_key(scope) {
            return None;
        }
        Some(w.entry(scope.to_string()).or_default().clone())
    }

    /// Counts a read of an object of `scope`: a hit that sent `bytes`, or a miss.
    pub(crate) fn read(&self, scope: &str, hit: bool, bytes: u64) {
        let Some(c) = self.counters(scope) else {
            return;
        };
        if hit {
            c.hits.fetch_add(1, Relaxed);
            c.bytes.fetch_add(bytes, Relaxed);
        } else {
            c.misses.fetch_add(1, Relaxed);
        }
    }

    /// The counts of `scope` (zero when it was never read).
    pub(crate) fn scope(&self, scope: &str) -> ScopeCounts {
        self.scopes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(scope)
            .map(|c| ScopeCounts {
                hits: c.hits.load(Relaxed),
                misses: c.misses.load(Relaxed),
                bytes: c.bytes.load(Relaxed),
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_roll_over_and_sum() {
        let t = Traffic::default();
        t.request(1000, 10);
        t.request(1000, 5);
        t.request(1001, 1);
        // One day later the same slot is reused for the new minute.
        t.request(1000 + MINUTES, 7);
        let s = t.series(1000 + MINUTES, 60, 1);
        assert_eq!(s.len(), 60);
        assert_eq!(s[59], (1, 7));
        assert_eq!(s.iter().map(|x| x.0).sum::<u64>(), 1);
        let s = t.series(1001, 2, 1);
        assert_eq!(s, vec![(0, 0), (1, 1)]);
        let day = t.series(1001 + 60, 24, 60);
        assert_eq!(day[22], (1, 1));
        assert_eq!(day[23], (0, 0));
    }

    #[test]
    fn scopes_are_counted_and_bounded() {
        let t = Traffic::default();
        t.read("a", true, 100);
        t.read("a", false, 0);
        assert_eq!(
            t.scope("a"),
            ScopeCounts {
                hits: 1,
                misses: 1,
                bytes: 100
            }
        );
        for i in 0..MAX_SCOPES + 10 {
            t.read(&format!("s{i}"), false, 0);
        }
        assert_eq!(t.scopes.read().unwrap().len(), MAX_SCOPES);
    }
}
