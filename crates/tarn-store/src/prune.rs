//! `prune`: shrink a cache to a size or an age, least recently used first, without ever
//! leaving it inconsistent.
//!
//! The rules (docs/local-cache.md, "Safety rules"):
//!
//! * The units of eviction are `outputs/` entries, `revisions/` files and artifacts that no
//!   entry names. An entry counts as used when it, or any artifact it names, was used.
//! * Nothing used within the grace period is removed, nor anything a kept revision needs (its
//!   mapping file, the entries it wrote, the artifacts they name). File times are compared
//!   to the nanosecond with the prune's start read from the clock the kernel stamps files
//!   with ([`start_clock`]), so a use after the start always counts as within the period.
//! * An artifact is removed only when every entry naming it is removed, and only after those
//!   entries are gone: all entry removals happen before the first artifact removal, so a prune
//!   killed at any point leaves no entry naming a missing artifact.
//! * Just before artifacts are removed, entries written or read since the inventory (by Lake,
//!   which does not take tarn's lock) are read again, and what they name is kept, as is every
//!   artifact whose access or modification time moved since. "Since the inventory" means the
//!   file's times differ from those the inventory saw (an exact comparison of the kernel's
//!   own stamps, no clock involved): a read that ended before the inventory looked is a use
//!   before the prune, judged by the grace period like any other.
//! * The caller holds the cache lock exclusively ([`crate::CacheLock`]).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tarn_core::Hash;

use crate::cache::Cache;
use crate::error::StoreError;
use crate::inventory::{
    check_is_cache, entry_artifacts, take_inventory, unix_nanos, FileStamp, Inventory, UnknownFile,
};
use crate::local_file::read_without_touching;
use crate::mapfile::{mappings_limit, parse_mappings};
use crate::open_dir::OpenDir;
use crate::parallel::{default_threads, par_map};
use crate::usage::retain_usage;
use crate::verify::Problem;

/// The default grace period: nothing used within the last hour is removed.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// A package revision whose artifacts must stay: `revisions/<scope>/<rev>.jsonl`, the
/// `outputs/<scope>/` entries of its inputs and the artifacts they name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeptRevision {
    /// The package's local scope (its name).
    pub scope: String,
    /// The git revision.
    pub rev: String,
}

/// What to prune to.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Remove least recently used units until the cache holds at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove every unit not used for this long.
    pub max_age: Option<Duration>,
    /// Nothing used within this period is removed.
    pub grace: Duration,
    /// Decide and report, remove nothing.
    pub dry_run: bool,
    /// Revisions whose artifacts stay, whatever their age.
    pub keep: Vec<KeptRevision>,
}

/// Counts and bytes of a set of cache files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// `outputs/` entries.
    pub entries: u64,
    /// Artifacts.
    pub artifacts: u64,
    /// `revisions/` files.
    pub revisions: u64,
    /// Their bytes (apparent sizes).
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, kind: Kind, bytes: u64) {
        match kind {
            Kind::Entry => self.entries += 1,
            Kind::Artifact => self.artifacts += 1,
            Kind::Revision => self.revisions += 1,
        }
        self.bytes += bytes;
    }
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Whether nothing was removed on purpose.
    pub dry_run: bool,
    /// What was removed.
    pub removed: Tally,
    /// What remains (Lake's files only; unknown files are listed apart).
    pub remaining: Tally,
    /// The last use of the least recently used file that remains.
    pub oldest_kept: Option<SystemTime>,
    /// What the kept revisions hold (it all remains).
    pub kept: Tally,
    /// Kept revisions without a mapping file in `revisions/` (nothing could be kept for them).
    pub kept_missing: Vec<KeptRevision>,
    /// What remains only because it was used within the grace period.
    pub in_grace: Tally,
    /// The size asked for, if any.
    pub max_size: Option<u64>,
    /// Files that are not Lake's: left alone.
    pub unknown: Vec<UnknownFile>,
    /// Temp files of writers, skipped.
    pub temp_files: u64,
    /// What could not be read or removed.
    pub problems: Vec<Problem>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl PruneReport {
    /// Whether what the kept revisions hold is alone larger than `max_size`.
    pub fn kept_exceeds_max_size(&self) -> bool {
        self.max_size.is_some_and(|m| self.kept.bytes > m)
    }

    /// Whether the cache ends at most at `max_size` (always true without one).
    pub fn size_reached(&self) -> bool {
        self.max_size.is_none_or(|m| self.remaining.bytes <= m)
    }
}

/// Ordered so that, at equal last use, entries go before the artifacts they free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Entry,
    Artifact,
    Revision,
}

/// The plan: which files go.
struct Plan {
    entries: Vec<bool>,
    artifacts: Vec<bool>,
    revisions: Vec<bool>,
}

/// What the kept revisions pin, as flags over the inventory.
struct Pinned {
    entries: Vec<bool>,
    artifacts: Vec<bool>,
    revisions: Vec<bool>,
    missing: Vec<KeptRevision>,
}

fn pin(
    cache: &Cache,
    inv: &Inventory,
    keep: &[KeptRevision],
    problems: &mut Vec<Problem>,
) -> Pinned {
    let mut pinned = Pinned {
        entries: vec![false; inv.entries.len()],
        artifacts: vec![false; inv.artifacts.len()],
        revisions: vec![false; inv.revisions.len()],
        missing: Vec::new(),
    };
    let index = inv.artifact_index();
    let mut inputs: HashSet<(&str, Hash)> = HashSet::new();
    let mut revs: HashSet<(&str, &str)> = HashSet::new();
    for k in keep {
        let path = cache.revision_path(&k.scope, &k.rev);
        // Reading a kept revision is not a use of it: its access time stays.
        let loaded = match read_without_touching(&path, mappings_limit().bytes)
            .map_err(|e| StoreError::io(&path, e))
            .and_then(|bytes| parse_mappings(&path, bytes))
        {
            Ok(l) => l,
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                pinned.missing.push(k.clone());
                continue;
            }
            Err(e) => {
                problems.push(Problem {
                    path,
                    message: format!("{e} (a kept revision: its artifacts may not all be kept)"),
                });
                continue;
            }
        };
        revs.insert((&k.scope, &k.rev));
        for input in loaded.file.entries.keys() {
            inputs.insert((&k.scope, *input));
        }
        let mut names = std::collections::BTreeSet::new();
        for value in loaded.file.entries.values() {
            // An entry that names no artifacts pins nothing; Lake warns about it.
            let _ = tarn_core::collect_artifacts(value, &mut names);
        }
        for n in names {
            if let Some(&i) = index.get(n.file_name().as_str()) {
                pinned.artifacts[i as usize] = true;
            }
        }
    }
    for (i, e) in inv.entries.iter().enumerate() {
        if inputs.contains(&(e.scope.as_str(), e.input)) {
            pinned.entries[i] = true;
            for &a in &e.refs {
                pinned.artifacts[a as usize] = true;
            }
        }
    }
    for (i, r) in inv.revisions.iter().enumerate() {
        pinned.revisions[i] = revs.contains(&(r.scope.as_str(), r.rev.as_str()));
    }
    pinned
}

/// The first instant (nanoseconds since the Unix epoch) of the period `before` a prune that
/// started at `start`.
fn cut(start: u64, before: Duration) -> u64 {
    start.saturating_sub(u64::try_from(before.as_nanos()).unwrap_or(u64::MAX))
}

/// Decides what goes: first everything older than `max_age`, then least recently used
/// first until the size fits. `start`: the prune's start ([`start_clock`]), in nanoseconds.
/// A unit last used at or after the grace cut stays.
fn plan(inv: &Inventory, pinned: &Pinned, opts: &PruneOptions, start: u64) -> Plan {
    let grace_cut = cut(start, opts.grace);
    let age_cut = opts.max_age.map(|a| cut(start, a));
    let mut refcount = vec![0u32; inv.artifacts.len()];
    for e in &inv.entries {
        for &a in &e.refs {
            refcount[a as usize] += 1;
        }
    }
    // Candidates with their last use, least recently used first.
    let mut units: Vec<(u64, Kind, usize)> = Vec::new();
    for (i, e) in inv.entries.iter().enumerate() {
        if !pinned.entries[i] {
            units.push((e.used(&inv.artifacts), Kind::Entry, i));
        }
    }
    for (i, a) in inv.artifacts.iter().enumerate() {
        if refcount[i] == 0 && !pinned.artifacts[i] {
            units.push((a.used, Kind::Artifact, i));
        }
    }
    for (i, r) in inv.revisions.iter().enumerate() {
        if !pinned.revisions[i] {
            units.push((r.used, Kind::Revision, i));
        }
    }
    units.sort_unstable();

    let mut total: u64 = inv.artifacts.iter().map(|a| a.size).sum::<u64>()
        + inv.entries.iter().map(|e| e.size).sum::<u64>()
        + inv.revisions.iter().map(|r| r.size).sum::<u64>();
    let mut p = Plan {
        entries: vec![false; inv.entries.len()],
        artifacts: vec![false; inv.artifacts.len()],
        revisions: vec![false; inv.revisions.len()],
    };
    let mut evict = |kind: Kind, i: usize, p: &mut Plan, total: &mut u64| match kind {
        Kind::Entry => {
            if p.entries[i] {
                return;
            }
            p.entries[i] = true;
            *total -= inv.entries[i].size;
            for &a in &inv.entries[i].refs {
                let a = a as usize;
                refcount[a] -= 1;
                if refcount[a] == 0
                    && !pinned.artifacts[a]
                    && !p.artifacts[a]
                    && inv.artifacts[a].used < grace_cut
                {
                    p.artifacts[a] = true;
                    *total -= inv.artifacts[a].size;
                }
            }
        }
        Kind::Artifact => {
            if !p.artifacts[i] {
                p.artifacts[i] = true;
                *total -= inv.artifacts[i].size;
            }
        }
        Kind::Revision => {
            if !p.revisions[i] {
                p.revisions[i] = true;
                *total -= inv.revisions[i].size;
            }
        }
    };
    if let Some(cut) = age_cut {
        for &(used, kind, i) in &units {
            if used > cut || used >= grace_cut {
                break;
            }
            evict(kind, i, &mut p, &mut total);
        }
    }
    if let Some(max) = opts.max_size {
        for &(used, kind, i) in &units {
            if total <= max || used >= grace_cut {
                break;
            }
            evict(kind, i, &mut p, &mut total);
        }
    }
    p
}

/// Threads for removing files: a removal waits on the filesystem (its journal, the disk) far
/// longer than it uses a core, so more threads than cores keep the disk busier.
fn removal_threads() -> usize {
    (default_threads() * 4).clamp(4, 16)
}

/// Removes `paths` on several threads ([`removal_threads`]); returns for each whether it is gone (a file already gone
/// counts as removed), and adds a problem for each that is not.
fn remove_all(paths: &[&Path], problems: &mut Vec<Problem>) -> Vec<bool> {
    let results = par_map(paths, removal_threads(), |p| match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    });
    results
        .into_iter()
        .zip(paths)
        .map(|(r, p)| match r {
            Ok(()) => true,
            Err(e) => {
                problems.push(Problem {
                    path: p.to_path_buf(),
                    message: format!("could not remove: {e}"),
                });
                false
            }
        })
        .collect()
}

/// Removes the artifacts `which` (indices into the inventory) through one descriptor of
/// `artifacts/`, on several threads ([`removal_threads`]); returns for each whether it is gone. Each is looked at just
/// before its removal and stays when its times moved since the inventory: a build read or
/// wrote it meanwhile. A file already gone counts as removed.
fn remove_unused_artifacts(
    cache: &Cache,
    inv: &Inventory,
    which: &[usize],
    problems: &mut Vec<Problem>,
) -> Vec<bool> {
    if which.is_empty() {
        return Vec::new();
    }
    let path = cache.artifacts_dir();
    let dir = match OpenDir::open(&path) {
        Ok(d) => d,
        Err(e) => {
            problems.push(Problem {
                path,
                message: format!("could not remove artifacts: {e}"),
            });
            return vec![false; which.len()];
        }
    };
    let results = par_map(which, removal_threads(), |&i| {
        let a = &inv.artifacts[i];
        match dir.stamp(&a.file_name) {
            Ok(stamp) if stamp != a.stamp => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            _ => {}
        }
        match dir.remove_file(&a.file_name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    });
    results
        .into_iter()
        .zip(which)
        .map(|(r, &i)| match r {
            Ok(gone) => gone,
            Err(e) => {
                problems.push(Problem {
                    path: path.join(&inv.artifacts[i].file_name),
                    message: format!("could not remove: {e}"),
                });
                false
            }
        })
        .collect()
}

/// Removes the saved signature (`<rev>.jsonl.sig`, docs/trust.md) of every revision file
/// that was removed, after it: a signature never outlives its revision, and a revision is
/// never left without its signature.
fn remove_signatures_of(inv: &Inventory, removed: &[bool], problems: &mut Vec<Problem>) {
    let sigs: Vec<PathBuf> = inv
        .revisions
        .iter()
        .zip(removed)
        .filter(|(_, &gone)| gone)
        .map(|(r, _)| {
            let mut p = r.path.clone().into_os_string();
            p.push(tarn_core::trust::SIGNATURE_SUFFIX);
            PathBuf::from(p)
        })
        .collect();
    let paths: Vec<&Path> = sigs.iter().map(PathBuf::as_path).collect();
    remove_all(&paths, problems);
}

/// The prune's start as the kernel's file-time clock reads it. Linux stamps access and
/// modification times from its coarse clock (a tick behind the precise one, or later with
/// multigrain stamps), so a file used after this instant never carries an earlier time;
/// the precise clock could be ahead of such a stamp by a tick.
#[cfg(target_os = "linux")]
pub(crate) fn start_clock() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    match (r, u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        (0, Ok(s), Ok(n)) => UNIX_EPOCH + Duration::new(s, n),
        _ => SystemTime::now() - COARSE_SLACK,
    }
}

/// Elsewhere: the precise clock, less a generous tick.
#[cfg(not(target_os = "linux"))]
pub(crate) fn start_clock() -> SystemTime {
    SystemTime::now() - COARSE_SLACK
}

/// How far a coarse file-time clock may lag the precise one, where it cannot be read.
const COARSE_SLACK: Duration = Duration::from_millis(20);

/// Artifact file names named by entries written or read since the inventory (an entry it
/// did not see, or one whose times moved): what a build wrote or read while the prune was
/// deciding.
fn named_by_recent_entries(cache: &Cache, inv: &Inventory) -> HashSet<String> {
    let seen: std::collections::HashMap<&Path, FileStamp> = inv
        .entries
        .iter()
        .map(|e| (e.path.as_path(), e.stamp))
        .collect();
    let mut listed: Vec<fs::DirEntry> = Vec::new();
    if let Ok(scopes) = fs::read_dir(cache.root().join("outputs")) {
        for scope in scopes.flatten() {
            if let Ok(files) = fs::read_dir(scope.path()) {
                listed.extend(files.flatten());
            }
        }
    }
    // One `fstatat` per entry, relative to its directory, on every core.
    let moved = par_map(&listed, default_threads(), |f| {
        let path = f.path();
        let moved = f
            .metadata()
            .is_ok_and(|m| seen.get(path.as_path()) != Some(&FileStamp::of(&m)));
        moved.then_some(path)
    });
    let recent: Vec<PathBuf> = moved.into_iter().flatten().collect();
    par_map(&recent, default_threads(), |p| entry_artifacts(p))
        .into_iter()
        .flatten()
        .flatten()
        .map(|n| n.file_name())
        .collect()
}

/// Prunes the cache (the caller holds the cache lock exclusively). A directory that is not a
/// Lake cache is refused; files that are not Lake's are left alone and listed.
pub fn prune(cache: &Cache, opts: &PruneOptions) -> Result<PruneReport, StoreError> {
    let start = Instant::now();
    check_is_cache(cache)?;
    let start_ns = unix_nanos(start_clock());
    let inv = take_inventory(cache);
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        max_size: opts.max_size,
        temp_files: inv.temp_files,
        unknown: inv.unknown.clone(),
        problems: inv.problems.clone(),
        ..PruneReport::default()
    };
    let pinned = pin(cache, &inv, &opts.keep, &mut report.problems);
    report.kept_missing = pinned.missing.clone();
    let mut plan = plan(&inv, &pinned, opts, start_ns);

    if !opts.dry_run {
        // 1. Entries and revision files.
        let entry_idx: Vec<usize> = (0..inv.entries.len())
            .filter(|&i| plan.entries[i])
            .collect();
        let paths: Vec<&Path> = entry_idx
            .iter()
            .map(|&i| inv.entries[i].path.as_path())
            .collect();
        let gone = remove_all(&paths, &mut report.problems);
        for (&i, ok) in entry_idx.iter().zip(gone) {
            if !ok {
                // The entry stays, so must everything it names.
                plan.entries[i] = false;
                for &a in &inv.entries[i].refs {
                    plan.artifacts[a as usize] = false;
                }
            }
        }
        let rev_idx: Vec<usize> = (0..inv.revisions.len())
            .filter(|&i| plan.revisions[i])
            .collect();
        let paths: Vec<&Path> = rev_idx
            .iter()
            .map(|&i| inv.revisions[i].path.as_path())
            .collect();
        for (&i, ok) in rev_idx.iter().zip(remove_all(&paths, &mut report.problems)) {
            plan.revisions[i] = ok;
        }
        remove_signatures_of(&inv, &plan.revisions, &mut report.problems);
        // 2. What entries written or read meanwhile name stays, and so does an artifact a
        //    build read or wrote meanwhile (its times differ from the inventory's).
        let recent = named_by_recent_entries(cache, &inv);
        for (i, a) in inv.artifacts.iter().enumerate() {
            if plan.artifacts[i] && recent.contains(&a.file_name) {
                plan.artifacts[i] = false;
            }
        }
        // 3. Artifacts, each looked at once more just before it goes.
        let art_idx: Vec<usize> = (0..inv.artifacts.len())
            .filter(|&i| plan.artifacts[i])
            .collect();
        let gone = remove_unused_artifacts(cache, &inv, &art_idx, &mut report.problems);
        for (&i, gone) in art_idx.iter().zip(gone) {
            plan.artifacts[i] = gone;
        }
        // The usage record keeps only artifacts that remain.
        let remaining: HashSet<&str> = (0..inv.artifacts.len())
            .filter(|&i| !plan.artifacts[i])
            .map(|i| inv.artifacts[i].file_name.as_str())
            .collect();
        if let Err(e) = retain_usage(cache, |k| remaining.contains(k)) {
            report.problems.push(Problem {
                path: e.path().to_path_buf(),
                message: format!("usage record not updated: {e}"),
            });
        }
    }

    // The tallies.
    let grace_cut = cut(start_ns, opts.grace);
    let mut oldest: Option<u64> = None;
    let mut count = |kind: Kind,
                     size: u64,
                     used: u64,
                     removed: bool,
                     pinned: bool,
                     report: &mut PruneReport| {
        if removed {
            report.removed.add(kind, size);
            return;
        }
        report.remaining.add(kind, size);
        if pinned {
            report.kept.add(kind, size);
        } else if used >= grace_cut {
            report.in_grace.add(kind, size);
        }
        oldest = Some(oldest.map_or(used, |o| o.min(used)));
    };
    for (i, e) in inv.entries.iter().enumerate() {
        count(
            Kind::Entry,
            e.size,
            e.used(&inv.artifacts),
            plan.entries[i],
            pinned.entries[i],
            &mut report,
        );
    }
    for (i, a) in inv.artifacts.iter().enumerate() {
        count(
            Kind::Artifact,
            a.size,
            a.used,
            plan.artifacts[i],
            pinned.artifacts[i],
            &mut report,
        );
    }
    for (i, r) in inv.revisions.iter().enumerate() {
        count(
            Kind::Revision,
            r.size,
            r.used,
            plan.revisions[i],
            pinned.revisions[i],
            &mut report,
        );
    }
    report.oldest_kept = oldest.map(|n| UNIX_EPOCH + Duration::from_nanos(n));
    report.elapsed = start.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use tarn_core::{ArtifactName, CacheOutput};

    const DAY: u64 = 86_400;

    fn set_age(path: &Path, age_secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(age_secs);
        File::open(path)
            .unwrap()
            .set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    }

    /// An artifact of `len` bytes derived from `seed`, last used `age` seconds ago.
    fn artifact(cache: &Cache, seed: u64, len: usize, age: u64) -> ArtifactName {
        let bytes: Vec<u8> = (0..len).map(|i| (seed as usize * 31 + i) as u8).collect();
        let name = ArtifactName::new(Hash::of_bytes(&bytes), "olean");
        let path = cache.artifact_path(&name);
        fs::create_dir_all(cache.artifacts_dir()).unwrap();
        fs::write(&path, &bytes).unwrap();
        set_age(&path, age);
        name
    }

    /// An `outputs/pkg/<input>.json` entry naming `names`, last touched `age` seconds ago.
    fn entry(cache: &Cache, input: u64, names: &[&ArtifactName], age: u64) -> PathBuf {
        let data = serde_json::Value::Array(
            names
                .iter()
                .map(|n| serde_json::Value::String(n.file_name()))
                .collect(),
        );
        let out = CacheOutput {
            data,
            service: None,
            scope: None,
        };
        cache.write_outputs("pkg", Hash(input), &out, true).unwrap();
        let path = cache.outputs_path("pkg", Hash(input));
        set_age(&path, age);
        path
    }

    fn opts() -> PruneOptions {
        PruneOptions {
            max_size: None,
            max_age: None,
            grace: DEFAULT_GRACE,
            dry_run: false,
            keep: Vec::new(),
        }
    }

    /// A prune to size 0 without a grace period: everything not kept goes.
    fn prune_everything(cache: &Cache) -> PruneReport {
        prune(
            cache,
            &PruneOptions {
                max_size: Some(0),
                grace: Duration::ZERO,
                ..opts()
            },
        )
        .unwrap()
    }

    /// Every entry left names only artifacts that exist.
    fn assert_consistent(cache: &Cache) {
        let inv = take_inventory(cache);
        for e in &inv.entries {
            for n in entry_artifacts(&e.path).unwrap() {
                assert!(
                    cache.has_artifact(&n),
                    "{} names missing {n}",
                    e.path.display()
                );
            }
        }
    }

    /// Ten entries, one 1000-byte artifact each, entry `i` last used `10 - i` days ago.
    fn ten_days(cache: &Cache) -> Vec<(PathBuf, ArtifactName)> {
        (0..10u64)
            .map(|i| {
                let a = artifact(cache, i, 1000, (10 - i) * DAY);
                (entry(cache, i, &[&a], (10 - i) * DAY), a)
            })
            .collect()
    }

    #[test]
    fn to_a_size_the_least_recently_used_go_first() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let items = ten_days(&cache);
        let entry_len = fs::metadata(&items[0].0).unwrap().len();
        let per = 1000 + entry_len;
        let r = prune(
            &cache,
            &PruneOptions {
                max_size: Some(4 * per + per / 2),
                ..opts()
            },
        )
        .unwrap();
        assert_eq!((r.removed.entries, r.removed.artifacts), (6, 6));
        assert_eq!(r.removed.bytes, 6 * per);
        assert_eq!((r.remaining.entries, r.remaining.artifacts), (4, 4));
        assert!(r.size_reached());
        for (i, (e, a)) in items.iter().enumerate() {
            assert_eq!(e.exists(), i >= 6, "entry {i}");
            assert_eq!(cache.has_artifact(a), i >= 6, "artifact {i}");
        }
        let oldest_age = r.oldest_kept.unwrap().elapsed().unwrap().as_secs();
        assert!(
            (4 * DAY - 5..4 * DAY + 5).contains(&oldest_age),
            "{oldest_age}"
        );
        assert_consistent(&cache);
    }

    #[test]
    fn an_entry_is_as_recent_as_its_artifacts_and_the_usage_record() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let items = ten_days(&cache);
        // The oldest artifact was read yesterday (atime); the next was staged by tarn today
        // on a noatime mount (only the record says so).
        set_age(&cache.artifact_path(&items[0].1), DAY);
        crate::usage::record_use(&cache, [&items[1].1]).unwrap();
        set_age(&cache.artifact_path(&items[1].1), 20 * DAY);
        let r = prune(
            &cache,
            &PruneOptions {
                max_age: Some(Duration::from_secs(5 * DAY / 2)),
                grace: Duration::ZERO,
                ..opts()
            },
        )
        .unwrap();
        let left: Vec<usize> = (0..10).filter(|&i| items[i].0.exists()).collect();
        assert_eq!(left, vec![0, 1, 8, 9], "{r:?}");
        assert_consistent(&cache);
    }

    #[test]
    fn nothing_used_within_the_grace_period_goes() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let items = ten_days(&cache);
        // Entry 0 was read ten minutes ago; artifact 1 was written ten minutes ago (by a
        // build that has not written its entry yet, or shares it with entry 1).
        set_age(&items[0].0, 600);
        set_age(&cache.artifact_path(&items[1].1), 600);
        let orphan = artifact(&cache, 99, 10, 60);
        let r = prune(
            &cache,
            &PruneOptions {
                max_size: Some(0),
                ..opts()
            },
        )
        .unwrap();
        assert!(!r.size_reached());
        assert!(items[0].0.exists() && cache.has_artifact(&items[0].1));
        assert!(items[1].0.exists() && cache.has_artifact(&items[1].1));
        assert!(cache.has_artifact(&orphan));
        assert_eq!((r.remaining.entries, r.remaining.artifacts), (2, 3));
        // Artifact 0 is old, but stays with its entry, which was read in the grace period.
        assert_eq!((r.in_grace.entries, r.in_grace.artifacts), (2, 2));
        assert_consistent(&cache);
    }

    /// The flake of the clean-clone CI run, made certain: a check that read every file just
    /// before a prune without a grace period (no time for a clock tick) must not make the
    /// prune keep them as "used during the prune". On the old rule (kept when touched after
    /// the start less 20 ms) everything stayed here.
    #[test]
    fn a_read_that_ended_before_the_prune_is_no_use_during_it() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let items = ten_days(&cache);
        for (e, a) in &items {
            // Plain reads: where access times are kept, these move them to now.
            fs::read(e).unwrap();
            fs::read(cache.artifact_path(a)).unwrap();
        }
        // Wait until the kernel's file clock has moved past those reads (a tick at most):
        // 12 ms, well inside the old rule's 20 ms.
        std::thread::sleep(Duration::from_millis(12));
        let read_at = fs::metadata(cache.artifact_path(&items[9].1))
            .unwrap()
            .accessed()
            .unwrap();
        while start_clock() <= read_at {
            std::thread::sleep(Duration::from_millis(1));
        }
        let r = prune_everything(&cache);
        assert_eq!(r.remaining, Tally::default(), "{r:?}");
        assert_consistent(&cache);
    }

    #[test]
    fn a_shared_artifact_goes_with_its_last_entry_only() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let shared = artifact(&cache, 1, 1000, 30 * DAY);
        let own = artifact(&cache, 2, 1000, 30 * DAY);
        let old = entry(&cache, 1, &[&shared, &own], 30 * DAY);
        let young = entry(&cache, 2, &[&shared], 30 * DAY);
        // The young entry was written yesterday.
        set_age(&young, DAY);
        let r = prune(
            &cache,
            &PruneOptions {
                max_age: Some(Duration::from_secs(7 * DAY)),
                ..opts()
            },
        )
        .unwrap();
        assert!(!old.exists() && !cache.has_artifact(&own));
        assert!(young.exists() && cache.has_artifact(&shared));
        assert_eq!((r.removed.entries, r.removed.artifacts), (1, 1));
        assert_consistent(&cache);
    }

    #[test]
    fn a_kept_revision_keeps_its_entries_and_artifacts() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let items = ten_days(&cache);
        let mut mf = tarn_core::MappingFile::new(tarn_core::SCHEMA_G3);
        for i in [0u64, 1] {
            mf.entries
                .insert(Hash(i), serde_json::json!(items[i as usize].1.file_name()));
        }
        let rev = "0123456789abcdef0123456789abcdef01234567";
        crate::cache::write_atomic(&cache.revision_path("pkg", rev), &mf.to_bytes()).unwrap();
        set_age(&cache.revision_path("pkg", rev), 50 * DAY);
        let keep = vec![
            KeptRevision {
                scope: "pkg".into(),
                rev: rev.into(),
            },
            KeptRevision {
                scope: "pkg".into(),
                rev: "gone".into(),
            },
        ];
        let r = prune(
            &cache,
            &PruneOptions {
                max_size: Some(0),
                keep,
                ..opts()
            },
        )
        .unwrap();
        assert!(cache.revision_path("pkg", rev).exists());
        for (i, (e, a)) in items.iter().enumerate() {
            assert_eq!(e.exists() && cache.has_artifact(a), i < 2, "{i}");
        }
        assert_eq!(
            (r.kept.entries, r.kept.artifacts, r.kept.revisions),
            (2, 2, 1)
        );
        assert!(r.kept_exceeds_max_size());
        assert_eq!(r.kept_missing.len(), 1);
        assert_consistent(&cache);
    }

    #[test]
    fn a_revision_goes_with_its_signature_and_a_kept_one_keeps_it() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let mf = tarn_core::MappingFile::new(tarn_core::SCHEMA_G3);
        let (old, kept) = ("1".repeat(40), "2".repeat(40));
        for rev in [&old, &kept] {
            crate::cache::write_atomic(&cache.revision_path("pkg", rev), &mf.to_bytes()).unwrap();
            crate::cache::write_atomic(&cache.signature_path("pkg", rev), b"sig").unwrap();
            set_age(&cache.revision_path("pkg", rev), 50 * DAY);
        }
        let keep = vec![KeptRevision {
            scope: "pkg".into(),
            rev: kept.clone(),
        }];
        prune(
            &cache,
            &PruneOptions {
                max_size: Some(0),
                keep,
                ..opts()
            },
        )
        .unwrap();
        assert!(!cache.revision_path("pkg", &old).exists());
        assert!(
            !cache.signature_path("pkg", &old).exists(),
            "the signature of a removed revision is removed with it"
        );
        assert!(cache.revision_path("pkg", &kept).exists());
        assert!(cache.signature_path("pkg", &kept).exists());
    }

    #[test]
    fn a_dry_run_removes_nothing_and_reports_the_same() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        ten_days(&cache);
        let o = PruneOptions {
            max_size: Some(3000),
            ..opts()
        };
        let dry = prune(
            &cache,
            &PruneOptions {
                dry_run: true,
                ..o.clone()
            },
        )
        .unwrap();
        assert_eq!(take_inventory(&cache).entries.len(), 10);
        let real = prune(&cache, &o).unwrap();
        assert_eq!((dry.removed, dry.remaining), (real.removed, real.remaining));
        assert!(dry.dry_run && !real.dry_run);
    }

    #[test]
    fn unknown_files_stay_and_a_foreign_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        ten_days(&cache);
        let notes = t.path().join("notes.txt");
        fs::write(&notes, b"mine").unwrap();
        let odd = cache.artifacts_dir().join("README");
        fs::write(&odd, b"hello").unwrap();
        set_age(&odd, 100 * DAY);
        let r = prune_everything(&cache);
        assert!(notes.exists() && odd.exists());
        let mut unknown: Vec<_> = r
            .unknown
            .iter()
            .map(|u| (u.path.clone(), u.bytes))
            .collect();
        unknown.sort();
        assert_eq!(unknown, vec![(odd, 5), (notes, 4)]);
        assert_eq!(r.remaining, Tally::default());

        let home = tempfile::tempdir().unwrap();
        fs::write(home.path().join("thesis.tex"), b"precious").unwrap();
        let e = prune(
            &Cache::new(home.path()),
            &PruneOptions {
                max_size: Some(0),
                ..opts()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a Lake cache"), "{e}");
        assert!(home.path().join("thesis.tex").exists());
        let e = prune(&Cache::new(home.path().join("none")), &opts()).unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }), "{e}");
    }
}
