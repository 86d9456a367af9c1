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
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tarn_core::StreamingHasher;
use tarn_core::{ArtifactName, Hash};

use crate::error::{FileChanged, StoreError};
use crate::mapfile::{parse_mappings, LoadedMappings};
use crate::stage::STAGED_MAPPINGS;
use crate::untrusted_dir::{EntryKind, UntrustedDir};

/// Identity of a validated file, to notice it being swapped before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of a file from its device and inode numbers.
    #[cfg(unix)]
    pub(crate) fn from_raw(dev: u64, ino: u64) -> FileId {
        FileId { dev, ino }
    }

    /// The identity of the file `meta` describes (`None` where the platform has none).
    pub fn of(meta: &fs::Metadata) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// Opens a file that someone else controls for reading: without following a symbolic link
/// in the last component, without blocking (a FIFO or device cannot hang the caller), and
/// only if the open descriptor is a regular file. Returns the file and its metadata, taken
/// from the descriptor, so every later read sees exactly the file that was checked.
pub fn open_untrusted(path: &Path) -> Result<(File, fs::Metadata), StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    // Without O_NOFOLLOW (Windows) a link is refused by looking first; a link swapped in
    // between the look and the open is the documented gap (docs/platforms.md).
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path)
        .map_err(|e| StoreError::io(path, e))?
        .file_type()
        .is_symlink()
    {
        return Err(StoreError::Symlink {
            path: path.to_path_buf(),
        });
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return StoreError::Symlink {
                path: path.to_path_buf(),
            };
        }
        StoreError::io(path, e)
    })?;
    let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
    if !meta.is_file() {
        return Err(StoreError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok((file, meta))
}

/// Reads at most `limit` bytes of a file opened with [`open_untrusted`]; a longer file is an
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

    /// Hashes every named artifact (through [`StagingDir::open_artifact`]) and returns one
    /// problem per file that is unreadable or whose content does not hash to its name, with
    /// the size of each good one. Used by `put-staged` to refuse a bad directory before
    /// anything is sent; the upload itself hashes again what it sends.
    pub fn check_contents(&self) -> Result<Vec<(ArtifactName, u64)>, Vec<String>> {
        let results = crate::parallel::par_map(
            &self.artifacts,
            crate::parallel::default_threads(),
            |name| -> Result<u64, StoreError> {
                let mut open = self.open_artifact(name)?;
                let (actual, len) = hash_reader(&mut open.file, open.len)
                    .map_err(|e| StoreError::io(&open.path, e))?;
                if actual != name.hash {
                    return Err(StoreError::Invalid {
                        path: open.path,
                        message: format!("content hash {actual} does not match the name"),
                    });
                }
                Ok(len)
            },
        );
        let mut good = Vec::new();
        let mut problems = Vec::new();
        for (name, r) in self.artifacts.iter().zip(results) {
            match r {
                Ok(len) => good.push((name.clone(), len)),
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
/// may be truncated under us). More or fewer bytes than `len` is an error.
pub fn hash_reader(reader: &mut impl Read, len: u64) -> io::Result<(Hash, u64)> {
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
    }
    let seen = hasher.bytes_seen();
    hasher.finish().map(|h| (h, seen)).ok_or_else(|| {
        FileChanged::Size {
            expected: len,
            seen,
        }
        .into_io()
    })
}

/// Checks a staging directory without importing anything. Returns every problem found
/// (each naming its file), not just the first. The directory is opened once
/// ([`UntrustedDir`]: a symbolic link as its last component is refused) and everything,
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
