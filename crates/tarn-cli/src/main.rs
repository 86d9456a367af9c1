//! `tarn`: a fast, verifiable build-artifact cache for Lean's Lake, byte-compatible with
//! `lake cache`. This file parses arguments and dispatches; each command lives in
//! `commands/`.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod commands;
mod context;
mod global_args;
mod ui;

use commands::{cache, key, local, remote, restore, serve};

/// Exit codes (also listed in `tarn --help` and the README).
const AFTER_HELP: &str = "\
Exit codes:
  0  success: everything asked for was done and verified
  1  failure: something could not be done (missing or corrupt artifacts, failed transfers,
     bad configuration); every problem is printed, and work that could go on went on
  2  usage error: bad command-line arguments
  141  stdout or stderr was closed early (e.g. piped into `head`): tarn stopped quietly,
     as if killed by SIGPIPE; files it had written are complete

Environment: LAKE_CACHE_DIR, ELAN_HOME, ELAN_TOOLCHAIN, XDG_CACHE_HOME, LAKE_CONFIG,
LAKE_CACHE_KEY, LAKE_CACHE_ARTIFACT_ENDPOINT, LAKE_CACHE_REVISION_ENDPOINT, RESERVOIR_API_URL
mean what they mean to Lake.";

/// A fast, verifiable build-artifact cache for Lean's Lake.
#[derive(Parser, Debug)]
#[command(name = "tarn", version, about, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: global_args::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Copy build outputs from the cache to a flat staging directory.
    Stage(local::StageArgs),
    /// Import a (possibly untrusted) staging directory into the cache, verifying everything.
    Unstage(local::UnstageArgs),
    /// Add input-to-output mappings to the cache.
    Add(local::AddArgs),
    /// Rehash cached artifacts: those a mappings file names, or the whole cache.
    Verify(local::VerifyArgs),
    /// Remove ALL files from the local cache.
    Clean(local::CleanArgs),
    /// Print the configured remote cache services.
    Services(local::ServicesArgs),
    /// Print Lake's hash of each file.
    Hash(local::HashArgs),
    /// Download build outputs from a remote service into the cache.
    Get(remote::GetArgs),
    /// Upload build outputs from the cache to a remote service.
    Put(remote::PutArgs),
    /// Upload build outputs from a staging directory to a remote service.
    PutStaged(remote::PutStagedArgs),
    /// Run a Lake-compatible cache service (and its maintenance commands).
    Serve(serve::ServeArgs),
    /// Signing keys for signed revisions (docs/trust.md).
    Key(key::KeyArgs),
    /// Round trip on a generated fixture with no external service: stage, unstage, verify.
    Demo(local::DemoArgs),
    /// Put module outputs from the cache into Lake's build directories, with Lake's traces.
    Restore(restore::RestoreArgs),
    /// Keep the local cache within a size: prune least recently used files, show statistics.
    Cache(cache::CacheArgs),
}

/// Commands on which the global `--cache-dir` and `-d` have no effect (with their
/// subcommands): their `--help` does not list them, and a value given anyway is ignored with a
/// warning, so command lines that passed them keep working.
const WITHOUT_CACHE_OR_PACKAGE: &[&str] = &["services", "hash", "serve", "demo", "key"];

/// Ids of the global options that only commands using a cache or a package read.
const CACHE_OR_PACKAGE_ARGS: &[&str] = &["cache_dir", "dir"];

/// The command line parser: `Cli`, with hidden copies of `--cache-dir` and `-d` in the
/// commands that do not use them. Clap copies a global option into a subcommand only when the
/// subcommand has no argument of that id, so these copies (global too, so they reach the
/// subcommands of `serve`) take the place of the listed ones there, and their values still
/// land in [`global_args::GlobalArgs`].
fn command() -> clap::Command {
    let cmd = Cli::command();
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| CACHE_OR_PACKAGE_ARGS.contains(&a.get_id().as_str()))
        .map(|a| a.clone().hide(true))
        .collect();
    cmd.mut_subcommands(|sc| {
        if WITHOUT_CACHE_OR_PACKAGE.contains(&sc.get_name()) {
            sc.args(hidden.iter().cloned())
        } else {
            sc
        }
    })
}

/// Warns about `--cache-dir` or `-d` given to a command that does not use them.
fn warn_inapplicable(matches: &clap::ArgMatches) {
    let Some(name) = matches.subcommand_name() else {
        return;
    };
    if !WITHOUT_CACHE_OR_PACKAGE.contains(&name) {
        return;
    }
    for (id, flag) in [("cache_dir", "--cache-dir"), ("dir", "-d/--dir")] {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            tracing::warn!("{flag} has no effect on `tarn {name}`; ignored");
        }
    }
}

fn main() -> ExitCode {
    ui::exit_quietly_on_broken_pipe();
    let mut cmd = command();
    // Help, version and usage errors are printed here rather than by clap's `exit`, which
    // ignores a closed pipe and exits 0.
    let matches = match cmd.try_get_matches_from_mut(std::env::args_os()) {
        Ok(m) => m,
        Err(e) => return ui::print_clap(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return ui::print_clap(&e.format(&mut cmd)),
    };
    ui::init_logging(&cli.global);
    warn_inapplicable(&matches);
    let result = match cli.command {
        Command::Stage(a) => local::stage(&cli.global, a),
        Command::Unstage(a) => local::unstage(&cli.global, a),
        Command::Add(a) => local::add(&cli.global, a),
        Command::Verify(a) => local::verify(&cli.global, a),
        Command::Clean(a) => local::clean(&cli.global, a),
        Command::Services(a) => local::services(&cli.global, a),
        Command::Hash(a) => local::hash(&cli.global, a),
        Command::Demo(a) => local::demo(&cli.global, a),
        Command::Get(a) => remote::get(&cli.global, a),
        Command::Put(a) => remote::put(&cli.global, a),
        Command::PutStaged(a) => remote::put_staged(&cli.global, a),
        Command::Serve(a) => serve::serve(&cli.global, a),
        Command::Restore(a) => restore::restore(&cli.global, a),
        Command::Key(a) => key::key(&cli.global, a),
        Command::Cache(a) => cache::cache(&cli.global, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            ui::print_error(&e);
            ExitCode::from(1)
        }
    }
}
