//! Offline commands on the local cache: stage, unstage, add, verify, clean, services, hash,
//! demo. They only orchestrate: every read and write of the cache is in `tarn-store`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use tarn_core::Scope;
use tarn_core::ServiceKind;
use tarn_store::hash_text_file;
use tarn_store::VerifyReport;
use tarn_store::{hash_file, read_mappings, Cache, LoadedMappings};
use tarn_store::{LockMode, StageOptions, StageReport};
use tarn_store::{OutputsTarget, UnstageReport};

use super::remote::scope_or_repo;
use super::{exit, say, CmdResult};
use crate::context;
use crate::global_args::GlobalArgs;
use crate::ui;

/// `tarn stage <mappings> <dir>`.
#[derive(clap::Args, Debug)]
pub(crate) struct StageArgs {
    /// The mappings file (the output of `lake build -o FILE`).
    pub mappings: PathBuf,
    /// The staging directory to fill (created if missing).
    #[arg(id = "staging_directory", value_name = "STAGING_DIRECTORY")]
    pub dir: PathBuf,
    /// Replace files that already exist in the staging directory.
    #[arg(long)]
    pub force_overwrite: bool,
    /// Copy artifacts instead of hard-linking them from the cache.
    #[arg(long)]
    pub copy: bool,
}

/// Where outputs can be fetched from on demand: `--service` plus `--scope` or `--repo` (one
/// of the two; clap refuses either without `--service`, a usage error like Lake's).
#[derive(clap::Args, Debug, Clone)]
#[command(group(scope_or_repo()))]
pub(crate) struct TargetArgs {
    /// The package (local scope) the mappings belong to; default: the package in `-d`.
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// Cache service to fetch missing artifacts from on demand.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Verbatim scope of the artifacts within the service (requires --service; with `--repo`
    /// too, the last one given wins, as in Lake).
    #[arg(
        long,
        value_name = "SCOPE",
        requires = "service",
        overrides_with = "repo"
    )]
    pub scope: Option<String>,
    /// GitHub repository scope `owner/name` (requires --service).
    #[arg(
        long,
        value_name = "OWNER/NAME",
        requires = "service",
        overrides_with = "scope"
    )]
    pub repo: Option<String>,
}

/// `tarn unstage <dir>`.
#[derive(clap::Args, Debug)]
pub(crate) struct UnstageArgs {
    /// The staging directory (`outputs.jsonl` plus artifacts); treated as untrusted.
    #[arg(id = "staging_directory", value_name = "STAGING_DIRECTORY")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Replace artifacts and mappings already in the cache (artifacts only by verified copies).
    #[arg(long)]
    pub force_overwrite: bool,
}

/// `tarn add <mappings>`.
#[derive(clap::Args, Debug)]
pub(crate) struct AddArgs {
    /// The mappings file to add to the cache's `outputs/`.
    pub mappings: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Do not overwrite existing mappings.
    #[arg(long)]
    pub no_overwrite: bool,
}

/// `tarn verify [<mappings>]`.
#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Verify only the artifacts this mappings file names (default: scrub the whole cache).
    pub mappings: Option<PathBuf>,
    /// Also re-check every artifact against the SHA-256 of the revision signatures saved by
    /// verified `tarn get`s; a mismatch is moved to .tarn/quarantine/ (docs/trust.md).
    #[arg(long)]
    pub strong: bool,
}

/// `tarn clean`.
#[derive(clap::Args, Debug)]
pub(crate) struct CleanArgs {}

/// `tarn services`.
#[derive(clap::Args, Debug)]
pub(crate) struct ServicesArgs {}

/// `tarn hash [--text] <file>...`.
#[derive(clap::Args, Debug)]
pub(crate) struct HashArgs {
    /// Hash as text (Lake's `computeTextFileHash`: UTF-8, CR LF normalised to LF).
    #[arg(long)]
    pub text: bool,
    /// Files to hash.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `tarn demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Number of generated modules.
    #[arg(long, default_value_t = 300)]
    pub modules: usize,
    /// Keep the generated files in DIR (created; must be empty or absent) instead of a
    /// temporary directory that is removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// Reads a mappings file and prints its line warnings (the first few, then a count). A file
/// with no readable entry at all (a lakefile, a README, `Cargo.lock`) is refused: Lake skips
/// bad lines with a warning, but "all good" or "staged 0 artifacts" would be a lie.
fn load_mappings(path: &Path) -> anyhow::Result<(LoadedMappings, Vec<tarn_core::ArtifactName>)> {
    let m = read_mappings(path)?;
    refuse_non_mappings(&m, &path.display().to_string())?;
    ui::warn_capped(&m.warnings, "warnings like these");
    let artifacts = m.artifacts()?;
    Ok((m, artifacts))
}

/// The error for a file none of whose lines is a mapping entry, naming it (`shown`).
fn refuse_non_mappings(m: &LoadedMappings, shown: &str) -> anyhow::Result<()> {
    if m.file.entries.is_empty() && !m.warnings.is_empty() {
        return Err(ui::with_hint(
            anyhow!(
                "{shown}: not a mappings file (none of its {} lines is an entry; first: {})",
                m.warnings.len(),
                m.warnings[0]
            ),
            "a mappings file is the output of `lake build -o FILE` (or a staging directory's outputs.jsonl)",
        ));
    }
    Ok(())
}

fn progress_fn(bar: &indicatif::ProgressBar) -> impl Fn(u64) + Sync + '_ {
    move |n| bar.inc(n)
}

/// `tarn stage`.
pub(crate) fn stage(g: &GlobalArgs, a: StageArgs) -> CmdResult {
    let (cache, _) = context::open_cache(g)?;
    let _lock = context::share_cache(&cache);
    let (mappings, artifacts) = load_mappings(&a.mappings)?;
    let bar = ui::progress_bar(g, artifacts.len() as u64, "stage");
    let start = Instant::now();
    let report = tarn_store::stage(
        &cache,
        &mappings.bytes,
        &artifacts,
        &a.dir,
        StageOptions {
            force_overwrite: a.force_overwrite,
            copy: a.copy,
        },
        &progress_fn(&bar),
    )?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let missing: Vec<String> = report
        .missing
        .iter()
        .map(|m| format!("artifact not found in cache: {}", m.display()))
        .collect();
    ui::print_capped(&missing, "artifacts not found");
    ui::print_capped(&report.errors, "errors");
    if !report.is_ok() {
        let message = "failed to copy all outputs to the staging directory";
        if !report.missing.is_empty() && report.missing.len() == artifacts.len() {
            // Not one artifact there: almost always the wrong cache, not a damaged one.
            ui::print_failure(
                message,
                &format!(
                    "none of the {} artifacts is in the cache {}; if the build used another cache, pass --cache-dir DIR or set LAKE_CACHE_DIR",
                    artifacts.len(),
                    cache.root().display()
                ),
            );
        } else {
            ui::say!("error: {message}");
        }
    }
    if g.json {
        ui::print_json(&stage_json(&report, &a.dir, secs));
    } else {
        say(
            g,
            format!(
                "staged {} artifacts into {} ({} linked, {} copied, {} already there; {:.1} MB) in {:.2}s",
                report.linked + report.copied + report.skipped,
                a.dir.display(),
                report.linked,
                report.copied,
                report.skipped,
                report.bytes as f64 / 1e6,
                secs
            ),
        );
    }
    Ok(exit(report.is_ok()))
}

fn stage_json(r: &StageReport, dir: &Path, secs: f64) -> serde_json::Value {
    json!({
        "ok": r.is_ok(),
        "dir": dir,
        "linked": r.linked,
        "copied": r.copied,
        "skipped": r.skipped,
        "bytes": r.bytes,
        "missing": r.missing,
        "errors": r.errors,
        "seconds": secs,
    })
}

/// Resolves `--package/--service/--scope/--repo` with Lake's rules.
fn outputs_target(g: &GlobalArgs, t: &TargetArgs) -> anyhow::Result<OutputsTarget> {
    if let Some(name) = &t.service {
        let config = context::load_system_config()?;
        let reservoir = tarn_remote::RemoteEnv::from_process().reservoir_api();
        if config.lookup(name, &reservoir).is_none() {
            return Err(ui::with_hint(
                anyhow!("service `{name}` not found in system configuration"),
                format!(
                    "`tarn services` lists the configured services ({})",
                    context::system_config_path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "no configuration file".into())
                ),
            ));
        }
    }
    let scope = match (&t.scope, &t.repo) {
        (Some(s), _) => Some(Scope::verbatim(s)?),
        (None, Some(r)) => Some(Scope::repo(r)?),
        (None, None) => None,
    };
    // In a Lake workspace, --package must name one of its packages (Lake: `unknown
    // package`); outside one it simply names the local scope.
    let in_workspace = tarn_store::is_package_dir(&g.dir);
    if let (true, Some(name)) = (in_workspace, t.package.as_deref()) {
        let ws = context::load_workspace(g, Some(name))?;
        context::select_package(&ws, Some(name))?;
    }
    Ok(OutputsTarget {
        local_scope: context::local_scope(g, t.package.as_deref())?,
        service: t.service.clone(),
        scope,
    })
}

/// `tarn unstage`.
pub(crate) fn unstage(g: &GlobalArgs, a: UnstageArgs) -> CmdResult {
    let target = outputs_target(g, &a.target)?;
    let (cache, _) = context::open_cache(g)?;
    let start = Instant::now();
    let staging = match tarn_store::validate_staging(&a.dir) {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems {
                ui::say!("error: {p}");
            }
            ui::say!(
                "error: {}: staging directory rejected ({} problem{}); nothing was imported",
                a.dir.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            if g.json {
                ui::print_json(&json!({"ok": false, "problems": problems}));
            }
            return Ok(ExitCode::from(1));
        }
    };
    refuse_non_mappings(
        &staging.mappings,
        &a.dir.join("outputs.jsonl").display().to_string(),
    )?;
    ui::warn_capped(&staging.mappings.warnings, "warnings like these");
    for u in &staging.unreferenced {
        tracing::warn!(
            "{}: not named by outputs.jsonl; not imported",
            a.dir.join(u).display()
        );
    }
    let _lock = context::share_cache(&cache);
    let bar = ui::progress_bar(g, staging.artifacts.len() as u64, "unstage");
    let report = tarn_store::import_staging(
        &cache,
        &staging,
        &target,
        a.force_overwrite,
        &progress_fn(&bar),
    );
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    for e in &report.errors {
        ui::say!("error: {e}");
    }
    let ok = report.errors.is_empty();
    if !ok {
        ui::say!("error: failed to import the staging directory; no mappings were written");
    }
    if g.json {
        ui::print_json(&unstage_json(&report, &target, secs));
    } else {
        say(
            g,
            format!(
                "unstaged {} artifacts into {} ({} new, {} already cached; {:.1} MB) and {} mappings into outputs/{} ({} kept) in {:.2}s",
                report.imported + report.already_present,
                cache.root().display(),
                report.imported,
                report.already_present,
                report.bytes as f64 / 1e6,
                report.outputs_written,
                target.local_scope,
                report.outputs_kept,
                secs
            ),
        );
    }
    Ok(exit(ok))
}

fn unstage_json(r: &UnstageReport, t: &OutputsTarget, secs: f64) -> serde_json::Value {
    json!({
        "ok": r.errors.is_empty(),
        "package": t.local_scope,
        "service": t.service,
        "scope": t.scope.as_ref().map(|s| s.as_str()),
        "imported": r.imported,
        "already_present": r.already_present,
        "bytes": r.bytes,
        "outputs_written": r.outputs_written,
        "outputs_kept": r.outputs_kept,
        "errors": r.errors,
        "seconds": secs,
    })
}

/// `tarn add`.
pub(crate) fn add(g: &GlobalArgs, a: AddArgs) -> CmdResult {
    let target = outputs_target(g, &a.target)?;
    let (cache, _) = context::open_cache(g)?;
    let (mappings, _) = load_mappings(&a.mappings)?;
    let _lock = context::share_cache(&cache);
    let (written, kept) =
        tarn_store::write_outputs(&cache, &mappings.file, &target, !a.no_overwrite)?;
    if g.json {
        ui::print_json(&json!({
            "ok": true,
            "package": target.local_scope,
            "outputs_written": written,
            "outputs_kept": kept,
            "warnings": mappings.warnings,
        }));
    } else {
        say(
            g,
            format!(
                "added {written} mappings to {} ({kept} kept)",
                cache.outputs_dir(&target.local_scope).display()
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tarn verify`.
pub(crate) fn verify(g: &GlobalArgs, a: VerifyArgs) -> CmdResult {
    let (cache, _) = context::open_cache(g)?;
    let report = match &a.mappings {
        Some(path) => {
            let (_, artifacts) = load_mappings(path)?;
            let bar = ui::progress_bar(g, artifacts.len() as u64, "verify");
            let r = tarn_store::verify_artifacts(&cache, &artifacts, &progress_fn(&bar));
            bar.finish_and_clear();
            r
        }
        None => {
            if !cache.root().is_dir() {
                bail!("no cache at {}", cache.root().display());
            }
            let bar = ui::progress_bar(g, 0, "verify");
            let r = tarn_store::scrub(&cache, &|n| bar.set_length(n), &progress_fn(&bar));
            bar.finish_and_clear();
            r
        }
    };
    let mut report = report;
    // Leftovers of killed runs that are not yet old enough to remove are not "all good".
    let leftovers = tarn_store::sweep_cache(&cache, tarn_store::limits().temp_grace);
    for p in leftovers.dead_young {
        report.problems.push(tarn_store::Problem {
            path: p,
            message: format!(
                "temp file left by a process that is no longer running; it is removed once older than the grace period ({}s, {})",
                tarn_store::limits().temp_grace.as_secs(),
                tarn_core::TEMP_GRACE_ENV
            ),
        });
    }
    let strong = a.strong.then(|| tarn_store::verify_strong(&cache));
    if let Some(s) = &strong {
        report.problems.extend(s.problems.iter().cloned());
    }
    print_verify(g, &cache, &report, strong.as_ref());
    Ok(exit(report.is_clean()))
}

fn print_verify(
    g: &GlobalArgs,
    cache: &Cache,
    r: &VerifyReport,
    strong: Option<&tarn_store::StrongReport>,
) {
    for p in &r.problems {
        ui::say!("error: {p}");
    }
    let secs = r.elapsed.as_secs_f64();
    if g.json {
        ui::print_json(&json!({
            "ok": r.is_clean(),
            "cache": cache.root(),
            "artifacts": r.artifacts,
            "bytes": r.bytes,
            "outputs_files": r.outputs_files,
            "revision_files": r.revision_files,
            "temp_files_skipped": r.temp_files_skipped,
            "problems": r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "seconds": secs,
            "gb_per_second": r.bytes_per_second() / 1e9,
            "strong": strong.map(|s| json!({
                "signatures": s.signatures,
                "checked": s.checked,
                "unverified": s.unverified,
                "problems": s.problems.len(),
            })),
        }));
    } else {
        if let Some(s) = strong {
            say(
                g,
                format!(
                    "strong: {} artifacts checked against the SHA-256 of {} saved revision signatures, {} mismatched; {} artifacts have no verified origin (no saved signature names them)",
                    s.checked,
                    s.signatures,
                    s.problems.len(),
                    s.unverified
                ),
            );
        }
        say(
            g,
            format!(
                "{}: {} artifacts ({:.1} MB), {} outputs files, {} revision files checked in {:.2}s ({:.2} GB/s); {}",
                cache.root().display(),
                r.artifacts,
                r.bytes as f64 / 1e6,
                r.outputs_files,
                r.revision_files,
                secs,
                r.bytes_per_second() / 1e9,
                if r.is_clean() {
                    "all good".to_string()
                } else {
                    format!("{} problem(s)", r.problems.len())
                }
            ),
        );
    }
}

/// `tarn clean`: like Lake, the workspace's cache if there is a package in `-d`, else the
/// system cache.
pub(crate) fn clean(g: &GlobalArgs, _a: CleanArgs) -> CmdResult {
    let has_package = tarn_store::is_package_dir(&g.dir);
    let cache = if g.cache_dir.is_some() || has_package {
        context::open_cache(g)?.0
    } else {
        let env = tarn_store::CacheEnv::from_process();
        let (root, _) = tarn_store::system_cache_root(&env).ok_or_else(|| {
            anyhow!(
                "no cache to delete; no workspace configuration found and no system cache detected"
            )
        })?;
        Cache::new(root)
    };
    // Exclusive, like a prune: a running get, stage or prune finishes first, and none starts
    // on a half-removed cache. A cache that is not a directory takes no lock (refused below).
    let _lock = if cache.root().is_dir() && !cache.root().is_symlink() {
        Some(context::lock_cache(&cache, LockMode::Exclusive)?)
    } else {
        None
    };
    let removed = tarn_store::clean(&cache)?;
    if !removed {
        // Lake's `removeDirAll` only runs when the directory exists: nothing to do is success.
        if g.json {
            ui::print_json(&json!({"ok": true, "removed": null, "absent": cache.root()}));
        } else if !g.quiet {
            ui::say!(
                "nothing to delete: {} does not exist",
                cache.root().display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if g.json {
        ui::print_json(&json!({"ok": true, "removed": cache.root()}));
    } else {
        say(g, format!("removed {}", cache.root().display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `tarn services`: one configured service name per line (`--json`: the details).
pub(crate) fn services(g: &GlobalArgs, _a: ServicesArgs) -> CmdResult {
    let config = context::load_system_config()?;
    if g.json {
        let list: Vec<_> = config
            .services
            .iter()
            .map(|s| {
                let mut v = match &s.kind {
                    ServiceKind::S3 {
                        artifact_endpoint,
                        revision_endpoint,
                    } => json!({
                        "name": s.name,
                        "kind": "s3",
                        "artifactEndpoint": artifact_endpoint,
                        "revisionEndpoint": revision_endpoint,
                    }),
                    ServiceKind::Reservoir { api_endpoint } => json!({
                        "name": s.name,
                        "kind": "reservoir",
                        "apiEndpoint": api_endpoint,
                    }),
                };
                if let Some(p) = &s.rev_discovery {
                    v["revDiscovery"] = json!(p);
                }
                v
            })
            .collect();
        ui::print_json(&json!({
            "config": context::system_config_path(),
            "defaultService": config.default_service,
            "defaultUploadService": config.default_upload_service,
            "services": list,
        }));
    } else {
        for s in &config.services {
            ui::show!("{}", s.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tarn hash`: `<hex16>  <path>` per file.
pub(crate) fn hash(g: &GlobalArgs, a: HashArgs) -> CmdResult {
    let mut ok = true;
    let mut results = Vec::new();
    for f in &a.files {
        let r = if a.text {
            hash_text_file(f)
        } else {
            hash_file(f)
        };
        match r {
            Ok(h) => {
                if !g.json {
                    ui::show!("{h}  {}", f.display());
                }
                results.push(json!({"file": f, "hash": h.hex()}));
            }
            Err(e) => {
                ok = false;
                ui::say!("error: {}: {e}", f.display());
                results.push(json!({"file": f, "error": e.to_string()}));
            }
        }
    }
    if g.json {
        ui::print_json(&json!({"ok": ok, "text": a.text, "files": results}));
    }
    Ok(exit(ok))
}

/// `tarn demo`: generate a fixture, stage it, unstage into a fresh cache, verify.
pub(crate) fn demo(g: &GlobalArgs, a: DemoArgs) -> CmdResult {
    let (base, remove) = match &a.keep {
        Some(d) => {
            if d.exists() && d.read_dir().map(|mut r| r.next().is_some()).unwrap_or(true) {
                bail!(
                    "{}: --keep wants an empty or missing directory",
                    d.display()
                );
            }
            (d.clone(), false)
        }
        None => (
            std::env::temp_dir().join(format!(
                "tarn-demo-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let result = demo_in(g, &a, &base);
    if remove {
        let _ = std::fs::remove_dir_all(&base);
    }
    result
}

fn demo_in(g: &GlobalArgs, a: &DemoArgs, base: &Path) -> CmdResult {
    let spec = tarn_fixture::FixtureSpec::small(a.modules);
    let build_cache = Cache::new(base.join("build-cache"));
    let staging = base.join("staging");
    let fresh = Cache::new(base.join("fresh-cache"));
    let nothing = |_: u64| {};

    let t = Instant::now();
    let fx = tarn_fixture::generate(&spec, build_cache.root())?;
    let t_gen = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (mappings, artifacts) = load_mappings(&fx.mappings_path)?;
    let staged = tarn_store::stage(
        &build_cache,
        &mappings.bytes,
        &artifacts,
        &staging,
        StageOptions::default(),
        &nothing,
    )?;
    if !staged.is_ok() {
        bail!(
            "demo: staging failed: {:?} {:?}",
            staged.missing,
            staged.errors
        );
    }
    let t_stage = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let valid = tarn_store::validate_staging(&staging)
        .map_err(|p| anyhow!("demo: staging directory rejected: {}", p.join("; ")))?;
    let target = OutputsTarget {
        local_scope: "demo".into(),
        service: None,
        scope: None,
    };
    let unstaged = tarn_store::import_staging(&fresh, &valid, &target, false, &nothing);
    if !unstaged.errors.is_empty() {
        bail!("demo: unstage failed: {}", unstaged.errors.join("; "));
    }
    let t_unstage = t.elapsed().as_secs_f64();

    let by_mappings = tarn_store::verify_artifacts(&fresh, &artifacts, &nothing);
    let scrubbed = tarn_store::scrub(&fresh, &|_| {}, &nothing);
    let same = std::fs::read(staging.join(tarn_store::STAGED_MAPPINGS))? == mappings.bytes;
    let ok = by_mappings.is_clean() && scrubbed.is_clean() && same;
    for p in by_mappings.problems.iter().chain(&scrubbed.problems) {
        ui::say!("error: {p}");
    }
    if g.json {
        ui::print_json(&json!({
            "ok": ok,
            "dir": base,
            "modules": spec.modules,
            "artifacts": fx.artifacts.len(),
            "bytes": fx.total_bytes,
            "seconds": {"generate": t_gen, "stage": t_stage, "unstage": t_unstage,
                        "verify": by_mappings.elapsed.as_secs_f64() + scrubbed.elapsed.as_secs_f64()},
            "outputs_written": unstaged.outputs_written,
        }));
    } else if !g.quiet {
        ui::show!("tarn demo: a full local round trip, no network, no Lean needed");
        ui::show!(
            "  generate  {:>5} modules, {:>5} artifacts, {:>7.1} MB   {:>6.3}s",
            spec.modules,
            fx.artifacts.len(),
            fx.total_bytes as f64 / 1e6,
            t_gen
        );
        ui::show!(
            "  stage     {:>5} linked, {:>4} copied + outputs.jsonl        {:>6.3}s",
            staged.linked,
            staged.copied,
            t_stage
        );
        ui::show!(
            "  unstage   {:>5} imported and verified, {:>5} mappings    {:>6.3}s",
            unstaged.imported,
            unstaged.outputs_written,
            t_unstage
        );
        ui::show!(
            "  verify    {:>5} artifacts rehashed, {:>5} outputs parsed  {:>6.3}s",
            scrubbed.artifacts,
            scrubbed.outputs_files,
            by_mappings.elapsed.as_secs_f64() + scrubbed.elapsed.as_secs_f64()
        );
        ui::show!(
            "  result    {}{}",
            if ok {
                "OK: the fresh cache is complete and every hash matches"
            } else {
                "FAILED"
            },
            if a.keep.is_some() {
                format!(" (files kept in {})", base.display())
            } else {
                String::new()
            }
        );
    }
    Ok(exit(ok))
}
