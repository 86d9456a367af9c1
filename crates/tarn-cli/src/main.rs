//! `tarn`: a fast, verifiable build-artifact cache for Lean's Lake, byte-compatible with
//! `lake cache`. This file parses arguments and dispatches; each command lives in
//! `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod context;
mod ui;

use commands::{local, remote, serve};

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
    global: context::GlobalArgs,
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
    /// Round trip on a generated fixture with no external service: stage, unstage, verify.
    Demo(local::DemoArgs),
}

fn main() -> ExitCode {
    ui::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    ui::init_logging(&cli.global);
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            ui::print_error(&e);
            ExitCode::from(1)
        }
    }
}
