//! Garbage collection and scrubbing.
//!
//! GC keeps, in every revision directory (a scope with its `pt/`/`tc/` parts), the newest
//! `keep_revs` revision files by modification time plus every one newer than `keep_days`;
//! deletes the rest; then deletes every artifact that no kept revision of its scope
//! references and that is older than the grace period. Revisions go first, so a run killed
//! half way never leaves a kept revision pointing at a deleted artifact; a rerun finishes
//! the job ("already gone" counts as deleted). Revisions written while GC runs are re-read
//! before artifacts are deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tarn_core::object_key::{
    is_revision_file, parse_artifact_file as artifact_hash, revision_scope,
};
use tarn_core::trust::SIGNATURE_SUFFIX;
use tarn_core::Hash;

use crate::storage::{Listed, ObjectBody};
use crate::App;

/// The outcome of a GC or scrub run, as the status journal records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRecord<T> {
    /// When it finished (Unix seconds).
    pub finished_unix: u64,
    /// How long it took (milliseconds).
    pub duration_ms: u64,
    /// `scheduled` (inside `tarn serve`) or `command` (`tarn serve gc` / `scrub`).
    pub trigger: String,
    /// The error that stopped it, if any.
    pub error: Option<String>,
    /// What it did (absent when it failed).
    pub report: Option<T>,
}

/// A scrub's result as remembered: counts only (names could reveal private scopes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ScrubSummary {
    /// Artifacts rehashed.
    pub artifacts: u64,
    /// Bytes rehashed.
    pub bytes: u64,
    /// Corrupt artifacts.
    pub corrupt: u64,
    /// Misnamed objects.
    pub misnamed: u64,
    /// Revision files that do not parse.
    pub bad_revisions: u64,
    /// Temp leftovers.
    pub temp_leftovers: u64,
    /// Whether problems were removed.
    pub repaired: bool,
}

impl From<&ScrubReport> for ScrubSummary {
    fn from(r: &ScrubReport) -> Self {
        ScrubSummary {
            artifacts: r.artifacts,
            bytes: r.bytes,
            corrupt: r.corrupt.len() as u64,
            misnamed: r.misnamed.len() as u64,
            bad_revisions: r.bad_revisions.len() as u64,
            temp_leftovers: r.temp_leftovers.len() as u64,
            repaired: r.repaired,
        }
    }
}

/// GC parameters.
#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    /// Newest revisions kept per revision directory.
    pub keep_revs: usize,
    /// Revisions newer than this are kept.
    pub keep_days: u64,
    /// Artifacts newer than this are kept.
    pub grace_hours: u64,
    /// Only report.
    pub dry_run: bool,
}

/// What GC did (or would do).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct GcReport {
    /// Revision files seen.
    pub revisions: u64,
    /// Revision files deleted (or to delete).
    pub revisions_deleted: u64,
    /// Their bytes.
    pub revision_bytes_deleted: u64,
    /// Artifacts seen.
    pub artifacts: u64,
    /// Artifacts deleted (or to delete).
    pub artifacts_deleted: u64,
    /// Their bytes.
    pub artifact_bytes_deleted: u64,
    /// Unreferenced artifacts kept because they are younger than the grace period.
    pub artifacts_in_grace: u64,
    /// Signature objects deleted (or to delete): those of deleted revisions, and those with
    /// no revision beside them that are older than the grace period.
    #[serde(default)]
    pub signatures_deleted: u64,
    /// Kept revisions that could not be read (their scopes' artifacts were all kept).
    pub unreadable_revisions: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// The whole object `key`, read into memory up to `limit` bytes; `Ok(Some(None))` when it is
/// longer (the rest is not read).
pub(crate) async fn read_all(
    app: &App,
    key: &str,
    limit: u64,
) -> std::io::Result<Option<Option<Vec<u8>>>> {
    use crate::storage::s3::read_capped;
    use tarn_remote::Capped;
    let Some(obj) = app.storage.get(key).await? else {
        return Ok(None);
    };
    let bytes = match obj.body {
        ObjectBody::Bytes(b) => b.to_vec(),
        ObjectBody::File(f) => {
            let mut v = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(
                &mut tokio::io::AsyncReadExt::take(f, limit + 1),
                &mut v,
            )
            .await?;
            v
        }
        ObjectBody::Remote(r) => match read_capped(r, limit).await? {
            Capped::Whole(v) => v,
            Capped::Cut(_) => return Ok(Some(None)),
        },
    };
    Ok(Some((bytes.len() as u64 <= limit).then_some(bytes)))
}

/// Hashes the object `key` as it is read, in chunks, expecting exactly `len` bytes:
/// `Ok(Some(Some(hash)))`, `Ok(Some(None))` when it is shorter or longer (nothing past
/// `len` is read), `Ok(None)` when it is gone. Memory stays at one chunk whatever the size.
pub(crate) async fn hash_object(
    app: &App,
    key: &str,
    len: u64,
) -> std::io::Result<Option<Option<Hash>>> {
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    let Some(obj) = app.storage.get(key).await? else {
        return Ok(None);
    };
    let mut hasher = tarn_core::StreamingHasher::new(len);
    // Feeds `chunk`; false once the object has gone past `len`.
    let mut feed = |chunk: &[u8]| {
        if hasher.bytes_seen() + chunk.len() as u64 > len {
            return false;
        }
        hasher.update(chunk);
        true
    };
    let complete = match obj.body {
        ObjectBody::Bytes(b) => feed(&b),
        ObjectBody::File(mut f) => {
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    break true;
                }
                if !feed(&buf[..n]) {
                    break false;
                }
            }
        }
        ObjectBody::Remote(mut body) => {
            if body.content_length().is_some_and(|n| n != len) {
                false
            } else {
                loop {
                    match body.next().await.transpose()? {
                        None => break true,
                        Some(chunk) if !feed(&chunk) => break false,
                        Some(_) => {}
                    }
                }
            }
        }
    };
    Ok(Some(if complete { hasher.finish() } else { None }))
}

fn split(key: &str) -> Vec<String> {
    key.split('/').map(str::to_string).collect()
}

/// Adds the artifacts that `key` (a revision) references to `refs`; false if unreadable.
async fn collect_refs(
    app: &App,
    key: &str,
    refs: &mut HashSet<(String, Hash)>,
    protected: &mut HashSet<String>,
) -> std::io::Result<bool> {
    let comps = split(key);
    let scope = revision_scope(&comps[1..comps.len() - 1]).join("/");
    let Some(bytes) = read_all(app, key, app.cfg.max_revision_bytes).await? else {
        return Ok(true); // deleted meanwhile
    };
    // A revision file larger than the server accepts counts as unreadable.
    match bytes
        .as_deref()
        .map(crate::validate::check_mappings)
        .unwrap_or_else(|| Err(String::new()))
    {
        Ok(hashes) => {
            for h in hashes {
                refs.insert((scope.clone(), h));
            }
            Ok(true)
        }
        Err(_) => {
            protected.insert(scope);
            Ok(false)
        }
    }
}

/// Runs garbage collection with the configured `[gc]` policy every `every`, for as long as
/// the runtime lives; each run's result goes to the log.
pub(crate) fn spawn_periodic(app: crate::AppRef, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let policy = GcPolicy {
                keep_revs: app.cfg.gc.keep_revs,
                keep_days: app.cfg.gc.keep_days,
                grace_hours: app.cfg.gc.grace_hours,
                dry_run: false,
            };
            match run_gc(&app, policy).await {
                Ok(r) => tracing::info!(
                    revisions_deleted = r.revisions_deleted,
                    artifacts_deleted = r.artifacts_deleted,
                    bytes = r.artifact_bytes_deleted + r.revision_bytes_deleted,
                    "scheduled gc"
                ),
                Err(e) => tracing::warn!("scheduled gc failed: {e}"),
            }
        }
    });
}

/// The status page's record of a GC or scrub run that began at `started` and has just ended
/// with `result`; `summary` makes what is kept of a successful run's report.
fn run_record<'a, R, S>(
    app: &App,
    started: Instant,
    result: &'a std::io::Result<R>,
    summary: impl FnOnce(&'a R) -> S,
) -> RunRecord<S> {
    let trigger = if app.maintenance {
        "command" // `tarn serve gc` / `tarn serve scrub`
    } else {
        "scheduled"
    };
    RunRecord {
        finished_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        duration_ms: started.elapsed().as_millis() as u64,
        trigger: trigger.to_string(),
        error: result.as_ref().err().map(|e| e.to_string()),
        report: result.as_ref().ok().map(summary),
    }
}

/// Runs garbage collection. A real run (not a dry run) is recorded for the status page in
/// `<data>/.tarn-status/gc.json`, failed or not.
pub async fn run_gc(app: &App, policy: GcPolicy) -> std::io::Result<GcReport> {
    let started = Instant::now();
    let r = gc_inner(app, policy).await;
    if !policy.dry_run {
        app.status.scanner.changed();
        let run = run_record(app, started, &r, GcReport::clone);
        app.status.journal.gc_done(run);
    }
    r
}

async fn gc_inner(app: &App, policy: GcPolicy) -> std::io::Result<GcReport> {
    let started = SystemTime::now();
    let mut report = GcReport {
        dry_run: policy.dry_run,
        ..GcReport::default()
    };
    let rev_prefix = format!("{}/", app.cfg.revision_prefix);
    let art_prefix = format!("{}/", app.cfg.artifact_prefix);
    let revisions = app.storage.list(&rev_prefix).await?;
    report.revisions = revisions.len() as u64;
    let mut by_dir: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    let mut signatures: Vec<Listed> = Vec::new();
    let revision_keys: HashSet<String> = revisions
        .iter()
        .filter(|r| is_revision_file(&r.key))
        .map(|r| r.key.clone())
        .collect();
    for r in revisions {
        if r.key.ends_with(SIGNATURE_SUFFIX) {
            signatures.push(r);
            continue;
        }
        if !is_revision_file(&r.key) {
            continue;
        }
        let dir = r
            .key
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        by_dir.entry(dir).or_default().push(r);
    }
    let keep_after = started
        .checked_sub(Duration::from_secs(policy.keep_days * 86_400))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for (_, mut revs) in by_dir {
        revs.sort_by(|a, b| {
            b.meta
                .modified
                .cmp(&a.meta.modified)
                .then(a.key.cmp(&b.key))
        });
        for (i, r) in revs.into_iter().enumerate() {
            if i < policy.keep_revs || r.meta.modified >= keep_after {
                keep.push(r);
            } else {
                delete.push(r);
            }
        }
    }
    let mut refs = HashSet::new();
    let mut protected = HashSet::new();
    for r in &keep {
        if !collect_refs(app, &r.key, &mut refs, &mut protected).await? {
            report.unreadable_revisions += 1;
        }
    }
    let grace_after = started
        .checked_sub(Duration::from_secs(policy.grace_hours * 3600))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for r in &delete {
        report.revisions_deleted += 1;
        report.revision_bytes_deleted += r.meta.len;
        if !policy.dry_run {
            app.storage.delete(&r.key).await?;
            app.metrics.removed(r.meta.len);
            app.metrics
                .gc_deleted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    // A signature goes with its revision: deleted after it (so a revision is never seen
    // without its signature), and one left alone by a crash, or never followed by its
    // revision, once it is older than the grace period (an upload in progress stores the
    // signature first).
    let deleted: HashSet<&str> = delete.iter().map(|r| r.key.as_str()).collect();
    for sig in &signatures {
        let revision = sig.key.strip_suffix(SIGNATURE_SUFFIX).unwrap_or(&sig.key);
        let orphan = !revision_keys.contains(revision) && sig.meta.modified < grace_after;
        if !(deleted.contains(revision) || orphan) {
            continue;
        }
        report.signatures_deleted += 1;
        if !policy.dry_run && app.storage.delete(&sig.key).await? {
            app.metrics.removed(sig.meta.len);
        }
    }
    let artifacts = app.storage.list(&art_prefix).await?;
    report.artifacts = artifacts.len() as u64;
    // Revisions uploaded while GC ran protect their artifacts too.
    if !policy.dry_run {
        let known: HashSet<&str> = keep.iter().map(|r| r.key.as_str()).collect();
        let mut fresh: HashMap<String, ()> = HashMap::new();
        for r in app.storage.list(&rev_prefix).await? {
            if !known.contains(r.key.as_str())
                && r.meta.modified >= started - Duration::from_secs(5)
            {
                fresh.insert(r.key, ());
            }
        }
        for k in fresh.keys() {
            collect_refs(app, k, &mut refs, &mut protected).await?;
        }
    }
    for a in artifacts {
        let comps = split(&a.key);
        if comps.len() < 3 {
            continue;
        }
        let Some(hash) = artifact_hash(&comps[comps.len() - 1]) else {
            continue;
        };
        let scope = comps[1..comps.len() - 1].join("/");
        if protected.contains(&scope) || refs.contains(&(scope, hash)) {
            continue;
        }
        if a.meta.modified >= grace_after {
            report.artifacts_in_grace += 1;
            continue;
        }
        report.artifacts_deleted += 1;
        report.artifact_bytes_deleted += a.meta.len;
        if !policy.dry_run {
            app.cache.remove(&a.key);
            app.listings.invalidate();
            if app.storage.delete(&a.key).await? {
                app.metrics.removed(a.meta.len);
            }
            app.metrics
                .gc_deleted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(report)
}

/// What a scrub found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScrubReport {
    /// Artifacts rehashed.
    pub artifacts: u64,
    /// Bytes rehashed.
    pub bytes: u64,
    /// Artifacts whose content does not hash to their name.
    pub corrupt: Vec<String>,
    /// Objects under the artifact prefix whose names are not `<hash>.art`.
    pub misnamed: Vec<String>,
    /// Revision files that do not parse.
    pub bad_revisions: Vec<String>,
    /// Temp files left behind by a killed server (local storage only).
    pub temp_leftovers: Vec<String>,
    /// Whether problems were removed.
    pub repaired: bool,
}

impl ScrubReport {
    /// Whether everything is fine.
    pub fn clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.misnamed.is_empty()
            && self.bad_revisions.is_empty()
            && self.temp_leftovers.is_empty()
    }
}

/// Rehashes every artifact, parses every revision, and looks for temp leftovers. With
/// `repair`, corrupt artifacts and leftovers are deleted. The result (counts only) is
/// recorded for the status page in `<data>/.tarn-status/scrub.json`.
pub async fn scrub(app: &App, repair: bool) -> std::io::Result<ScrubReport> {
    let started = Instant::now();
    let r = scrub_inner(app, repair).await;
    if repair {
        app.status.scanner.changed();
    }
    let run = run_record(app, started, &r, ScrubSummary::from);
    app.status.journal.scrub_done(run);
    r
}

async fn scrub_inner(app: &App, repair: bool) -> std::io::Result<ScrubReport> {
    let mut report = ScrubReport {
        repaired: repair,
        ..ScrubReport::default()
    };
    for a in app
        .storage
        .list(&format!("{}/", app.cfg.artifact_prefix))
        .await?
    {
        let name = a.key.rsplit('/').next().unwrap_or("");
        let Some(hash) = artifact_hash(name) else {
            report.misnamed.push(a.key);
            continue;
        };
        // Read no further than the listed size: a longer body is not this artifact, and
        // one listed larger than the server accepts is corrupt unread.
        let hashed = if a.meta.len > app.cfg.max_artifact_bytes {
            None
        } else {
            match hash_object(app, &a.key, a.meta.len).await? {
                Some(h) => h,
                None => continue,
            }
        };
        report.artifacts += 1;
        report.bytes += a.meta.len;
        if hashed != Some(hash) {
            if repair {
                app.cache.remove(&a.key);
                app.listings.invalidate();
                app.storage.delete(&a.key).await?;
            }
            report.corrupt.push(a.key);
        }
    }
    for r in app
        .storage
        .list(&format!("{}/", app.cfg.revision_prefix))
        .await?
    {
        if let Some(bytes) = read_all(app, &r.key, app.cfg.max_revision_bytes).await? {
            if bytes.is_none_or(|b| crate::validate::check_mappings(&b).is_err()) {
                report.bad_revisions.push(r.key);
            }
        }
    }
    if let crate::storage::Storage::Local(l) = &app.storage {
        let l_root = l.root().to_path_buf();
        for p in l.temp_leftovers()? {
            if repair {
                let _ = std::fs::remove_file(&p);
            }
            report.temp_leftovers.push(
                p.strip_prefix(&l_root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    Ok(report)
}
