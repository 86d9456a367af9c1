//! Transfers: `get`, `put`, `put-staged`. This module turns flags into engine calls
//! (`tarn_remote`), draws progress from the engines' events, and prints summaries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tarn_core::sigv4::Credentials;
use tarn_core::Scope;
use tarn_core::{
    check_platform, check_toolchain, default_get_bytes, printable_lines, MAX_GET_ENV,
    MIN_FREE_AFTER_GET,
};
use tarn_remote::get::{
    self, GetError, GetOutcome, GetReport, GetRequest, Mode, SelectError, SignatureCheck, Step,
    StepOutcome,
};
use tarn_remote::put::{self, PutError, PutPlan, PutReport, PutRevision, PutSource};
use tarn_remote::{
    resolve_download, resolve_upload, DiskBound, Event, Progress, RemoteEnv, Signer, Transport,
    TransportOptions, DEFAULT_REGION,
};
use tarn_store::{Cache, Workspace};

use super::key::{signing_key, trust_policies, SignArgs, TrustArgs};
use super::restore_alongside::{self, Alongside, Arrival};
use super::CmdResult;
use crate::context;
use crate::global_args::GlobalArgs;
use crate::ui;

/// The clap group of `--scope` and `--repo`: alternatives, so the usage line shows
/// `<--scope <SCOPE>|--repo <OWNER/NAME>>` where one is required.
pub(crate) const SCOPE_OR_REPO: &str = "scope_or_repo";

/// The [`SCOPE_OR_REPO`] group: one of `--scope` and `--repo` (given both, the last one
/// wins: each `overrides_with` the other, Lake's `scope?` being set by whichever comes last).
pub(crate) fn scope_or_repo() -> clap::ArgGroup {
    clap::ArgGroup::new(SCOPE_OR_REPO)
        .args(["scope", "repo"])
        .multiple(false)
}

/// Transfer tuning shared by `get`, `put` and `put-staged`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct TransferArgs {
    /// Transfers in flight at once.
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 32,
        env = "TARN_JOBS"
    )]
    pub jobs: usize,
    /// Retries per request after the first attempt (connection errors, 5xx, 429, truncated
    /// or stalled transfers).
    #[arg(long, value_name = "N", default_value_t = 5, env = "TARN_RETRIES")]
    pub retries: u32,
    /// Seconds without progress after which a transfer is abandoned and retried.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30.0,
        env = "TARN_TIMEOUT"
    )]
    pub timeout: f64,
    /// First retry delay in milliseconds; it doubles with each attempt (with jitter).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 250,
        env = "TARN_RETRY_BASE_MS"
    )]
    pub retry_base_ms: u64,
    /// Largest retry delay in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 10_000,
        env = "TARN_RETRY_MAX_MS"
    )]
    pub retry_max_ms: u64,
    /// Longest `Retry-After` (seconds) honoured; longer waits are cut to this.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60,
        env = "TARN_MAX_RETRY_AFTER"
    )]
    pub max_retry_after: u64,
    /// SigV4 region used for signing (Lake uses `auto`, as Cloudflare R2 expects).
    #[arg(long, value_name = "REGION", default_value = DEFAULT_REGION, env = "TARN_S3_REGION")]
    pub region: String,
}

/// Where to look on the service: `--scope` or `--repo`, at most one (the clap group
/// [`SCOPE_OR_REPO`]; `put` and `put-staged` make it required).
#[derive(clap::Args, Debug, Clone)]
#[command(group(scope_or_repo()))]
pub(crate) struct ScopeArgs {
    /// Verbatim remote scope (a prefix on a custom S3 endpoint). With `--repo` too, the last
    /// one given wins, as in Lake.
    #[arg(long, value_name = "SCOPE", overrides_with = "repo")]
    pub scope: Option<String>,
    /// Repository scope `owner/name` (adds platform and toolchain parts to revision URLs).
    #[arg(long, value_name = "OWNER/NAME", overrides_with = "scope")]
    pub repo: Option<String>,
    /// Service name from the system configuration (`reservoir` is built in).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Platform for repository scopes (default: the target triple the workspace's `lean
    /// --version` reports, as Lake's `System.Platform.target`).
    #[arg(long, value_name = "TRIPLE")]
    pub platform: Option<String>,
    /// Toolchain for repository scopes (default: ELAN_TOOLCHAIN, else the toolchain of the
    /// workspace's Lean as elan or `Lean.toolchain` names it); normalised like Lake.
    #[arg(long, value_name = "TOOLCHAIN")]
    pub toolchain: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> anyhow::Result<Option<Scope>> {
        let hint = |e: tarn_core::ScopeError| {
            ui::with_hint(e, "--repo takes the GitHub `owner/name` of the package; use --scope for any other prefix")
        };
        Ok(match (&self.scope, &self.repo) {
            (Some(s), _) => Some(Scope::verbatim(s).map_err(hint)?),
            (None, Some(r)) => Some(Scope::repo(r).map_err(hint)?),
            (None, None) => None,
        })
    }
}

/// Arguments of `tarn get`.
#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// A mappings file to download the artifacts of (instead of searching revisions).
    pub mappings: Option<PathBuf>,
    #[command(flatten)]
    pub target: ScopeArgs,
    /// Download this revision's outputs (or fail), instead of searching from HEAD.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// How many revisions from HEAD to search (0: the whole history).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_revs: u64,
    /// Only write the mappings (`outputs/` entries); artifacts are fetched on demand.
    #[arg(long)]
    pub mappings_only: bool,
    /// Download again even what is already in the cache (mappings and artifacts).
    #[arg(long)]
    pub force_download: bool,
    /// The package to fetch (the root or a dependency): its local scope, git repository,
    /// options and, on Reservoir, its Reservoir scope. Default: the root package, or every
    /// Reservoir dependency when neither --scope nor --repo is given on Reservoir.
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// Fetch EVERY dependency (git-only ones too) from an S3 service, each from the
    /// repository scope `owner/repo` of its git URL (see docs/remote.md).
    #[arg(long)]
    pub deps: bool,
    /// With --deps: the repository scope of one dependency (repeatable).
    #[arg(long, value_name = "NAME=OWNER/REPO", requires = "deps")]
    pub dep_scope: Vec<String>,
    /// Sign downloads with LAKE_CACHE_KEY (private buckets; Lake cannot do this).
    #[arg(long, env = "TARN_SIGN_DOWNLOADS", value_parser = clap::builder::FalseyValueParser::new())]
    pub signed: bool,
    /// Most bytes this get may write to disk, artifacts kept and temp files together
    /// (`64G`, `500M`; also TARN_MAX_GET_BYTES). Default: the free space of the cache's
    /// file system less a tenth of it, and never the last 1.1 GB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub max_bytes: Option<u64>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Then restore the fetched module outputs into Lake's build directories (as
    /// `tarn restore`).
    #[arg(long, conflicts_with = "mappings_only")]
    pub restore: bool,
    /// With --restore: replace modules whose existing trace is for another input hash.
    #[arg(long, requires = "restore")]
    pub force_restore: bool,
}

/// A size for a flag: a number of bytes, or with a `K`, `M`, `G` suffix (binary).
fn parse_size_arg(v: &str) -> Result<u64, String> {
    tarn_core::parse_size(v)
        .ok_or_else(|| format!("{v:?} is not a size (a number, or with K, M or G)"))
}

/// Arguments of `tarn put`.
#[derive(clap::Args, Debug)]
#[command(mut_group(SCOPE_OR_REPO, |g| g.required(true)))]
pub(crate) struct PutArgs {
    /// The mappings file (`lake build -o FILE`); its artifacts are read from the cache.
    pub mappings: PathBuf,
    #[command(flatten)]
    pub target: ScopeArgs,
    /// The package the outputs belong to (root or dependency): its git HEAD and options.
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// Upload every artifact, even those the service already has.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

/// Arguments of `tarn put-staged`.
#[derive(clap::Args, Debug)]
#[command(mut_group(SCOPE_OR_REPO, |g| g.required(true)))]
// No workspace is read, so, as in Lake, no platform or toolchain unless given.
#[command(mut_arg("platform", |a| a.help(
    "Platform for repository scopes (default: none; put-staged reads no workspace, as in Lake)")))]
#[command(mut_arg("toolchain", |a| a.help(
    "Toolchain for repository scopes (default: none; put-staged reads no workspace, as in Lake); normalised like Lake")))]
pub(crate) struct PutStagedArgs {
    /// The staging directory (`outputs.jsonl` plus the artifact files).
    #[arg(id = "staging_directory", value_name = "STAGING_DIRECTORY")]
    pub dir: PathBuf,
    /// The revision (commit) the outputs belong to (default: HEAD of the package in `-d`,
    /// as in Lake).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    #[command(flatten)]
    pub target: ScopeArgs,
    /// Upload every artifact, even those the service already has.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

/// Platform and toolchain before the package's options apply, as Lake has them
/// (docs/lake-source-notes.md §16): `--platform`, else the target the workspace's Lean reports
/// (`System.Platform.target`); `--toolchain`, else `ELAN_TOOLCHAIN` whenever it is set (empty:
/// none), else the name elan gives the toolchain when the workspace's `lean` is elan's proxy,
/// else that Lean's `Lean.toolchain`. Without a Lean: a documented guess and a warning.
/// Lean is only asked when the values are `used` in a URL (a `--scope` on S3 ignores them).
fn platform_toolchain(
    ws: &Workspace,
    t: &ScopeArgs,
    used: bool,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    let elan_toolchain = std::env::var("ELAN_TOOLCHAIN").ok();
    let flag_platform = t.platform.as_deref().map(check_platform).transpose()?;
    let flag_toolchain = t.toolchain.as_deref().map(check_toolchain).transpose()?;
    let needs_lean =
        used && (flag_platform.is_none() || (flag_toolchain.is_none() && elan_toolchain.is_none()));
    let probe = needs_lean.then(|| {
        tarn_store::probe_lean(
            &ws.root_dir,
            ws.lean_toolchain.as_deref(),
            &tarn_store::LeanEnv::from_process(),
        )
    });
    let probe = match probe {
        Some(Ok(p)) => {
            tracing::debug!("Lean: {} reports {:?}", p.program.display(), p.version);
            Some(p)
        }
        Some(Err(e)) => {
            tracing::warn!(
                "{:#}; using the platform Lean's releases report on this system ({}) and the \
                 workspace's lean-toolchain (pass --platform and --toolchain to be exact)",
                anyhow::Error::from(e),
                tarn_core::host_platform()
            );
            None
        }
        None => None,
    };
    let platform = match flag_platform {
        Some(p) => p,
        None => match &probe {
            Some(p) => p.version.target.clone(),
            None => Some(tarn_core::host_platform()),
        },
    };
    let toolchain = match flag_toolchain {
        Some(tc) => tc,
        None => match elan_toolchain {
            Some(t) => (!t.is_empty()).then_some(t),
            None => match &probe {
                Some(p) => p
                    .elan_toolchain
                    .clone()
                    .or_else(|| p.version.lean_toolchain()),
                None => ws
                    .lean_toolchain
                    .as_deref()
                    .and_then(tarn_core::elan_toolchain_name)
                    .or_else(|| ws.default_toolchain(None)),
            },
        },
    };
    Ok((platform, toolchain))
}

/// Platform and toolchain for `put-staged`: only what the flags say.
fn flags_platform_toolchain(t: &ScopeArgs) -> anyhow::Result<(Option<String>, Option<String>)> {
    let platform = match &t.platform {
        Some(p) => check_platform(p)?,
        None => None,
    };
    let toolchain = match &t.toolchain {
        Some(tc) => check_toolchain(tc)?,
        None => None,
    };
    Ok((platform, toolchain))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn transport(
    global: &GlobalArgs,
    t: &TransferArgs,
    signer: Option<Signer>,
    sign_downloads: bool,
    disk_bound: Option<DiskBound>,
    bar: &indicatif::ProgressBar,
    arrivals: Option<Sender<Arrival>>,
) -> anyhow::Result<Transport> {
    if t.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if t.timeout.is_nan() || t.timeout <= 0.0 {
        bail!("--timeout must be a positive number of seconds");
    }
    let opts = TransportOptions {
        jobs: t.jobs,
        retries: t.retries,
        stall_timeout: Duration::from_secs_f64(t.timeout),
        connect_timeout: Duration::from_secs_f64(t.timeout.min(10.0)),
        backoff_base: Duration::from_millis(t.retry_base_ms),
        backoff_max: Duration::from_millis(t.retry_max_ms.max(t.retry_base_ms)),
        max_retry_after: Duration::from_secs(t.max_retry_after),
        signer,
        sign_downloads,
        disk_bound,
        ..TransportOptions::default()
    };
    let _ = global;
    Ok(Transport::new(opts, progress_sink(bar.clone(), arrivals))?)
}

/// Turns engine events into progress-bar updates (files, bytes, rate, ETA), and passes a
/// get's mappings and artifacts in the cache on to `arrivals` (a restore alongside the get).
fn progress_sink(bar: indicatif::ProgressBar, arrivals: Option<Sender<Arrival>>) -> Progress {
    let bytes = Arc::new(AtomicU64::new(0));
    let start = Arc::new(std::sync::Mutex::new(Instant::now()));
    Progress::new(move |e| match e {
        Event::Start { phase, files, .. } => {
            bar.set_prefix(phase);
            bar.set_length(files);
            bar.set_position(0);
            bytes.store(0, Ordering::Relaxed);
            *start.lock().expect("not poisoned") = Instant::now();
            bar.reset_eta();
        }
        Event::Bytes(n) => {
            let total = bytes.fetch_add(n, Ordering::Relaxed) + n;
            let secs = start.lock().expect("not poisoned").elapsed().as_secs_f64();
            bar.set_message(format!(
                "{} ({}/s)",
                ui::human_bytes(total),
                ui::human_bytes((total as f64 / secs.max(0.001)) as u64)
            ));
        }
        Event::FileDone => bar.inc(1),
        Event::Retry { url, reason, .. } => {
            tracing::debug!("retrying {url}: {reason}");
        }
        Event::Finish => {}
        Event::Mappings { rev } => {
            if let Some(tx) = &arrivals {
                let _ = tx.send(Arrival::Mappings(rev));
            }
        }
        Event::Cached(name) => {
            if let Some(tx) = &arrivals {
                let _ = tx.send(Arrival::Cached(name));
            }
        }
    })
}

fn styled_bar(global: &GlobalArgs) -> indicatif::ProgressBar {
    let bar = ui::progress_bar(global, 0, "");
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>9} [{bar:30}] {pos}/{len} files  {msg}  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

fn signer_from_env(env: &RemoteEnv, region: &str) -> anyhow::Result<Option<Signer>> {
    match env
        .cache_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        None => Ok(None),
        Some(k) => {
            let creds = Credentials::parse(k).ok_or_else(|| {
                ui::with_hint(
                    anyhow!("LAKE_CACHE_KEY is not of the form `<access-key-id>:<secret>`"),
                    "set LAKE_CACHE_KEY=<access-key-id>:<secret-access-key>",
                )
            })?;
            Ok(Some(Signer::new(creds, region)))
        }
    }
}

/// `tarn get`.
pub(crate) fn get(global: &GlobalArgs, a: GetArgs) -> CmdResult {
    let config = context::load_system_config()?;
    let env = RemoteEnv::from_process();
    let resolved = resolve_download(a.target.service.as_deref(), &config, &env)?;
    let service = &resolved.service;
    let scope = a.target.scope()?;
    if a.mappings.is_some() {
        if a.mappings_only {
            return Err(ui::with_hint(
                anyhow!("`--mappings-only` is not supported with a mappings file"),
                "use `tarn add FILE` to record mappings without downloading",
            ));
        }
        if scope.is_none() {
            return Err(ui::with_hint(
                anyhow!(
                    "to use `cache get` with a mappings file, `--scope` or `--repo` must be set"
                ),
                "pass --scope SCOPE or --repo OWNER/NAME (the one used to upload)",
            ));
        }
        if a.rev.is_some() {
            tracing::warn!("the `--rev` option does nothing for `cache get` with a mappings file");
        }
        if a.target.platform.is_some() || a.target.toolchain.is_some() {
            tracing::warn!("the `--platform` and `--toolchain` options do nothing for `cache get` with a mappings file");
        }
    }
    if a.mappings_only && resolved.service.name.is_empty() {
        return Err(ui::with_hint(anyhow!("`--mappings-only` requires services to be configured via the Lake system configuration (on-demand fetches look the service up by name)"), "add a [[cache.service]] to LAKE_CONFIG and pass --service NAME instead of LAKE_CACHE_*_ENDPOINT"));
    }
    // Lake checks this only without a mappings file: `get FILE --scope S` on Reservoir asks
    // `packages/S/artifacts` for the file's artifacts.
    if a.mappings.is_none()
        && service.is_reservoir()
        && scope.as_ref().is_some_and(|s| !s.is_repo())
    {
        return Err(ui::with_hint(anyhow!("to use `cache get` with `--scope`, a custom endpoint must be set (not Reservoir); if you instead want to download artifacts for a fork of the package, use `--repo`"), "pass --service NAME for an S3 service, or --repo OWNER/NAME"));
    }
    // Never parse and ignore: a discovery policy tarn cannot follow stops the search.
    if let (Some(policy), None, None) = (&service.rev_discovery, &a.rev, &a.mappings) {
        return Err(ui::with_hint(
            anyhow!(
                "service `{}` sets `revDiscovery = {policy:?}`, which tarn does not implement \
                 (Lake's rule for it could not be read in Lake's source)",
                service.name
            ),
            "pass --rev REV to fetch one revision, or remove `revDiscovery` from the service in LAKE_CONFIG to search the recent history",
        ));
    }
    if a.signed && env.cache_key.as_deref().unwrap_or("").trim().is_empty() {
        return Err(ui::with_hint(
            anyhow!("signed downloads need a key"),
            "set LAKE_CACHE_KEY=<access-key-id>:<secret-access-key>",
        ));
    }
    let ws = context::load_workspace(global, a.package.as_deref())?;
    // Platform and toolchain only reach URLs of repository scopes and of Reservoir.
    let used = service.is_reservoir() || scope.as_ref().is_none_or(Scope::is_repo);
    let (platform, toolchain) = platform_toolchain(&ws, &a.target, used)?;
    let mut dep_scopes = BTreeMap::new();
    for d in &a.dep_scope {
        let (name, repo) = d
            .split_once('=')
            .ok_or_else(|| anyhow!("--dep-scope {d:?}: expected NAME=OWNER/REPO"))?;
        Scope::repo(repo).map_err(|e| anyhow!("--dep-scope {d:?}: {e}"))?;
        dep_scopes.insert(name.to_string(), repo.to_string());
    }
    let request = GetRequest {
        service: resolved.service.clone(),
        recorded_name: resolved.recorded_name.clone(),
        scope,
        package: a.package.clone(),
        mappings_file: a.mappings.clone(),
        rev: a.rev.clone(),
        max_revs: a.max_revs,
        platform,
        toolchain,
        mappings_only: a.mappings_only,
        force_download: a.force_download,
        deps: a.deps,
        dep_scopes,
        trust: trust_policies(&a.trust, &ws)?,
    };
    let (mode, steps) = get::select(&ws, &request).map_err(|e| match e {
        SelectError::NeedScope => ui::with_hint(
            e,
            "pass --scope SCOPE or --repo OWNER/NAME (or --deps for every dependency)",
        ),
        SelectError::UnknownPackage(_) => ui::with_hint(
            e,
            "--package takes the name of the root package or of a dependency in lake-manifest.json",
        ),
        SelectError::DepsOnReservoir => ui::with_hint(
            e,
            "pass --service NAME for an S3 service (or set cache.defaultService)",
        ),
        other => anyhow!(other),
    })?;
    let (cache, _) = context::open_cache(global)?;
    let lock = context::share_cache(&cache);
    let signer = if a.signed {
        signer_from_env(&env, &a.transfer.region)?
    } else {
        None
    };
    let bar = styled_bar(global);
    let disk_bound = match a.max_bytes {
        Some(bytes) => Some(DiskBound {
            bytes,
            source: "--max-bytes".to_string(),
        }),
        None => get_disk_bound(&cache),
    };
    // One package's `get --restore` restores while it downloads (restore_alongside).
    let (arrivals_tx, arrivals) = if a.restore && mode == Mode::Single {
        let (tx, rx) = std::sync::mpsc::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let transport = transport(
        global,
        &a.transfer,
        signer,
        a.signed,
        disk_bound,
        &bar,
        arrivals_tx.clone(),
    )?;
    let rt = runtime()?;
    // `tarn cache prune` keeps what this workspace's current revisions need.
    if tarn_store::is_package_dir(&ws.root_dir) {
        if let Err(e) = tarn_store::record_workspace(&cache, &ws.root_dir) {
            tracing::debug!("workspace not recorded: {e}");
        }
    }
    if mode == Mode::Single {
        let [Step::Fetch { plan, .. }] = steps.as_slice() else {
            bail!("internal error: a single-package get without exactly one package");
        };
        let job = Alongside {
            ws: &ws,
            cache: &cache,
            package: &plan.local_scope,
            mappings_file: a.mappings.as_deref(),
            force: a.force_restore,
        };
        let (got, restored) = std::thread::scope(|scope| {
            let restorer =
                arrivals.map(|rx| scope.spawn(|| restore_alongside::restore_as_fetched(&job, rx)));
            let got = rt.block_on(get::run(&transport, &cache, plan));
            if let Some(tx) = &arrivals_tx {
                let _ = tx.send(Arrival::GetOver(got.is_ok()));
            }
            let restored = restorer.and_then(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            });
            (got, restored)
        });
        let outcome = got.map_err(get_error)?;
        bar.finish_and_clear();
        let result = one_json_document(global, a.restore, || {
            print_get_outcome(global, &outcome).and_then(|code| {
                if !a.restore {
                    return Ok(code);
                }
                if let Some(restored) = restored {
                    let (report, secs) = restored?;
                    let restore_code = super::restore::print_report(global, &report, secs);
                    return Ok(if code == ExitCode::SUCCESS {
                        restore_code
                    } else {
                        code
                    });
                }
                let fetched = [(plan.local_scope.clone(), outcome)];
                restore_fetched(global, &ws, &cache, &a, &fetched, code)
            })
        });
        drop(lock);
        super::cache::prune_after_get(&cache, config.max_size);
        return result;
    }
    let outcomes = rt.block_on(get::run_steps(&transport, &cache, &steps, PACKAGES_AT_ONCE));
    bar.finish_and_clear();
    let result = one_json_document(global, a.restore, || {
        print_each(global, &outcomes).and_then(|code| {
            if !a.restore {
                return Ok(code);
            }
            let fetched: Vec<(String, GetOutcome)> = outcomes
                .into_iter()
                .filter_map(|o| match o.result {
                    Ok(Ok(g)) => Some((o.package, g)),
                    _ => None,
                })
                .collect();
            restore_fetched(global, &ws, &cache, &a, &fetched, code)
        })
    });
    drop(lock);
    super::cache::prune_after_get(&cache, config.max_size);
    result
}

/// With `--json` and `--restore`: prints the get's and the restore's summaries as one document,
/// `{"command": "get", "get": {…}, "restore": {…} or null, "ok": …}` (docs/restore.md).
fn one_json_document(
    global: &GlobalArgs,
    restore: bool,
    run: impl FnOnce() -> CmdResult,
) -> CmdResult {
    if !(global.json && restore) {
        return run();
    }
    let (result, docs) = ui::capture_json(run);
    let mut docs = docs.into_iter();
    let get = docs.next().unwrap_or(serde_json::Value::Null);
    let restore = docs.next().unwrap_or(serde_json::Value::Null);
    let ok = matches!(&result, Ok(code) if *code == ExitCode::SUCCESS);
    ui::print_json(&serde_json::json!({
        "command": "get", "get": get, "restore": restore, "ok": ok,
    }));
    result
}

/// `get --restore`: restores each fetched package from the mappings it was fetched with
/// (the saved revision file, or the mappings file given). Exit 1 if the get or the restore
/// failed.
fn restore_fetched(
    global: &GlobalArgs,
    ws: &tarn_store::Workspace,
    cache: &tarn_store::Cache,
    a: &GetArgs,
    fetched: &[(String, GetOutcome)],
    get_code: ExitCode,
) -> CmdResult {
    let mut targets = Vec::new();
    for (package, outcome) in fetched {
        let Some(pkg) = ws.package(package) else {
            tracing::warn!("{package}: not a package of this workspace; not restored");
            continue;
        };
        let mappings = match (&outcome.rev, &a.mappings) {
            (Some(rev), _) => cache.revision_path(package, rev),
            (None, Some(file)) => file.clone(),
            (None, None) => continue,
        };
        targets.push(super::restore::target_for(ws, pkg, &mappings)?);
    }
    let flags = super::restore::RestoreFlags {
        force: a.force_restore,
    };
    let code = super::restore::run_and_print(global, cache, &targets, &flags)?;
    Ok(if get_code == ExitCode::SUCCESS {
        code
    } else {
        get_code
    })
}

/// The most bytes this `get` may write to disk: `TARN_MAX_GET_BYTES`, else
/// [`tarn_core::default_get_bytes`] of the free space on the cache's file system now (none
/// when that cannot be read: a warning says so).
fn get_disk_bound(cache: &Cache) -> Option<DiskBound> {
    if let Some(bytes) = tarn_store::limits().max_get_bytes {
        return Some(DiskBound {
            bytes,
            source: MAX_GET_ENV.to_string(),
        });
    }
    match tarn_store::free_space(cache.root()) {
        Ok(free) => Some(DiskBound {
            bytes: default_get_bytes(free),
            source: format!(
                "by default the free space of {} at the start ({}) less a tenth of it, and \
                 never the last {}",
                cache.root().display(),
                ui::human_bytes(free),
                ui::human_bytes(MIN_FREE_AFTER_GET)
            ),
        }),
        Err(e) => {
            tracing::warn!(
                "{}: cannot read the free space ({e}); this get's disk use is not bounded",
                cache.root().display()
            );
            None
        }
    }
}

/// Packages fetched at once by a multi-package `get` (their transfers share `--jobs`).
const PACKAGES_AT_ONCE: usize = 4;

/// Prints a multi-package `get`: one line per package, then Lake's closing error if any
/// package failed (exit 1).
fn print_each(global: &GlobalArgs, outcomes: &[StepOutcome]) -> CmdResult {
    let ok = outcomes.iter().all(StepOutcome::ok);
    if global.json {
        let packages: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| match &o.result {
                Err(reason) => serde_json::json!({"package": o.package, "skipped": reason}),
                Ok(Err(e)) => {
                    serde_json::json!({"package": o.package, "error": e.to_string(), "ok": false})
                }
                Ok(Ok(g)) => serde_json::json!({
                    "package": o.package,
                    "scope": g.scope.as_str(),
                    "rev": g.rev,
                    "mappings": g.mappings,
                    "downloaded": g.report.as_ref().map(|r| r.downloaded),
                    "copied": g.report.as_ref().map(|r| r.copied),
                    "already_present": g.report.as_ref().map(|r| r.already_present),
                    "failed": g.report.as_ref().map(|r| r.failed.clone()),
                    "bytes": g.report.as_ref().map(|r| r.bytes),
                    "signed_by": signed_by(&g.signature),
                    "ok": g.ok(),
                }),
            })
            .collect();
        ui::print_json(&serde_json::json!({"command": "get", "packages": packages, "ok": ok}));
    } else {
        for o in outcomes {
            match &o.result {
                Err(reason) => {
                    if !global.quiet {
                        ui::say!("{}: {reason}", o.package);
                    }
                }
                Ok(Err(e)) => ui::say!(
                    "error: {}: {}",
                    o.package,
                    printable_lines(&get_error_text(e))
                ),
                Ok(Ok(g)) => match &g.report {
                    None => {
                        if !global.quiet {
                            ui::say!(
                                "{}: wrote {} mappings{}",
                                o.package,
                                g.mappings,
                                g.rev
                                    .as_deref()
                                    .map(|r| format!(" for {r}"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                    Some(r) => print_get_summary(
                        global,
                        &g.scope,
                        g.rev.as_deref(),
                        r,
                        signed_by(&g.signature),
                    ),
                },
            }
        }
        let unchecked = outcomes
            .iter()
            .any(|o| matches!(&o.result, Ok(Ok(g)) if g.signature == SignatureCheck::NotChecked));
        print_signature_note(global, unchecked);
    }
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        if !global.json {
            // Only packages with nothing published failed: running again would not help.
            let unpublished = outcomes
                .iter()
                .filter(|o| !o.ok())
                .all(|o| matches!(&o.result, Ok(Err(e)) if e.is_not_published()));
            let hint = if unpublished {
                "nothing is published for these packages at the revisions searched, so running \
                 again will not help: publish their outputs (tarn put --package NAME --repo \
                 OWNER/REPO in a workspace that built them), or fetch one package with --package"
            } else {
                "rerun the same command: only what is missing is downloaded"
            };
            ui::print_failure("failed to download artifacts for some dependencies", hint);
        }
        Ok(ExitCode::from(1))
    }
}

/// A `get` error's text, without hints (several packages' errors are printed in a row).
fn get_error_text(e: &GetError) -> String {
    e.to_string()
}

/// A `get` failure with the hint that fixes it.
fn get_error(e: GetError) -> anyhow::Error {
    match e {
        GetError::ResolveRev(_) => {
            ui::with_hint(e, "pass the full 40-character commit SHA to --rev")
        }
        GetError::RevList(_) => ui::with_hint(e, "run in the package's git repository (or pass -d DIR), or pass --rev SHA or a mappings file"),
        GetError::Search(ref s) => match s {
            get::SearchError::NoneFound { .. } => ui::with_hint(e, "upload outputs for a recent commit (tarn put), raise --max-revs, or check --scope/--repo, --platform and --toolchain"),
            get::SearchError::Lookup { .. } if s.is_auth_failure() => {
                ui::with_hint(e, "the service refuses the request: a private bucket needs --signed (or TARN_SIGN_DOWNLOADS=1) with LAKE_CACHE_KEY, and --region / TARN_S3_REGION if it checks the region")
            }
            get::SearchError::Lookup { .. } => ui::with_hint(e, "check the service's revisionEndpoint and your network; rerun with -v for details"),
            _ => anyhow!(e),
        },
        other => anyhow!(other),
    }
}

/// The key id that signed a revision, for `--json`.
fn signed_by(check: &SignatureCheck) -> Option<&str> {
    match check {
        SignatureCheck::NotChecked => None,
        SignatureCheck::Verified { key_id, .. } => Some(key_id),
    }
}

/// Says once per `get` that revisions were not signature-checked (no key trusted for the scope).
fn print_signature_note(global: &GlobalArgs, unchecked: bool) {
    if unchecked && !global.quiet && !global.json {
        ui::say!("note: not signature-checked (no key trusted for the scope; see docs/trust.md)");
    }
}

/// Prints one package's `get` outcome; exit 1 when an artifact failed.
fn print_get_outcome(global: &GlobalArgs, o: &GetOutcome) -> CmdResult {
    let scope = &o.scope;
    if let (SignatureCheck::Verified { key_id, comment }, false) = (&o.signature, global.json) {
        if !global.quiet {
            let comment = if comment.is_empty() {
                String::new()
            } else {
                format!(" ({comment})")
            };
            ui::say!("{scope}: signature by {key_id}{comment} verified");
        }
    }
    print_signature_note(global, o.signature == SignatureCheck::NotChecked);
    let Some(report) = &o.report else {
        if global.json {
            ui::print_json(&serde_json::json!({
                "scope": scope.as_str(), "rev": o.rev, "mappings": o.mappings,
                "signed_by": signed_by(&o.signature),
            }));
        } else if !global.quiet {
            ui::say!(
                "{scope}: wrote {} mappings{}",
                o.mappings,
                o.rev
                    .as_deref()
                    .map(|r| format!(" for {r}"))
                    .unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    print_get_summary(
        global,
        scope,
        o.rev.as_deref(),
        report,
        signed_by(&o.signature),
    );
    if report.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        if !global.json {
            let refused = report.failed.iter().any(|f| f.is_auth_failure());
            ui::print_failure(
                &format!(
                    "{scope}: failed to download some artifacts ({} of {})",
                    report.failed.len(),
                    o.artifacts,
                ),
                if refused {
                    "the service refuses some downloads: a private bucket needs --signed with LAKE_CACHE_KEY"
                } else {
                    "rerun the same command: only the missing artifacts are downloaded"
                },
            );
        }
        Ok(ExitCode::from(1))
    }
}

fn rate(bytes: u64, secs: f64) -> String {
    format!(
        "{}/s",
        ui::human_bytes((bytes as f64 / secs.max(0.001)) as u64)
    )
}

fn print_get_summary(
    global: &GlobalArgs,
    scope: &Scope,
    rev: Option<&str>,
    r: &GetReport,
    signed: Option<&str>,
) {
    if global.json {
        ui::print_json(&serde_json::json!({
            "command": "get",
            "scope": scope.as_str(),
            "rev": rev,
            "downloaded": r.downloaded,
            "already_present": r.already_present,
            "failed": r.failed,
            "quarantined": r.quarantined,
            "signed_by": signed,
            "bytes": r.bytes,
            "retries": r.retries,
            "elapsed_secs": r.elapsed.as_secs_f64(),
            "ok": r.failed.is_empty(),
        }));
        return;
    }
    for q in &r.quarantined {
        ui::say!(
            "warning: {}: in the cache but not the content its revision's signature gives; moved to {} and downloaded again",
            q.artifact,
            q.moved_to.display()
        );
    }
    for f in &r.failed {
        let error = printable_lines(&f.error.to_string());
        ui::say!("failed to download artifact {}: {error}", f.artifact);
    }
    if !global.quiet || !r.failed.is_empty() {
        let secs = r.elapsed.as_secs_f64();
        ui::say!(
            "{scope}{}: downloaded {}, already present {}, failed {} ({} in {secs:.1}s, {}, {} retries)",
            rev.map(|r| format!(" @ {r}")).unwrap_or_default(),
            r.downloaded,
            r.already_present,
            r.failed.len(),
            ui::human_bytes(r.bytes),
            rate(r.bytes, secs),
            r.retries
        );
    }
}

fn require_scope(t: &ScopeArgs, cmd: &str) -> anyhow::Result<Scope> {
    t.scope()?.ok_or_else(|| {
        ui::with_hint(
            anyhow!("the `--scope` or `--repo` option must be set for `cache {cmd}`"),
            "pass --scope SCOPE (custom endpoints) or --repo OWNER/NAME",
        )
    })
}

/// `tarn put`.
pub(crate) fn put(global: &GlobalArgs, a: PutArgs) -> CmdResult {
    let scope = require_scope(&a.target, "put")?;
    let config = context::load_system_config()?;
    let env = RemoteEnv::from_process();
    let (resolved, creds) = resolve_upload(a.target.service.as_deref(), &config, &env)?;
    let ws = context::load_workspace(global, a.package.as_deref())?;
    let pkg = context::select_package(&ws, a.package.as_deref())?;
    let (platform, toolchain) = platform_toolchain(&ws, &a.target, scope.is_repo())?;
    let (platform, toolchain) = (pkg.cache_platform(platform), pkg.cache_toolchain(toolchain));
    let (cache, _) = context::open_cache(global)?;
    let _lock = context::share_cache(&cache);
    let plan = PutPlan {
        service: resolved.service,
        scope,
        revision: PutRevision::Head {
            repo: pkg.repo_dir.clone(),
        },
        platform,
        toolchain,
        source: PutSource::Cache {
            mappings: a.mappings,
            cache,
        },
        force: a.force,
        sign_key: signing_key(&a.sign)?,
    };
    run_upload(global, &a.transfer, creds, plan)
}

/// `tarn put-staged`.
pub(crate) fn put_staged(global: &GlobalArgs, a: PutStagedArgs) -> CmdResult {
    let scope = require_scope(&a.target, "put-staged")?;
    let config = context::load_system_config()?;
    let env = RemoteEnv::from_process();
    let (resolved, creds) = resolve_upload(a.target.service.as_deref(), &config, &env)?;
    let (platform, toolchain) = flags_platform_toolchain(&a.target)?;
    let plan = PutPlan {
        service: resolved.service,
        scope,
        revision: match a.rev {
            Some(rev) => PutRevision::Explicit {
                rev,
                repo: global.dir.clone(),
            },
            None => PutRevision::Head {
                repo: global.dir.clone(),
            },
        },
        platform,
        toolchain,
        source: PutSource::Staged { dir: a.dir },
        force: a.force,
        sign_key: signing_key(&a.sign)?,
    };
    run_upload(global, &a.transfer, creds, plan)
}

/// Runs an upload plan with a signing transport and prints the outcome.
fn run_upload(
    global: &GlobalArgs,
    t: &TransferArgs,
    creds: Credentials,
    plan: PutPlan,
) -> CmdResult {
    let bar = styled_bar(global);
    let transport = transport(
        global,
        t,
        Some(Signer::new(creds, &t.region)),
        false,
        None,
        &bar,
        None,
    )?;
    let rt = runtime()?;
    let outcome = rt.block_on(put::run(&transport, &plan));
    bar.finish_and_clear();
    let scope = &plan.scope;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e @ PutError::Head(_)) => return Err(ui::with_hint(e, "run in the package's git repository (or pass -d DIR); to upload for an explicit revision use `tarn stage` + `tarn put-staged --rev`")),
        Err(e @ PutError::ResolveRev(_)) => {
            return Err(ui::with_hint(e, "pass the full 40-character commit SHA to --rev"))
        }
        Err(e @ PutError::InvalidCache(_)) => return Err(ui::with_hint(e, "build the package (or `tarn get`) so the cache holds every artifact the mappings name")),
        Err(e @ PutError::InvalidStaging { .. }) => return Err(ui::with_hint(e, "recreate it with `tarn stage` (nothing was uploaded)")),
        Err(e @ PutError::Refused { .. }) => {
            return Err(ui::with_hint(
                anyhow!("{e}\n  nothing was uploaded"),
                format!(
                    "check LAKE_CACHE_KEY (<access-key-id>:<secret>) and the signing region (--region / TARN_S3_REGION, now `{}`)",
                    t.region
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let report = &outcome.report;
    print_put_summary(global, scope, &outcome.rev, report);
    if outcome.ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        if !global.json {
            let auth = report.failed.iter().any(|f| f.is_auth_failure());
            ui::print_failure(
                &format!(
                    "{scope}: failed to upload artifact{} ({} of {}); the revision file was NOT uploaded",
                    if report.failed.len() == 1 { "" } else { "s" },
                    report.failed.len(),
                    outcome.items,
                ),
                if auth {
                    "the service refused the request: check LAKE_CACHE_KEY and --region / TARN_S3_REGION"
                } else {
                    "rerun the same command; artifacts already uploaded are skipped"
                },
            );
        }
        Ok(ExitCode::from(1))
    }
}

fn print_put_summary(global: &GlobalArgs, scope: &Scope, rev: &str, r: &PutReport) {
    if global.json {
        ui::print_json(&serde_json::json!({
            "command": "put",
            "scope": scope.as_str(),
            "rev": rev,
            "uploaded": r.uploaded,
            "already_present": r.already_present,
            "failed": r.failed,
            "bytes": r.bytes,
            "retries": r.retries,
            "revision_url": r.revision_url,
            "revision_uploaded": r.revision_uploaded,
            "presence_check": r.presence_check,
            "signed_by": r.signed_by,
            "elapsed_secs": r.elapsed_secs,
            "ok": r.failed.is_empty() && r.revision_uploaded,
        }));
        return;
    }
    for f in &r.failed {
        let error = printable_lines(&f.error.to_string());
        ui::say!("failed to upload artifact {}: {error}", f.artifact);
    }
    if !global.quiet || !r.failed.is_empty() {
        ui::say!(
            "{scope} @ {rev}: uploaded {}, already present {}, failed {} ({} in {:.1}s, {}, {} retries); revision file {}",
            r.uploaded,
            r.already_present,
            r.failed.len(),
            ui::human_bytes(r.bytes),
            r.elapsed_secs,
            rate(r.bytes, r.elapsed_secs),
            r.retries,
            if r.revision_uploaded {
                format!("uploaded to {}", r.revision_url)
            } else {
                "not uploaded".to_string()
            }
        );
        if let Some(key_id) = &r.signed_by {
            ui::say!("{scope} @ {rev}: signed by {key_id}");
        }
    }
}
