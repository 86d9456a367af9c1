//! `tarn-fixture`: writes a Lake-shaped cache and its mapping file.
//!
//! ```text
//! tarn-fixture --preset mathlib|small [--modules N] [--seed S] [--style ltar|modules]
//!              [--schema 2026-03-17|2025-09-10] --out DIR
//! tarn-fixture --workspace [--modules N] --out DIR
//! ```
//!
//! Writes `DIR/cache/artifacts/…` and `DIR/mappings.jsonl`, then prints a summary. With
//! `--workspace`: a Mathlib-shaped Lake workspace in `DIR/workspace` (root lakefile.lean,
//! manifest, eight dependency checkouts as git repositories), and with `--modules N` also a
//! cache of N modules per package in `DIR/cache` with mapping files `DIR/mappings/<pkg>.jsonl`.
//!
//! A second binary of tarn-cli so that `cargo install` installs it with `tarn`; the generator
//! is the `tarn-fixture` library.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tarn_core::{SCHEMA_G1, SCHEMA_G3};
use tarn_fixture::{generate, write_mappings, FixtureSpec, Style};

const USAGE: &str = "usage: tarn-fixture [--preset mathlib|small] [--modules N] [--seed S] \
[--style ltar|modules] [--schema 2026-03-17|2025-09-10] --out DIR
       tarn-fixture --workspace [--modules N] --out DIR";

/// Exit code when stdout or stderr is a closed pipe, as `tarn`'s: 128 + SIGPIPE.
const EXIT_BROKEN_PIPE: u8 = 141;

/// Prints a line on stdout like `println!`, but a closed pipe ends the process quietly with
/// [`EXIT_BROKEN_PIPE`] (everything written before is complete) instead of a panic, and any
/// other failure to write is an error.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*).map_err(|e| stdout_failed(&e))?
    };
}

fn stdout_failed(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(EXIT_BROKEN_PIPE));
    }
    format!("writing to stdout: {e}")
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => match writeln!(std::io::stderr(), "tarn-fixture: {msg}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::from(EXIT_BROKEN_PIPE)
            }
            _ => ExitCode::from(if msg.starts_with("usage") { 2 } else { 1 }),
        },
    }
}

fn run() -> Result<(), String> {
    let mut preset = "small".to_string();
    let mut modules: Option<usize> = None;
    let mut seed: Option<u64> = None;
    let mut style: Option<Style> = None;
    let mut schema = SCHEMA_G3.to_string();
    let mut out: Option<PathBuf> = None;
    let mut workspace = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("usage: {name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--preset" => preset = value("--preset")?,
            "--modules" => {
                modules = Some(
                    value("--modules")?
                        .parse()
                        .map_err(|_| format!("usage: --modules wants a number\n{USAGE}"))?,
                )
            }
            "--seed" => {
                seed = Some(
                    value("--seed")?
                        .parse()
                        .map_err(|_| format!("usage: --seed wants a number\n{USAGE}"))?,
                )
            }
            "--style" => {
                style = Some(match value("--style")?.as_str() {
                    "ltar" => Style::Ltar,
                    "modules" => Style::Modules,
                    other => return Err(format!("usage: unknown style {other:?}\n{USAGE}")),
                })
            }
            "--schema" => {
                schema = value("--schema")?;
                if schema != SCHEMA_G1 && schema != SCHEMA_G3 {
                    return Err(format!("usage: unknown schema {schema:?}\n{USAGE}"));
                }
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--workspace" => workspace = true,
            "-h" | "--help" => {
                say!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("usage: unknown argument {other:?}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| format!("usage: --out DIR is required\n{USAGE}"))?;
    if workspace {
        return write_workspace(&out, modules);
    }
    let mut spec = match preset.as_str() {
        "mathlib" => FixtureSpec::mathlib(),
        "small" => FixtureSpec::small(300),
        other => return Err(format!("usage: unknown preset {other:?}\n{USAGE}")),
    };
    if let Some(n) = modules {
        spec.modules = n;
    }
    if let Some(s) = seed {
        spec.seed = s;
    }
    if let Some(s) = style {
        spec.style = s;
    }
    let start = Instant::now();
    let fx = generate(&spec, &out.join("cache")).map_err(|e| format!("{}: {e}", out.display()))?;
    if schema != SCHEMA_G3 {
        write_mappings(&fx.mappings, &fx.mappings_path, &schema)
            .map_err(|e| format!("{}: {e}", fx.mappings_path.display()))?;
    }
    let secs = start.elapsed().as_secs_f64();
    say!(
        "{} modules, {} artifacts, {:.1} MB in {:.2}s\ncache:    {}\nmappings: {}",
        spec.modules,
        fx.artifacts.len(),
        fx.total_bytes as f64 / 1e6,
        secs,
        out.join("cache").display(),
        fx.mappings_path.display()
    );
    Ok(())
}

/// `--workspace`: the Mathlib-shaped workspace, and per-package caches with `--modules`.
fn write_workspace(out: &std::path::Path, modules: Option<usize>) -> Result<(), String> {
    let start = Instant::now();
    let ws = tarn_fixture::workspace::mathlib_workspace(&out.join("workspace"))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    say!(
        "workspace: {} ({} at {})",
        ws.root.display(),
        ws.root_name,
        ws.root_rev
    );
    for p in &ws.packages {
        say!(
            "  {:<17} {:<21} {} {}",
            p.name,
            if p.scope.is_empty() {
                "(git only)"
            } else {
                &p.scope
            },
            p.rev,
            p.language.file_name()
        );
    }
    if let Some(n) = modules {
        let caches = ws
            .package_caches(&out.join("cache"), &out.join("mappings"), n)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        let bytes: u64 = caches.iter().map(|c| c.fixture.total_bytes).sum();
        say!(
            "caches: {} packages x {n} modules, {:.1} MB in {}\nmappings: {}",
            caches.len(),
            bytes as f64 / 1e6,
            out.join("cache").display(),
            out.join("mappings").display()
        );
    }
    say!("in {:.2}s", start.elapsed().as_secs_f64());
    Ok(())
}
