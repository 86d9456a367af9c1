//! Prometheus counters, lock-free (fixed arrays of atomics): requests by route, method and
//! status, bytes in and out, rejected uploads by reason, stored objects and bytes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Which handler answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Route {
    /// `a0/<scope>/<hash>.art`.
    Artifact,
    /// `r0/<scope>/<rev>.jsonl`.
    Revision,
    /// Bucket listing / ListBuckets.
    List,
    /// `?tarn-missing`.
    Batch,
    /// Reservoir artifact GET.
    ReservoirArtifact,
    /// Reservoir `build-outputs`.
    ReservoirRevision,
    /// Reservoir bulk POST.
    ReservoirBulk,
    /// `/healthz`.
    Health,
    /// `/metrics`.
    Metrics,
    /// The status page (`/`) and `/api/status`.
    Status,
    /// Anything else.
    Other,
}

const ROUTES: [&str; 11] = [
    "artifact",
    "revision",
    "list",
    "batch",
    "reservoir_artifact",
    "reservoir_revision",
    "reservoir_bulk",
    "healthz",
    "metrics",
    "status",
    "other",
];
const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "DELETE", "OTHER"];
const STATUSES: [u16; 16] = [
    200, 204, 206, 304, 400, 401, 403, 404, 405, 409, 411, 413, 416, 500, 501, 503,
];
const N_STATUS: usize = STATUSES.len() + 1; // + "other"

/// Why an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Reject {
    /// Body does not hash to the name.
    HashMismatch,
    /// Revision file does not parse.
    BadRevision,
    /// Revision references absent artifacts.
    MissingArtifacts,
    /// Over the size limit.
    TooLarge,
    /// Unknown key, bad signature, or scope not writable.
    Auth,
    /// Bad object name or request.
    BadRequest,
    /// The body arrived too slowly (`408`).
    SlowBody,
}

const REJECTS: [&str; 7] = [
    "hash_mismatch",
    "bad_revision",
    "missing_artifacts",
    "too_large",
    "auth",
    "bad_request",
    "slow_body",
];

/// All counters.
pub(crate) struct Metrics {
    requests: Vec<AtomicU64>,
    rejects: [AtomicU64; 7],
    /// Request body bytes received.
    pub bytes_in: AtomicU64,
    /// Object bytes sent.
    pub bytes_out: AtomicU64,
    /// Objects stored (artifacts and revisions), from a startup scan plus changes.
    pub objects: AtomicI64,
    /// Bytes stored.
    pub stored_bytes: AtomicI64,
    /// Batch API requests answered.
    pub batch_requests: AtomicU64,
    /// Hashes asked about through the batch API.
    pub batch_hashes: AtomicU64,
    /// Uploads accepted that stored a new object.
    pub uploads_created: AtomicU64,
    /// Uploads accepted that found the object present already.
    pub uploads_existing: AtomicU64,
    /// Objects deleted by GC.
    pub gc_deleted: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: (0..ROUTES.len() * METHODS.len() * N_STATUS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            rejects: Default::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            objects: AtomicI64::new(0),
            stored_bytes: AtomicI64::new(0),
            batch_requests: AtomicU64::new(0),
            batch_hashes: AtomicU64::new(0),
            uploads_created: AtomicU64::new(0),
            uploads_existing: AtomicU64::new(0),
            gc_deleted: AtomicU64::new(0),
        }
    }
}

fn method_index(m: &str) -> usize {
    METHODS.iter().position(|x| *x == m).unwrap_or(5)
}

fn status_index(s: u16) -> usize {
    STATUSES
        .iter()
        .position(|x| *x == s)
        .unwrap_or(STATUSES.len())
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: Route, method: &str, status: u16) {
        let i = ((route as usize) * METHODS.len() + method_index(method)) * N_STATUS
            + status_index(status);
        self.requests[i].fetch_add(1, Relaxed);
    }

    /// Counts one refused upload.
    pub(crate) fn reject(&self, why: Reject) {
        self.rejects[why as usize].fetch_add(1, Relaxed);
    }

    /// Records a newly stored object.
    pub(crate) fn stored(&self, len: u64) {
        self.objects.fetch_add(1, Relaxed);
        self.stored_bytes.fetch_add(len as i64, Relaxed);
    }

    /// Records a removed object.
    pub(crate) fn removed(&self, len: u64) {
        self.objects.fetch_sub(1, Relaxed);
        self.stored_bytes.fetch_sub(len as i64, Relaxed);
    }

    /// Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        s.push_str("# HELP tarn_requests_total HTTP requests answered.\n");
        s.push_str("# TYPE tarn_requests_total counter\n");
        for (r, route) in ROUTES.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for st in 0..N_STATUS {
                    let v = self.requests[(r * METHODS.len() + m) * N_STATUS + st].load(Relaxed);
                    if v == 0 {
                        continue;
                    }
                    let status = STATUSES
                        .get(st)
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "other".into());
                    let _ = writeln!(
                        s,
                        "tarn_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {v}"
                    );
                }
            }
        }
        s.push_str("# HELP tarn_uploads_rejected_total Uploads refused, by reason.\n");
        s.push_str("# TYPE tarn_uploads_rejected_total counter\n");
        for (i, name) in REJECTS.iter().enumerate() {
            let _ = writeln!(
                s,
                "tarn_uploads_rejected_total{{reason=\"{name}\"}} {}",
                self.rejects[i].load(Relaxed)
            );
        }
        let counters: [(&str, &str, u64); 7] = [
            (
                "tarn_bytes_received_total",
                "Request body bytes received.",
                self.bytes_in.load(Relaxed),
            ),
            (
                "tarn_bytes_sent_total",
                "Object bytes sent.",
                self.bytes_out.load(Relaxed),
            ),
            (
                "tarn_batch_requests_total",
                "Batch existence requests answered.",
                self.batch_requests.load(Relaxed),
            ),
            (
                "tarn_batch_hashes_total",
                "Hashes asked about through the batch existence API.",
                self.batch_hashes.load(Relaxed),
            ),
            (
                "tarn_uploads_created_total",
                "Uploads that stored a new object.",
                self.uploads_created.load(Relaxed),
            ),
            (
                "tarn_uploads_existing_total",
                "Uploads of an object that was already stored.",
                self.uploads_existing.load(Relaxed),
            ),
            (
                "tarn_gc_deleted_total",
                "Objects deleted by garbage collection in this process.",
                self.gc_deleted.load(Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP tarn_stored_objects Objects in storage.\n# TYPE tarn_stored_objects gauge\ntarn_stored_objects {}",
            self.objects.load(Relaxed).max(0)
        );
        let _ = writeln!(
            s,
            "# HELP tarn_stored_bytes Bytes in storage.\n# TYPE tarn_stored_bytes gauge\ntarn_stored_bytes {}",
            self.stored_bytes.load(Relaxed).max(0)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.request(Route::Artifact, "PUT", 200);
        m.request(Route::Artifact, "PUT", 200);
        m.request(Route::Other, "PATCH", 999);
        m.reject(Reject::HashMismatch);
        let t = m.render();
        assert!(
            t.contains("tarn_requests_total{route=\"artifact\",method=\"PUT\",status=\"200\"} 2")
        );
        assert!(t.contains("route=\"other\",method=\"OTHER\",status=\"other\"} 1"));
        assert!(t.contains("tarn_uploads_rejected_total{reason=\"hash_mismatch\"} 1"));
    }
}
