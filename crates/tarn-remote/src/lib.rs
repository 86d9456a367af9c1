//! tarn-remote: the network half of tarn (see ARCHITECTURE.md).
//!
//! Two engines keep a public namespace, each with its `run`: [`get`] (downloads) and [`put`]
//! (uploads). Everything else is private, its surface re-exported here: [`Transport`] (one
//! HTTP client, bounded concurrency, retries, stall timeouts, streamed and hash-checked
//! downloads) with [`TransferError`]; [`Signer`] (SigV4 headers for reqwest requests);
//! [`resolve_download`] / [`resolve_upload`] (which service and key to use, with Lake's
//! precedence and errors); [`rev_list`] (revisions from the real `git`); [`DiskBound`] (the most bytes one `get` may
//! write to disk); and [`Event`] /
//! [`Progress`] (events for the CLI to draw: engines never draw).

// Engines report through return values and events; only the binary prints (ARCHITECTURE.md).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod bounded_body;
mod disk_budget;
#[cfg(test)]
mod fake_link;
pub mod get;
mod git;
mod progress;
pub mod put;
mod resolve;
mod signing;
mod transport;

/// One bounded reader of HTTP bodies (stall, minimum rate, deadline, size), shared with
/// the server's S3 backend.
pub use bounded_body::{read_capped, BodyBounds, BodyError, BoundedBody, Capped, RateClock};
/// The bound on the disk one `get` may fill.
pub use disk_budget::DiskBound;
/// Revisions from the real `git` (Lake's `resolveRevision` order).
pub use git::rev_list;
pub use progress::{Event, Progress};
/// Which service and key to use, with Lake's precedence.
pub use resolve::{resolve_download, resolve_upload, RemoteEnv};
/// SigV4 headers for reqwest requests.
pub use signing::{Signer, DEFAULT_REGION};
/// Why a transfer failed (retries exhausted, a status, a hash mismatch, a stall).
pub use transport::TransferError;
pub use transport::{Transport, TransportOptions};
