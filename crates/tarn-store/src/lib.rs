//! # tarn-store
//!
//! The local Lake cache. This crate owns every write to a cache directory: artifacts appear
//! only by linking a complete, verified, read-only temp file into place; `outputs/` and
//! `revisions/` files are replaced atomically by rename.
//!
//! ```no_run
//! use tarn_store::Cache;
//! use tarn_core::{ArtifactName, Hash};
//! let cache = Cache::new("/tmp/lake-cache");
//! let name = ArtifactName::new(Hash::of_bytes(b"data"), "olean");
//! cache.import_artifact(std::path::Path::new("Foo.olean"), &name)?;
//! # Ok::<(), tarn_store::StoreError>(())
//! ```

// Engines report through return values and events; only the binary prints (ARCHITECTURE.md).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cache;
mod clean;
mod error;
mod hashing;
mod inventory;
mod keys;
mod lean_install;
mod local_file;
mod location;
mod lock;
mod mapfile;
mod open_dir;
mod parallel;
mod prune;
mod restore;
mod stage;
mod staging;
mod stats;
mod strong;
mod temp;
mod unstage;
mod untrusted_dir;
mod usage;
mod verify;
mod workspace;

// The surface, one job a line. Modules are private: everything a caller may use is here.

/// The cache directory, its atomic writes and immutable artifacts.
pub use cache::{write_atomic, Cache, Inserted, TempFile, TEMP_PREFIX};
/// `clean`: remove the whole cache directory.
pub use clean::clean;
/// Errors, each naming its file; a file that changed under a reader, found by type.
pub use error::{FileChanged, StoreError};
/// Lake's content hash of files.
pub use hashing::{hash_file, hash_files, hash_files_strong, hash_text_file, strong_digest_file};
/// Files in a cache that are not Lake's (left alone by `prune`).
pub use inventory::UnknownFile;
/// Key files for signed revisions: generate, read a private key, read trusted keys.
pub use keys::{generate_key, public_key_path, read_secret_key, read_trusted_keys, KeyFileError};
/// The workspace's Lean (as Lake finds it) and what `lean --version` says.
pub use lean_install::{probe_lean, LeanEnv, LeanProbe, LeanProbeError};
/// Bounded, non-blocking reads of local files that may come from outside.
pub use local_file::{
    open_local_file, read_config_file, read_local_file, read_local_text, Links, ReadLimit,
};
/// Where the cache lives (Lake's rules).
pub use location::{free_space, resolve_cache_root, system_cache_root, CacheEnv, CacheSource};
/// The cache lock: `prune` exclusive, everything else shared.
pub use lock::{CacheLock, LockMode};
/// Mapping files read from disk.
pub use mapfile::{mappings_limit, read_mappings, LoadedMappings};
/// `prune`: least recently used first, consistent after every step.
pub use prune::{prune, KeptRevision, PruneOptions, PruneReport, Tally, DEFAULT_GRACE};
/// `restore`: module outputs from the cache into Lake's build directories, with traces.
pub use restore::{
    find_leantar, restore, restore_round, RestoreClaims, RestoreError, RestoreOptions,
    RestoreProblem, RestoreReport, RestoreTarget, RestoredModule,
};
/// `stage`: copy a mapping file's artifacts into a flat staging directory.
pub use stage::{stage, StageOptions, StageReport, STAGED_MAPPINGS};
/// The one validator of staging directories, and reads of untrusted files.
pub use staging::{
    hash_reader_strong, read_bounded, validate_staging, CheckedArtifact, OpenArtifact, StagingDir,
};
/// `stats`: what a cache holds, by scope, age of last use and extension.
pub use stats::{cache_stats, Bucket, CacheStats, ScopeStats, AGE_BANDS};
/// `verify --strong`: artifacts re-checked against the saved revision signatures.
pub use strong::{verify_strong, StrongReport};
/// Stale temp files left by killed runs.
pub use temp::{sweep_cache, sweep_dirs, TempSweep};
/// `unstage` and `add`: import a staging directory, write `outputs/` entries.
pub use unstage::{import_staging, write_outputs, OutputsTarget, UnstageReport};
/// Files and directories someone else controls, opened without following links or blocking.
pub use untrusted_dir::open_untrusted;
/// tarn's record of the artifacts it used and the workspaces it fetched for.
pub use usage::{forget_workspaces, note_use, record_workspace, recorded_workspaces, unix_seconds};
/// `verify`: rehash artifacts, check `outputs/` and `revisions/` files.
pub use verify::{scrub, verify_artifacts, Problem, VerifyReport};
/// A Lake workspace as Lake reads it, and its root configuration.
pub use workspace::{
    is_package_dir, read_lean_toolchain, read_root_config, Package, RootConfig, Warning, Workspace,
    MAX_TOOLCHAIN_BYTES,
};

/// The resource limits in force for this process: defaults overridden by the environment
/// (see [`tarn_core::Limits`]), read once.
pub fn limits() -> &'static tarn_core::Limits {
    static LIMITS: std::sync::OnceLock<tarn_core::Limits> = std::sync::OnceLock::new();
    LIMITS.get_or_init(|| tarn_core::Limits::from_lookup(|k| std::env::var(k).ok()))
}
