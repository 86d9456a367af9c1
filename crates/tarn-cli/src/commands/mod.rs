//! One module per group of commands: `local` (offline, the cache on disk), `cache` (keeping
//! the cache within a size), `remote` (transfers), `serve` (the server).

pub(crate) mod cache;
pub(crate) mod local;
pub(crate) mod remote;
pub(crate) mod serve;

/// What every command returns: an exit code, or an error printed as `error: ...` (exit 1).
pub(crate) type CmdResult = anyhow::Result<std::process::ExitCode>;
