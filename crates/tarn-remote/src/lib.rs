//! tarn-remote: the network half of tarn (see ARCHITECTURE.md).
//!
//! * [`transport`]: one HTTP client, bounded concurrency, retries, stall timeouts, streamed
//!   and hash-checked downloads;
//! * [`signing`]: SigV4 headers for reqwest requests;
//! * [`resolve`]: which service and key to use, with Lake's precedence and errors;
//! * [`get`] / [`put`]: the download and upload engines;
//! * [`git`]: revisions from the real `git`;
//! * [`DiskBound`]: the most bytes one `get` may write to disk;
//! * [`Event`] / [`Progress`]: events for the CLI to draw (engines never draw).

// Engines report through return values and events; only the binary prints (ARCHITECTURE.md).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod disk_budget;
pub mod get;
pub mod git;
mod progress;
pub mod put;
pub mod resolve;
pub mod signing;
pub mod transport;

/// The bound on the disk one `get` may fill.
pub use disk_budget::DiskBound;
pub use progress::{Event, Progress};
pub use transport::{Transport, TransportOptions};
