//! One module per group of commands: `local` (offline, the cache on disk), `cache` (keeping
//! the cache within a size), `remote` (transfers), `key` (signing keys and trust), `serve` (the
//! server), `restore` (the build directory).

pub(crate) mod cache;
pub(crate) mod key;
pub(crate) mod local;
pub(crate) mod remote;
pub(crate) mod restore;
pub(crate) mod serve;

/// What every command returns: an exit code, or an error printed as `error: ...` (exit 1).
pub(crate) type CmdResult = anyhow::Result<std::process::ExitCode>;
