//! `restore`: puts Lean module outputs from the cache into Lake's build directories, at
//! Lake's paths, with the `.trace` Lake's up-to-date rule accepts (docs/restore.md).
//!
//! For each mapping entry of each package:
//!
//! * an archive (`"<h>.ltar"`, or descriptors with `"l"`) is read from the cache, its content
//!   hash checked against its name and its container vetted ([`tarn_core::LtarIndex`]:
//!   bare names, two bases, nothing truncated), hard-linked into a private staging
//!   directory inside the build directory, and unpacked there by **one** `leantar -x -j -`
//!   run over every archive; the module is named by its `.ilean` (cross-checked with the
//!   file stem and the `.c` header), the unpacked files are hashed, and moved into place;
//! * plain descriptors (`{"o": […], "i": …, "c": …}`) are copied from the cache, each one
//!   hash-checked (only the `.ilean` unless all artifacts are restored, as Lake does);
//! * anything else (`.o`, `.a`, executables) is not a module output and is left to Lake.
//!
//! A module is placed in this order: old trace removed, old outputs and their `.hash` files
//! removed, new outputs renamed into place, archive linked (when restoring all), trace
//! written (temp file, rename). A kill at any point leaves no partial file under a final name
//! and no trace naming files that are not there. A module whose trace already has the entry's
//! input hash and whose files exist is left alone; one whose trace has another hash is not
//! touched without `force`.

mod index;
mod leantar;
mod place;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tarn_core::{
    artifacts_of, fetch_trace_text, module_ext_base, module_output_descrs, ArtifactName,
    BuildLayout, Hash, LtarError, LtarIndex, ModuleFiles, ModuleName, SavedTrace,
};

use crate::cache::Cache;
use crate::error::StoreError;
use crate::local_file::{read_local_file, Links, ReadLimit};
use crate::parallel::{default_threads, par_map};

pub use index::{RESTORE_INDEX_FILE, RESTORE_INDEX_SCHEMA};
pub use leantar::{find_leantar, leantar_version, LEANTAR_ENV};
use leantar::{unpack_batch, BatchItem};
use place::{
    copy_into_place, ensure_dir, link_or_copy, move_into_place, remove_if_exists, write_into_place,
};

/// Every extension Lake clears before it writes a module's outputs
/// (`Module.clearOutputArtifacts`).
const MODULE_EXTS: [&str; 8] = [
    "ltar",
    "olean",
    "olean.server",
    "olean.private",
    "ilean",
    "ir",
    "c",
    "bc",
];

/// Most bytes of an `.ilean` or trace read to learn a module's name or state.
const MAX_SMALL_FILE_BYTES: u64 = 256 << 20;

/// One package to restore into.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    /// The package name (for reports).
    pub package: String,
    /// The package directory; every write stays below it.
    pub dir: PathBuf,
    /// Its build directories.
    pub layout: BuildLayout,
    /// Lake's `restoreAllArtifacts` for this package (with `LAKE_RESTORE_ARTIFACTS` applied).
    pub restore_all: bool,
    /// The mapping entries to restore: input hash → outputs JSON.
    pub entries: Vec<(Hash, Value)>,
}

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The leantar binary; `None`: found by [`find_leantar`] when an archive needs it.
    pub leantar: Option<PathBuf>,
    /// Replace modules whose trace has another input hash.
    pub force: bool,
    /// Worker threads for hashing and placing (0: one per core).
    pub threads: usize,
}

/// A module restored or found up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredModule {
    /// The package.
    pub package: String,
    /// The module name.
    pub module: String,
    /// The mapping entry's input hash (the trace's `depHash`).
    pub input: Hash,
}

/// A mapping entry that could not be restored.
#[derive(Debug)]
pub struct RestoreProblem {
    /// The package.
    pub package: String,
    /// The mapping entry's input hash.
    pub input: Hash,
    /// The module, when known, else the artifact.
    pub subject: String,
    /// What went wrong.
    pub error: RestoreError,
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Modules written.
    pub restored: Vec<RestoredModule>,
    /// Modules already in place for their input hash (nothing written).
    pub up_to_date: Vec<RestoredModule>,
    /// Entries that are not module outputs (object files, libraries, executables).
    pub not_modules: usize,
    /// Entries that failed; the others were still restored.
    pub problems: Vec<RestoreProblem>,
    /// The leantar run, with its `--version`, if any archive was unpacked.
    pub leantar: Option<(PathBuf, String)>,
}

impl RestoreReport {
    /// Whether every entry was restored or already up to date.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why a module was not restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An I/O error on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A symbolic link where tarn would create or write into a directory.
    #[error("{}: is a symbolic link; tarn writes only into real directories below the package", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The archive is not in the cache.
    #[error("{}: not in the cache (run `tarn get` first)", path.display())]
    Missing {
        /// Where it should be.
        path: PathBuf,
    },
    /// The archive's bytes do not hash to its name.
    #[error("{}: content hash is {actual}, but the name says {expected}", path.display())]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The hash in the name.
        expected: Hash,
        /// The hash of the content.
        actual: Hash,
    },
    /// The archive is refused before leantar sees it.
    #[error("{}: {source}", path.display())]
    BadArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        source: LtarError,
    },
    /// The archive was packed for another input hash than the mapping entry names.
    #[error("{}: packed for input {packed}, but the mapping entry is for {input} (Lake would rebuild it)", path.display())]
    OtherInput {
        /// The archive.
        path: PathBuf,
        /// The header's depHash.
        packed: Hash,
        /// The mapping entry's input hash.
        input: Hash,
    },
    /// leantar could not be found.
    #[error("no leantar: {reason}")]
    NoLeantar {
        /// Why.
        reason: String,
    },
    /// leantar failed as a whole.
    #[error("{}: {message}", leantar.display())]
    Leantar {
        /// The binary.
        leantar: PathBuf,
        /// What happened.
        message: String,
    },
    /// leantar did not unpack this archive.
    #[error("{}: leantar did not unpack it: {message}", path.display())]
    NotUnpacked {
        /// The archive.
        path: PathBuf,
        /// leantar's message about it, if any.
        message: String,
    },
    /// The module's identity could not be established or does not fit.
    #[error("{}: {message}", path.display())]
    Identity {
        /// The file read (archive or `.ilean`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The archive's own trace lists other outputs than it holds.
    #[error("{}: its trace lists {listed}, but it holds {held}", path.display())]
    TraceDisagrees {
        /// The archive.
        path: PathBuf,
        /// What the trace names.
        listed: String,
        /// What was unpacked.
        held: String,
    },
    /// Two mapping entries restore the same module.
    #[error("module {module} is also the output of input {other} in this mapping (name collision); only that one was restored")]
    Collision {
        /// The module.
        module: String,
        /// The entry that took it.
        other: Hash,
    },
    /// A trace for another input hash is in the way.
    #[error("{}: the existing trace is for input {found}, not {input}; not replaced (pass --force to replace it)", path.display())]
    ExistingTrace {
        /// The trace.
        path: PathBuf,
        /// Its depHash, or `invalid`.
        found: String,
        /// The mapping entry's input hash.
        input: Hash,
    },
    /// Outputs that are not a Lean module's.
    #[error("not a Lean module's outputs: {0}")]
    NotModuleOutputs(String),
}

impl RestoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> RestoreError {
        RestoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a mapping entry asks for.
enum EntryKind {
    /// A module archive.
    Archive(ArtifactName),
    /// A module's separate artifacts.
    Plain(Vec<ArtifactName>),
    /// Not a module output.
    Other,
}

fn classify(value: &Value) -> Result<EntryKind, RestoreError> {
    match value {
        Value::String(s) => match ArtifactName::parse(s) {
            Ok(a) if a.ext == "ltar" => Ok(EntryKind::Archive(a)),
            _ => Ok(EntryKind::Other),
        },
        Value::Object(obj) if obj.contains_key("o") => {
            if let Some(Value::String(l)) = obj.get("l") {
                let a = ArtifactName::parse(l)
                    .map_err(|e| RestoreError::NotModuleOutputs(e.to_string()))?;
                return Ok(EntryKind::Archive(a));
            }
            let names =
                artifacts_of(value).map_err(|e| RestoreError::NotModuleOutputs(e.to_string()))?;
            Ok(EntryKind::Plain(names))
        }
        _ => Ok(EntryKind::Other),
    }
}

/// One archive to unpack.
struct ArchiveWork {
    target: usize,
    input: Hash,
    name: ArtifactName,
    cached: PathBuf,
}

/// An archive that passed every check, staged for leantar.
struct Staged {
    work: usize,
    files: ModuleFiles,
    bases: [PathBuf; 2],
    /// The archive as leantar reads it: a hard link in the staging directory, else the cache.
    archive: PathBuf,
}

/// A module ready to be placed.
struct Ready {
    target: usize,
    input: Hash,
    module: ModuleName,
    /// (file to move or copy, extension) for each output written to the build directory.
    files: Vec<(PathBuf, String, Source)>,
    /// The archive to put at `<irDir>/…/C.ltar`, when restoring all.
    ltar: Option<PathBuf>,
    /// The trace's `outputs`.
    descrs: Value,
    /// The archive's name, for the restore index.
    archive: Option<String>,
    /// Its entry in the staged archives, removed once the module is placed.
    staged: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A staged file of ours: moved.
    Staged,
    /// A cached artifact with this hash: copied, hash-checked.
    Cached(Hash),
}

/// Restores every target's entries (see the module documentation). Problems are collected
/// per entry; the rest goes on.
pub fn restore(cache: &Cache, targets: &[RestoreTarget], opts: &RestoreOptions) -> RestoreReport {
    let threads = if opts.threads == 0 {
        default_threads()
    } else {
        opts.threads
    };
    let mut report = RestoreReport::default();
    let mut indexes: Vec<index::RestoreIndex> = targets
        .iter()
        .map(|t| index::RestoreIndex::load(&t.dir.join(&t.layout.build_dir)))
        .collect();
    let problem = |t: &RestoreTarget, input: Hash, subject: String, error| RestoreProblem {
        package: t.package.clone(),
        input,
        subject,
        error,
    };

    // 1. Sort the entries; skip archives whose module is already in place (checked on
    //    every core: a second restore of a whole workspace is only this).
    let mut candidates: Vec<ArchiveWork> = Vec::new();
    let mut plains: Vec<(usize, Hash, Vec<ArtifactName>)> = Vec::new();
    for (ti, t) in targets.iter().enumerate() {
        for (input, value) in &t.entries {
            match classify(value) {
                Ok(EntryKind::Other) => report.not_modules += 1,
                Ok(EntryKind::Plain(names)) => plains.push((ti, *input, names)),
                Ok(EntryKind::Archive(name)) => candidates.push(ArchiveWork {
                    target: ti,
                    input: *input,
                    cached: cache.artifact_path(&name),
                    name,
                }),
                Err(e) => report
                    .problems
                    .push(problem(t, *input, value.to_string(), e)),
            }
        }
    }
    let in_place = par_map(&candidates, threads, |w| {
        let t = &targets[w.target];
        indexes[w.target]
            .module_of(&w.name.file_name())
            .and_then(|m| ModuleName::parse(m).ok())
            .filter(|m| archive_up_to_date(t, m, w.input))
    });
    let mut archives: Vec<ArchiveWork> = Vec::new();
    for (w, m) in candidates.into_iter().zip(in_place) {
        match m {
            Some(m) => report.up_to_date.push(RestoredModule {
                package: targets[w.target].package.clone(),
                module: m.to_string(),
                input: w.input,
            }),
            None => archives.push(w),
        }
    }

    // 2. Vet each archive, then stage the good ones (on every core: each is a few
    //    directory operations, which cost milliseconds each on a busy disk).
    let mut roots: HashMap<usize, Result<PathBuf, String>> = HashMap::new();
    let vetted = par_map(&archives, threads, vet_archive);
    let mut to_stage: Vec<(usize, ModuleFiles, PathBuf)> = Vec::new();
    for (wi, v) in vetted.into_iter().enumerate() {
        let w = &archives[wi];
        let t = &targets[w.target];
        let files = match v {
            Ok(f) => f,
            Err(e) => {
                report
                    .problems
                    .push(problem(t, w.input, w.name.file_name(), e));
                continue;
            }
        };
        let root = roots
            .entry(w.target)
            .or_insert_with(|| staging_root(t).map_err(|e| e.to_string()));
        match root {
            Ok(r) => to_stage.push((wi, files, r.clone())),
            Err(e) => {
                let error = RestoreError::Identity {
                    path: t.dir.join(&t.layout.build_dir),
                    message: format!("cannot use the build directory: {e}"),
                };
                report
                    .problems
                    .push(problem(t, w.input, w.name.file_name(), error));
            }
        }
    }
    let staging = par_map(&to_stage, threads, |(wi, _, root)| {
        stage_archive(root, *wi, &archives[*wi])
    });
    let mut staged: Vec<Staged> = Vec::new();
    for ((wi, files, _), result) in to_stage.into_iter().zip(staging) {
        let w = &archives[wi];
        match result {
            Ok((dir, archive)) => staged.push(Staged {
                work: wi,
                files,
                bases: [dir.clone(), dir],
                archive,
            }),
            Err(e) => {
                report
                    .problems
                    .push(problem(&targets[w.target], w.input, w.name.file_name(), e))
            }
        }
    }

    // 3. leantar unpacks the staged archives in a few batches, one after the other, in a
    //    thread of its own; each batch is identified and placed (steps 5 and 6) while the next
    //    one unpacks.
    let mut claimed: HashMap<(usize, ModuleName), Hash> = HashMap::new();
    let mut placer = Placer {
        targets,
        staged: &staged,
        force: opts.force,
        threads,
        claimed: &mut claimed,
        indexes: &mut indexes,
        report: &mut report,
    };
    if !staged.is_empty() {
        let leantar = match &opts.leantar {
            Some(p) => Ok(p.clone()),
            None => find_leantar(&targets[archives[staged[0].work].target].dir),
        };
        let not_unpacked = |placer: &mut Placer<'_>, batch: &[Staged], message: String| {
            for s in batch {
                let w = &archives[s.work];
                let error = RestoreError::NotUnpacked {
                    path: w.cached.clone(),
                    message: message.clone(),
                };
                let t = &targets[w.target];
                placer
                    .report
                    .problems
                    .push(problem(t, w.input, w.name.file_name(), error));
            }
        };
        match leantar {
            Err(e) => not_unpacked(&mut placer, &staged, e.to_string()),
            Ok(bin) => {
                let version = leantar_version(&bin).unwrap_or_default();
                let size = staged.len().div_ceil(UNPACK_BATCHES).max(MIN_UNPACK_BATCH);
                let mut unpacked_any = false;
                std::thread::scope(|scope| {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let (all, bin) = (&staged, &bin);
                    scope.spawn(move || {
                        for (bi, batch) in all.chunks(size).enumerate() {
                            let items: Vec<BatchItem> = batch
                                .iter()
                                .map(|s| BatchItem {
                                    archive: s.archive.clone(),
                                    bases: s.bases.clone(),
                                })
                                .collect();
                            let run = unpack_batch(bin, &items);
                            if tx.send((bi * size, batch, run)).is_err() {
                                break;
                            }
                        }
                    });
                    for (first, batch, run) in rx {
                        let stderr = match run {
                            Ok(stderr) => stderr,
                            Err(e) => {
                                not_unpacked(&mut placer, batch, e.to_string());
                                continue;
                            }
                        };
                        unpacked_any = true;
                        let identified = par_map(batch, threads, |s| {
                            identify(&archives[s.work], s, targets, &stderr)
                        });
                        let mut ready = Vec::new();
                        for (i, (s, r)) in batch.iter().zip(identified).enumerate() {
                            let w = &archives[s.work];
                            match r {
                                Ok(r) => ready.push(Ready {
                                    staged: Some(first + i),
                                    ..r
                                }),
                                Err(e) => placer.report.problems.push(problem(
                                    &targets[w.target],
                                    w.input,
                                    w.name.file_name(),
                                    e,
                                )),
                            }
                        }
                        placer.claim_and_place(ready);
                    }
                });
                if unpacked_any {
                    placer.report.leantar = Some((bin, version));
                }
            }
        }
    }

    // 4. Plain descriptors: name each module by its cached .ilean.
    let mut ready: Vec<Ready> = Vec::new();
    for (ti, input, names) in plains {
        let t = &targets[ti];
        match plain_ready(cache, t, ti, input, &names) {
            Ok(Some(r)) => ready.push(r),
            Ok(None) => {}
            Err(e) => placer.report.problems.push(problem(
                t,
                input,
                names.first().map(|n| n.file_name()).unwrap_or_default(),
                e,
            )),
        }
    }
    placer.claim_and_place(ready);

    // 7. Remember which archive is which module; remove the staging directories.
    for (ti, idx) in indexes.iter().enumerate() {
        if let Err(e) = idx.save() {
            let t = &targets[ti];
            report
                .problems
                .push(problem(t, Hash(0), RESTORE_INDEX_FILE.to_string(), e));
        }
    }
    for root in roots.into_values().flatten() {
        let _ = fs::remove_dir_all(root);
    }
    report
}

/// Into how many leantar runs the staged archives are split, so that placing one batch
/// overlaps unpacking the next.
const UNPACK_BATCHES: usize = 8;

/// The fewest archives in one leantar run (each run costs a process start).
const MIN_UNPACK_BATCH: usize = 64;

/// Steps 5 and 6 of [`restore`], for one batch of identified modules at a time.
struct Placer<'a> {
    targets: &'a [RestoreTarget],
    staged: &'a [Staged],
    force: bool,
    threads: usize,
    /// The modules placed or being placed so far, per package, with their input hash.
    claimed: &'a mut HashMap<(usize, ModuleName), Hash>,
    indexes: &'a mut Vec<index::RestoreIndex>,
    report: &'a mut RestoreReport,
}

impl Placer<'_> {
    /// Claims each module's name in its package (a second entry for the same module is a
    /// collision), skips plain entries already in place, and places the rest on every core.
    fn claim_and_place(&mut self, ready: Vec<Ready>) {
        let targets = self.targets;
        let problem = |t: &RestoreTarget, input: Hash, subject: String, error| RestoreProblem {
            package: t.package.clone(),
            input,
            subject,
            error,
        };
        let mut placing: Vec<Ready> = Vec::new();
        for r in ready {
            let t = &targets[r.target];
            if let Some(other) = self.claimed.get(&(r.target, r.module.clone())) {
                let error = RestoreError::Collision {
                    module: r.module.to_string(),
                    other: *other,
                };
                self.report
                    .problems
                    .push(problem(t, r.input, r.module.to_string(), error));
                continue;
            }
            self.claimed.insert((r.target, r.module.clone()), r.input);
            if r.archive.is_none() && plain_up_to_date(t, &r) {
                self.report.up_to_date.push(RestoredModule {
                    package: t.package.clone(),
                    module: r.module.to_string(),
                    input: r.input,
                });
                continue;
            }
            placing.push(r);
        }
        let (staged, force) = (self.staged, self.force);
        let placed = par_map(&placing, self.threads, |r| {
            let result = place_module(&targets[r.target], r, force);
            if let Some(si) = r.staged {
                unstage(&staged[si]);
            }
            result
        });
        for (r, result) in placing.iter().zip(placed) {
            let t = &targets[r.target];
            match result {
                Ok(()) => {
                    if let Some(a) = &r.archive {
                        self.indexes[r.target].record(a.clone(), r.module.to_string());
                    }
                    self.report.restored.push(RestoredModule {
                        package: t.package.clone(),
                        module: r.module.to_string(),
                        input: r.input,
                    });
                }
                Err(e) => self
                    .report
                    .problems
                    .push(problem(t, r.input, r.module.to_string(), e)),
            }
        }
    }
}

/// The prefix of staging directories (`<buildDir>/.tarn-restore.<pid>.<n>`).
const STAGING_PREFIX: &str = ".tarn-restore.";

/// Creates this run's staging directory in the target's build directory, after removing
/// those of dead processes.
fn staging_root(t: &RestoreTarget) -> Result<PathBuf, RestoreError> {
    let build = ensure_dir(&t.dir, &t.layout.build_dir)?;
    if let Ok(entries) = fs::read_dir(&build) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(STAGING_PREFIX) else {
                continue;
            };
            let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !crate::temp::process_alive(p))
                && e.file_type().is_ok_and(|ft| ft.is_dir())
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = build.join(format!("{STAGING_PREFIX}{}.{nanos}", std::process::id()));
    fs::create_dir(&root).map_err(|e| RestoreError::io(&root, e))?;
    Ok(root)
}

/// Reads a cached archive (bounded), checks its hash against its name and vets its
/// container.
fn vet_archive(w: &ArchiveWork) -> Result<ModuleFiles, RestoreError> {
    let limit = ReadLimit {
        bytes: crate::limits().max_artifact_bytes,
        what: "an artifact",
        env: Some(tarn_core::MAX_ARTIFACT_ENV),
    };
    let bytes = read_local_file(&w.cached, Links::Refuse, &limit).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RestoreError::Missing {
                path: w.cached.clone(),
            }
        } else {
            RestoreError::io(&w.cached, e)
        }
    })?;
    let actual = Hash::of_bytes(&bytes);
    if actual != w.name.hash {
        return Err(RestoreError::HashMismatch {
            path: w.cached.clone(),
            expected: w.name.hash,
            actual,
        });
    }
    let bad = |source| RestoreError::BadArchive {
        path: w.cached.clone(),
        source,
    };
    let index = LtarIndex::parse(&bytes).map_err(bad)?;
    let files = index.module_files().map_err(bad)?;
    // Content-stable archives (leantar 0.1.20 `-s`) carry a placeholder; the others were
    // packed for exactly one input hash, and Lake would not accept them for another.
    let packed = Hash(index.dep_hash);
    if packed != w.input && packed != Hash::NIL && packed != Hash(0) {
        return Err(RestoreError::OtherInput {
            path: w.cached.clone(),
            packed,
            input: w.input,
        });
    }
    Ok(files)
}

/// Makes `<root>/<n>/`, the directory leantar unpacks archive `n` into (as both of its bases:
/// every file of a module has its own extension, [`ModuleFiles`] refuses repeats), and links
/// the archive to `<root>/<n>.ltar` (so that leantar, which deletes an archive it finds
/// truncated, never deletes the cached one).
fn stage_archive(
    root: &Path,
    n: usize,
    w: &ArchiveWork,
) -> Result<(PathBuf, PathBuf), RestoreError> {
    let dir = root.join(n.to_string());
    fs::create_dir(&dir).map_err(|e| RestoreError::io(&dir, e))?;
    let link = root.join(format!("{n}.ltar"));
    let archive = match fs::hard_link(&w.cached, &link) {
        Ok(()) => link,
        Err(_) => w.cached.clone(),
    };
    Ok((dir, archive))
}

/// Removes what is left of one module's staging once it is placed (or refused): its
/// directory and the archive's link. Best effort; the run removes its staging root at the end.
fn unstage(s: &Staged) {
    let _ = fs::remove_dir_all(&s.bases[0]);
    if s.archive.parent() == s.bases[0].parent() {
        let _ = fs::remove_file(&s.archive);
    }
}

/// Reads at most `limit` bytes of a file we staged.
fn read_small(path: &Path) -> Result<Vec<u8>, RestoreError> {
    let limit = ReadLimit {
        bytes: MAX_SMALL_FILE_BYTES,
        what: "a module file",
        env: None,
    };
    read_local_file(path, Links::Refuse, &limit).map_err(|e| RestoreError::io(path, e))
}

/// The module an `.ilean` belongs to (its `"module"` field).
fn ilean_module(path: &Path, bytes: &[u8]) -> Result<ModuleName, RestoreError> {
    let bad = |message: String| RestoreError::Identity {
        path: path.to_path_buf(),
        message,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not an .ilean: {e}")))?;
    let name = v["module"]
        .as_str()
        .ok_or_else(|| bad("the .ilean has no \"module\" field".into()))?;
    ModuleName::parse(name).map_err(|e| bad(e.to_string()))
}

/// The `// Module: A.B.C` line near the top of a `.c` file Lean wrote, if any.
fn c_module(path: &Path) -> Option<String> {
    let mut head = vec![0u8; 4096];
    let mut f = fs::File::open(path).ok()?;
    let n = f.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    text.lines()
        .take(4)
        .find_map(|l| l.strip_prefix("// Module: ").map(|m| m.trim().to_string()))
}

/// After leantar: names the module, hashes its files and checks them against the archive's
/// own trace.
fn identify(
    w: &ArchiveWork,
    s: &Staged,
    targets: &[RestoreTarget],
    stderr: &str,
) -> Result<Ready, RestoreError> {
    let stem = &s.files.stem;
    let staged_trace = s.bases[0].join(format!("{stem}.trace"));
    if !staged_trace.is_file() {
        let archive = s.archive.to_string_lossy();
        let message = stderr
            .lines()
            .filter(|l| l.contains(archive.as_ref()))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(RestoreError::NotUnpacked {
            path: w.cached.clone(),
            message: if message.is_empty() {
                "its trace is missing after the run".into()
            } else {
                message
            },
        });
    }
    let path_of = |ext: &str| {
        let base = module_ext_base(ext).unwrap_or(0) as usize;
        s.bases[base].join(format!("{stem}.{ext}"))
    };
    let ilean = path_of("ilean");
    let module = ilean_module(&ilean, &read_small(&ilean)?)?;
    if module.last() != stem {
        return Err(RestoreError::Identity {
            path: w.cached.clone(),
            message: format!("its .ilean names module {module}, but its files are {stem}.*"),
        });
    }
    if let Some(c) = c_module(&path_of("c")) {
        if c != module.to_string() {
            return Err(RestoreError::Identity {
                path: w.cached.clone(),
                message: format!("its .ilean names module {module}, its .c header {c}"),
            });
        }
    }
    let mut outputs = Vec::new();
    let mut files = Vec::new();
    for ext in &s.files.exts {
        let p = path_of(ext);
        let h = crate::hashing::hash_file(&p).map_err(|e| RestoreError::io(&p, e))?;
        outputs.push(ArtifactName::new(h, ext.clone()));
        files.push((p, ext.clone(), Source::Staged));
    }
    // The archive's own trace (leantar's re-serialisation) must list exactly these files.
    let packed = SavedTrace::parse(&String::from_utf8_lossy(&read_small(&staged_trace)?)).ok();
    let mut is_module = s.files.exts.iter().any(|e| e == "olean.server");
    if let Some(listed) = packed.as_ref().and_then(|t| t.outputs.as_ref()) {
        if let Some(Value::Bool(m)) = listed.get("m") {
            is_module = *m;
        }
        let mut listed_names = artifacts_of(listed).unwrap_or_default();
        listed_names.retain(|a| a.ext != "ltar");
        let mut held = outputs.clone();
        held.sort();
        if listed_names != held {
            let show = |v: &[ArtifactName]| {
                v.iter()
                    .map(ArtifactName::file_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(RestoreError::TraceDisagrees {
                path: w.cached.clone(),
                listed: show(&listed_names),
                held: show(&held),
            });
        }
    }
    let t = &targets[w.target];
    Ok(Ready {
        target: w.target,
        input: w.input,
        module,
        files,
        ltar: t.restore_all.then(|| s.archive.clone()),
        descrs: module_output_descrs(is_module, &outputs, None),
        archive: Some(w.name.file_name()),
        staged: None,
    })
}

/// A plain-descriptor entry: the module named by its cached `.ilean`, the files to copy
/// (all when restoring all, else the `.ilean` alone, as Lake's `restoreNeededArtifacts`).
fn plain_ready(
    cache: &Cache,
    t: &RestoreTarget,
    ti: usize,
    input: Hash,
    names: &[ArtifactName],
) -> Result<Option<Ready>, RestoreError> {
    if let Some(bad) = names.iter().find(|n| module_ext_base(&n.ext).is_none()) {
        return Err(RestoreError::NotModuleOutputs(format!(
            "{} is not a module output",
            bad.file_name()
        )));
    }
    let ilean = names
        .iter()
        .find(|n| n.ext == "ilean")
        .ok_or_else(|| RestoreError::NotModuleOutputs("no .ilean".into()))?;
    let ilean_path = cache.artifact_path(ilean);
    let bytes = read_small(&ilean_path).map_err(|_| RestoreError::Missing {
        path: ilean_path.clone(),
    })?;
    if Hash::of_bytes(&bytes) != ilean.hash {
        return Err(RestoreError::HashMismatch {
            path: ilean_path.clone(),
            expected: ilean.hash,
            actual: Hash::of_bytes(&bytes),
        });
    }
    let module = ilean_module(&ilean_path, &bytes)?;
    let mut files = Vec::new();
    for n in names {
        let p = cache.artifact_path(n);
        if !p.is_file() {
            return Err(RestoreError::Missing { path: p });
        }
        if t.restore_all || n.ext == "ilean" {
            files.push((p, n.ext.clone(), Source::Cached(n.hash)));
        }
    }
    let value = t
        .entries
        .iter()
        .find(|(i, _)| *i == input)
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null);
    Ok(Some(Ready {
        target: ti,
        input,
        module,
        files,
        ltar: None,
        descrs: value,
        archive: None,
        staged: None,
    }))
}

/// Reads the module's trace in the build directory, if any.
fn read_trace(path: &Path) -> Option<Result<SavedTrace, String>> {
    match fs::symlink_metadata(path) {
        Err(_) => None,
        Ok(m) if !m.is_file() => Some(Err("not a regular file".into())),
        Ok(_) => Some(read_small(path).map_err(|e| e.to_string()).and_then(|b| {
            SavedTrace::parse(&String::from_utf8_lossy(&b)).map_err(|e| e.to_string())
        })),
    }
}

fn is_regular(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// Lake's rule for an archive-restored module: trace for this input, every output it lists
/// in the build directory (and the archive too when restoring all).
fn archive_up_to_date(t: &RestoreTarget, m: &ModuleName, input: Hash) -> bool {
    let Some(Ok(trace)) = read_trace(&t.dir.join(t.layout.output_path(m, "trace"))) else {
        return false;
    };
    if trace.dep_hash != input {
        return false;
    }
    let Some(outputs) = trace.outputs.as_ref().and_then(|o| artifacts_of(o).ok()) else {
        return false;
    };
    let in_build = |ext: &str| is_regular(&t.dir.join(t.layout.output_path(m, ext)));
    outputs.iter().all(|a| a.ext == "ltar" || in_build(&a.ext))
        && (!t.restore_all || in_build("ltar"))
}

/// The same rule for plain descriptors: the files this package restores must be in place.
fn plain_up_to_date(t: &RestoreTarget, r: &Ready) -> bool {
    let Some(Ok(trace)) = read_trace(&t.dir.join(t.layout.output_path(&r.module, "trace"))) else {
        return false;
    };
    trace.dep_hash == r.input
        && r.files
            .iter()
            .all(|(_, ext, _)| is_regular(&t.dir.join(t.layout.output_path(&r.module, ext))))
}

/// Copies a cached artifact to `dest` through a temp file, checking its hash on the way.
fn copy_checked(src: &Path, dest: &Path, expected: Hash) -> Result<(), RestoreError> {
    let actual = crate::hashing::hash_file(src).map_err(|e| RestoreError::io(src, e))?;
    if actual != expected {
        return Err(RestoreError::HashMismatch {
            path: src.to_path_buf(),
            expected,
            actual,
        });
    }
    copy_into_place(src, dest)
}

/// Puts one module in place (order in the module documentation).
fn place_module(t: &RestoreTarget, r: &Ready, force: bool) -> Result<(), RestoreError> {
    let m = &r.module;
    ensure_dir(&t.dir, &t.layout.module_lib_dir(m))?;
    ensure_dir(&t.dir, &t.layout.module_ir_dir(m))?;
    let trace_path = t.dir.join(t.layout.output_path(m, "trace"));
    match read_trace(&trace_path) {
        Some(Ok(tr)) if tr.dep_hash == r.input => {}
        Some(_) | None if force => {}
        None => {}
        Some(found) => {
            return Err(RestoreError::ExistingTrace {
                path: trace_path,
                found: found.map_or_else(|e| format!("invalid ({e})"), |t| t.dep_hash.to_string()),
                input: r.input,
            })
        }
    }
    remove_if_exists(&trace_path)?;
    for ext in MODULE_EXTS {
        let p = t.dir.join(t.layout.output_path(m, ext));
        remove_if_exists(&p)?;
        remove_if_exists(&hash_file_of(&p))?;
    }
    for (src, ext, source) in &r.files {
        let dest = t.dir.join(t.layout.output_path(m, ext));
        match source {
            Source::Staged => {
                // leantar leaves 0600; build outputs are readable by everyone (Windows has
                // no mode bits: the file inherits the directory's ACL).
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(src, fs::Permissions::from_mode(0o644))
                        .map_err(|e| RestoreError::io(src, e))?;
                }
                move_into_place(src, &dest)?
            }
            Source::Cached(h) => copy_checked(src, &dest, *h)?,
        }
    }
    if let Some(ltar) = &r.ltar {
        link_or_copy(ltar, &t.dir.join(t.layout.output_path(m, "ltar")))?;
    }
    write_into_place(&trace_path, fetch_trace_text(r.input, &r.descrs).as_bytes())?;
    Ok(())
}

/// `<file>.hash`, where Lake caches a file's hash.
fn hash_file_of(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".hash");
    PathBuf::from(s)
}
