//! One lock per revision key, held by a revision upload and by a signature upload for the
//! same key from the moment each reads what is stored until its own object is stored: a
//! revision file is checked against the signature beside it and stored with no other
//! signature able to land in between, so a revision never becomes visible next to a
//! signature that does not cover it (docs/trust.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The locks of the revision keys being uploaded right now (an entry lives only while
/// someone holds or waits for it).
#[derive(Debug, Default)]
pub(crate) struct RevisionLocks {
    held: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// A held lock; released (and forgotten when nobody else waits) on drop.
pub(crate) struct RevisionGuard<'a> {
    locks: &'a RevisionLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl RevisionLocks {
    /// Waits for the lock of revision key `key` (a revision file's key; its signature's key
    /// without `.sig`).
    pub(crate) async fn lock(&self, key: &str) -> RevisionGuard<'_> {
        let m = {
            let mut held = self.held.lock().expect("no panics while locked");
            held.entry(key.to_string()).or_default().clone()
        };
        let guard = m.lock_owned().await;
        RevisionGuard {
            locks: self,
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().expect("no panics while locked").len()
    }
}

impl Drop for RevisionGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().expect("no panics while locked");
        drop(self.guard.take());
        // With the guard gone, the map holds the only reference unless someone waits (a
        // waiter clones it under the map's lock).
        if held
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            held.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_nothing_left_behind() {
        let locks = Arc::new(RevisionLocks::default());
        let first = locks.lock("r0/s/a.jsonl").await;
        let other = locks.lock("r0/s/b.jsonl").await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.lock("r0/s/a.jsonl").await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the same key waits");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
    }
}
