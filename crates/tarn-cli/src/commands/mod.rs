//! One module per group of commands: `local` (offline, the cache on disk), `cache` (keeping
//! the cache within a size), `remote` (transfers), `key` (signing keys and trust), `serve` (the
//! server), `restore` (the build directory), `restore_alongside` (`get --restore` restoring while it
//! downloads).

pub(crate) mod cache;
pub(crate) mod key;
pub(crate) mod local;
pub(crate) mod remote;
pub(crate) mod restore;
pub(crate) mod restore_alongside;
pub(crate) mod serve;

/// What every command returns: an exit code, or an error printed as `error: ...` (exit 1).
pub(crate) type CmdResult = anyhow::Result<std::process::ExitCode>;

/// Exit code 0 when `ok`, else 1 (problems were printed, independent work finished).
pub(crate) fn exit(ok: bool) -> std::process::ExitCode {
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// Prints a progress line unless `--quiet` or `--json`.
pub(crate) fn say(global: &crate::global_args::GlobalArgs, msg: impl std::fmt::Display) {
    if !global.quiet && !global.json {
        crate::ui::say!("{msg}");
    }
}
