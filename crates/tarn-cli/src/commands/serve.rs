//! `tarn serve` and its maintenance subcommands (`gc`, `scrub`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tarn_server::config::{KeyConfig, ServerConfig, StorageKind, TlsConfig};
use tarn_server::gc::{run_gc, scrub, GcPolicy};
use tarn_server::App;

use super::CmdResult;
use crate::global_args::GlobalArgs;
use crate::ui::with_hint;

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
    /// matching PATTERN (default `*`); repeatable. Adds to the config's keys. Other local
    /// users see it in `ps`: beyond local use, put keys in the config's `[[key]]` tables.
    #[arg(long = "key", value_name = "ID:SECRET[:PATTERN]", value_parser = parse_key)]
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

/// `--key`: checked while the arguments are parsed, so a malformed key is a usage error (exit 2).
fn parse_key(s: &str) -> Result<String, String> {
    KeyConfig::from_admin_arg(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
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
    for k in &a.keys {
        cfg.keys.push(KeyConfig::from_admin_arg(k)?);
    }
    let listen = cfg.listen.clone();
    let opts = tarn_server::ServeOptions {
        gc_interval: a.gc_interval,
    };
    runtime()?.block_on(async move {
        let serving = tarn_server::start(cfg, opts).await.map_err(|e| {
            if e.is_addr_in_use() {
                // The same interface the user asked for, another port.
                let host = listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
                with_hint(
                    e,
                    format!(
                        "another process listens there: choose another port with --listen \
                         {host}:PORT, or --listen {host}:0 for a free one"
                    ),
                )
            } else {
                e.into()
            }
        })?;
        if !g.quiet {
            print!("{}", serving.banner());
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        serving.run(tarn_server::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn offline_app(store: &StoreOpts) -> anyhow::Result<(App, ServerConfig)> {
    let cfg = load_config(store)?;
    if cfg.storage.kind == StorageKind::Local {
        let Some(data) = &cfg.data else {
            anyhow::bail!("say where the objects are: --data DIR or --config FILE");
        };
        // Maintenance never creates a data directory: a mistyped path would report "clean".
        if !data.is_dir() {
            return Err(with_hint(
                anyhow::anyhow!("no data directory at {}", data.display()),
                "give the --data directory of the server (the one holding a0/ and r0/)",
            ));
        }
    }
    let app = App::for_maintenance(cfg.clone())?;
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
