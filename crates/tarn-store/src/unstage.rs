//! `unstage` and `add`: bring a staging directory (possibly written by an untrusted build
//! job) or a mapping file into the cache.
//!
//! Unstaging happens in two phases. [`validate_staging`] (the one staging validator, in
//! [`crate::staging`], shared with `put-staged`) checks everything that can be checked
//! without importing. Only then does [`import_staging`] open each artifact once through
//! [`StagingDir::open_artifact`] (no link followed, no blocking, a regular file, the file
//! that was validated), copy it from that descriptor into a private temp file in the cache,
//! hashing the bytes as they are written, and publish it only if that hash equals the name.
//! Checking the copy rather than the source makes the check immune to the source changing
//! after it was validated.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tarn_core::CacheOutput;
use tarn_core::StreamingHasher;
use tarn_core::{ArtifactName, MappingFile, Scope};

use crate::staging::StagingDir;

use crate::cache::{make_read_only, Cache, Inserted};
use crate::error::{FileChanged, StoreError};
use crate::parallel::{default_threads, par_map};

/// Where imported outputs may be fetched from on demand, and under which package.
#[derive(Debug, Clone, Default)]
pub struct OutputsTarget {
    /// The local scope (package name): `outputs/<local_scope>/`.
    pub local_scope: String,
    /// The service name written into each `outputs/` file (`null` when `None`).
    pub service: Option<String>,
    /// The remote scope written into each `outputs/` file.
    pub scope: Option<Scope>,
}

/// The outcome of [`import_staging`].
#[derive(Debug, Default)]
pub struct UnstageReport {
    /// Artifacts newly published.
    pub imported: usize,
    /// Artifacts the cache already had.
    pub already_present: usize,
    /// Bytes copied into the cache.
    pub bytes: u64,
    /// `outputs/` files written.
    pub outputs_written: usize,
    /// `outputs/` files kept because they existed.
    pub outputs_kept: usize,
    /// Failures, one message each naming the file; when non-empty no `outputs/` file was
    /// written.
    pub errors: Vec<String>,
}

/// Imports a validated staging directory: every artifact is copied and verified (a content
/// hash that differs from the name publishes nothing), then, if all succeeded, the mappings
/// are written to `outputs/`. With `force_overwrite` existing artifacts are replaced by the
/// verified copies and existing `outputs/` files are rewritten.
pub fn import_staging(
    cache: &Cache,
    staging: &StagingDir,
    target: &OutputsTarget,
    force_overwrite: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> UnstageReport {
    let bytes = AtomicU64::new(0);
    let results = par_map(&staging.artifacts, default_threads(), |name| {
        let r = import_untrusted(cache, staging, name, force_overwrite, &bytes);
        progress(1);
        r
    });
    let mut report = UnstageReport {
        bytes: bytes.into_inner(),
        ..UnstageReport::default()
    };
    for r in results {
        match r {
            Ok(Inserted::New) => report.imported += 1,
            Ok(Inserted::AlreadyPresent) => report.already_present += 1,
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    if report.errors.is_empty() {
        match write_outputs(cache, &staging.mappings.file, target, force_overwrite) {
            Ok((w, k)) => {
                report.outputs_written = w;
                report.outputs_kept = k;
            }
            Err(e) => report.errors.push(e.to_string()),
        }
        crate::usage::note_use(cache, &staging.artifacts);
    }
    report
}

/// Writes one `outputs/<scope>/<input>.json` per mapping entry, with the target's service
/// and scope (Lake's `cache add`). Returns (written, kept).
pub fn write_outputs(
    cache: &Cache,
    mappings: &MappingFile,
    target: &OutputsTarget,
    overwrite: bool,
) -> Result<(usize, usize), StoreError> {
    let entries: Vec<_> = mappings.entries.iter().collect();
    let results = par_map(&entries, default_threads().min(8), |(input, data)| {
        let output = CacheOutput {
            data: (*data).clone(),
            service: target.service.clone(),
            scope: target.scope.clone(),
        };
        cache.write_outputs(&target.local_scope, **input, &output, overwrite)
    });
    let (mut written, mut kept) = (0, 0);
    for r in results {
        if r? {
            written += 1;
        } else {
            kept += 1;
        }
    }
    Ok((written, kept))
}

/// Copies an untrusted file into a cache temp file, hashing exactly the bytes written, and
/// publishes it as `name` only when that hash matches. The source is opened once, through
/// [`StagingDir::open_artifact`], and read only through that descriptor.
fn import_untrusted(
    cache: &Cache,
    staging: &StagingDir,
    name: &ArtifactName,
    replace: bool,
    bytes: &AtomicU64,
) -> Result<Inserted, StoreError> {
    // Present already: the staging file is still read and checked (a staging directory
    // with a wrong file is reported even when the cache does not need it), but not copied.
    let present = !replace && cache.has_artifact(name);
    let open = staging.open_artifact(name)?;
    let (src, len) = (open.path.as_path(), open.len);
    let mut file = open.file.take(len + 1);
    let mut temp = if present {
        None
    } else {
        Some(cache.temp_artifact()?)
    };
    let mut hasher = StreamingHasher::new(len);
    // Sized to the file (at most 1 MiB): zeroing a large buffer per small file costs more
    // than the copy itself.
    let mut buf = vec![0u8; (len as usize).clamp(4096, 1 << 20)];
    loop {
        let n = file.read(&mut buf).map_err(|e| StoreError::io(src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(temp) = temp.as_mut() {
            temp.file_mut()
                .write_all(&buf[..n])
                .map_err(|e| StoreError::io(temp.path(), e))?;
        }
    }
    let seen = hasher.bytes_seen();
    let actual = hasher.finish().ok_or_else(|| StoreError::Changed {
        path: src.to_path_buf(),
        source: FileChanged::Size {
            expected: len,
            seen,
        },
    })?;
    if actual != name.hash {
        return Err(StoreError::HashMismatch {
            path: src.to_path_buf(),
            expected: name.hash,
            actual,
        });
    }
    let Some(temp) = temp else {
        return Ok(Inserted::AlreadyPresent);
    };
    bytes.fetch_add(seen, Ordering::Relaxed);
    if replace && cache.has_artifact(name) {
        make_read_only(temp.path()).map_err(|e| StoreError::io(temp.path(), e))?;
        temp.publish_replace(&cache.artifact_path(name))?;
        return Ok(Inserted::New);
    }
    cache.publish_artifact(temp, name, Some(actual))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapfile::read_mappings;
    use crate::stage::{stage, StageOptions};
    use std::fs;
    use std::path::{Path, PathBuf};
    use tarn_fixture::{generate, FixtureSpec};

    fn staged(root: &Path, n: usize) -> (Cache, PathBuf) {
        let fx = generate(&FixtureSpec::small(n), &root.join("src")).unwrap();
        let src = Cache::new(root.join("src"));
        let m = read_mappings(&fx.mappings_path).unwrap();
        let dir = root.join("staging");
        let r = stage(
            &src,
            &m.bytes,
            &m.artifacts().unwrap(),
            &dir,
            StageOptions {
                copy: true,
                ..StageOptions::default()
            },
            &|_| {},
        )
        .unwrap();
        assert!(r.is_ok() && r.copied == n);
        (Cache::new(root.join("dst")), dir)
    }

    fn target() -> OutputsTarget {
        OutputsTarget {
            local_scope: "p".into(),
            ..OutputsTarget::default()
        }
    }

    #[test]
    fn validated_import_round_trips() {
        let t = tempfile::tempdir().unwrap();
        let (cache, dir) = staged(t.path(), 12);
        let s = crate::staging::validate_staging(&dir).unwrap();
        assert_eq!(s.artifacts.len(), 12);
        let r = import_staging(&cache, &s, &target(), false, &|_| {});
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!((r.imported, r.outputs_written), (12, 12));
        let again = import_staging(&cache, &s, &target(), false, &|_| {});
        assert_eq!((again.already_present, again.outputs_kept), (12, 12));
    }

    #[test]
    fn a_file_swapped_after_validation_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let (cache, dir) = staged(t.path(), 3);
        let s = crate::staging::validate_staging(&dir).unwrap();
        let victim = dir.join(s.artifacts[0].file_name());
        let bytes = fs::read(&victim).unwrap();
        // Same content, new inode (written before the old one is freed, so the number
        // cannot be reused).
        let other = dir.join("replacement");
        fs::write(&other, &bytes).unwrap();
        fs::rename(&other, &victim).unwrap();
        let r = import_staging(&cache, &s, &target(), false, &|_| {});
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("changed after it was validated"));
        assert_eq!(r.outputs_written, 0);
        assert!(!cache.has_artifact(&s.artifacts[0]));
    }

    #[test]
    fn force_overwrite_repairs_a_corrupt_cached_artifact() {
        let t = tempfile::tempdir().unwrap();
        let (cache, dir) = staged(t.path(), 2);
        let s = crate::staging::validate_staging(&dir).unwrap();
        assert!(import_staging(&cache, &s, &target(), false, &|_| {})
            .errors
            .is_empty());
        let p = cache.artifact_path(&s.artifacts[0]);
        fs::remove_file(&p).unwrap();
        fs::write(&p, b"bad").unwrap();
        let r = import_staging(&cache, &s, &target(), true, &|_| {});
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(crate::hash_file(&p).unwrap(), s.artifacts[0].hash);
        assert!(fs::metadata(&p).unwrap().permissions().readonly());
    }
}
