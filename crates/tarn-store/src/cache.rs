//! The cache directory: paths, atomic writes, immutable artifacts.
//!
//! ```text
//! <root>/artifacts/<hash>[.<ext>]          content-addressed, read-only, never rewritten
//! <root>/outputs/<scope>/<inputHash>.json  one input's outputs (CacheOutput wrapper)
//! <root>/revisions/<scope>/<rev>.jsonl     downloaded revision mapping files
//! <root>/revisions/<scope>/<rev>.jsonl.sig its verified signature (tarn only; docs/trust.md)
//! <root>/.tarn/quarantine/<name>.<nanos>   artifacts that failed a SHA-256 check (tarn only)
//! ```
//!
//! Every file appears by rename (or link) of a complete temp file from the same directory,
//! so a reader — or a crash — never sees a partial file under a final name. Temp files are
//! named `.tarn-tmp.*` and are ignored by every reader.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tarn_core::CacheOutput;
use tarn_core::{ArtifactName, Hash};

use crate::error::StoreError;
use crate::hashing::hash_file;

/// Prefix of every temp file tarn creates; readers skip such names.
pub const TEMP_PREFIX: &str = ".tarn-tmp.";

/// Name of tarn's own directory in a cache root (Lake reads only `artifacts/`, `outputs/`
/// and `revisions/`).
pub(crate) const TARN_DIR: &str = ".tarn";

/// `<root>/.tarn`.
pub(crate) fn tarn_dir(cache: &Cache) -> PathBuf {
    cache.root().join(TARN_DIR)
}

/// A local Lake cache rooted at a directory (which need not exist yet).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What happened when an artifact was put into the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new file was published.
    New,
    /// The cache already had it; nothing was written.
    AlreadyPresent,
}

impl Cache {
    /// A cache at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/artifacts`.
    pub(crate) fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// `<root>/artifacts/<name>`.
    pub fn artifact_path(&self, name: &ArtifactName) -> PathBuf {
        self.artifacts_dir().join(name.file_name())
    }

    /// Whether the artifact file exists (its content is not checked).
    pub fn has_artifact(&self, name: &ArtifactName) -> bool {
        self.artifact_path(name).is_file()
    }

    /// `<root>/outputs/<scope>`.
    pub fn outputs_dir(&self, local_scope: &str) -> PathBuf {
        self.root.join("outputs").join(local_scope)
    }

    /// `<root>/outputs/<scope>/<input>.json`.
    pub(crate) fn outputs_path(&self, local_scope: &str, input: Hash) -> PathBuf {
        self.outputs_dir(local_scope).join(format!("{input}.json"))
    }

    /// `<root>/revisions/<scope>`.
    pub fn revisions_dir(&self, local_scope: &str) -> PathBuf {
        self.root.join("revisions").join(local_scope)
    }

    /// `<root>/revisions/<scope>/<rev>.jsonl`.
    pub fn revision_path(&self, local_scope: &str, rev: &str) -> PathBuf {
        self.revisions_dir(local_scope).join(format!("{rev}.jsonl"))
    }

    /// `<root>/revisions/<scope>/<rev>.jsonl.sig`: the signature accepted for that revision
    /// file, kept so a later `get` can check the saved copy and refuse older signatures.
    pub fn signature_path(&self, local_scope: &str, rev: &str) -> PathBuf {
        self.revisions_dir(local_scope)
            .join(format!("{rev}.jsonl{}", tarn_core::trust::SIGNATURE_SUFFIX))
    }

    /// `<root>/.tarn/quarantine`: tarn's own directory, which Lake and `prune` leave alone.
    pub(crate) fn quarantine_dir(&self) -> PathBuf {
        self.root.join(TARN_DIR).join("quarantine")
    }

    /// Moves artifact `name` out of `artifacts/` into `quarantine/` (renamed with a unique
    /// suffix), so nothing finds it under its name any more. Returns where it went.
    pub fn quarantine_artifact(&self, name: &ArtifactName) -> Result<PathBuf, StoreError> {
        let src = self.artifact_path(name);
        self.quarantine_file(&src, &name.file_name())
    }

    /// Moves `src` (an artifact or a temp file in `artifacts/`) into `quarantine/` as
    /// `<file_name>.<unique>`. Returns where it went.
    pub(crate) fn quarantine_file(
        &self,
        src: &Path,
        file_name: &str,
    ) -> Result<PathBuf, StoreError> {
        let dir = self.quarantine_dir();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dest = dir.join(format!("{file_name}.{nanos}-{}-{n}", std::process::id()));
        fs::rename(src, &dest).map_err(|e| StoreError::io(src, e))?;
        Ok(dest)
    }

    /// A fresh temp file in `artifacts/`, for a download or copy that is published later
    /// with [`Cache::publish_artifact`]. It is deleted if dropped unpublished.
    pub fn temp_artifact(&self) -> Result<TempFile, StoreError> {
        TempFile::new_in(&self.artifacts_dir())
    }

    /// Publishes a complete temp file as artifact `name`.
    ///
    /// The content is hashed (unless `known_hash` gives the hash the caller computed over the
    /// exact bytes it wrote) and must equal the name's hash; otherwise the temp file is
    /// deleted and [`StoreError::HashMismatch`] returned. The file is made read-only and
    /// linked into place without ever replacing an existing artifact.
    pub fn publish_artifact(
        &self,
        temp: TempFile,
        name: &ArtifactName,
        known_hash: Option<Hash>,
    ) -> Result<Inserted, StoreError> {
        let actual = match known_hash {
            Some(h) => h,
            None => hash_file(temp.path()).map_err(|e| StoreError::io(temp.path(), e))?,
        };
        if actual != name.hash {
            return Err(StoreError::HashMismatch {
                path: self.artifact_path(name),
                expected: name.hash,
                actual,
            });
        }
        make_read_only(temp.path()).map_err(|e| StoreError::io(temp.path(), e))?;
        temp.publish_no_clobber(&self.artifact_path(name))
    }

    /// Copies `src` into the cache as artifact `name`, verifying the copy's content (so a
    /// source that changes while it is read cannot slip a wrong file in). Skips the work when
    /// the artifact is already present.
    pub fn import_artifact(&self, src: &Path, name: &ArtifactName) -> Result<Inserted, StoreError> {
        if self.has_artifact(name) {
            return Ok(Inserted::AlreadyPresent);
        }
        let temp = self.temp_artifact()?;
        fs::copy(src, temp.path()).map_err(|e| StoreError::io(src, e))?;
        self.publish_artifact(temp, name, None)
    }

    /// Writes one `outputs/` file atomically. With `overwrite == false` an existing file is
    /// kept and `false` returned.
    pub fn write_outputs(
        &self,
        local_scope: &str,
        input: Hash,
        output: &CacheOutput,
        overwrite: bool,
    ) -> Result<bool, StoreError> {
        let path = self.outputs_path(local_scope, input);
        if !overwrite && path.exists() {
            return Ok(false);
        }
        write_atomic(&path, &output.to_bytes())?;
        Ok(true)
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory (created along with
/// any missing parents), then renamed over `path`. A killed process leaves either the old or
/// the new file, never a mix. The data is not flushed to disk first (Lake does not either, and
/// it made writing thousands of `outputs/` files slow); after a power loss a file may be
/// empty, which readers report as invalid JSON, i.e. a cache miss.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = TempFile::new_in(dir)?;
    temp.file_mut()
        .write_all(bytes)
        .map_err(|e| StoreError::io(temp.path(), e))?;
    temp.publish_replace(path)
}

/// Removes write permission for everyone (Lake makes cached artifacts read-only).
pub(crate) fn make_read_only(path: &Path) -> io::Result<()> {
    let mut perms = fs::metadata(path)?.permissions();
    perms.set_readonly(true);
    fs::set_permissions(path, perms)
}

/// A temp file that is removed on drop unless published.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
    published: bool,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    /// Creates `<dir>/.tarn-tmp.<pid>.<n>.<nanos>`, creating `dir` if needed.
    pub fn new_in(dir: &Path) -> Result<TempFile, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = dir.join(format!("{TEMP_PREFIX}{}.{n}.{nanos}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                        published: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(dir, e)),
            }
        }
    }

    /// The temp file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file handle, for writing.
    pub fn file_mut(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("temp file is open until published")
    }

    /// Moves the temp file into the cache's quarantine instead of publishing it (content
    /// that failed a check, kept for inspection, never under an artifact's name).
    pub fn quarantine(mut self, cache: &Cache, file_name: &str) -> Result<PathBuf, StoreError> {
        self.file.take();
        let dest = cache.quarantine_file(&self.path, file_name)?;
        self.published = true;
        Ok(dest)
    }

    /// Publishes by rename, replacing any file at `dest`.
    pub fn publish_replace(mut self, dest: &Path) -> Result<(), StoreError> {
        self.file.take();
        fs::rename(&self.path, dest).map_err(|e| StoreError::io(dest, e))?;
        self.published = true;
        Ok(())
    }

    /// Publishes without ever replacing an existing `dest`: hard link, then unlink the temp
    /// name. If `dest` already exists the temp file is discarded. Where hard links are not
    /// supported, falls back to a rename after an existence check.
    pub fn publish_no_clobber(mut self, dest: &Path) -> Result<Inserted, StoreError> {
        self.file.take();
        match fs::hard_link(&self.path, dest) {
            Ok(()) => {
                let _ = fs::remove_file(&self.path);
                self.published = true;
                Ok(Inserted::New)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Inserted::AlreadyPresent),
            Err(_) if !dest.exists() => {
                fs::rename(&self.path, dest).map_err(|e| StoreError::io(dest, e))?;
                self.published = true;
                Ok(Inserted::New)
            }
            Err(_) => Ok(Inserted::AlreadyPresent),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.published {
            self.file.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes a (read-only) cached file in a test: Windows refuses to delete a file whose
/// read-only attribute is set, so the attribute is cleared first.
#[cfg(test)]
#[allow(clippy::permissions_set_readonly_false)]
pub(crate) fn remove_read_only(path: &Path) {
    let mut perms = fs::metadata(path).unwrap().permissions();
    perms.set_readonly(false);
    fs::set_permissions(path, perms).unwrap();
    fs::remove_file(path).unwrap();
}
