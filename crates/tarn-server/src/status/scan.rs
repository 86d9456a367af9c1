//! What storage holds, per scope, for the status page: one listing of the artifact and
//! revision prefixes, cached for a few seconds and shared by every viewer, so a client
//! reloading the page cannot make the server walk its storage on every request. Only the
//! newest revision files of each scope are read (to count their artifacts), and what was
//! read is remembered for as long as the file is unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tarn_core::object_key::{is_revision_file, parse_artifact_file, revision_scope};
use tarn_core::Hash;

use crate::App;

/// Revision files listed (and read) per scope; the totals count all of them.
pub(crate) const REVISIONS_PER_SCOPE: usize = 20;
/// How long a scan is reused.
pub(crate) const TTL: Duration = Duration::from_secs(10);
/// After a change (an upload, a deletion, GC) a scan is redone once it is this old.
const MIN_AGE: Duration = Duration::from_secs(1);

/// One revision file.
#[derive(Debug, Clone)]
pub(crate) struct RevScan {
    /// Object key.
    pub key: String,
    /// Revision (file name without `.jsonl`).
    pub rev: String,
    /// `pt/<platform>` part, if any.
    pub platform: Option<String>,
    /// `tc/<toolchain>` part, if any.
    pub toolchain: Option<String>,
    /// Upload time.
    pub modified: SystemTime,
    /// Size of the file.
    pub file_bytes: u64,
    /// Distinct artifacts referenced (`None`: the file could not be read or parsed).
    pub artifacts: Option<u64>,
    /// Bytes of the referenced artifacts present in the scope.
    pub bytes: Option<u64>,
}

/// One scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeScan {
    /// Artifacts stored.
    pub artifacts: u64,
    /// Their bytes.
    pub artifact_bytes: u64,
    /// Revision files stored.
    pub revisions: u64,
    /// Their bytes.
    pub revision_bytes: u64,
    /// The newest [`REVISIONS_PER_SCOPE`] revision files, newest first.
    pub newest: Vec<RevScan>,
    /// The newest object's time.
    pub last_modified: Option<SystemTime>,
}

/// A scan of the whole storage.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When it was taken.
    pub at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Scopes by name.
    pub scopes: BTreeMap<String, ScopeScan>,
    /// The error that stopped it (the snapshot is then empty).
    pub error: Option<String>,
}

struct Cached {
    snapshot: Arc<Snapshot>,
    taken: Instant,
}

/// The shared, cached scan.
#[derive(Default)]
pub(crate) struct Scanner {
    state: tokio::sync::Mutex<(Option<Cached>, Memo)>,
    changed: AtomicBool,
}

/// Artifacts of revision files already read: key → (size, time, hashes).
type Memo = HashMap<String, (u64, SystemTime, Arc<Vec<Hash>>)>;

impl Scanner {
    /// Marks the cached scan as outdated (it is redone once it is [`MIN_AGE`] old).
    pub(crate) fn changed(&self) {
        self.changed.store(true, Relaxed);
    }

    /// A recent scan: the cached one, or a new one (one at a time; concurrent callers
    /// wait for it and share it).
    pub(crate) async fn get(&self, app: &App) -> Arc<Snapshot> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.0 {
            let age = c.taken.elapsed();
            if age < TTL && !(self.changed.load(Relaxed) && age >= MIN_AGE) {
                return c.snapshot.clone();
            }
        }
        self.changed.store(false, Relaxed);
        let started = Instant::now();
        let at = SystemTime::now();
        let snapshot = match scan(app, &mut st.1).await {
            Ok(scopes) => Snapshot {
                at,
                duration: started.elapsed(),
                scopes,
                error: None,
            },
            Err(e) => {
                tracing::warn!("status page: listing storage: {e}");
                Snapshot {
                    at,
                    duration: started.elapsed(),
                    scopes: BTreeMap::new(),
                    error: Some(e.to_string()),
                }
            }
        };
        let snapshot = Arc::new(snapshot);
        st.0 = Some(Cached {
            snapshot: snapshot.clone(),
            taken: Instant::now(),
        });
        snapshot
    }
}

async fn scan(app: &App, memo: &mut Memo) -> std::io::Result<BTreeMap<String, ScopeScan>> {
    let mut scopes: BTreeMap<String, ScopeScan> = BTreeMap::new();
    let mut sizes: HashMap<String, HashMap<Hash, u64>> = HashMap::new();
    let bump = |s: &mut ScopeScan, t: SystemTime| {
        if s.last_modified.is_none_or(|l| l < t) {
            s.last_modified = Some(t);
        }
    };
    for a in app
        .storage
        .list(&format!("{}/", app.cfg.artifact_prefix))
        .await?
    {
        let comps: Vec<&str> = a.key.split('/').collect();
        if comps.len() < 3 {
            continue;
        }
        let Some(hash) = parse_artifact_file(comps[comps.len() - 1]) else {
            continue;
        };
        let scope = comps[1..comps.len() - 1].join("/");
        let s = scopes.entry(scope.clone()).or_default();
        s.artifacts += 1;
        s.artifact_bytes += a.meta.len;
        bump(s, a.meta.modified);
        sizes.entry(scope).or_default().insert(hash, a.meta.len);
    }
    let mut revs: HashMap<String, Vec<RevScan>> = HashMap::new();
    for r in app
        .storage
        .list(&format!("{}/", app.cfg.revision_prefix))
        .await?
    {
        let comps: Vec<&str> = r.key.split('/').collect();
        let file = comps[comps.len() - 1];
        if comps.len() < 3 || !is_revision_file(file) {
            continue;
        }
        let inner = &comps[1..comps.len() - 1];
        let scope_comps = revision_scope(inner);
        let scope = scope_comps.join("/");
        let extra = &inner[scope_comps.len()..];
        let part = |name: &str| {
            extra
                .chunks(2)
                .find(|c| c.len() == 2 && c[0] == name)
                .map(|c| c[1].to_string())
        };
        let s = scopes.entry(scope.clone()).or_default();
        s.revisions += 1;
        s.revision_bytes += r.meta.len;
        bump(s, r.meta.modified);
        revs.entry(scope).or_default().push(RevScan {
            rev: file.strip_suffix(".jsonl").unwrap_or(file).to_string(),
            platform: part("pt"),
            toolchain: part("tc"),
            modified: r.meta.modified,
            file_bytes: r.meta.len,
            artifacts: None,
            bytes: None,
            key: r.key,
        });
    }
    let mut kept: Memo = HashMap::new();
    for (scope, mut list) in revs {
        list.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.key.cmp(&a.key)));
        list.truncate(REVISIONS_PER_SCOPE);
        let empty = HashMap::new();
        let present = sizes.get(&scope).unwrap_or(&empty);
        for r in &mut list {
            let hashes = match memo.remove(&r.key) {
                Some((len, t, h)) if len == r.file_bytes && t == r.modified => Some(h),
                _ => read_hashes(app, &r.key, r.file_bytes).await,
            };
            if let Some(h) = hashes {
                r.artifacts = Some(h.len() as u64);
                r.bytes = Some(h.iter().filter_map(|h| present.get(h)).sum());
                kept.insert(r.key.clone(), (r.file_bytes, r.modified, h));
            }
        }
        if let Some(s) = scopes.get_mut(&scope) {
            s.newest = list;
        }
    }
    *memo = kept;
    Ok(scopes)
}

/// The distinct artifacts a revision file references; `None` when it cannot be read or
/// does not parse (it is then shown without counts).
async fn read_hashes(app: &App, key: &str, len: u64) -> Option<Arc<Vec<Hash>>> {
    if len > app.cfg.max_revision_bytes {
        return None;
    }
    let _share = app.budget.signed_share(len).await;
    // No further than the listed size: that is what the parse share was reserved for.
    let bytes = match crate::gc::read_all(app, key, len).await {
        Ok(Some(Some(b))) => b,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!("status page: reading {key}: {e}");
            return None;
        }
    };
    let mut hashes = crate::validate::check_mappings(&bytes).ok()?;
    hashes.sort_unstable();
    hashes.dedup();
    Some(Arc::new(hashes))
}
