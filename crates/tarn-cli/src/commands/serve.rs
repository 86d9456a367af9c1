//! `tarn serve` and its maintenance subcommands (`gc`, `scrub`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use tarn_server::config::{KeyConfig, ServerConfig, StorageKind, TlsConfig};
use tarn_server::gc::{run_gc, scrub, GcPolicy};
use tarn_server::App;

use super::CmdResult;
use crate::context::GlobalArgs;

/// Where the objects are: shared by `tarn serve`, `gc` and `scrub`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct StoreOpts {
    /// Data directory (objects on local disk; upload spool files).
    #[arg(long, value_name = "DIR", env = "TARN_SERVE_DATA")]
    pub data: Option<PathBuf>,
    /// Server configuration file (TOML, see docs/server.md).
    #[arg(long, value_name = "FILE", env = "TARN_SERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Keep objects in an S3-compatible bucket instead of --data: its endpoint URL.
    /// Credentials come from TARN_S3_ACCESS_KEY / TARN_S3_SECRET_KEY or the config.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The bucket (with --s3-endpoint).
    #[arg(long, value_name = "NAME")]
    pub s3_bucket: Option<String>,
    /// SigV4 region of the bucket (default us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Key prefix inside the bucket.
    #[arg(long, value_name = "PREFIX")]
    pub s3_prefix: Option<String>,
}

/// `tarn serve`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ServeArgs {
    /// Maintenance subcommand.
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    #[command(flatten)]
    store: StoreOpts,
    /// Listen address (default 127.0.0.1:7070; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// An upload key `ID:SECRET[:PATTERN]` with write and admin permission on the scopes
    /// matching PATTERN (default `*`); repeatable. Adds to the config's keys.
    #[arg(long = "key", value_name = "ID:SECRET[:PATTERN]")]
    keys: Vec<String>,
    /// Base URL clients use (for the printed Lake config and Reservoir bulk replies).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// TLS certificate chain (PEM); requires --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Run garbage collection periodically with the config's [gc] policy: `12h`, `30m`,
    /// `1d`, `90s`, or a bare number of hours.
    // The doc comment is clap's help text, shown verbatim: `[gc]` is the config table.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    gc_interval: Option<Duration>,
}

/// Maintenance subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ServeCommand {
    /// Delete old revisions and the artifacts no kept revision references.
    Gc(GcArgs),
    /// Rehash every artifact, parse every revision file, report temp leftovers.
    Scrub(ScrubArgs),
}

/// `tarn serve gc`.
#[derive(clap::Args, Debug)]
pub(crate) struct GcArgs {
    #[command(flatten)]
    store: StoreOpts,
    /// Keep the newest K revisions of every scope (default: config, else 50).
    #[arg(long, value_name = "K")]
    keep_revs: Option<usize>,
    /// Keep every revision newer than D days (default: config, else 30).
    #[arg(long, value_name = "D")]
    keep_days: Option<u64>,
    /// Never delete artifacts younger than this many hours (default: config, else 24).
    #[arg(long, value_name = "HOURS")]
    grace: Option<u64>,
    /// Only print what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

/// `tarn serve scrub`.
#[derive(clap::Args, Debug)]
pub(crate) struct ScrubArgs {
    #[command(flatten)]
    store: StoreOpts,
    /// Delete corrupt artifacts and temp leftovers.
    #[arg(long)]
    repair: bool,
}

fn load_config(store: &StoreOpts) -> anyhow::Result<ServerConfig> {
    let mut cfg = match &store.config {
        Some(p) => ServerConfig::load(p)?,
        None => ServerConfig::default(),
    };
    if let Some(d) = &store.data {
        cfg.data = Some(d.clone());
    }
    if let Some(e) = &store.s3_endpoint {
        cfg.storage.kind = StorageKind::S3;
        cfg.storage.endpoint = Some(e.clone());
    }
    if let Some(b) = &store.s3_bucket {
        cfg.storage.bucket = Some(b.clone());
    }
    if let Some(r) = &store.s3_region {
        cfg.storage.region = Some(r.clone());
    }
    if let Some(p) = &store.s3_prefix {
        cfg.storage.prefix = Some(p.clone());
    }
    Ok(cfg)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A zero-configuration server gets one admin key, generated once and kept in
/// `<data>/.tarn-serve-key` (mode 600), so that `lake cache put` works out of the box.
fn default_key(cfg: &ServerConfig) -> anyhow::Result<Option<KeyConfig>> {
    let Some(data) = &cfg.data else {
        return Ok(None);
    };
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let path = data.join(".tarn-serve-key");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => {
            let mut bytes = [0u8; 20];
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut bytes))
                .context("reading /dev/urandom")?;
            let t = format!("tarn:{}\n", hex_string(&bytes));
            tarn_store::write_atomic(&path, t.as_bytes())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            t
        }
    };
    let (id, secret) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| anyhow!("{}: expected ID:SECRET", path.display()))?;
    Ok(Some(KeyConfig {
        id: id.to_string(),
        secret: secret.to_string(),
        read: vec![],
        write: vec![],
        admin: vec!["*".into()],
    }))
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "h"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected e.g. 12h, 30m, 1d or 90s, got {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit {unit:?} (use s, m, h or d)")),
    };
    Ok(Duration::from_secs(secs))
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `tarn serve` (or a maintenance subcommand).
pub(crate) fn serve(g: &GlobalArgs, a: ServeArgs) -> CmdResult {
    match a.command {
        Some(ServeCommand::Gc(gc)) => return gc_cmd(g, gc),
        Some(ServeCommand::Scrub(s)) => return scrub_cmd(g, s),
        None => {}
    }
    let mut cfg = load_config(&a.store)?;
    if let Some(l) = &a.listen {
        cfg.listen = l.clone();
    }
    if let Some(u) = &a.public_url {
        cfg.public_url = Some(u.clone());
    }
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        cfg.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    let gc_every = a.gc_interval.or_else(|| {
        (cfg.gc.interval_hours > 0).then(|| Duration::from_secs(cfg.gc.interval_hours * 3600))
    });
    for k in &a.keys {
        let mut it = k.splitn(3, ':');
        let (Some(id), Some(secret)) = (it.next(), it.next()) else {
            anyhow::bail!("--key expects ID:SECRET[:PATTERN], got {k:?}");
        };
        let pattern = it.next().unwrap_or("*").to_string();
        cfg.keys.push(KeyConfig {
            id: id.into(),
            secret: secret.into(),
            read: vec![],
            write: vec![],
            admin: vec![pattern],
        });
    }
    let generated = if cfg.keys.is_empty() && cfg.storage.kind == StorageKind::Local {
        let k = default_key(&cfg)?;
        if let Some(k) = &k {
            cfg.keys.push(k.clone());
        }
        k
    } else {
        None
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let tls = match &cfg.tls {
            Some(t) => Some(tarn_server::tls::acceptor(&t.cert, &t.key)?),
            None => None,
        };
        let app = App::new(cfg, tls.is_some())?;
        let bound = tarn_server::server::bind(app, tls).await?;
        let addr = bound.local_addr();
        let app = bound.app().clone();
        let base = app
            .cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{addr}", if app.tls { "https" } else { "http" }));
        let storage = match app.cfg.storage.kind {
            StorageKind::Local => format!(
                "local {}",
                app.cfg
                    .data
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            ),
            StorageKind::S3 => format!(
                "s3 {} bucket {}",
                app.cfg.storage.endpoint.clone().unwrap_or_default(),
                app.cfg.storage.bucket.clone().unwrap_or_default()
            ),
        };
        if !g.quiet {
            println!("tarn serve: listening on {base} (storage: {storage})");
            println!("Lake configuration (~/.lake/config.toml):");
            println!();
            println!("  [cache]");
            println!("  defaultService = \"tarn\"");
            println!("  defaultUploadService = \"tarn\"");
            println!();
            println!("  [[cache.service]]");
            println!("  name = \"tarn\"");
            println!("  kind = \"s3\"");
            println!(
                "  artifactEndpoint = \"{base}/{}\"",
                app.cfg.artifact_prefix
            );
            println!(
                "  revisionEndpoint = \"{base}/{}\"",
                app.cfg.revision_prefix
            );
            println!();
            println!("  [[cache.service]]");
            println!("  name = \"tarn-reservoir\"");
            println!("  kind = \"reservoir\"");
            println!("  apiEndpoint = \"{base}/{}\"", app.cfg.reservoir_prefix);
            println!();
            println!("Then, in a Lake package (after `lake build -o outputs.jsonl`):");
            println!("  lake cache put outputs.jsonl --scope=myproj   # or: tarn put outputs.jsonl --scope myproj");
            println!("  lake cache get --scope=myproj                 # or: tarn get --scope myproj");
            println!();
            if let Some(k) = &generated {
                println!(
                    "Uploads: export LAKE_CACHE_KEY={}:{}  (admin key kept in {})",
                    k.id,
                    k.secret,
                    app.cfg
                        .data
                        .as_ref()
                        .map(|d| d.join(".tarn-serve-key").display().to_string())
                        .unwrap_or_default()
                );
            } else {
                println!("Uploads: LAKE_CACHE_KEY=<id>:<secret> of a configured key");
            }

            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        if let Some(every) = gc_every.filter(|d| !d.is_zero()) {
            let app = app.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let policy = GcPolicy {
                        keep_revs: app.cfg.gc.keep_revs,
                        keep_days: app.cfg.gc.keep_days,
                        grace_hours: app.cfg.gc.grace_hours,
                        dry_run: false,
                    };
                    match run_gc(&app, policy).await {
                        Ok(r) => tracing::info!(
                            revisions_deleted = r.revisions_deleted,
                            artifacts_deleted = r.artifacts_deleted,
                            bytes = r.artifact_bytes_deleted + r.revision_bytes_deleted,
                            "scheduled gc"
                        ),
                        Err(e) => tracing::warn!("scheduled gc failed: {e}"),
                    }
                }
            });
        }
        tarn_server::server::run(bound, shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn offline_app(store: &StoreOpts) -> anyhow::Result<(App, ServerConfig)> {
    let cfg = load_config(store)?;
    if cfg.storage.kind == StorageKind::Local && cfg.data.is_none() {
        anyhow::bail!("say where the objects are: --data DIR or --config FILE");
    }
    let app = App::new(cfg.clone(), false)?;
    Ok((app, cfg))
}

fn gc_cmd(g: &GlobalArgs, a: GcArgs) -> CmdResult {
    let (app, cfg) = offline_app(&a.store)?;
    let policy = GcPolicy {
        keep_revs: a.keep_revs.unwrap_or(cfg.gc.keep_revs),
        keep_days: a.keep_days.unwrap_or(cfg.gc.keep_days),
        grace_hours: a.grace.unwrap_or(cfg.gc.grace_hours),
        dry_run: a.dry_run,
    };
    let r = runtime()?.block_on(run_gc(&app, policy))?;
    if g.json {
        crate::ui::print_json(&serde_json::to_value(&r)?);
    } else if !g.quiet {
        let verb = if r.dry_run { "would delete" } else { "deleted" };
        println!(
            "revisions: {} seen, {verb} {} ({} bytes)",
            r.revisions, r.revisions_deleted, r.revision_bytes_deleted
        );
        println!(
            "artifacts: {} seen, {verb} {} ({} bytes), {} unreferenced but within the grace period",
            r.artifacts, r.artifacts_deleted, r.artifact_bytes_deleted, r.artifacts_in_grace
        );
        if r.unreadable_revisions > 0 {
            println!(
                "warning: {} kept revision file(s) could not be read; their scopes' artifacts were kept",
                r.unreadable_revisions
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scrub_cmd(g: &GlobalArgs, a: ScrubArgs) -> CmdResult {
    let (app, _) = offline_app(&a.store)?;
    let r = runtime()?.block_on(scrub(&app, a.repair))?;
    if g.json {
        crate::ui::print_json(&serde_json::to_value(&r)?);
    } else if !g.quiet {
        println!("artifacts: {} rehashed ({} bytes)", r.artifacts, r.bytes);
        for (what, list) in [
            ("corrupt artifact", &r.corrupt),
            ("misnamed object", &r.misnamed),
            ("unparsable revision", &r.bad_revisions),
            ("temp leftover", &r.temp_leftovers),
        ] {
            for k in list {
                println!(
                    "{what}: {k}{}",
                    if a.repair && what != "unparsable revision" && what != "misnamed object" {
                        " (deleted)"
                    } else {
                        ""
                    }
                );
            }
        }
        if r.clean() {
            println!("scrub: clean");
        }
    }
    Ok(if r.clean() || a.repair {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
