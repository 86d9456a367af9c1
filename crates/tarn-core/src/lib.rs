//! # tarn-core
//!
//! The formats of Lake's artifact cache, with no I/O and no async: everything here is a pure
//! function of its inputs, so it is unit-tested against Lake's own examples.
//!
//! The crate root holds the types and functions of the formats (modules are private):
//!
//! * hashes: [`Hash`](struct@Hash) (MurmurHash64A seed 11, `mixHash`), [`StreamingHasher`];
//! * artifact file names `<hash>[.<ext>]` and remote `<hash>.art` names: [`ArtifactName`];
//! * mapping files (`lake build -o`, revision files, `outputs.jsonl`): [`MappingFile`];
//! * `outputs/<scope>/<hash>.json` wrappers: [`CacheOutput`];
//! * remote scopes, toolchain normalisation, RFC 3986 encoding: [`Scope`], [`uri_encode`];
//! * service kinds and the URLs Lake builds for them: [`Service`];
//! * the system configuration and package options: [`SystemConfig`], [`PackageConfig`];
//! * the `package` declaration of a `lakefile.lean`, read without Lean:
//!   [`parse_lakefile_lean`];
//! * `lake-manifest.json`, `lean-toolchain`, default toolchain and platform: [`Manifest`],
//!   [`default_toolchain`], [`host_platform`];
//! * `.ltar` module archives, vetted without unpacking: [`LtarIndex`];
//! * a module's paths in Lake's build directory and its `.trace`: [`BuildLayout`],
//!   [`SavedTrace`], [`fetch_trace_text`];
//! * resource limits on outside input, their defaults and overrides: [`Limits`].
//!
//! Wire protocols keep a namespace of their own:
//!
//! * [`batch`]: tarn's batch existence API (request, reply, limits).
//! * [`object_key`]: the object layout under a service's URLs (artifact and revision keys).
//! * [`lean_json`]: JSON text byte-identical to Lean's printer (`pretty`; `Json.compress` for mapping files).
//! * [`reservoir`]: the Reservoir API's bulk request, bulk reply and error bodies.
//! * [`sigv4`]: AWS Signature Version 4 signing and checking.
//! * [`request_target`]: an S3 request's path components and query parameters.
//! * [`byte_range`]: HTTP `Range` headers resolved against an object's length.
//! * [`s3_listing`]: ListObjects queries and ListObjectsV2 XML replies.
//! * [`trust`]: signed revisions: Ed25519 keys in OpenSSH's encodings and the signature
//!   object `<rev>.jsonl.sig`.
//!
//! ```
//! use tarn_core::{ArtifactName, Hash};
//! let name = ArtifactName::new(Hash::of_bytes(b"hello"), "olean");
//! assert_eq!(name.file_name(), "884e46be8ed9fafd.olean");
//! ```

// Engines report through return values and events; only the binary prints (ARCHITECTURE.md).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod artifact;
pub mod batch;
mod build_dir;
pub mod byte_range;
mod config;
mod hash;
mod lakefile;
pub mod lean_json;
mod lean_version;
mod limits;
mod ltar;
mod mapping;
pub mod object_key;
mod output;
mod printable;
pub mod request_target;
pub mod reservoir;
pub mod s3_listing;
mod scope;
mod service;
pub mod sigv4;
pub mod trust;
mod units;
mod workspace;

/// Artifact file names.
pub use artifact::{ArtifactName, ArtifactNameError};
/// A module's paths in Lake's build directory and the `.trace` beside them.
pub use build_dir::{
    fetch_trace_text, module_output_descrs, BuildLayout, LayoutError, ModuleName, ModuleNameError,
    SavedTrace, TraceError,
};
/// The system configuration and package options.
pub use config::{ConfigError, PackageConfig, SystemConfig};
/// Lake's hashes.
pub use hash::{mix_hash, murmur64a, Hash, ParseHashError, StreamingHasher, LEAN_SEED};
/// `lakefile.lean`'s `package` declaration.
pub use lakefile::{parse_lakefile_lean, LakefileError, Warning, MAX_LAKEFILE_BYTES};
/// What `lean --version` says, the platform and toolchain Lake derives from it, elan's names.
pub use lean_version::{
    elan_toolchain_name, host_platform, toolchain_origin, LeanVersion, LEAN_VERSION_OUTPUT_LIMIT,
};
/// Resource limits on outside input.
pub use limits::{
    default_get_bytes, parse_size, Limits, MAX_ARTIFACT_ENV, MAX_CONFIG_FILE_BYTES,
    MAX_ERROR_BODY_BYTES, MAX_GET_ENV, MAX_MAPPINGS_ENV, MAX_REPLY_ENV, MAX_S3_LISTING_PAGE_BYTES,
    MIN_FREE_AFTER_GET, TEMP_GRACE_ENV,
};
/// The `.ltar` module archive container, vetted without unpacking.
pub use ltar::{module_ext_base, LtarEntry, LtarError, LtarFile, LtarIndex, LtarKind, ModuleFiles};
/// Mapping files.
pub use mapping::{
    artifacts_of, collect_artifacts, EntryError, LineWarning, MappingError, MappingFile,
    OutputsError, Parsed, SCHEMA_G1, SCHEMA_G3,
};
/// `outputs/` wrappers.
pub use output::{CacheOutput, OutputParseError};
/// Text from outside shown safely: one bounded line, control characters escaped.
pub use printable::{no_workflow_commands, printable_line, printable_lines, secret_shaped};
/// Remote scopes and toolchain names.
pub use scope::{
    check_platform, check_toolchain, scope_matches, toolchain_dir, uri_encode, Scope, ScopeError,
};
/// Services and their URLs.
pub use service::{
    normalize_endpoint, Service, ServiceKind, ARTIFACT_CONTENT_TYPE, DEFAULT_RESERVOIR_API,
    MAPPINGS_CONTENT_TYPE, RESERVOIR_HEADERS, RESERVOIR_NAME,
};
/// Sizes and durations with their units (`20GiB`, `30d`).
pub use units::{parse_human_duration, parse_human_size, UnitError};
/// `lake-manifest.json`, `lean-toolchain`, toolchain and platform defaults.
pub use workspace::{
    check_inside_workspace, default_toolchain, parse_lean_toolchain, DependencyKind, Manifest,
    ManifestError, ManifestPackage, DEFAULT_PACKAGES_DIR, MAX_CONFIG_BYTES,
};
