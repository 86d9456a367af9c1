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

pub mod cache;
pub mod clean;
mod error;
pub mod hashing;
pub mod location;
mod mapfile;
mod parallel;
pub mod stage;
pub mod staging;
pub mod temp;
pub mod unstage;
pub mod untrusted_dir;
pub mod verify;
pub mod workspace;

pub use cache::{write_atomic, Cache, Inserted, TempFile};
pub use error::{FileChanged, StoreError};
pub use hashing::hash_file;
pub use location::{resolve_cache_root, CacheEnv, CacheSource};
pub use mapfile::{read_mappings, LoadedMappings};
pub use workspace::{Package, RootConfig, Workspace};

/// The resource limits in force for this process: defaults overridden by the environment
/// (see [`tarn_core::limits`]), read once.
pub fn limits() -> &'static tarn_core::limits::Limits {
    static LIMITS: std::sync::OnceLock<tarn_core::limits::Limits> = std::sync::OnceLock::new();
    LIMITS.get_or_init(|| tarn_core::limits::Limits::from_lookup(|k| std::env::var(k).ok()))
}
