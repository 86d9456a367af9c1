//! `tarn restore` (and `tarn get --restore`): module outputs from the cache into Lake's
//! build directories; the work is `tarn_store::restore`, this module picks the packages and
//! mappings, and prints the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use tarn_core::BuildLayout;
use tarn_store::{Cache, Package, RestoreOptions, RestoreReport, RestoreTarget, Workspace};

use super::CmdResult;
use crate::context;
use crate::global_args::GlobalArgs;
use crate::ui;

/// Lake's override of every package's `restoreAllArtifacts` (lean4#13949).
pub(crate) const RESTORE_ARTIFACTS_ENV: &str = "LAKE_RESTORE_ARTIFACTS";

/// How many commits back from HEAD `tarn restore` looks for a saved revision file.
const MAX_REVS: u64 = 100;

/// Arguments of `tarn restore`.
#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {
    /// A mappings file to restore (default: the newest saved revision file of each package,
    /// from HEAD back, as `tarn get` left it in the cache).
    pub mappings: Option<PathBuf>,
    /// The package to restore into (the root or a dependency); default: the root for a
    /// mappings file, else every package with a saved revision.
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    #[command(flatten)]
    pub opts: RestoreFlags,
}

/// Flags shared by `tarn restore` and `tarn get --restore`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct RestoreFlags {
    /// Replace modules whose existing trace is for another input hash.
    #[arg(long)]
    pub force: bool,
}

/// Lake's `envToBool?`.
fn env_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Some(true),
        "n" | "no" | "f" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The package's `restoreAllArtifacts`: its own option, else the root's (the workspace
/// default), overridden by `LAKE_RESTORE_ARTIFACTS`.
fn restore_all(ws: &Workspace, pkg: &Package) -> bool {
    if let Some(v) = std::env::var(RESTORE_ARTIFACTS_ENV)
        .ok()
        .and_then(|v| env_bool(&v))
    {
        return v;
    }
    pkg.config
        .restore_all_artifacts
        .or(ws
            .packages
            .first()
            .and_then(|r| r.config.restore_all_artifacts))
        .unwrap_or(false)
}

/// A restore target for `pkg` with the entries of the mapping file at `path`.
pub(crate) fn target_for(
    ws: &Workspace,
    pkg: &Package,
    path: &Path,
) -> anyhow::Result<RestoreTarget> {
    let layout = BuildLayout::of(&pkg.config).map_err(|e| {
        anyhow!(
            "{}: {e}",
            pkg.config_path
                .as_deref()
                .unwrap_or(pkg.dir.as_path())
                .display()
        )
    })?;
    let m = tarn_store::read_mappings(path)?;
    for w in &m.warnings {
        tracing::warn!("{w}");
    }
    Ok(RestoreTarget {
        package: pkg.name.clone(),
        dir: pkg.dir.clone(),
        layout,
        restore_all: restore_all(ws, pkg),
        entries: m.file.entries.into_iter().collect(),
    })
}

/// The newest revision file `tarn get` saved for `pkg`, from its HEAD back.
fn saved_revision(cache: &Cache, pkg: &Package) -> Option<PathBuf> {
    let revs = tarn_remote::rev_list(&pkg.repo_dir, MAX_REVS).ok()?;
    revs.iter()
        .map(|rev| cache.revision_path(&pkg.name, rev))
        .find(|p| p.is_file())
}

/// `tarn restore`.
pub(crate) fn restore(global: &GlobalArgs, a: RestoreArgs) -> CmdResult {
    let ws = context::load_workspace(global, a.package.as_deref())?;
    let (cache, _) = context::open_cache(global)?;
    // `tarn cache prune` keeps what this workspace's current revisions need.
    if tarn_store::is_package_dir(&ws.root_dir) {
        if let Err(e) = tarn_store::record_workspace(&cache, &ws.root_dir) {
            tracing::debug!("workspace not recorded: {e}");
        }
    }
    let mut targets = Vec::new();
    match &a.mappings {
        Some(path) => {
            let pkg = context::select_package(&ws, a.package.as_deref())?;
            targets.push(target_for(&ws, pkg, path)?);
        }
        None => {
            let pkgs: Vec<&Package> = match a.package.as_deref() {
                Some(_) => vec![context::select_package(&ws, a.package.as_deref())?],
                None => ws.packages.iter().collect(),
            };
            for pkg in pkgs {
                match saved_revision(&cache, pkg) {
                    Some(path) => targets.push(target_for(&ws, pkg, &path)?),
                    None if a.package.is_some() => {
                        return Err(ui::with_hint(
                            anyhow!(
                                "{}: no saved revision file in {} for the last {MAX_REVS} commits",
                                pkg.name,
                                cache.revisions_dir(&pkg.name).display()
                            ),
                            "run `tarn get --restore`, or pass a mappings file",
                        ))
                    }
                    None => tracing::info!("{}: no saved revision; skipped", pkg.name),
                }
            }
            if targets.is_empty() {
                return Err(ui::with_hint(
                    anyhow!("no package of this workspace has a saved revision file"),
                    "run `tarn get --restore`, or pass a mappings file",
                ));
            }
        }
    }
    run_and_print(global, &cache, &targets, &a.opts)
}

/// Restores `targets` and prints the report; exit 1 if any module failed.
pub(crate) fn run_and_print(
    global: &GlobalArgs,
    cache: &Cache,
    targets: &[RestoreTarget],
    flags: &RestoreFlags,
) -> CmdResult {
    let start = Instant::now();
    let opts = RestoreOptions {
        leantar: None,
        force: flags.force,
        threads: 0,
    };
    // Shared, like every reader: `tarn cache prune` never deletes what is being restored.
    let lock = context::share_cache(cache);
    let report = tarn_store::restore(cache, targets, &opts);
    // What was restored was just used (prune's LRU order).
    let mut used = std::collections::BTreeSet::new();
    for t in targets {
        for (_, outputs) in &t.entries {
            let _ = tarn_core::collect_artifacts(outputs, &mut used);
        }
    }
    tarn_store::note_use(cache, &used);
    drop(lock);
    Ok(print_report(global, &report, start.elapsed().as_secs_f64()))
}

/// Prints a restore's report (`secs` its wall time); exit 1 if any module failed.
pub(crate) fn print_report(global: &GlobalArgs, r: &RestoreReport, secs: f64) -> ExitCode {
    if global.json {
        let problems: Vec<serde_json::Value> = r
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "package": p.package,
                    "input": p.input.hex(),
                    "subject": p.subject,
                    "error": p.error.to_string(),
                })
            })
            .collect();
        let modules = |list: &[tarn_store::RestoredModule]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|m| {
                    serde_json::json!({"package": m.package, "module": m.module,
                        "input": m.input.hex()})
                })
                .collect()
        };
        let v = serde_json::json!({
            "command": "restore",
            "restored": r.restored.len(),
            "restored_modules": modules(&r.restored),
            "up_to_date": r.up_to_date.len(),
            "not_modules": r.not_modules,
            "problems": problems,
            "leantar": r.leantar.as_ref().map(|(p, v)| serde_json::json!({
                "path": p.display().to_string(), "version": v})),
            "elapsed_secs": secs,
            "ok": r.ok(),
        });
        ui::print_json(&v);
        return super::exit(r.ok());
    }
    for p in &r.problems {
        ui::say!(
            "error: {}: {} (input {}): {}",
            p.package,
            p.subject,
            p.input,
            p.error
        );
    }
    let mut line = format!(
        "restored {} modules, {} already up to date",
        r.restored.len(),
        r.up_to_date.len()
    );
    if r.not_modules > 0 {
        line.push_str(&format!(
            ", {} entries are not module outputs (left to Lake)",
            r.not_modules
        ));
    }
    if !r.problems.is_empty() {
        line.push_str(&format!(", {} failed", r.problems.len()));
    }
    if let Some((path, version)) = &r.leantar {
        line.push_str(&format!(" ({} at {})", version, path.display()));
    }
    ui::show!("{line} in {secs:.2}s");
    super::exit(r.ok())
}

#[cfg(test)]
mod tests {
    use super::env_bool;

    #[test]
    fn lakes_env_booleans() {
        assert_eq!(env_bool("TRUE"), Some(true));
        assert_eq!(env_bool("0"), Some(false));
        assert_eq!(env_bool("maybe"), None);
    }
}
