//! `verify`: rehash cached artifacts (those a mapping file names, or every file of the
//! cache) on all cores, and check that `outputs/` and `revisions/` files parse.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tarn_core::trust::SignatureFile;
use tarn_core::CacheOutput;
use tarn_core::{ArtifactName, Hash, MappingFile};

use crate::cache::{Cache, TEMP_PREFIX};
use crate::hashing::hash_open_file;
use crate::parallel::{default_threads, par_map};

/// One problem found, naming its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Artifacts rehashed.
    pub artifacts: u64,
    /// Bytes rehashed.
    pub bytes: u64,
    /// `outputs/` files parsed.
    pub outputs_files: u64,
    /// `revisions/` files parsed.
    pub revision_files: u64,
    /// Temp files (`.tarn-tmp.*`) that were skipped.
    pub temp_files_skipped: u64,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Rehash throughput in bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a cached artifact failed its check.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArtifactCheckError {
    /// No file under the artifact's name (Lake's wording).
    #[error("artifact not found in cache")]
    Missing,
    /// Something other than a regular file under the name.
    #[error("not a regular file")]
    NotAFile,
    /// The file could not be read.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The content does not hash to the name.
    #[error("content hash is {actual}, but the name says {expected} (corrupt or truncated; {len} bytes)")]
    Mismatch {
        /// The hash of the content.
        actual: Hash,
        /// The hash in the name.
        expected: Hash,
        /// The file's size.
        len: u64,
    },
}

/// Checks that one artifact file exists, is a regular file and rehashes to its name.
/// Returns its size.
pub(crate) fn check_artifact(path: &Path, name: &ArtifactName) -> Result<u64, ArtifactCheckError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ArtifactCheckError::Missing),
        Err(e) => return Err(ArtifactCheckError::Io(e)),
    };
    if !meta.file_type().is_file() {
        return Err(ArtifactCheckError::NotAFile);
    }
    // A scrub is not a use: the access time stays (prune's order).
    let actual = crate::local_file::open_without_touching(path)
        .and_then(|f| hash_open_file(&f))
        .map_err(ArtifactCheckError::Io)?;
    if actual != name.hash {
        return Err(ArtifactCheckError::Mismatch {
            actual,
            expected: name.hash,
            len: meta.len(),
        });
    }
    Ok(meta.len())
}

/// Rehashes the named artifacts. `progress` gets each file's size as it is done.
pub fn verify_artifacts(
    cache: &Cache,
    names: &[ArtifactName],
    progress: &(dyn Fn(u64) + Sync),
) -> VerifyReport {
    let start = Instant::now();
    let mut report = VerifyReport::default();
    rehash_into(cache, names, progress, &mut report);
    report.elapsed = start.elapsed();
    report
}

fn rehash_into(
    cache: &Cache,
    names: &[ArtifactName],
    progress: &(dyn Fn(u64) + Sync),
    report: &mut VerifyReport,
) {
    let results = par_map(names, default_threads(), |name| {
        let r = check_artifact(&cache.artifact_path(name), name);
        progress(1);
        r
    });
    for (name, r) in names.iter().zip(results) {
        report.artifacts += 1;
        match r {
            Ok(len) => report.bytes += len,
            Err(e) => report.problems.push(Problem {
                path: cache.artifact_path(name),
                message: e.to_string(),
            }),
        }
    }
}

/// Lists the artifact files of the cache (temp files skipped and counted, odd names
/// reported as problems).
pub(crate) fn list_artifacts(cache: &Cache, report: &mut VerifyReport) -> Vec<ArtifactName> {
    let dir = cache.artifacts_dir();
    let mut names = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return names,
        Err(e) => {
            report.problems.push(Problem {
                path: dir,
                message: e.to_string(),
            });
            return names;
        }
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(s) = file_name.to_str() else {
            report.problems.push(Problem {
                path: entry.path(),
                message: "file name is not UTF-8".into(),
            });
            continue;
        };
        if s.starts_with(TEMP_PREFIX) {
            report.temp_files_skipped += 1;
            continue;
        }
        match ArtifactName::parse_strict(s) {
            Ok(n) => names.push(n),
            Err(e) => report.problems.push(Problem {
                path: entry.path(),
                message: format!("not an artifact file name ({e})"),
            }),
        }
    }
    names.sort();
    names
}

/// Files `<root>/<scope>/*<ext>` for any of `exts` (one level of scope directories), sorted.
fn scoped_files(root: &Path, exts: &[&str], report: &mut VerifyReport) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(scopes) = fs::read_dir(root) else {
        return out;
    };
    for scope in scopes.flatten() {
        let path = scope.path();
        if !path.is_dir() {
            report.problems.push(Problem {
                path,
                message: "expected a scope directory".into(),
            });
            continue;
        }
        let Ok(files) = fs::read_dir(&path) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) {
                report.temp_files_skipped += 1;
            } else if exts.iter().any(|e| name.ends_with(e)) {
                out.push(f.path());
            } else {
                report.problems.push(Problem {
                    path: f.path(),
                    message: format!("unexpected file (expected *{})", exts.join(" or *")),
                });
            }
        }
    }
    out.sort();
    out
}

/// Reads a small cache file for a scrub: bounded like a mapping file, and without touching
/// its access time (a scrub is not a use; prune's order stays).
fn read_quietly(p: &Path) -> Result<Vec<u8>, String> {
    crate::local_file::read_without_touching(p, crate::mapfile::mappings_limit().bytes)
        .map_err(|e| e.to_string())
}

/// A saved revision signature: `<rev>.jsonl.sig`.
const SIGNATURE_EXT: &str = ".jsonl.sig";

/// Scrubs the whole cache: every artifact rehashed, every `outputs/**.json` parsed, every
/// `revisions/**.jsonl` parsed. `total` is called once with the number of artifacts before
/// hashing starts; `progress` once per artifact.
pub fn scrub(cache: &Cache, total: &dyn Fn(u64), progress: &(dyn Fn(u64) + Sync)) -> VerifyReport {
    let start = Instant::now();
    let mut report = VerifyReport::default();
    let names = list_artifacts(cache, &mut report);
    total(names.len() as u64);
    rehash_into(cache, &names, progress, &mut report);

    let outputs = scoped_files(&cache.root().join("outputs"), &[".json"], &mut report);
    let results = par_map(&outputs, default_threads(), |p| {
        read_quietly(p).and_then(|b| {
            CacheOutput::parse(&b)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    for (p, r) in outputs.iter().zip(results) {
        report.outputs_files += 1;
        if let Err(message) = r {
            report.problems.push(Problem {
                path: p.clone(),
                message,
            });
        }
    }
    // Revision files, and the signatures tarn saved beside them (docs/trust.md).
    let revisions = scoped_files(
        &cache.root().join("revisions"),
        &[".jsonl", SIGNATURE_EXT],
        &mut report,
    );
    for p in &revisions {
        if p.to_string_lossy().ends_with(SIGNATURE_EXT) {
            let r = read_quietly(p).and_then(|b| {
                SignatureFile::parse(&b)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            if let Err(message) = r {
                report.problems.push(Problem {
                    path: p.clone(),
                    message,
                });
            }
            continue;
        }
        report.revision_files += 1;
        let r = read_quietly(p).and_then(|b| {
            let parsed = MappingFile::parse(&b).map_err(|e| e.to_string())?;
            match parsed.warnings.first() {
                Some(w) => Err(format!("line {}: {}", w.line, w.message)),
                None => Ok(()),
            }
        });
        if let Err(message) = r {
            report.problems.push(Problem {
                path: p.clone(),
                message,
            });
        }
    }
    report.elapsed = start.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_fixture::{generate, FixtureSpec};

    #[test]
    fn saved_signatures_are_expected_beside_revision_files_and_checked() {
        use tarn_core::trust::{Manifest, SecretKey, StrongDigest};
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = SecretKey::from_seed([7; 32], "");
        let sig = Manifest {
            key_id: key.public().key_id(),
            scope: "s".into(),
            revision: "r".into(),
            platform: None,
            toolchain: None,
            timestamp: 1,
            revision_file: StrongDigest::of(b""),
            artifacts: Default::default(),
        }
        .sign(&key)
        .unwrap();
        let revs = dir.path().join("revisions/pkg");
        fs::create_dir_all(&revs).unwrap();
        fs::write(revs.join("r.jsonl.sig"), sig).unwrap();
        fs::write(revs.join("bad.jsonl.sig"), b"not a signature\n").unwrap();
        fs::write(revs.join("stray.txt"), b"x").unwrap();
        let report = scrub(&cache, &|_| {}, &|_| {});
        let mut problems: Vec<String> = report
            .problems
            .iter()
            .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        problems.sort();
        assert_eq!(
            problems,
            ["bad.jsonl.sig", "stray.txt"],
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn scrub_counts_and_finds_corruption() {
        let t = tempfile::tempdir().unwrap();
        let fx = generate(&FixtureSpec::small(20), &t.path().join("c")).unwrap();
        let cache = Cache::new(t.path().join("c"));
        let r = scrub(&cache, &|_| {}, &|_| {});
        assert!(r.is_clean(), "{:?}", r.problems);
        assert_eq!((r.artifacts, r.bytes), (20, fx.total_bytes));
        let p = cache.artifact_path(&fx.artifacts[3].0);
        crate::cache::remove_read_only(&p);
        fs::write(&p, b"x").unwrap();
        fs::write(cache.artifacts_dir().join(".tarn-tmp.9"), b"x").unwrap();
        let r = scrub(&cache, &|_| {}, &|_| {});
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, p);
        assert_eq!(r.temp_files_skipped, 1);
        let names: Vec<_> = fx.artifacts.iter().map(|(n, _)| n.clone()).collect();
        let r = verify_artifacts(&cache, &names, &|_| {});
        assert_eq!(r.problems.len(), 1);
    }
}
