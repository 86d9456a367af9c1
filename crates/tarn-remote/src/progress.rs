//! Progress events. Engines never draw anything: they report what happens through a
//! [`Progress`] sink, and the CLI turns the events into a progress bar (or ignores them).

use std::sync::Arc;

use tarn_core::ArtifactName;

/// One thing that happened during a transfer run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A phase starts with this many files to move (bytes when known up front).
    Start {
        /// What is being done: `download`, `upload`, `check`.
        phase: &'static str,
        /// Number of files in the phase.
        files: u64,
        /// Total bytes, when known (uploads know it, downloads do not).
        bytes: Option<u64>,
    },
    /// Bytes moved (in either direction).
    Bytes(u64),
    /// One file is finished (successfully, skipped, or failed).
    FileDone,
    /// A request is being retried.
    Retry {
        /// The URL.
        url: String,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Why it is retried.
        reason: String,
    },
    /// A phase is over.
    Finish,
    /// A get's mappings are known (and their signature verified, when keys are trusted);
    /// its artifacts are about to be fetched. `rev` is the revision whose mapping file the get
    /// saved in the cache, `None` when a mappings file was given.
    Mappings {
        /// The revision.
        rev: Option<String>,
    },
    /// One artifact of a get is in the local cache, complete and checked (found there,
    /// downloaded, or copied), so a reader may use it now.
    Cached(ArtifactName),
}

/// Where events go. Cheap to clone; must be callable from any task.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(Event) + Send + Sync>);

impl Progress {
    /// A sink calling `f` for each event.
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Progress {
        Progress(Arc::new(f))
    }

    /// A sink that drops every event.
    pub fn none() -> Progress {
        Progress::new(|_| {})
    }

    /// Reports one event.
    pub(crate) fn emit(&self, event: Event) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}
