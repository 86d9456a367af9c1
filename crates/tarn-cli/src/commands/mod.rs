//! One module per group of commands: `local` (offline, the cache on disk), `remote`
//! (transfers), `serve` (the server), `restore` (the build directory).

pub(crate) mod local;
pub(crate) mod remote;
pub(crate) mod restore;
pub(crate) mod serve;

/// What every command returns: an exit code, or an error printed as `error: ...` (exit 1).
pub(crate) type CmdResult = anyhow::Result<std::process::ExitCode>;
