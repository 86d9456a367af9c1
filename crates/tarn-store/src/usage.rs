//! tarn's own record of use, in `<root>/.tarn/` (Lake never reads it): when tarn last
//! fetched, staged, imported or restored each artifact, and which workspaces it fetched for.
//! `tarn cache prune` orders eviction by the newest of this record, the file's access time
//! and its modification time, so the order stays sensible on `noatime` mounts.
//!
//! Both files are versioned text, one record a line, replaced atomically (temp file, rename)
//! while `<root>/.tarn/usage.lock` is held:
//!
//! ```text
//! tarn-usage 1                        tarn-workspaces 1
//! 1764921600 0123456789abcdef.olean   1764921600 /home/me/src/my-pkg
//! ```
//!
//! A line is `<unix seconds> <key>`: the artifact's file name in `artifacts/`, or a
//! workspace's absolute path. Unknown versions and bad lines are ignored (and the file is
//! rewritten in the current version by the next update); a lost record only makes eviction
//! order rely on file times.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tarn_core::ArtifactName;

use crate::cache::tarn_dir;
use crate::cache::{write_atomic, Cache};
use crate::error::StoreError;
use crate::local_file::{read_local_file, Links, ReadLimit};
use crate::lock::{CacheLock, LockMode};

/// The artifact record's file name in `<root>/.tarn/`.
pub(crate) const USAGE_FILE: &str = "usage-v1";
/// The workspace record's file name in `<root>/.tarn/`.
pub(crate) const WORKSPACES_FILE: &str = "workspaces-v1";
const USAGE_HEADER: &str = "tarn-usage 1";
const WORKSPACES_HEADER: &str = "tarn-workspaces 1";
const USAGE_LOCK: &str = "usage.lock";
/// Largest record read (about 8 million artifacts); a larger file is ignored.
const MAX_RECORD_BYTES: u64 = 512 << 20;

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A record file: key → newest time of use (Unix seconds).
#[derive(Debug, Default, Clone)]
pub(crate) struct UseRecord {
    /// Times by key.
    pub times: HashMap<String, u64>,
    /// Lines that were ignored (bad syntax), or why the whole file was.
    pub warnings: Vec<String>,
}

fn record_path(cache: &Cache, file: &str) -> PathBuf {
    tarn_dir(cache).join(file)
}

fn read_record(cache: &Cache, file: &str, header: &str) -> UseRecord {
    let path = record_path(cache, file);
    let mut record = UseRecord::default();
    let limit = ReadLimit {
        bytes: MAX_RECORD_BYTES,
        what: "tarn's usage record",
        env: None,
    };
    let bytes = match read_local_file(&path, Links::Refuse, &limit) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return record,
        Err(e) => {
            record
                .warnings
                .push(format!("{}: {e}; ignored", path.display()));
            return record;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        record.warnings.push(format!(
            "{}: not a {header:?} file; ignored",
            path.display()
        ));
        return record;
    }
    for (i, line) in lines.enumerate() {
        let parsed = line
            .split_once(' ')
            .and_then(|(t, k)| Some((t.parse::<u64>().ok()?, k)))
            .filter(|(_, k)| !k.is_empty());
        match parsed {
            Some((t, k)) => {
                let e = record.times.entry(k.to_string()).or_insert(t);
                *e = (*e).max(t);
            }
            None => record
                .warnings
                .push(format!("{}: line {}: ignored", path.display(), i + 2)),
        }
    }
    record
}

fn write_record(
    cache: &Cache,
    file: &str,
    header: &str,
    times: &HashMap<String, u64>,
) -> Result<(), StoreError> {
    let mut keys: Vec<(&String, &u64)> = times.iter().collect();
    keys.sort_unstable();
    let mut out = String::with_capacity(header.len() + 1 + keys.len() * 36);
    out.push_str(header);
    out.push('\n');
    for (k, t) in keys {
        out.push_str(&format!("{t} {k}\n"));
    }
    write_atomic(&record_path(cache, file), out.as_bytes())
}

/// Read-modify-write of one record under the usage lock.
fn update_record(
    cache: &Cache,
    file: &str,
    header: &str,
    change: impl FnOnce(&mut HashMap<String, u64>),
) -> Result<(), StoreError> {
    let _lock = CacheLock::acquire_file(cache, USAGE_LOCK, LockMode::Exclusive)?;
    let mut record = read_record(cache, file, header);
    change(&mut record.times);
    write_record(cache, file, header, &record.times)
}

/// The artifact record: file name in `artifacts/` → last use by tarn.
pub(crate) fn read_usage(cache: &Cache) -> UseRecord {
    read_record(cache, USAGE_FILE, USAGE_HEADER)
}

/// Records that tarn used (fetched, staged, imported, restored) these artifacts now.
pub(crate) fn record_use<'a>(
    cache: &Cache,
    names: impl IntoIterator<Item = &'a ArtifactName>,
) -> Result<(), StoreError> {
    let now = unix_seconds(SystemTime::now());
    let names: Vec<String> = names.into_iter().map(ArtifactName::file_name).collect();
    if names.is_empty() {
        return Ok(());
    }
    update_record(cache, USAGE_FILE, USAGE_HEADER, |times| {
        for n in names {
            times.insert(n, now);
        }
    })
}

/// Records the use of `names` for commands whose job is something else: a record that cannot be written
/// (a read-only cache) is logged, not an error. Only an existing cache is recorded in.
pub fn note_use<'a>(cache: &Cache, names: impl IntoIterator<Item = &'a ArtifactName>) {
    if !cache.root().is_dir() {
        return;
    }
    if let Err(e) = record_use(cache, names) {
        tracing::debug!("usage record not updated: {e}");
    }
}

/// Drops the artifacts `keep` refuses from the record (after a prune removed them).
pub(crate) fn retain_usage(cache: &Cache, keep: impl Fn(&str) -> bool) -> Result<(), StoreError> {
    if !record_path(cache, USAGE_FILE).exists() {
        return Ok(());
    }
    update_record(cache, USAGE_FILE, USAGE_HEADER, |times| {
        times.retain(|k, _| keep(k))
    })
}

/// Records that tarn fetched or restored for the workspace at `dir` (made absolute) now.
/// `tarn cache prune` keeps what recorded workspaces' current revisions need.
pub fn record_workspace(cache: &Cache, dir: &Path) -> Result<(), StoreError> {
    let dir = std::path::absolute(dir).map_err(|e| StoreError::io(dir, e))?;
    let Some(key) = dir.to_str().filter(|s| !s.contains('\n')) else {
        return Ok(());
    };
    let key = key.to_string();
    let now = unix_seconds(SystemTime::now());
    update_record(cache, WORKSPACES_FILE, WORKSPACES_HEADER, |times| {
        times.insert(key, now);
    })
}

/// The workspaces tarn fetched or restored for, with the time it last did.
pub fn recorded_workspaces(cache: &Cache) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<(PathBuf, u64)> = read_record(cache, WORKSPACES_FILE, WORKSPACES_HEADER)
        .times
        .into_iter()
        .map(|(k, t)| (PathBuf::from(k), t))
        .collect();
    out.sort();
    out
}

/// Removes workspaces from the record (they no longer exist).
pub fn forget_workspaces(cache: &Cache, dirs: &[PathBuf]) -> Result<(), StoreError> {
    if dirs.is_empty() {
        return Ok(());
    }
    update_record(cache, WORKSPACES_FILE, WORKSPACES_HEADER, |times| {
        times.retain(|k, _| !dirs.iter().any(|d| d.as_os_str() == k.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_core::Hash;

    #[test]
    fn records_merge_and_survive_bad_lines() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::new(t.path());
        let a = ArtifactName::new(Hash(1), "olean");
        let b = ArtifactName::new(Hash(2), "");
        record_use(&cache, [&a]).unwrap();
        record_use(&cache, [&b]).unwrap();
        let r = read_usage(&cache);
        assert_eq!(r.times.len(), 2);
        assert!(r.times.contains_key("0000000000000001.olean"));
        let path = record_path(&cache, USAGE_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("garbage\n");
        std::fs::write(&path, text).unwrap();
        let r = read_usage(&cache);
        assert_eq!((r.times.len(), r.warnings.len()), (2, 1));
        retain_usage(&cache, |k| k.ends_with(".olean")).unwrap();
        assert_eq!(read_usage(&cache).times.len(), 1);
        std::fs::write(&path, "tarn-usage 99\n1 x\n").unwrap();
        let r = read_usage(&cache);
        assert!(r.times.is_empty() && r.warnings.len() == 1);

        record_workspace(&cache, t.path()).unwrap();
        assert_eq!(recorded_workspaces(&cache).len(), 1);
        forget_workspaces(&cache, &[t.path().to_path_buf()]).unwrap();
        assert!(recorded_workspaces(&cache).is_empty());
    }
}
