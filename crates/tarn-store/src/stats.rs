//! `stats`: what a cache holds, by scope, by age of last use and by extension.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crate::cache::Cache;
use crate::error::StoreError;
use crate::inventory::{check_is_cache, take_inventory, unix_nanos, UnknownFile};
use crate::prune::Tally;
use crate::verify::Problem;

/// A count of files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Files.
    pub count: u64,
    /// Bytes (apparent sizes).
    pub bytes: u64,
}

impl Bucket {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// One local scope (`outputs/<scope>/`, `revisions/<scope>/`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeStats {
    /// Its `outputs/` entries.
    pub entries: Bucket,
    /// The artifacts those entries name (an artifact named from two scopes counts in both).
    pub artifacts: Bucket,
    /// Its `revisions/` files.
    pub revisions: Bucket,
}

/// Age bands of last use: the upper bound of each and its label. The last is unbounded.
pub const AGE_BANDS: [(&str, u64); 6] = [
    ("under 1h", 3_600),
    ("1h to 1d", 86_400),
    ("1d to 7d", 7 * 86_400),
    ("7d to 30d", 30 * 86_400),
    ("30d to 90d", 90 * 86_400),
    ("over 90d", u64::MAX),
];

/// What a cache holds.
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    /// Everything of Lake's.
    pub total: Tally,
    /// By local scope.
    pub by_scope: BTreeMap<String, ScopeStats>,
    /// Artifacts that no entry names.
    pub unnamed: Bucket,
    /// Artifacts by the age of their last use, one bucket per [`AGE_BANDS`] band.
    pub by_age: [Bucket; 6],
    /// Artifacts by extension (`""` for none).
    pub by_extension: BTreeMap<String, Bucket>,
    /// The last use of the least recently used artifact.
    pub oldest: Option<SystemTime>,
    /// Files that are not Lake's.
    pub unknown: Vec<UnknownFile>,
    /// Temp files of writers.
    pub temp_files: u64,
    /// What could not be read.
    pub problems: Vec<Problem>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// The band index of an age in seconds.
fn band(age: u64) -> usize {
    AGE_BANDS
        .iter()
        .position(|&(_, upper)| age < upper)
        .unwrap_or(AGE_BANDS.len() - 1)
}

/// Counts what the cache holds. A directory that is not a Lake cache is refused, like
/// `prune` does.
pub fn cache_stats(cache: &Cache) -> Result<CacheStats, StoreError> {
    let start = Instant::now();
    check_is_cache(cache)?;
    let now = unix_nanos(SystemTime::now());
    let inv = take_inventory(cache);
    let mut s = CacheStats {
        unknown: inv.unknown.clone(),
        temp_files: inv.temp_files,
        problems: inv.problems.clone(),
        ..CacheStats::default()
    };
    let mut named = vec![false; inv.artifacts.len()];
    // Per scope, which artifacts were counted already (an entry may share them).
    let mut seen: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for e in &inv.entries {
        s.total.entries += 1;
        s.total.bytes += e.size;
        s.by_scope
            .entry(e.scope.clone())
            .or_default()
            .entries
            .add(e.size);
        let list = seen.entry(e.scope.as_str()).or_default();
        for &a in &e.refs {
            named[a as usize] = true;
            list.push(a);
        }
    }
    for (scope, mut list) in seen {
        list.sort_unstable();
        list.dedup();
        let stats = s.by_scope.entry(scope.to_string()).or_default();
        for a in list {
            stats.artifacts.add(inv.artifacts[a as usize].size);
        }
    }
    for r in &inv.revisions {
        s.total.revisions += 1;
        s.total.bytes += r.size;
        s.by_scope
            .entry(r.scope.clone())
            .or_default()
            .revisions
            .add(r.size);
    }
    let mut oldest: Option<u64> = None;
    for (i, a) in inv.artifacts.iter().enumerate() {
        s.total.artifacts += 1;
        s.total.bytes += a.size;
        if !named[i] {
            s.unnamed.add(a.size);
        }
        s.by_age[band(now.saturating_sub(a.used) / 1_000_000_000)].add(a.size);
        let ext = a.file_name.split_once('.').map_or("", |(_, e)| e);
        match s.by_extension.get_mut(ext) {
            Some(b) => b.add(a.size),
            None => s
                .by_extension
                .entry(ext.to_string())
                .or_default()
                .add(a.size),
        }
        oldest = Some(oldest.map_or(a.used, |o| o.min(a.used)));
    }
    s.oldest = oldest.map(|t| SystemTime::UNIX_EPOCH + Duration::from_nanos(t));
    s.elapsed = start.elapsed();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, FileTimes};
    use tarn_core::{ArtifactName, CacheOutput, Hash};

    fn aged(path: &std::path::Path, age: u64) {
        let t = SystemTime::now() - Duration::from_secs(age);
        File::open(path)
            .unwrap()
            .set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    }

    #[test]
    fn counts_by_scope_age_and_extension() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        fs::create_dir_all(cache.artifacts_dir()).unwrap();
        let mut names = Vec::new();
        for (i, (ext, len, age)) in [
            ("olean", 100, 60),
            ("olean", 200, 2 * 86_400),
            ("c", 50, 100 * 86_400),
            ("", 7, 40 * 86_400),
        ]
        .into_iter()
        .enumerate()
        {
            let bytes = vec![i as u8; len];
            let n = ArtifactName::new(Hash::of_bytes(&bytes), ext);
            fs::write(cache.artifact_path(&n), &bytes).unwrap();
            aged(&cache.artifact_path(&n), age);
            names.push(n);
        }
        let out = |ns: &[&ArtifactName]| CacheOutput {
            data: serde_json::Value::Array(
                ns.iter()
                    .map(|n| serde_json::json!(n.file_name()))
                    .collect(),
            ),
            service: None,
            scope: None,
        };
        cache
            .write_outputs("a", Hash(1), &out(&[&names[0], &names[1]]), true)
            .unwrap();
        cache
            .write_outputs("a", Hash(2), &out(&[&names[1]]), true)
            .unwrap();
        cache
            .write_outputs("b", Hash(3), &out(&[&names[1], &names[2]]), true)
            .unwrap();
        fs::write(t.path().join("stray"), b"x").unwrap();
        let s = cache_stats(&cache).unwrap();
        assert_eq!((s.total.entries, s.total.artifacts), (3, 4));
        let a = s.by_scope["a"];
        assert_eq!(
            (a.entries.count, a.artifacts.count, a.artifacts.bytes),
            (2, 2, 300)
        );
        let b = s.by_scope["b"];
        assert_eq!(
            (b.entries.count, b.artifacts.count, b.artifacts.bytes),
            (1, 2, 250)
        );
        assert_eq!(s.unnamed, Bucket { count: 1, bytes: 7 });
        let ages: Vec<u64> = s.by_age.iter().map(|b| b.count).collect();
        assert_eq!(ages, vec![1, 0, 1, 0, 1, 1]);
        assert_eq!(
            s.by_extension["olean"],
            Bucket {
                count: 2,
                bytes: 300
            }
        );
        assert_eq!(s.by_extension[""], Bucket { count: 1, bytes: 7 });
        assert_eq!(s.unknown.len(), 1);
        assert!(s.oldest.unwrap().elapsed().unwrap() >= Duration::from_secs(99 * 86_400));
    }
}
