//! Slots for upload bodies being spooled, shared per key: at most
//! `max_concurrent_uploads` bodies at once, and at most a quarter of them (rounded up) for
//! any one key, so one key trickling uploads cannot hold every slot while another key's
//! upload waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The upload slots of one server.
#[derive(Debug)]
pub(crate) struct UploadSlots {
    all: Arc<Semaphore>,
    per_key: Mutex<HashMap<String, Arc<Semaphore>>>,
    key_share: usize,
}

/// One slot held while a body is spooled (freed on drop).
#[derive(Debug)]
pub(crate) struct UploadSlot {
    _key: Option<OwnedSemaphorePermit>,
    _all: OwnedSemaphorePermit,
}

impl UploadSlots {
    /// `total` slots (at least one), a quarter of them per key.
    pub(crate) fn new(total: usize) -> UploadSlots {
        let total = total.max(1);
        UploadSlots {
            all: Arc::new(Semaphore::new(total)),
            per_key: Mutex::new(HashMap::new()),
            key_share: Self::share_of(total),
        }
    }

    /// The slots one key may hold at once out of `total`.
    pub(crate) fn share_of(total: usize) -> usize {
        total.max(1).div_ceil(4)
    }

    /// Waits for a slot for an upload by `key` (`None`: no key, counted in the total
    /// only). The key's own share is taken first, so uploads over it wait without holding
    /// any of the total.
    pub(crate) async fn acquire(&self, key: Option<&str>) -> UploadSlot {
        let key_sem = key.map(|k| {
            // Entries are per configured key id (a bounded set): never removed.
            let mut map = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(k.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.key_share)))
                .clone()
        });
        let key_permit = match key_sem {
            Some(s) => Some(
                s.acquire_owned()
                    .await
                    .expect("upload slots are never closed"),
            ),
            None => None,
        };
        let all = self
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("upload slots are never closed");
        UploadSlot {
            _key: key_permit,
            _all: all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_a_quarter_rounded_up() {
        assert_eq!(UploadSlots::share_of(32), 8);
        assert_eq!(UploadSlots::share_of(4), 1);
        assert_eq!(UploadSlots::share_of(5), 2);
        assert_eq!(UploadSlots::share_of(0), 1);
    }
}
