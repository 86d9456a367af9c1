//! `restore`: puts Lean module outputs from the cache into Lake's build directories, at
//! Lake's paths, with the `.trace` Lake's up-to-date rule accepts (docs/restore.md).
//!
//! For each mapping entry of each package:
//!
//! * an archive (`"<h>.ltar"`, or descriptors with `"l"`) is read from the cache, its content
//!   hash checked against its name, its container vetted ([`tarn_core::LtarIndex`]: bare
//!   names, two bases, nothing truncated) and its module named from the archive itself (the
//!   `.c` header, else the `.ilean`; see `identity`); the module's directories are checked
//!   (no symbolic link followed) and its old trace and outputs removed; then **one**
//!   `leantar -x -j -` run per batch unpacks every archive straight into its module's
//!   directories; tarn checks and hashes what leantar wrote and writes the trace last (see
//!   `unpack`);
//! * plain descriptors (`{"o": […], "i": …, "c": …}`) are copied from the cache, each one
//!   hash-checked (only the `.ilean` unless all artifacts are restored, as Lake does);
//! * anything else (`.o`, `.a`, executables) is not a module output and is left to Lake.
//!
//! A module is placed in this order: old trace removed, old outputs and their `.hash` files
//! removed, new outputs written (by leantar's rename, or a temp file and a rename), archive
//! linked (when restoring all), trace written (temp file, rename). A kill at any point leaves
//! no partial file under a final name and no trace naming files that are not there. A module
//! whose trace already has the entry's input hash and whose files exist is left alone; one
//! whose trace has another hash is not touched without `force`.

mod handoff;
mod identity;
mod index;
mod leantar;
mod place;
mod unpack;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tarn_core::{
    artifacts_of, fetch_trace_text, module_ext_base, ArtifactName, BuildLayout, Hash, LtarError,
    ModuleName, SavedTrace,
};

use crate::cache::Cache;
use crate::error::StoreError;
use crate::local_file::{read_local_file, Links, ReadLimit};
use crate::parallel::{default_threads, par_map};

use handoff::{hand_over, max_open_handoffs, memory_handoff, Handoff};
use identity::ilean_module;
use index::RESTORE_INDEX_FILE;
pub use leantar::find_leantar;
use leantar::leantar_version;
use leantar::{unpack_batch, BatchItem};
use place::{copy_into_place, ensure_dir, remove_if_exists, write_into_place};
use unpack::{finish, prepare, vet, CheckedDirs, Staged};

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
pub(super) const MAX_SMALL_FILE_BYTES: u64 = 256 << 20;

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

    /// Adds a later round's report to this one.
    pub fn absorb(&mut self, later: RestoreReport) {
        self.restored.extend(later.restored);
        self.up_to_date.extend(later.up_to_date);
        self.not_modules += later.not_modules;
        self.problems.extend(later.problems);
        if later.leantar.is_some() {
            self.leantar = later.leantar;
        }
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
pub(super) struct ArchiveWork {
    pub(super) target: usize,
    pub(super) input: Hash,
    pub(super) name: ArtifactName,
    pub(super) cached: PathBuf,
}

/// A plain-descriptor module ready to be placed.
struct Ready {
    target: usize,
    input: Hash,
    module: ModuleName,
    /// (cached artifact, extension, its hash) for each output copied to the build directory.
    files: Vec<(PathBuf, String, Hash)>,
    /// The trace's `outputs`.
    descrs: Value,
}

/// The modules restored so far in one run that restores in rounds (`tarn get --restore`
/// restores the entries whose artifacts have arrived while the rest download): an entry of a
/// later round naming a module an earlier round restored is a collision, as within a round.
/// It also keeps the module directories checked or made so far, so that a later round does
/// not check them again, nor clear old outputs from a directory this run made.
#[derive(Debug, Default)]
pub struct RestoreClaims {
    modules: HashMap<(String, ModuleName), Hash>,
    dirs: CheckedDirs,
}

/// Restores every target's entries (see the module documentation). Problems are collected
/// per entry; the rest goes on.
pub fn restore(cache: &Cache, targets: &[RestoreTarget], opts: &RestoreOptions) -> RestoreReport {
    restore_round(cache, targets, opts, &mut RestoreClaims::default())
}

/// [`restore`] as one round of several: `claims` holds the modules earlier rounds restored
/// and gains this round's.
pub fn restore_round(
    cache: &Cache,
    targets: &[RestoreTarget],
    opts: &RestoreOptions,
    claims: &mut RestoreClaims,
) -> RestoreReport {
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

    // 2. Vet and name each archive (on every core).
    let vetted = par_map(&archives, threads, vet);

    // 3. Claim each module's name in its package (a second entry for the same module is a
    //    collision), then get its directories ready (on every core).
    let claimed = &mut claims.modules;
    let mut staged: Vec<Staged> = Vec::new();
    for (wi, v) in vetted.into_iter().enumerate() {
        let w = &archives[wi];
        let t = &targets[w.target];
        match v {
            Ok((files, module, len)) => {
                if let Some(other) = claimed.get(&(t.package.clone(), module.clone())) {
                    let error = RestoreError::Collision {
                        module: module.to_string(),
                        other: *other,
                    };
                    report
                        .problems
                        .push(problem(t, w.input, module.to_string(), error));
                    continue;
                }
                claimed.insert((t.package.clone(), module.clone()), w.input);
                staged.push(Staged {
                    work: wi,
                    module,
                    files,
                    len,
                    bases: None,
                });
            }
            Err(e) => report
                .problems
                .push(problem(t, w.input, w.name.file_name(), e)),
        }
    }
    let dirs = &claims.dirs;
    let prepared = par_map(&staged, threads, |s| {
        let w = &archives[s.work];
        prepare(&targets[w.target], &s.module, w.input, opts.force, dirs)
    });
    let mut ready: Vec<Staged> = Vec::new();
    for (mut s, p) in staged.into_iter().zip(prepared) {
        let w = &archives[s.work];
        match p {
            Ok(bases) => {
                s.bases = Some(bases);
                ready.push(s);
            }
            Err(e) => {
                report.problems.push(problem(
                    &targets[w.target],
                    w.input,
                    s.module.to_string(),
                    e,
                ));
            }
        }
    }
    let staged = ready;

    // 4. leantar unpacks the archives straight into the module directories, in a few
    //    batches one after the other in a thread of its own; each batch is handed over just
    //    before its run (`handoff`) and finished (checked, trace written) while the next one
    //    unpacks.
    let mut staging: HashMap<usize, Result<PathBuf, String>> = HashMap::new();
    if !staged.is_empty() {
        let leantar = match &opts.leantar {
            Some(p) => Ok(p.clone()),
            None => find_leantar(&targets[archives[staged[0].work].target].dir),
        };
        let not_unpacked = |report: &mut RestoreReport, batch: &[Staged], message: String| {
            for s in batch {
                let w = &archives[s.work];
                let error = RestoreError::NotUnpacked {
                    path: w.cached.clone(),
                    message: message.clone(),
                };
                report.problems.push(problem(
                    &targets[w.target],
                    w.input,
                    s.module.to_string(),
                    error,
                ));
            }
        };
        // Memory handoffs need no staging directory; a killed run's is still removed.
        let in_memory = memory_handoff();
        let mut seen = std::collections::HashSet::new();
        for s in &staged {
            let ti = archives[s.work].target;
            if !seen.insert(ti) {
                continue;
            }
            let t = &targets[ti];
            if in_memory {
                remove_dead_staging(&t.dir.join(&t.layout.build_dir));
            } else {
                staging.insert(ti, staging_root(t).map_err(|e| e.to_string()));
            }
        }
        match leantar {
            Err(e) => not_unpacked(&mut report, &staged, e.to_string()),
            Ok(bin) => {
                let version = leantar_version(&bin).unwrap_or_default();
                let lens: Vec<u64> = staged.iter().map(|s| s.len).collect();
                let runs = unpack_runs(&lens, max_open_handoffs());
                let mut unpacked_any = false;
                std::thread::scope(|scope| {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let (all, bin, staging) = (&staged, &bin, &staging);
                    let archives = &archives;
                    scope.spawn(move || {
                        for run in runs {
                            let batch = &all[run];
                            let handed = par_map(batch, threads, |s| {
                                let w = &archives[s.work];
                                let root = match staging.get(&w.target) {
                                    None => None,
                                    Some(Ok(root)) => Some(root.as_path()),
                                    Some(Err(e)) => {
                                        let t = &targets[w.target];
                                        return Err(RestoreError::Identity {
                                            path: t.dir.join(&t.layout.build_dir),
                                            message: format!("cannot use the build directory: {e}"),
                                        });
                                    }
                                };
                                hand_over(w, &s.files, root, s.work)
                            });
                            let items: Vec<BatchItem> = batch
                                .iter()
                                .zip(&handed)
                                .filter_map(|(s, h)| {
                                    let h = h.as_ref().ok()?;
                                    Some(BatchItem {
                                        archive: PathBuf::from(h.name()),
                                        bases: s.bases.clone().expect("prepared"),
                                        inherit: h.inherited_fd(),
                                    })
                                })
                                .collect();
                            let run = if items.is_empty() {
                                Ok(String::new())
                            } else {
                                unpack_batch(bin, &items)
                            };
                            if tx.send((batch, handed, run)).is_err() {
                                break;
                            }
                        }
                    });
                    for (batch, handed, run) in rx {
                        let stderr = match run {
                            Ok(stderr) => stderr,
                            Err(e) => {
                                not_unpacked(&mut report, batch, e.to_string());
                                continue;
                            }
                        };
                        // Each archive handed over is finished; the others carry their
                        // error. The handoffs are dropped once the batch is finished.
                        let pairs: Vec<(&Staged, Option<&Handoff>)> = batch
                            .iter()
                            .zip(&handed)
                            .map(|(s, h)| (s, h.as_ref().ok()))
                            .collect();
                        let finished = par_map(&pairs, threads, |(s, h)| {
                            let w = &archives[s.work];
                            h.map(|h| finish(w, s, &targets[w.target], h.name(), &stderr))
                        });
                        unpacked_any |= finished.iter().any(Option::is_some);
                        for ((s, handoff), finished) in batch.iter().zip(handed).zip(finished) {
                            let w = &archives[s.work];
                            let t = &targets[w.target];
                            let result = match (finished, handoff) {
                                (Some(result), _) => result,
                                (None, Err(e)) => Err(e),
                                (None, Ok(_)) => Ok(()),
                            };
                            match result {
                                Ok(()) => {
                                    indexes[w.target]
                                        .record(w.name.file_name(), s.module.to_string());
                                    report.restored.push(RestoredModule {
                                        package: t.package.clone(),
                                        module: s.module.to_string(),
                                        input: w.input,
                                    });
                                }
                                Err(e) => report.problems.push(problem(
                                    t,
                                    w.input,
                                    s.module.to_string(),
                                    e,
                                )),
                            }
                        }
                    }
                });
                if unpacked_any {
                    report.leantar = Some((bin, version));
                }
            }
        }
    }
    let mut placer = Placer {
        targets,
        force: opts.force,
        threads,
        claimed,
        report: &mut report,
    };

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
    for root in staging.into_values().flatten() {
        let _ = fs::remove_dir_all(root);
    }
    report
}

/// Into how many leantar runs the staged archives are split, so that placing one batch
/// overlaps unpacking the next.
const UNPACK_BATCHES: usize = 8;

/// The fewest archives in one leantar run (each run costs a process start).
const MIN_UNPACK_BATCH: usize = 64;

/// The most archive bytes handed over for one leantar run (a run's handoffs are held in
/// memory, and the next run's are made while it is finished: at most two runs' worth).
const MAX_UNPACK_BYTES: u64 = 64 << 20;

/// Splits archives of these sizes, in order, into leantar runs: about [`UNPACK_BATCHES`] of
/// at least [`MIN_UNPACK_BATCH`], none with more than `max_count` archives or more than
/// [`MAX_UNPACK_BYTES`] bytes unless it holds a single archive.
fn unpack_runs(lens: &[u64], max_count: usize) -> Vec<std::ops::Range<usize>> {
    let count = lens
        .len()
        .div_ceil(UNPACK_BATCHES)
        .max(MIN_UNPACK_BATCH)
        .min(max_count)
        .max(1);
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, &len) in lens.iter().enumerate() {
        if i > start && (i - start == count || bytes.saturating_add(len) > MAX_UNPACK_BYTES) {
            runs.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(len);
    }
    if start < lens.len() {
        runs.push(start..lens.len());
    }
    runs
}

/// Step 5 of [`restore`]: claims and places plain-descriptor modules.
struct Placer<'a> {
    targets: &'a [RestoreTarget],
    force: bool,
    threads: usize,
    /// The modules placed or being placed so far, per package, with their input hash.
    claimed: &'a mut HashMap<(String, ModuleName), Hash>,
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
            if let Some(other) = self.claimed.get(&(t.package.clone(), r.module.clone())) {
                let error = RestoreError::Collision {
                    module: r.module.to_string(),
                    other: *other,
                };
                self.report
                    .problems
                    .push(problem(t, r.input, r.module.to_string(), error));
                continue;
            }
            self.claimed
                .insert((t.package.clone(), r.module.clone()), r.input);
            if plain_up_to_date(t, &r) {
                self.report.up_to_date.push(RestoredModule {
                    package: t.package.clone(),
                    module: r.module.to_string(),
                    input: r.input,
                });
                continue;
            }
            placing.push(r);
        }
        let force = self.force;
        let placed = par_map(&placing, self.threads, |r| {
            place_module(&targets[r.target], r, force)
        });
        for (r, result) in placing.iter().zip(placed) {
            let t = &targets[r.target];
            match result {
                Ok(()) => {
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
    remove_dead_staging(&build);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = build.join(format!("{STAGING_PREFIX}{}.{nanos}", std::process::id()));
    fs::create_dir(&root).map_err(|e| RestoreError::io(&root, e))?;
    Ok(root)
}

/// Removes the staging directories of dead processes from a build directory.
fn remove_dead_staging(build: &Path) {
    if let Ok(entries) = fs::read_dir(build) {
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
}

/// Reads at most `limit` bytes of a file we staged.
pub(super) fn read_small(path: &Path) -> Result<Vec<u8>, RestoreError> {
    let limit = ReadLimit {
        bytes: MAX_SMALL_FILE_BYTES,
        what: "a module file",
        env: None,
    };
    read_local_file(path, Links::Refuse, &limit).map_err(|e| RestoreError::io(path, e))
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
            files.push((p, n.ext.clone(), n.hash));
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
        descrs: value,
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

/// Puts one plain-descriptor module in place (order in the module documentation).
fn place_module(t: &RestoreTarget, r: &Ready, force: bool) -> Result<(), RestoreError> {
    let m = &r.module;
    ensure_dir(&t.dir, &t.layout.module_lib_dir(m))?;
    ensure_dir(&t.dir, &t.layout.module_ir_dir(m))?;
    invalidate_module(t, m, r.input, force)?;
    for (src, ext, hash) in &r.files {
        copy_checked(src, &t.dir.join(t.layout.output_path(m, ext)), *hash)?;
    }
    let trace_path = t.dir.join(t.layout.output_path(m, "trace"));
    write_into_place(&trace_path, fetch_trace_text(r.input, &r.descrs).as_bytes())
}

/// Before a module's files change: refuses a trace for another input (unless `force`), then
/// removes the trace, so that no trace ever names files being replaced, then the old
/// outputs and their `.hash` files. The module's directories exist and were checked.
pub(super) fn invalidate_module(
    t: &RestoreTarget,
    m: &ModuleName,
    input: Hash,
    force: bool,
) -> Result<(), RestoreError> {
    let trace_path = t.dir.join(t.layout.output_path(m, "trace"));
    match read_trace(&trace_path) {
        Some(Ok(tr)) if tr.dep_hash == input => {}
        Some(_) | None if force => {}
        None => {}
        Some(found) => {
            return Err(RestoreError::ExistingTrace {
                path: trace_path,
                found: found.map_or_else(|e| format!("invalid ({e})"), |t| t.dep_hash.to_string()),
                input,
            })
        }
    }
    remove_if_exists(&trace_path)?;
    for ext in MODULE_EXTS {
        let p = t.dir.join(t.layout.output_path(m, ext));
        remove_if_exists(&p)?;
        remove_if_exists(&hash_file_of(&p))?;
    }
    Ok(())
}

/// `<file>.hash`, where Lake caches a file's hash.
fn hash_file_of(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".hash");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_runs_cover_every_archive_once_within_their_bounds() {
        // 9,000 small archives: eight runs.
        let runs = unpack_runs(&[40_000; 9000], 5000);
        assert_eq!(runs.len(), 8);
        assert_eq!(runs.last().unwrap().end, 9000);
        // Few open files allowed: more, smaller runs.
        let runs = unpack_runs(&[40_000; 9000], 256);
        assert!(runs.iter().all(|r| r.len() <= 256));
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 9000);
        // Large archives: bounded by bytes, but an archive larger than the bound runs alone.
        let lens = [30 << 20, 30 << 20, 30 << 20, 200 << 20, 1];
        assert_eq!(unpack_runs(&lens, 5000), vec![0..2, 2..3, 3..4, 4..5]);
        assert!(unpack_runs(&[], 5000).is_empty());
    }
}
