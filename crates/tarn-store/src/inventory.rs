//! An inventory of a cache for `prune` and `stats`: every artifact, `outputs/` entry and
//! `revisions/` file with its size and last use, which artifacts each entry names, and the
//! files that are not Lake's (reported, never touched).
//!
//! "Last use" is the newest of the file's access time, its modification time and tarn's
//! usage record (see `usage`), in nanoseconds since the Unix epoch; an entry counts as used
//! when any artifact it names was, since a build that reads an entry reads its artifacts.
//! Each file's times as the inventory saw them ([`FileStamp`]) are kept too: `prune` stats
//! the file again just before removing it, and a stamp that moved means it was used meanwhile.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use tarn_core::{artifacts_of, ArtifactName, CacheOutput, Hash};

use crate::cache::TARN_DIR;
use crate::cache::{Cache, TEMP_PREFIX};
use crate::error::StoreError;
use crate::open_dir::OpenDir;
use crate::parallel::{default_threads, par_map};
use crate::usage::read_usage;
use crate::verify::Problem;

/// A file in the cache that is not Lake's or tarn's: left alone, reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFile {
    /// The path.
    pub path: PathBuf,
    /// Its size in bytes (0 for a directory or something unreadable).
    pub bytes: u64,
}

pub(crate) use crate::open_dir::{unix_nanos, FileStamp};

/// One artifact file.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactItem {
    /// The file name in `artifacts/`.
    pub file_name: String,
    /// Apparent size in bytes.
    pub size: u64,
    /// Last use, nanoseconds since the Unix epoch (file times and tarn's record).
    pub used: u64,
    /// The file's times as the inventory saw them.
    pub stamp: FileStamp,
}

/// One `outputs/<scope>/<input>.json` entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryItem {
    /// Its local scope (directory name).
    pub scope: String,
    /// The input hash (file stem).
    pub input: Hash,
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// The entry file's own times as the inventory saw them.
    pub stamp: FileStamp,
    /// Indices (into the artifact list) of the artifacts it names that exist (none when the
    /// entry cannot be read: Lake counts it as a miss).
    pub refs: Vec<u32>,
}

impl EntryItem {
    /// Last use of the entry and its artifacts, nanoseconds since the Unix epoch.
    pub(crate) fn used(&self, artifacts: &[ArtifactItem]) -> u64 {
        self.refs
            .iter()
            .map(|&i| artifacts[i as usize].used)
            .fold(self.stamp.used(), u64::max)
    }
}

/// One `revisions/<scope>/<rev>.jsonl` file.
#[derive(Debug, Clone)]
pub(crate) struct RevisionItem {
    /// Its local scope (directory name).
    pub scope: String,
    /// The revision (file stem).
    pub rev: String,
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Last use, nanoseconds since the Unix epoch.
    pub used: u64,
}

/// Everything `prune` and `stats` need to know about a cache.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    /// Artifacts, sorted by file name.
    pub artifacts: Vec<ArtifactItem>,
    /// `outputs/` entries.
    pub entries: Vec<EntryItem>,
    /// `revisions/` files.
    pub revisions: Vec<RevisionItem>,
    /// Files that are not Lake's.
    pub unknown: Vec<UnknownFile>,
    /// Temp files of writers (`.tarn-tmp.*`), skipped.
    pub temp_files: u64,
    /// Directories or files that could not be read.
    pub problems: Vec<Problem>,
}

impl Inventory {
    /// The index of an artifact by file name.
    pub(crate) fn artifact_index(&self) -> HashMap<&str, u32> {
        self.artifacts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.file_name.as_str(), i as u32))
            .collect()
    }
}

const LAKE_DIRS: [&str; 3] = ["artifacts", "outputs", "revisions"];

/// Checks that `root` is a Lake cache: an existing directory holding `artifacts/`,
/// `outputs/` or `revisions/`, or nothing but tarn's own files. Anything else is refused,
/// so that a mistyped `--cache-dir` never loses someone's files.
pub(crate) fn check_is_cache(cache: &Cache) -> Result<(), StoreError> {
    let root = cache.root();
    let meta = fs::metadata(root).map_err(|e| StoreError::io(root, e))?;
    if !meta.is_dir() {
        return Err(StoreError::Invalid {
            path: root.to_path_buf(),
            message: "not a directory, so not a Lake cache".into(),
        });
    }
    let mut others = Vec::new();
    let mut lake = false;
    for e in fs::read_dir(root).map_err(|e| StoreError::io(root, e))? {
        let e = e.map_err(|e| StoreError::io(root, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if LAKE_DIRS.contains(&name.as_str()) {
            lake = true;
        } else if name != TARN_DIR && !name.starts_with(TEMP_PREFIX) {
            others.push(name);
        }
    }
    if lake || others.is_empty() {
        return Ok(());
    }
    others.sort();
    others.truncate(5);
    Err(StoreError::Invalid {
        path: root.to_path_buf(),
        message: format!(
            "not a Lake cache: no artifacts/, outputs/ or revisions/, but other files ({}); refusing to touch it",
            others.join(", ")
        ),
    })
}

fn read_dir_or_report(dir: &Path, problems: &mut Vec<Problem>) -> Vec<fs::DirEntry> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.flatten().collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            problems.push(Problem {
                path: dir.to_path_buf(),
                message: e.to_string(),
            });
            Vec::new()
        }
    }
}

fn unknown(path: PathBuf, meta: Option<&Metadata>) -> UnknownFile {
    let bytes = meta.filter(|m| m.is_file()).map_or(0, Metadata::len);
    UnknownFile { path, bytes }
}

/// Takes the inventory of a cache (which [`check_is_cache`] accepted).
pub(crate) fn take_inventory(cache: &Cache) -> Inventory {
    let mut inv = Inventory::default();
    let root = cache.root();
    for e in read_dir_or_report(root, &mut inv.problems) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            inv.temp_files += 1;
        } else if !LAKE_DIRS.contains(&name.as_str()) && name != TARN_DIR {
            inv.unknown
                .push(unknown(e.path(), e.metadata().ok().as_ref()));
        }
    }
    let record = read_usage(cache).times;
    scan_artifacts(cache, &record, &mut inv);
    // The index borrows the artifact list, which is set aside while entries are added.
    let artifacts = std::mem::take(&mut inv.artifacts);
    let index: HashMap<&str, u32> = artifacts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.file_name.as_str(), i as u32))
        .collect();
    scan_entries(cache, &index, &mut inv);
    drop(index);
    inv.artifacts = artifacts;
    scan_revisions(cache, &mut inv);
    inv
}

fn scan_artifacts(cache: &Cache, record: &HashMap<String, u64>, inv: &mut Inventory) {
    let dir = cache.artifacts_dir();
    let mut listed: Vec<(String, fs::DirEntry)> = Vec::new();
    for e in read_dir_or_report(&dir, &mut inv.problems) {
        let Ok(name) = e.file_name().into_string() else {
            inv.unknown
                .push(unknown(e.path(), e.metadata().ok().as_ref()));
            continue;
        };
        if name.starts_with(TEMP_PREFIX) {
            inv.temp_files += 1;
            continue;
        }
        match ArtifactName::parse_strict(&name) {
            Ok(_) => listed.push((name, e)),
            Err(_) => inv
                .unknown
                .push(unknown(e.path(), e.metadata().ok().as_ref())),
        }
    }
    listed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // One stat per file, relative to the listed directory's descriptor (a directory entry's
    // metadata is an `fstatat` of its name, no path walk), on every core.
    let metas = par_map(&listed, default_threads(), |(_, e)| e.metadata());
    inv.artifacts.reserve(listed.len());
    for ((name, _), meta) in listed.into_iter().zip(metas) {
        match meta {
            Ok(m) if m.file_type().is_file() => {
                let stamp = FileStamp::of(&m);
                // The record is in whole seconds.
                let recorded = record
                    .get(&name)
                    .map_or(0, |s| s.saturating_mul(1_000_000_000));
                inv.artifacts.push(ArtifactItem {
                    file_name: name,
                    size: m.len(),
                    used: stamp.used().max(recorded),
                    stamp,
                });
            }
            Ok(m) => inv.unknown.push(unknown(dir.join(&name), Some(&m))),
            // Removed since it was listed: not there any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => inv.problems.push(Problem {
                path: dir.join(&name),
                message: e.to_string(),
            }),
        }
    }
}

/// The files `<sub>/<scope>/<stem><ext>` of one part of the cache.
struct ScopedFiles {
    /// The scope directories: name and path.
    scopes: Vec<(String, PathBuf)>,
    /// The files: index into `scopes`, stem, file name.
    files: Vec<(usize, String, String)>,
}

/// Files `<sub>/<scope>/<stem><ext>`; the rest reported as unknown.
fn scoped_files(
    root: &Path,
    ext: &str,
    stem_ok: impl Fn(&str) -> bool,
    inv: &mut Inventory,
) -> ScopedFiles {
    let mut out = ScopedFiles {
        scopes: Vec::new(),
        files: Vec::new(),
    };
    for scope in read_dir_or_report(root, &mut inv.problems) {
        let path = scope.path();
        let scope_name = scope.file_name().to_string_lossy().into_owned();
        if scope_name.starts_with(TEMP_PREFIX) {
            inv.temp_files += 1;
            continue;
        }
        if !scope.file_type().is_ok_and(|t| t.is_dir()) {
            inv.unknown
                .push(unknown(path, scope.metadata().ok().as_ref()));
            continue;
        }
        let scope_index = out.scopes.len();
        for f in read_dir_or_report(&path, &mut inv.problems) {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                inv.temp_files += 1;
                continue;
            }
            match name.strip_suffix(ext) {
                Some(stem) if stem_ok(stem) && f.file_type().is_ok_and(|t| t.is_file()) => {
                    let stem = stem.to_string();
                    out.files.push((scope_index, stem, name))
                }
                // tarn's saved revision signatures (docs/trust.md): tarn's, not unknown.
                None if ext == ".jsonl" && name.ends_with(".jsonl.sig") => {}
                _ => inv
                    .unknown
                    .push(unknown(f.path(), f.metadata().ok().as_ref())),
            }
        }
        out.scopes.push((scope_name, path));
    }
    out
}

fn scan_entries(cache: &Cache, index: &HashMap<&str, u32>, inv: &mut Inventory) {
    let found = scoped_files(
        &cache.root().join("outputs"),
        ".json",
        |stem| Hash::from_hex(stem).is_some(),
        inv,
    );
    let mut dirs = Vec::with_capacity(found.scopes.len());
    for (_, path) in &found.scopes {
        match OpenDir::open(path) {
            Ok(d) => dirs.push(Some(d)),
            Err(e) => {
                // Removed since it was listed: its entries are gone too.
                if e.kind() != io::ErrorKind::NotFound {
                    inv.problems.push(Problem {
                        path: path.clone(),
                        message: e.to_string(),
                    });
                }
                dirs.push(None);
            }
        }
    }
    let limit = crate::mapfile::mappings_limit().bytes;
    // One open, stat and read per entry, relative to its scope directory, on every core.
    let scanned = par_map(&found.files, default_threads(), |(scope, _, name)| {
        let dir = dirs[*scope].as_ref()?;
        let (meta, refs) = match dir.read_small(name, limit) {
            Ok((meta, bytes)) => (meta, parse_entry(&bytes)),
            // Removed since it was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            // Unreadable (Lake counts it as a miss), but there: its size still counts.
            Err(_) => (fs::symlink_metadata(dir.path().join(name)).ok()?, None),
        };
        let refs = refs.map(|names| {
            names
                .iter()
                .filter_map(|n| index.get(n.file_name().as_str()).copied())
                .collect::<Vec<u32>>()
        });
        Some((meta, refs))
    });
    inv.entries.reserve(found.files.len());
    for ((scope, stem, name), r) in found.files.into_iter().zip(scanned) {
        // `None`: removed since it was listed.
        let (Some((meta, refs)), Some(input)) = (r, Hash::from_hex(&stem)) else {
            continue;
        };
        let (scope_name, scope_path) = &found.scopes[scope];
        inv.entries.push(EntryItem {
            scope: scope_name.clone(),
            input,
            path: scope_path.join(name),
            size: meta.len(),
            stamp: FileStamp::of(&meta),
            refs: refs.unwrap_or_default(),
        });
    }
}

/// The artifacts an entry's bytes name; `None` when they do not parse.
fn parse_entry(bytes: &[u8]) -> Option<Vec<ArtifactName>> {
    let out = CacheOutput::parse(bytes).ok()?;
    artifacts_of(&out.data).ok()
}

/// The artifacts an `outputs/` entry names; `None` when it cannot be read or parsed (Lake
/// counts such an entry as a miss). Entries are small: their size is bounded by the
/// mapping-file limit.
pub(crate) fn entry_artifacts(path: &Path) -> Option<Vec<ArtifactName>> {
    let limit = crate::mapfile::mappings_limit().bytes;
    let bytes = crate::local_file::read_without_touching(path, limit).ok()?;
    parse_entry(&bytes)
}

fn scan_revisions(cache: &Cache, inv: &mut Inventory) {
    let found = scoped_files(
        &cache.root().join("revisions"),
        ".jsonl",
        |stem| !stem.is_empty(),
        inv,
    );
    for (scope, rev, name) in found.files {
        let (scope, dir) = &found.scopes[scope];
        let path = dir.join(name);
        if let Ok(meta) = fs::symlink_metadata(&path) {
            inv.revisions.push(RevisionItem {
                scope: scope.clone(),
                rev,
                path,
                size: meta.len(),
                used: FileStamp::of(&meta).used(),
            });
        }
    }
}
