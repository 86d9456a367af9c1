//! The status page (`GET /`) and its JSON (`GET /api/status`, tarn's own format, version 1,
//! `docs/server-api.md`): scopes with their newest revisions, totals, reads per scope,
//! recent uploads and refusals, the last GC and scrub, and traffic over the last hour and
//! day.
//!
//! Everything a viewer sees is filtered like every other read: a scope appears only when
//! it is public-read or the request was signed with a key that may read it. The storage
//! listing behind it is shared and cached ([`scan`]); per-request work is bounded by the
//! number of scopes and revisions shown.

pub(crate) mod html;
pub(crate) mod journal;
pub(crate) mod scan;
pub(crate) mod traffic;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{Access, KeyConfig};
use crate::gc::{GcReport, RunRecord, ScrubSummary};
use crate::App;
use journal::{Rejection, UploadRecord};

/// Scopes listed at most (the totals count all visible ones).
pub(crate) const MAX_SCOPES_SHOWN: usize = 100;
/// Recent uploads and refusals listed at most.
pub(crate) const MAX_RECENT: usize = 20;

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> u64 {
    unix(SystemTime::now())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The whole status, as one viewer may see it (`/api/status`, version 1).
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    /// Format version: 1.
    pub version: u32,
    /// When this answer was made (Unix seconds).
    pub generated_unix: u64,
    /// Who is looking.
    pub viewer: Viewer,
    /// The storage listing behind the answer.
    pub scan: ScanInfo,
    /// Sums over every visible scope.
    pub totals: Totals,
    /// Visible scopes, most recently changed first (at most [`MAX_SCOPES_SHOWN`]).
    pub scopes: Vec<ScopeView>,
    /// Recent revision uploads to visible scopes, newest first.
    pub recent_uploads: Vec<UploadRecord>,
    /// Recent refused uploads to visible scopes, newest first.
    pub recent_rejections: Vec<Rejection>,
    /// The last GC run (by the server or `tarn serve gc`), if recorded.
    pub last_gc: Option<RunRecord<GcReport>>,
    /// The last scrub, if recorded.
    pub last_scrub: Option<RunRecord<ScrubSummary>>,
    /// Requests and bytes sent by the whole server over time.
    pub traffic: TrafficView,
}

/// Who is looking.
#[derive(Debug, Serialize)]
pub(crate) struct Viewer {
    /// The key id of a signed request; `null` for anonymous.
    pub key_id: Option<String>,
}

/// About the storage listing.
#[derive(Debug, Serialize)]
pub(crate) struct ScanInfo {
    /// When it was taken (Unix seconds).
    pub at_unix: u64,
    /// How long it took (milliseconds).
    pub duration_ms: u64,
    /// How long a listing is reused (seconds).
    pub ttl_secs: u64,
    /// The storage backend: `local` or `s3`.
    pub storage: &'static str,
    /// Why the listing failed, if it did.
    pub error: Option<String>,
}

/// Sums over the visible scopes.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Totals {
    /// Visible scopes (also those not listed).
    pub scopes: u64,
    /// Revision files.
    pub revisions: u64,
    /// Artifacts.
    pub artifacts: u64,
    /// Bytes of artifacts.
    pub artifact_bytes: u64,
    /// Bytes of revision files.
    pub revision_bytes: u64,
    /// Reads answered with an object.
    pub hits: u64,
    /// Reads of absent objects.
    pub misses: u64,
    /// Object bytes sent.
    pub bytes_served: u64,
}

/// One scope.
#[derive(Debug, Serialize)]
pub(crate) struct ScopeView {
    /// Its name.
    pub scope: String,
    /// Whether anyone may read it.
    pub public: bool,
    /// Revision files (all of them).
    pub revisions: u64,
    /// Artifacts.
    pub artifacts: u64,
    /// Bytes of artifacts.
    pub artifact_bytes: u64,
    /// Bytes of revision files.
    pub revision_bytes: u64,
    /// Newest object (Unix seconds).
    pub last_modified_unix: Option<u64>,
    /// Reads answered with an object since the server started.
    pub hits: u64,
    /// Reads of absent objects since the server started.
    pub misses: u64,
    /// Object bytes sent since the server started.
    pub bytes_served: u64,
    /// The newest revision files, newest first (at most 20).
    pub newest_revisions: Vec<RevisionView>,
}

/// One revision file.
#[derive(Debug, Serialize)]
pub(crate) struct RevisionView {
    /// The revision.
    pub rev: String,
    /// Object key.
    pub key: String,
    /// Platform part of the key, if any.
    pub platform: Option<String>,
    /// Toolchain part of the key, if any.
    pub toolchain: Option<String>,
    /// Upload time (Unix seconds).
    pub uploaded_unix: u64,
    /// Size of the revision file.
    pub file_bytes: u64,
    /// Distinct artifacts referenced (`null`: unreadable).
    pub artifacts: Option<u64>,
    /// Bytes of those artifacts (`null`: unreadable).
    pub bytes: Option<u64>,
    /// The key id that uploaded it (`null`: not recorded).
    pub uploader: Option<String>,
}

/// Traffic series.
#[derive(Debug, Serialize)]
pub(crate) struct TrafficView {
    /// 60 one-minute periods.
    pub last_hour: Series,
    /// 24 one-hour periods.
    pub last_day: Series,
}

/// Periods, oldest first, the last one ending now.
#[derive(Debug, Serialize)]
pub(crate) struct Series {
    /// Length of a period (seconds).
    pub period_secs: u64,
    /// Requests answered per period.
    pub requests: Vec<u64>,
    /// Response body bytes per period.
    pub bytes: Vec<u64>,
}

/// Whether `key` (or an anonymous viewer) may see `scope`.
fn visible(app: &App, key: Option<&KeyConfig>, scope: &str) -> bool {
    app.cfg.is_public(scope) || key.is_some_and(|k| k.allows(Access::Read, scope))
}

fn series(app: &App, now_min: u64, n: u64, per: u64) -> Series {
    let s = app.status.traffic.series(now_min, n, per);
    Series {
        period_secs: per * 60,
        requests: s.iter().map(|x| x.0).collect(),
        bytes: s.iter().map(|x| x.1).collect(),
    }
}

/// The status as `key` (or an anonymous viewer) may see it.
pub(crate) async fn build(app: &App, key: Option<&KeyConfig>) -> Status {
    let snap = app.status.scanner.get(app).await;
    let mut uploads = app.status.journal.uploads();
    // Key ids are shown to key holders only: an anonymous visitor learns no id to sign with.
    if key.is_none() {
        for u in &mut uploads {
            u.key_id = None;
        }
    }
    let uploader: HashMap<&str, Option<&str>> = uploads
        .iter()
        .rev()
        .map(|u| (u.key.as_str(), u.key_id.as_deref()))
        .collect();
    let mut totals = Totals::default();
    let mut scopes: Vec<ScopeView> = Vec::new();
    for (name, s) in &snap.scopes {
        if !visible(app, key, name) {
            continue;
        }
        let reads = app.status.traffic.scope(name);
        totals.scopes += 1;
        totals.revisions += s.revisions;
        totals.artifacts += s.artifacts;
        totals.artifact_bytes += s.artifact_bytes;
        totals.revision_bytes += s.revision_bytes;
        totals.hits += reads.hits;
        totals.misses += reads.misses;
        totals.bytes_served += reads.bytes;
        scopes.push(ScopeView {
            scope: name.clone(),
            public: app.cfg.is_public(name),
            revisions: s.revisions,
            artifacts: s.artifacts,
            artifact_bytes: s.artifact_bytes,
            revision_bytes: s.revision_bytes,
            last_modified_unix: s.last_modified.map(unix),
            hits: reads.hits,
            misses: reads.misses,
            bytes_served: reads.bytes,
            newest_revisions: s
                .newest
                .iter()
                .map(|r| RevisionView {
                    rev: r.rev.clone(),
                    key: r.key.clone(),
                    platform: r.platform.clone(),
                    toolchain: r.toolchain.clone(),
                    uploaded_unix: unix(r.modified),
                    file_bytes: r.file_bytes,
                    artifacts: r.artifacts,
                    bytes: r.bytes,
                    uploader: uploader
                        .get(r.key.as_str())
                        .copied()
                        .flatten()
                        .map(str::to_string),
                })
                .collect(),
        });
    }
    scopes.sort_by(|a, b| {
        b.last_modified_unix
            .cmp(&a.last_modified_unix)
            .then(a.scope.cmp(&b.scope))
    });
    scopes.truncate(MAX_SCOPES_SHOWN);
    let recent_uploads = uploads
        .into_iter()
        .filter(|u| visible(app, key, &u.scope))
        .take(MAX_RECENT)
        .collect();
    let recent_rejections = app
        .status
        .journal
        .rejections()
        .into_iter()
        .filter(|r| visible(app, key, &r.scope))
        .map(|mut r| {
            if key.is_none() {
                r.key_id = None;
            }
            r
        })
        .take(MAX_RECENT)
        .collect();
    let now_min = traffic::now_minute();
    Status {
        version: 1,
        generated_unix: now_unix(),
        viewer: Viewer {
            key_id: key.map(|k| k.id.clone()),
        },
        scan: ScanInfo {
            at_unix: unix(snap.at),
            duration_ms: snap.duration.as_millis() as u64,
            ttl_secs: scan::TTL.as_secs(),
            storage: match app.storage {
                crate::storage::Storage::Local(_) => "local",
                crate::storage::Storage::S3(_) => "s3",
            },
            error: snap.error.clone(),
        },
        totals,
        scopes,
        recent_uploads,
        recent_rejections,
        last_gc: app.status.journal.last_gc(),
        last_scrub: app.status.journal.last_scrub(),
        traffic: TrafficView {
            last_hour: series(app, now_min, 60, 1),
            last_day: series(app, now_min, 24, 60),
        },
    }
}

/// The status page's state, part of [`App`].
pub(crate) struct StatusState {
    /// Traffic counters.
    pub traffic: traffic::Traffic,
    /// Uploads, refusals, GC and scrub.
    pub journal: journal::Journal,
    /// The cached storage listing.
    pub scanner: scan::Scanner,
}

impl StatusState {
    /// The state for a server (or maintenance command) whose status files live in
    /// `<data>/.tarn-status` (in memory only without a data directory).
    pub(crate) fn new(data: Option<&std::path::Path>) -> StatusState {
        StatusState {
            traffic: traffic::Traffic::default(),
            journal: journal::Journal::open(data.map(|d| d.join(journal::DIR))),
            scanner: scan::Scanner::default(),
        }
    }
}
