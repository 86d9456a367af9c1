//! The one validator of staging directories, shared by `unstage` and `put-staged`.
//!
//! A staging directory may come from an untrusted build job, and may even change while it is
//! read (a file swapped for a symbolic link to a secret, a FIFO, other content). The rules:
//!
//! - The directory is opened once ([`UntrustedDir`]:
//!   `O_DIRECTORY | O_NOFOLLOW`), and everything below is read relative to that descriptor,
//!   so swapping the directory (or a parent) for a link to elsewhere changes nothing.
//! - [`validate_staging`] checks the listing: every entry is `outputs.jsonl` or a strict
//!   artifact name (`<16 lower-case hex>[.<ext>]`), a regular file, and every artifact the
//!   mappings name is present. `outputs.jsonl` itself is opened like an artifact (below),
//!   bounded by [`Limits::max_mappings_bytes`](tarn_core::Limits).
//! - Every later read of a staged file goes through [`StagingDir::open_artifact`]: opened
//!   once with `openat(O_NOFOLLOW | O_NONBLOCK)` (a link is refused, a FIFO cannot block),
//!   checked to be a regular file *on the open descriptor*, and to be the very file (device,
//!   inode) that was validated. Consumers then read only from that descriptor and hash what they read:
//!   `unstage` copies into a private temp file and publishes only if the copy's hash is the
//!   name; `put-staged` streams from the descriptor and aborts the upload before its last
//!   byte if the streamed bytes do not hash to the name. So no swap, at any moment, changes
//!   what is imported or what leaves the machine.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tarn_core::trust::{StrongDigest, StrongHasher};
use tarn_core::StreamingHasher;
use tarn_core::{ArtifactName, Hash};

use crate::error::{FileChanged, StoreError};
use crate::mapfile::{parse_mappings, LoadedMappings};
use crate::stage::STAGED_MAPPINGS;
use crate::untrusted_dir::{EntryKind, FileId, UntrustedDir};

/// Reads at most `limit` bytes of a file opened with [`crate::open_untrusted`]; a longer file is an
/// error naming the limit (and the environment variable that raises it).
pub fn read_bounded(
    mut file: &File,
    path: &Path,
    limit: u64,
    limit_name: &str,
) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(StoreError::TooLarge {
            path: path.to_path_buf(),
            limit,
            env: limit_name.to_string(),
        });
    }
    Ok(bytes)
}

/// A staged artifact opened for reading: the descriptor that was checked and its length.
#[derive(Debug)]
pub struct OpenArtifact {
    /// The open file; read only from this.
    pub file: File,
    /// Its length when it was opened.
    pub len: u64,
    /// Its path (for messages only; never reopen it).
    pub path: PathBuf,
}

/// A staging directory that passed validation.
#[derive(Debug)]
pub struct StagingDir {
    /// The directory (for messages only: every read goes through `root`).
    pub dir: PathBuf,
    /// The directory, open: every entry is read relative to this descriptor.
    root: UntrustedDir,
    /// Its `outputs.jsonl`.
    pub mappings: LoadedMappings,
    /// The artifacts the mappings name (all present, all regular files).
    pub artifacts: Vec<ArtifactName>,
    /// Entries present but not named by the mappings, ignored and never read (as Lake
    /// does): file names, some followed by ` (why it could not be an artifact)`.
    pub unreferenced: Vec<String>,
    ids: BTreeMap<ArtifactName, Option<FileId>>,
}

/// One staged artifact whose content hashed to its name ([`StagingDir::check_contents`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedArtifact {
    /// Its name.
    pub name: ArtifactName,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 and size of the same bytes, when asked for.
    pub strong: Option<StrongDigest>,
}

impl StagingDir {
    /// Opens the staged artifact `name` as described in the module documentation: no link
    /// followed, no blocking, a regular file, and the same file that was validated.
    pub fn open_artifact(&self, name: &ArtifactName) -> Result<OpenArtifact, StoreError> {
        let path = self.dir.join(name.file_name());
        let (file, meta) = self.root.open_file(&name.file_name())?;
        let expected = self.ids.get(name).copied().flatten();
        if expected.is_some() && FileId::of(&meta) != expected {
            return Err(StoreError::Changed {
                path,
                source: FileChanged::Replaced,
            });
        }
        Ok(OpenArtifact {
            file,
            len: meta.len(),
            path,
        })
    }

    /// Hashes every named artifact (through [`StagingDir::open_artifact`], on every core)
    /// and returns one problem per file that is unreadable or whose content does not hash
    /// to its name, with the size of each good one and, with `strong`, its SHA-256, taken in
    /// the same pass. Used by `put-staged` to refuse a bad directory before anything is
    /// sent; the upload checks that what it sends still has the hashes, and a signature
    /// covers these digests (without a signature no SHA-256 is taken here).
    pub fn check_contents(&self, strong: bool) -> Result<Vec<CheckedArtifact>, Vec<String>> {
        self.check_contents_where(|_| strong)
    }

    /// [`StagingDir::check_contents`] taking the SHA-256 only of the artifacts `strong`
    /// picks: an unsigned upload needs it (for the request's signature) of those it sends.
    pub fn check_contents_where(
        &self,
        strong: impl Fn(&ArtifactName) -> bool + Sync,
    ) -> Result<Vec<CheckedArtifact>, Vec<String>> {
        let results = crate::parallel::par_map(
            &self.artifacts,
            crate::parallel::default_threads(),
            |name| -> Result<CheckedArtifact, StoreError> {
                let mut open = self.open_artifact(name)?;
                let started = strong(name).then(StrongHasher::new);
                let (actual, size, digest) = read_hashing(&mut open.file, open.len, started)
                    .map_err(|e| StoreError::io(&open.path, e))?;
                if actual != name.hash {
                    return Err(StoreError::Invalid {
                        path: open.path,
                        message: format!("content hash {actual} does not match the name"),
                    });
                }
                Ok(CheckedArtifact {
                    name: name.clone(),
                    size,
                    strong: digest.map(StrongHasher::finish),
                })
            },
        );
        let mut good = Vec::new();
        let mut problems = Vec::new();
        for r in results {
            match r {
                Ok(checked) => good.push(checked),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if problems.is_empty() {
            Ok(good)
        } else {
            Err(problems)
        }
    }
}

/// Lake's content hash of exactly `len` bytes read from `reader` (never mapped: the file
/// may be truncated under us; more or fewer bytes than `len` is an error), and the SHA-256
/// of the same bytes in the same pass, for signing what was validated (docs/trust.md).
pub fn hash_reader_strong(reader: &mut impl Read, len: u64) -> io::Result<(Hash, StrongDigest)> {
    let (hash, _, strong) = read_hashing(reader, len, Some(StrongHasher::new()))?;
    Ok((hash, strong.expect("a strong hasher was given").finish()))
}

fn read_hashing(
    reader: &mut impl Read,
    len: u64,
    mut strong: Option<StrongHasher>,
) -> io::Result<(Hash, u64, Option<StrongHasher>)> {
    let mut hasher = StreamingHasher::new(len);
    let mut buf = vec![0u8; (len as usize).clamp(4096, 256 * 1024)];
    let mut limited = reader.take(len + 1);
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(h) = strong.as_mut() {
            h.update(&buf[..n]);
        }
    }
    let seen = hasher.bytes_seen();
    hasher.finish().map(|h| (h, seen, strong)).ok_or_else(|| {
        FileChanged::Size {
            expected: len,
            seen,
        }
        .into_io()
    })
}

/// Checks a staging directory without importing anything. Returns every problem found
/// (each naming its file), not just the first. The directory is opened once
/// (as an untrusted directory: a symbolic link as its last component is refused) and everything,
/// `outputs.jsonl` included, is read relative to that descriptor, then and later.
pub fn validate_staging(dir: &Path) -> Result<StagingDir, Vec<String>> {
    let mut problems = Vec::new();
    let root = UntrustedDir::open(dir).map_err(|e| vec![e.to_string()])?;
    let entries = root.entries().map_err(|e| vec![e.to_string()])?;
    let mut present: BTreeMap<ArtifactName, Option<FileId>> = BTreeMap::new();
    // Entries that would be refused if outputs.jsonl names them, and names it cannot name.
    let mut refused: BTreeMap<ArtifactName, (String, &str)> = BTreeMap::new();
    let mut ignored: Vec<String> = Vec::new();
    let mut have_mappings = false;
    for (file_name, kind) in entries {
        let path = dir.join(&file_name);
        let Some(name) = file_name.to_str().map(str::to_string) else {
            // outputs.jsonl cannot name it: ignored, never read (as Lake does).
            ignored.push(format!(
                "{} (file name is not UTF-8)",
                file_name.to_string_lossy()
            ));
            continue;
        };
        let (what, id) = match kind {
            EntryKind::Symlink => (Some("is a symbolic link"), None),
            EntryKind::Dir => (Some("is a directory"), None),
            EntryKind::Special => (Some("is not a regular file (FIFO, socket or device)"), None),
            EntryKind::File(id) => (None, id),
        };
        if crate::temp::temp_owner(&name).is_some() {
            // A temp file of an interrupted `stage`: never imported or uploaded.
            tracing::warn!(
                "{}: temp file of an interrupted run; ignored",
                path.display()
            );
            continue;
        }
        if name == STAGED_MAPPINGS {
            match what {
                Some(w) => problems.push(format!(
                    "{}: {w}; it must be a regular file",
                    path.display()
                )),
                None => have_mappings = true,
            }
            continue;
        }
        let parsed = match ArtifactName::parse_strict(&name) {
            Ok(n) => n,
            Err(e) => {
                // Not an artifact name, so outputs.jsonl cannot name it: ignored, never read.
                ignored.push(format!("{name} (not an artifact file name: {e})"));
                continue;
            }
        };
        if let Some(w) = what {
            // A problem only if outputs.jsonl names it (decided below); otherwise ignored.
            refused.insert(parsed, (path.display().to_string(), w));
            continue;
        }
        present.insert(parsed, id);
    }
    if !have_mappings {
        if !problems.iter().any(|p| p.contains(STAGED_MAPPINGS)) {
            problems.push(format!(
                "{}: mappings file not found in staging directory",
                dir.join(STAGED_MAPPINGS).display()
            ));
        }
        return Err(problems);
    }
    let mappings_path = dir.join(STAGED_MAPPINGS);
    let mappings = match root
        .open_file(STAGED_MAPPINGS)
        .and_then(|(f, _)| {
            read_bounded(
                &f,
                &mappings_path,
                crate::limits().max_mappings_bytes,
                tarn_core::MAX_MAPPINGS_ENV,
            )
        })
        .and_then(|bytes| parse_mappings(&mappings_path, bytes))
    {
        Ok(m) => m,
        Err(e) => {
            problems.push(e.to_string());
            return Err(problems);
        }
    };
    let artifacts = match mappings.artifacts() {
        Ok(a) => a,
        Err(e) => {
            problems.push(e.to_string());
            return Err(problems);
        }
    };
    let mut ids = BTreeMap::new();
    for a in &artifacts {
        if let Some((path, w)) = refused.remove(a) {
            problems.push(format!("{path}: {w}; artifacts must be regular files"));
            continue;
        }
        match present.get(a) {
            Some(id) => {
                ids.insert(a.clone(), *id);
            }
            None => problems.push(format!(
                "output artifact not found in staging directory: {}",
                dir.join(a.file_name()).display()
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Lake ignores every file outputs.jsonl does not name; so does tarn, with a warning.
    let unreferenced = present
        .keys()
        .filter(|n| !ids.contains_key(*n))
        .map(|n| n.file_name())
        .chain(
            refused
                .iter()
                .map(|(n, (_, w))| format!("{} ({w})", n.file_name())),
        )
        .chain(ignored)
        .collect();
    Ok(StagingDir {
        dir: dir.to_path_buf(),
        root,
        mappings,
        artifacts,
        unreferenced,
        ids,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use tarn_core::{ArtifactName, Hash};

    fn staged(dir: &Path, content: &[u8]) -> ArtifactName {
        std::fs::create_dir_all(dir).unwrap();
        let name = ArtifactName::new(Hash::of_bytes(content), "olean");
        std::fs::write(dir.join(name.file_name()), content).unwrap();
        std::fs::write(
            dir.join("outputs.jsonl"),
            format!(
                "\"2026-03-17\"\n[\"0000000000000001\",\"{}\"]\n",
                name.file_name()
            ),
        )
        .unwrap();
        name
    }

    #[test]
    fn a_directory_swapped_for_a_link_after_validation_is_never_read() {
        let tmp = std::env::temp_dir().join(format!("tarn-untrusted-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let dir = tmp.join("staging");
        let name = staged(&dir, b"the staged bytes");
        // An outside directory with a file of the same name (a hard link would pass the
        // identity check; a copy of other content is enough to see where bytes come from).
        let outside = tmp.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join(name.file_name()), b"outside bytes!!!").unwrap();
        let s = validate_staging(&dir).unwrap();
        std::fs::rename(&dir, tmp.join("real")).unwrap();
        std::os::unix::fs::symlink(&outside, &dir).unwrap();
        let mut open = s.open_artifact(&name).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut open.file, &mut got).unwrap();
        assert_eq!(got, b"the staged bytes");
        // Given as a link, the directory is refused outright.
        let e = validate_staging(&dir).unwrap_err();
        assert!(e[0].contains("is a symbolic link"), "{e:?}");
        // Entry names cannot leave the directory.
        let d = UntrustedDir::open(&tmp.join("real")).unwrap();
        for bad in ["..", "../outside/x", "", "."] {
            assert!(d.open_file(bad).is_err(), "{bad:?}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
