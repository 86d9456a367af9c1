//! `stage`: copy the artifacts a mapping file names from the cache into a flat staging
//! directory (`outputs.jsonl` plus one `<hash>.<ext>` per artifact).
//!
//! Every destination file appears atomically: a hard link (or a copy) is made under a
//! `.tarn-tmp.*` name in the staging directory and renamed into place. `outputs.jsonl` is
//! written last, so a staging directory that has it is complete.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tarn_core::ArtifactName;

use crate::cache::{Cache, TempFile, TEMP_PREFIX};
use crate::error::StoreError;
use crate::parallel::{default_threads, par_map};
use crate::write_atomic;

/// Name of the mapping file inside a staging directory.
pub const STAGED_MAPPINGS: &str = "outputs.jsonl";

/// How to stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageOptions {
    /// Replace destination files that already exist (otherwise they are kept).
    pub force_overwrite: bool,
    /// Always copy; never hard-link from the cache.
    pub copy: bool,
}

/// What one artifact's staging did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StagedHow {
    /// Hard-linked from the cache.
    Linked,
    /// Copied (cross-filesystem, or `copy` requested).
    Copied,
    /// The destination existed and was kept.
    Skipped,
}

/// The outcome of [`stage`].
#[derive(Debug, Default)]
pub struct StageReport {
    /// Artifacts hard-linked.
    pub linked: usize,
    /// Artifacts copied.
    pub copied: usize,
    /// Artifacts whose destination already existed.
    pub skipped: usize,
    /// Bytes of the artifacts linked or copied.
    pub bytes: u64,
    /// Cache paths of artifacts that are not in the cache (all of them, not just the first).
    pub missing: Vec<PathBuf>,
    /// Other failures, one message each (naming the file).
    pub errors: Vec<String>,
}

impl StageReport {
    /// Whether everything was staged.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.errors.is_empty()
    }
}

/// Stages `artifacts` from `cache` into `dir` and writes `mappings_bytes` (the mapping file,
/// byte for byte) as `dir/outputs.jsonl` when every artifact was staged. `progress` is
/// called once per artifact handled.
pub fn stage(
    cache: &Cache,
    mappings_bytes: &[u8],
    artifacts: &[ArtifactName],
    dir: &Path,
    options: StageOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<StageReport, StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    // A stage killed earlier may have left temp files here: remove those past the grace
    // period whose owner is dead (see `temp`).
    crate::temp::sweep_dirs(&[dir.to_path_buf()], crate::limits().temp_grace);
    // Linking is metadata-only; more threads than cores helps on network filesystems.
    let threads = default_threads().max(4);
    let bytes = AtomicU64::new(0);
    let results = par_map(artifacts, threads, |name| {
        let r = stage_one(cache, name, dir, options, &bytes);
        progress(1);
        r
    });
    let mut report = StageReport {
        bytes: bytes.into_inner(),
        ..StageReport::default()
    };
    for (name, r) in artifacts.iter().zip(results) {
        match r {
            Ok(StagedHow::Linked) => report.linked += 1,
            Ok(StagedHow::Copied) => report.copied += 1,
            Ok(StagedHow::Skipped) => report.skipped += 1,
            Err(StageError::Missing) => report.missing.push(cache.artifact_path(name)),
            Err(StageError::Other(e)) => {
                report.errors.push(format!("failed to copy artifact: {e}"))
            }
        }
    }
    if report.is_ok() {
        write_atomic(&dir.join(STAGED_MAPPINGS), mappings_bytes)?;
    }
    crate::usage::note_use(cache, artifacts);
    Ok(report)
}

enum StageError {
    Missing,
    Other(StoreError),
}

static LINK_COUNTER: AtomicU64 = AtomicU64::new(0);

fn stage_one(
    cache: &Cache,
    name: &ArtifactName,
    dir: &Path,
    options: StageOptions,
    bytes: &AtomicU64,
) -> Result<StagedHow, StageError> {
    let src = cache.artifact_path(name);
    let meta = match fs::metadata(&src) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Err(StageError::Missing),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StageError::Missing),
        Err(e) => return Err(StageError::Other(StoreError::io(&src, e))),
    };
    let dest = dir.join(name.file_name());
    if !options.copy && !options.force_overwrite {
        // A hard link is complete the moment it exists, so linking straight to the final
        // name is atomic, and "already exists" means there is nothing to do.
        match fs::hard_link(&src, &dest) {
            Ok(()) => {
                bytes.fetch_add(meta.len(), Ordering::Relaxed);
                return Ok(StagedHow::Linked);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(StagedHow::Skipped),
            Err(_) => {} // another filesystem, or links not allowed: copy below
        }
    }
    if !options.force_overwrite && fs::symlink_metadata(&dest).is_ok() {
        return Ok(StagedHow::Skipped);
    }
    if !options.copy {
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}.link{}",
            std::process::id(),
            LINK_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&tmp);
        if fs::hard_link(&src, &tmp).is_ok() {
            return match fs::rename(&tmp, &dest) {
                Ok(()) => {
                    bytes.fetch_add(meta.len(), Ordering::Relaxed);
                    Ok(StagedHow::Linked)
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(StageError::Other(StoreError::io(&dest, e)))
                }
            };
        }
    }
    let temp = TempFile::new_in(dir).map_err(StageError::Other)?;
    let n = fs::copy(&src, temp.path()).map_err(|e| StageError::Other(StoreError::io(&src, e)))?;
    temp.publish_replace(&dest).map_err(StageError::Other)?;
    bytes.fetch_add(n, Ordering::Relaxed);
    Ok(StagedHow::Copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_mappings;
    use tarn_fixture::{generate, FixtureSpec};

    #[test]
    fn stages_by_link_and_reports_all_missing() {
        let t = tempfile::tempdir().unwrap();
        let fx = generate(&FixtureSpec::small(6), &t.path().join("c")).unwrap();
        let cache = Cache::new(t.path().join("c"));
        let m = read_mappings(&fx.mappings_path).unwrap();
        let names = m.artifacts().unwrap();
        let dir = t.path().join("s");
        let r = stage(
            &cache,
            &m.bytes,
            &names,
            &dir,
            StageOptions::default(),
            &|_| {},
        )
        .unwrap();
        assert!(r.is_ok());
        assert_eq!(r.linked, 6);
        assert_eq!(fs::read(dir.join(STAGED_MAPPINGS)).unwrap(), m.bytes);
        let r = stage(
            &cache,
            &m.bytes,
            &names,
            &dir,
            StageOptions::default(),
            &|_| {},
        )
        .unwrap();
        assert_eq!(r.skipped, 6);
        crate::cache::remove_read_only(&cache.artifact_path(&names[0]));
        crate::cache::remove_read_only(&cache.artifact_path(&names[5]));
        let r = stage(
            &cache,
            &m.bytes,
            &names,
            &t.path().join("s2"),
            StageOptions::default(),
            &|_| {},
        )
        .unwrap();
        assert_eq!(r.missing.len(), 2);
        assert!(!t.path().join("s2").join(STAGED_MAPPINGS).exists());
    }
}
