//! Scope listings for the batch existence API on an S3 bucket, shared and briefly reused.
//!
//! A batch request about more than 64 hashes is answered from one listing of the scope
//! rather than one HEAD per hash. A listing may hold up to `storage.max_listing_keys`
//! keys, so without sharing, N concurrent requests (anonymous ones, for a public scope)
//! meant N listings in memory at once and N times the bucket's list traffic. Here:
//!
//! * one listing per scope at a time: concurrent requests for a scope wait for the same
//!   listing and share it (single flight), and it is reused for [`TTL`];
//! * at most [`MAX_RUNNING`] listings run at once over all scopes; a request past the cap
//!   waits for a slot;
//! * what is kept is the set of artifact hashes (8 bytes each), not the listed keys, and
//!   a reused listing is dropped once it is [`TTL`] old.
//!
//! Why reuse is safe. A reused listing can only be wrong in two ways. An artifact uploaded
//! after it was taken is reported missing: harmless, the client uploads it again (the
//! upload finds it stored). An artifact deleted after it was taken is reported present:
//! the client would skip uploading it. Artifacts are immutable and only deleted by GC
//! (unreferenced and older than the grace period, `gc.grace_hours`), by scrub repair
//! (corrupt ones) and by an admin's DELETE. Every one of these deletions made by this
//! process calls [`Listings::invalidate`] before deleting, and a listing taken (or
//! started) before an invalidation is never reused after it. A deletion by another
//! process (`tarn serve gc` run separately, a second server on the same bucket) cannot
//! invalidate, so for at most [`TTL`] after it a stale "present" is possible. That is the
//! same race every batch answer already has: an answer is a snapshot, and a GC deleting
//! an old unreferenced artifact between the answer and the client's revision upload (a
//! build later) leaves the revision referring to a deleted artifact with or without the
//! cache. The cache widens that window by [`TTL`], a few seconds next to a grace period
//! of hours.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tarn_core::object_key::parse_artifact_file;
use tarn_core::Hash;

use crate::App;

/// How long a scope listing is reused.
pub(crate) const TTL: Duration = Duration::from_secs(5);
/// Most scope listings running at once, over all scopes.
pub(crate) const MAX_RUNNING: usize = 2;

/// One scope's listing.
struct Taken {
    /// The artifacts present.
    present: Arc<HashSet<Hash>>,
    /// When the listing started.
    at: Instant,
    /// [`Listings::generation`] when it started.
    generation: u64,
}

/// One scope's slot: its lock is held while its listing runs.
type Slot = Arc<tokio::sync::Mutex<Option<Taken>>>;

/// The shared scope listings (one per server).
pub(crate) struct Listings {
    slots: Mutex<HashMap<String, Slot>>,
    running: tokio::sync::Semaphore,
    generation: AtomicU64,
}

impl Default for Listings {
    fn default() -> Self {
        Listings {
            slots: Mutex::default(),
            running: tokio::sync::Semaphore::new(MAX_RUNNING),
            generation: AtomicU64::new(0),
        }
    }
}

impl Listings {
    /// Called before an artifact is deleted: no listing taken before is reused.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, SeqCst);
    }

    /// The artifacts present in the scope whose artifacts live under `dir` (no trailing
    /// slash): a listing at most [`TTL`] old taken after the last invalidation, or a new one.
    pub(crate) async fn present(
        &self,
        app: &App,
        dir: &str,
    ) -> std::io::Result<Arc<HashSet<Hash>>> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            // Forget idle scopes whose listing is too old to be reused (or is being
            // taken by nobody), so the map holds only recently asked scopes.
            slots.retain(|_, s| {
                Arc::strong_count(s) > 1
                    || s.try_lock()
                        .map(|t| t.as_ref().is_some_and(|t| t.at.elapsed() < TTL))
                        .unwrap_or(true)
            });
            slots.entry(dir.to_string()).or_default().clone()
        };
        let mut taken = slot.lock().await;
        if let Some(t) = taken.as_ref() {
            if t.at.elapsed() < TTL && t.generation == self.generation.load(SeqCst) {
                return Ok(t.present.clone());
            }
        }
        // Drop the old set before the new listing is taken.
        *taken = None;
        let _running = self
            .running
            .acquire()
            .await
            .expect("the listing semaphore is never closed");
        let generation = self.generation.load(SeqCst);
        let at = Instant::now();
        let listed = app.storage.list(&format!("{dir}/")).await?;
        let present: HashSet<Hash> = listed
            .iter()
            .filter_map(|l| {
                let name = l.key.strip_prefix(dir)?.strip_prefix('/')?;
                let hash = parse_artifact_file(name)?;
                // Only the exact key a GET would ask for counts (not an upper-case twin).
                (name.len() == 20 && name[..16] == hash.hex()).then_some(hash)
            })
            .collect();
        drop(listed);
        let present = Arc::new(present);
        *taken = Some(Taken {
            present: present.clone(),
            at,
            generation,
        });
        Ok(present)
    }
}
