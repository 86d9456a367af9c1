//! `tarn cache prune` and `tarn cache stats`: keeping the local cache within a size. The
//! decisions and every removal are in `tarn_store::prune`; this module reads flags, takes
//! the cache lock and prints.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use serde_json::json;
use tarn_store::{
    Bucket, Cache, KeptRevision, LockMode, PruneOptions, PruneReport, Tally, Workspace, AGE_BANDS,
};

use super::CmdResult;
use super::{exit, say};
use crate::context;
use crate::global_args::GlobalArgs;
use crate::ui;

/// `tarn cache <command>`.
#[derive(clap::Args, Debug)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CacheCommand {
    /// Remove least recently used entries and artifacts until the cache fits a size or age.
    Prune(PruneArgs),
    /// Show what the cache holds: size and count by scope, by age of last use, by extension.
    Stats(StatsArgs),
}

/// `tarn cache stats`.
#[derive(clap::Args, Debug)]
pub(crate) struct StatsArgs {}

/// `tarn cache prune`.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("limit").required(true).multiple(true).args(["max_size", "max_age"]))]
pub(crate) struct PruneArgs {
    /// Prune until the cache holds at most this much (a unit is required, e.g. 20GB or 500MB;
    /// binary units too).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    max_size: Option<u64>,
    /// Remove everything not used for this long (a unit is required: 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    max_age: Option<Duration>,
    /// Never remove anything used within this period.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, default_value = "1h")]
    grace: Duration,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep everything the current revisions of this workspace need (repeatable). Workspaces
    /// `tarn get` fetched for are kept too.
    #[arg(long, value_name = "DIR")]
    keep_workspace: Vec<PathBuf>,
}

/// Clap's parser for sizes (a usage error, exit 2, names the flag and the rule).
fn parse_size_arg(s: &str) -> Result<u64, String> {
    tarn_core::parse_human_size(s).map_err(|e| e.to_string())
}

/// Clap's parser for durations.
fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    tarn_core::parse_human_duration(s).map_err(|e| e.to_string())
}

/// `tarn cache ...`.
pub(crate) fn cache(g: &GlobalArgs, a: CacheArgs) -> CmdResult {
    match a.command {
        CacheCommand::Prune(p) => prune(g, p),
        CacheCommand::Stats(_) => stats(g),
    }
}

fn prune(g: &GlobalArgs, a: PruneArgs) -> CmdResult {
    let (cache, _) = context::open_cache(g)?;
    if !cache.root().exists() {
        return Err(anyhow!(
            "no cache to prune; {} does not exist",
            cache.root().display()
        ));
    }
    let opts = PruneOptions {
        max_size: a.max_size,
        max_age: a.max_age,
        grace: a.grace,
        dry_run: a.dry_run,
        keep: kept_revisions(&cache, &a.keep_workspace, a.dry_run)?,
    };
    let report = run_prune(&cache, &opts)?;
    print_prune(g, &cache, &report);
    Ok(exit(report.problems.is_empty()))
}

/// The automatic prune after `tarn get` when the configuration sets `tarn.maxSize`: the
/// default grace period, the recorded workspaces kept. It never changes `get`'s exit code; a
/// failure is a warning.
pub(crate) fn prune_after_get(cache: &Cache, max_size: Option<u64>) {
    let Some(max_size) = max_size else { return };
    let run = || -> anyhow::Result<PruneReport> {
        let opts = PruneOptions {
            max_size: Some(max_size),
            max_age: None,
            grace: tarn_store::DEFAULT_GRACE,
            dry_run: false,
            keep: kept_revisions(cache, &[], false)?,
        };
        run_prune(cache, &opts)
    };
    match run() {
        Ok(r) => {
            if r.removed != Tally::default() {
                tracing::info!(
                    "tarn.maxSize {}: pruned {}",
                    ui::human_bytes(max_size),
                    tally_text(&r.removed)
                );
            }
            if !r.size_reached() {
                tracing::warn!(
                    "tarn.maxSize {}: the cache still holds {} (used within the last hour, or kept for workspaces)",
                    ui::human_bytes(max_size),
                    ui::human_bytes(r.remaining.bytes)
                );
            }
            for p in &r.problems {
                tracing::warn!("prune: {p}");
            }
        }
        Err(e) => tracing::warn!("tarn.maxSize: the cache was not pruned: {e:#}"),
    }
}

/// How many revisions from HEAD are searched for one whose mappings are in the cache, like
/// `tarn get`'s default `--max-revs`.
const KEEP_SEARCH_REVS: u64 = 100;

/// The revisions the workspaces `dirs` (an error if one is not a workspace) and the
/// workspaces recorded by `tarn get` (skipped with a warning; forgotten when gone) need.
pub(crate) fn kept_revisions(
    cache: &Cache,
    dirs: &[PathBuf],
    dry_run: bool,
) -> anyhow::Result<Vec<KeptRevision>> {
    let mut keep = Vec::new();
    for dir in dirs {
        if !tarn_store::is_package_dir(dir) {
            return Err(ui::with_hint(
                anyhow!(
                    "--keep-workspace {}: no lakefile.toml or lakefile.lean there",
                    dir.display()
                ),
                "give the directory of a Lake workspace (its root package)",
            ));
        }
        let (ws, _) = Workspace::load(dir)?;
        keep.extend(workspace_revisions(cache, &ws, true));
    }
    let mut gone = Vec::new();
    for (dir, _) in tarn_store::recorded_workspaces(cache) {
        if !tarn_store::is_package_dir(&dir) {
            tracing::info!("{}: recorded workspace is gone; forgotten", dir.display());
            gone.push(dir);
            continue;
        }
        match Workspace::load(&dir) {
            Ok((ws, _)) => keep.extend(workspace_revisions(cache, &ws, false)),
            Err(e) => tracing::warn!(
                "recorded workspace {}: {e}; nothing kept for it",
                dir.display()
            ),
        }
    }
    if !dry_run {
        tarn_store::forget_workspaces(cache, &gone)?;
    }
    keep.sort();
    keep.dedup();
    Ok(keep)
}

/// For each package of `ws`, the newest revision of its history (`git rev-list HEAD`, else the
/// manifest's locked revision) whose mapping file `tarn get` saved in `revisions/<name>/`.
fn workspace_revisions(cache: &Cache, ws: &Workspace, explicit: bool) -> Vec<KeptRevision> {
    let mut out = Vec::new();
    for pkg in &ws.packages {
        let mut revs = tarn_remote::rev_list(&pkg.repo_dir, KEEP_SEARCH_REVS).unwrap_or_default();
        revs.extend(pkg.rev.clone());
        match revs
            .into_iter()
            .find(|r| cache.revision_path(&pkg.name, r).is_file())
        {
            Some(rev) => {
                tracing::info!(
                    "{}: keeping revision {rev} of {}",
                    ws.root_dir.display(),
                    pkg.name
                );
                out.push(KeptRevision {
                    scope: pkg.name.clone(),
                    rev,
                });
            }
            None if explicit => tracing::warn!(
                "{}: package {} has no revision in {} of the cache; nothing kept for it",
                ws.root_dir.display(),
                pkg.name,
                cache.revisions_dir(&pkg.name).display()
            ),
            None => {}
        }
    }
    out
}

/// Runs a prune under the cache lock (exclusive; shared for a dry run, which removes
/// nothing).
pub(crate) fn run_prune(cache: &Cache, opts: &PruneOptions) -> anyhow::Result<PruneReport> {
    let mode = if opts.dry_run {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let _lock = context::lock_cache(cache, mode)?;
    tarn_store::prune(cache, opts).map_err(|e| {
        ui::with_hint(
            e,
            "pass the cache directory with --cache-dir, or check LAKE_CACHE_DIR",
        )
    })
}

fn stats(g: &GlobalArgs) -> CmdResult {
    let (cache, _) = context::open_cache(g)?;
    if !cache.root().exists() {
        return Err(anyhow!(
            "no cache; {} does not exist",
            cache.root().display()
        ));
    }
    let s = tarn_store::cache_stats(&cache)?;
    for p in &s.problems {
        ui::say!("error: {p}");
    }
    let bucket = |b: &Bucket| json!({"count": b.count, "bytes": b.bytes});
    if g.json {
        ui::print_json(&json!({
            "ok": s.problems.is_empty(),
            "cache": cache.root(),
            "total": tally_json(&s.total),
            "by_scope": s.by_scope.iter().map(|(k, v)| (k.clone(), json!({
                "entries": bucket(&v.entries),
                "artifacts": bucket(&v.artifacts),
                "revisions": bucket(&v.revisions),
            }))).collect::<serde_json::Map<_, _>>(),
            "unnamed_artifacts": bucket(&s.unnamed),
            "by_age": AGE_BANDS.iter().zip(&s.by_age).map(|((label, _), b)| (label.to_string(), bucket(b))).collect::<serde_json::Map<_, _>>(),
            "by_extension": s.by_extension.iter().map(|(k, v)| (k.clone(), bucket(v))).collect::<serde_json::Map<_, _>>(),
            "oldest": s.oldest.map(tarn_store::unix_seconds),
            "unknown": s.unknown.iter().map(|u| json!({"path": u.path, "bytes": u.bytes})).collect::<Vec<_>>(),
            "temp_files": s.temp_files,
            "problems": s.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "seconds": s.elapsed.as_secs_f64(),
        }));
        return Ok(exit(s.problems.is_empty()));
    }
    let line = |label: &str, b: &Bucket| {
        format!(
            "  {label:<24} {:>9} files {:>10}",
            b.count,
            ui::human_bytes(b.bytes)
        )
    };
    let mut out = vec![format!(
        "{}: {}",
        cache.root().display(),
        tally_text(&s.total)
    )];
    out.push("by scope (entries / artifacts they name / revision files):".into());
    for (scope, v) in &s.by_scope {
        out.push(format!(
            "  {scope:<24} {:>7} / {:>7} ({}) / {:>4}",
            v.entries.count,
            v.artifacts.count,
            ui::human_bytes(v.artifacts.bytes),
            v.revisions.count
        ));
    }
    out.push(line("(no entry names them)", &s.unnamed));
    out.push("artifacts by last use:".into());
    for ((label, _), b) in AGE_BANDS.iter().zip(&s.by_age) {
        out.push(line(label, b));
    }
    out.push("artifacts by extension:".into());
    for (ext, b) in &s.by_extension {
        out.push(line(if ext.is_empty() { "(none)" } else { ext }, b));
    }
    for u in &s.unknown {
        out.push(format!(
            "not a Lake cache file: {} ({})",
            u.path.display(),
            ui::human_bytes(u.bytes)
        ));
    }
    if !g.quiet {
        ui::show!("{}", out.join("\n"));
    }
    Ok(exit(s.problems.is_empty()))
}

fn tally_json(t: &Tally) -> serde_json::Value {
    json!({"entries": t.entries, "artifacts": t.artifacts, "revisions": t.revisions, "bytes": t.bytes})
}

fn tally_text(t: &Tally) -> String {
    format!(
        "{} entries, {} artifacts, {} revision files ({})",
        t.entries,
        t.artifacts,
        t.revisions,
        ui::human_bytes(t.bytes)
    )
}

/// `3 days`, `5 hours`, `12 minutes`: how long ago `t` was.
fn ago(t: SystemTime) -> String {
    let s = t.elapsed().unwrap_or_default().as_secs();
    match s {
        0..120 => format!("{s} seconds"),
        120..7_200 => format!("{} minutes", s / 60),
        7_200..172_800 => format!("{} hours", s / 3_600),
        _ => format!("{} days", s / 86_400),
    }
}

fn print_prune(g: &GlobalArgs, cache: &Cache, r: &PruneReport) {
    for p in &r.problems {
        ui::say!("error: {p}");
    }
    let oldest = r.oldest_kept.map(tarn_store::unix_seconds);
    if g.json {
        ui::print_json(&json!({
            "ok": r.problems.is_empty(),
            "cache": cache.root(),
            "dry_run": r.dry_run,
            "removed": tally_json(&r.removed),
            "remaining": tally_json(&r.remaining),
            "oldest_kept": oldest,
            "kept": tally_json(&r.kept),
            "in_grace": tally_json(&r.in_grace),
            "max_size": r.max_size,
            "size_reached": r.size_reached(),
            "kept_exceeds_max_size": r.kept_exceeds_max_size(),
            "kept_missing": r.kept_missing.iter().map(|k| json!({"scope": k.scope, "rev": k.rev})).collect::<Vec<_>>(),
            "unknown": r.unknown.iter().map(|u| json!({"path": u.path, "bytes": u.bytes})).collect::<Vec<_>>(),
            "temp_files": r.temp_files,
            "problems": r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "seconds": r.elapsed.as_secs_f64(),
        }));
        return;
    }
    for u in &r.unknown {
        tracing::warn!(
            "{}: not a Lake cache file; left alone ({})",
            u.path.display(),
            ui::human_bytes(u.bytes)
        );
    }
    for k in &r.kept_missing {
        tracing::warn!(
            "kept revision {} of {}: no revisions/{}/{}.jsonl in the cache, so nothing is kept for it",
            k.rev,
            k.scope,
            k.scope,
            k.rev
        );
    }
    if let Some(max) = r.max_size {
        if r.kept_exceeds_max_size() {
            tracing::warn!(
                "the kept workspaces alone need {}, more than --max-size {}",
                ui::human_bytes(r.kept.bytes),
                ui::human_bytes(max)
            );
        } else if !r.size_reached() {
            tracing::warn!(
                "{} remain, more than --max-size {}: {} were used within the grace period and {} are kept for workspaces",
                ui::human_bytes(r.remaining.bytes),
                ui::human_bytes(max),
                ui::human_bytes(r.in_grace.bytes),
                ui::human_bytes(r.kept.bytes)
            );
        }
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    say(g, format!("{verb} {}", tally_text(&r.removed)));
    let oldest = r
        .oldest_kept
        .map(|t| format!("; least recently used {} ago", ago(t)))
        .unwrap_or_default();
    say(
        g,
        format!(
            "{} {}{oldest}",
            if r.dry_run { "would keep" } else { "remaining" },
            tally_text(&r.remaining)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        let ago_secs = |s| ago(SystemTime::now() - Duration::from_secs(s));
        assert_eq!(ago_secs(30), "30 seconds");
        assert_eq!(ago_secs(600), "10 minutes");
        assert_eq!(ago_secs(5 * 3600), "5 hours");
        assert_eq!(ago_secs(3 * 86_400), "3 days");
    }
}
