//! # tarn-core
//!
//! The formats of Lake's artifact cache, with no I/O and no async: everything here is a pure
//! function of its inputs, so it is unit-tested against Lake's own examples.
//!
//! * [`hash`]: Lake's 64-bit hashes (MurmurHash64A seed 11, `mixHash`), hex and JSON forms.
//! * [`artifact`]: artifact file names `<hash>[.<ext>]` and remote `<hash>.art` names.
//! * [`batch`]: tarn's batch existence API (request, reply, limits).
//! * [`mapping`]: mapping files (`lake build -o`, revision files, `outputs.jsonl`).
//! * [`output`]: `outputs/<scope>/<hash>.json` wrappers.
//! * [`scope`]: remote scopes, toolchain normalisation, RFC 3986 encoding.
//! * [`service`]: service kinds and the URLs Lake builds for them.
//! * [`object_key`]: the object layout under those URLs (artifact and revision keys).
//! * [`config`]: the system configuration and package options (`lakefile.toml`).
//! * [`lean_json`]: JSON text byte-identical to Lean's printer (`compress`, `pretty`).
//! * [`lakefile`]: the `package` declaration of a `lakefile.lean`, read without Lean.
//! * [`workspace`]: `lake-manifest.json`, `lean-toolchain`, default toolchain and platform.
//! * [`reservoir`]: the Reservoir API's bulk request, bulk reply and error bodies.
//! * [`sigv4`]: AWS Signature Version 4 signing and checking.
//! * [`limits`]: resource limits on outside input, their defaults and overrides.
//! * [`request_target`]: an S3 request's path components and query parameters.
//! * [`byte_range`]: HTTP `Range` headers resolved against an object's length.
//! * [`s3_listing`]: ListObjects queries and ListObjectsV2 XML replies.
//!
//! ```
//! use tarn_core::{hash::Hash, artifact::ArtifactName};
//! let name = ArtifactName::new(Hash::of_bytes(b"hello"), "olean");
//! assert_eq!(name.file_name(), "884e46be8ed9fafd.olean");
//! assert_eq!(name.remote_name(), "884e46be8ed9fafd.art");
//! ```

// Engines report through return values and events; only the binary prints (ARCHITECTURE.md).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod artifact;
pub mod batch;
pub mod byte_range;
pub mod config;
pub mod hash;
pub mod lakefile;
pub mod lean_json;
pub mod limits;
pub mod mapping;
pub mod object_key;
pub mod output;
pub mod request_target;
pub mod reservoir;
pub mod s3_listing;
pub mod scope;
pub mod service;
pub mod sigv4;
pub mod workspace;

pub use artifact::ArtifactName;
pub use hash::Hash;
pub use mapping::MappingFile;
pub use scope::Scope;
pub use service::Service;
