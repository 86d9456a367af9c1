//! The global flags every command takes (`--help`: "Global options"), read by the context
//! (`context.rs`) and the output (`ui.rs`) alike.

use std::path::PathBuf;

/// Flags accepted by every command, before or after its name (`--help`: "Global options").
/// `--cache-dir` and `-d` are hidden from the help of commands that use neither a cache nor
/// a package (see `main.rs`).
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// More output (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print a machine-readable JSON summary on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Use this cache directory, whatever the environment says.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The package directory (holding lakefile.toml or lakefile.lean).
    #[arg(
        short = 'd',
        long = "dir",
        global = true,
        value_name = "DIR",
        default_value = "."
    )]
    pub dir: PathBuf,
}
