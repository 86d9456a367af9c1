//! What every command needs to know about where it runs: the package in the working
//! directory, the local cache, the system configuration (from the global flags).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use tarn_core::SystemConfig;
use tarn_store::Workspace;
use tarn_store::{resolve_cache_root, Cache, CacheEnv, CacheSource};
use tarn_store::{CacheLock, LockMode};

use crate::global_args::GlobalArgs;
use crate::ui;

/// The local scope (package name): `--package`, else the package in `-d`.
pub(crate) fn local_scope(
    global: &GlobalArgs,
    package_flag: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(p) = package_flag {
        return Ok(p.to_string());
    }
    let root = tarn_store::read_root_config(&global.dir)
        .map_err(|e| ui::with_hint(e, "fix the file, or pass --package NAME"))?;
    match root {
        Some(r) => {
            for w in &r.warnings {
                tracing::debug!("{w}");
            }
            Ok(r.config.name)
        }
        None => Err(ui::with_hint(
            anyhow!(
                "no lakefile.toml or lakefile.lean in {}",
                global.dir.display()
            ),
            "run in the package directory, pass -d DIR, or pass --package NAME",
        )),
    }
}

/// The workspace in `-d` (Lake's view: root config, `lean-toolchain`, manifest, each
/// dependency's config), its warnings logged. Without a lakefile in `-d`, `--package NAME`
/// stands for a one-package workspace rooted there (tarn works outside a Lake package; Lake
/// does not).
pub(crate) fn load_workspace(
    global: &GlobalArgs,
    package_flag: Option<&str>,
) -> anyhow::Result<Workspace> {
    let dir = &global.dir;
    if !tarn_store::is_package_dir(dir) {
        let Some(name) = package_flag else {
            return Err(crate::ui::with_hint(
                anyhow!("no lakefile.toml or lakefile.lean in {}", dir.display()),
                "run in the package directory, pass -d DIR, or pass --package NAME",
            ));
        };
        return Ok(Workspace::single(dir, name));
    }
    let (ws, warnings) = Workspace::load(dir)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(ws)
}

/// The package `--package` names in the workspace (`unknown package` if none), else the root.
pub(crate) fn select_package<'w>(
    ws: &'w Workspace,
    package_flag: Option<&str>,
) -> anyhow::Result<&'w tarn_store::Package> {
    match package_flag {
        Some(name) => ws.package(name).ok_or_else(|| {
            crate::ui::with_hint(
                anyhow!("unknown package `{name}`"),
                "--package takes the name of the root package or of a dependency in lake-manifest.json",
            )
        }),
        None => Ok(ws.root()),
    }
}

/// The cache to use: `--cache-dir`, else Lake's rules for the package in `-d`.
pub(crate) fn open_cache(global: &GlobalArgs) -> anyhow::Result<(Cache, CacheSource)> {
    if let Some(dir) = &global.cache_dir {
        let cache = Cache::new(dir);
        sweep_temp(&cache);
        return Ok((cache, CacheSource::Flag));
    }
    let env = CacheEnv::from_process();
    let package_root = tarn_store::is_package_dir(&global.dir).then_some(global.dir.as_path());
    // A `lean-toolchain` that cannot be read only loses its hint (commands that need the
    // toolchain load the workspace, which reports it).
    let toolchain_hint = package_root.and_then(|p| {
        tarn_store::read_lean_toolchain(p).unwrap_or_else(|e| {
            tracing::warn!("{e}; ignored");
            None
        })
    });
    let (root, source) = resolve_cache_root(&env, package_root, toolchain_hint.as_deref())
        .ok_or_else(|| {
            ui::with_hint(
                anyhow!("no workspace configuration found and no system cache detected"),
                "set LAKE_CACHE_DIR or pass --cache-dir DIR",
            )
        })?;
    tracing::info!("cache: {} ({source:?})", root.display());
    let cache = Cache::new(root);
    sweep_temp(&cache);
    Ok((cache, source))
}

/// Takes the cache lock (see `tarn_store::CacheLock`), saying so when it has to wait for
/// another tarn.
pub(crate) fn lock_cache(cache: &Cache, mode: LockMode) -> anyhow::Result<CacheLock> {
    if let Some(l) = CacheLock::try_acquire(cache, mode)? {
        return Ok(l);
    }
    tracing::info!(
        "{}: waiting for another tarn command on this cache (a prune) to finish",
        cache.root().display()
    );
    Ok(CacheLock::acquire(cache, mode)?)
}

/// The shared cache lock for a command that adds to the cache or reads artifacts from it, so
/// that no prune runs meanwhile. Best effort: a cache that does not exist yet has nothing to
/// prune, and a cache tarn cannot write (read-only) cannot be pruned by this user either.
pub(crate) fn share_cache(cache: &Cache) -> Option<CacheLock> {
    if !cache.root().is_dir() {
        return None;
    }
    lock_cache(cache, LockMode::Shared)
        .map_err(|e| tracing::debug!("cache lock not taken: {e:#}"))
        .ok()
}

/// Removes temp files left by killed runs (older than the grace period, owner dead: see
/// `tarn_store::sweep_cache`), saying how many.
fn sweep_temp(cache: &Cache) {
    let s = tarn_store::sweep_cache(cache, tarn_store::limits().temp_grace);
    if !s.removed.is_empty() {
        tracing::warn!(
            "{}: removed {} stale temp file(s) left by killed runs",
            cache.root().display(),
            s.removed.len()
        );
    }
}

/// Path of the system configuration: `LAKE_CONFIG`, else `~/.lake/config.toml`.
pub(crate) fn system_config_path() -> Option<PathBuf> {
    match std::env::var("LAKE_CONFIG") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => std::env::var("HOME")
            .ok()
            .map(|h| Path::new(&h).join(".lake").join("config.toml")),
    }
}

/// Loads the system configuration. A missing `~/.lake/config.toml` is an empty
/// configuration; a missing file that `LAKE_CONFIG` names explicitly is an error, since
/// silently ignoring it would send transfers to the built-in Reservoir instead.
pub(crate) fn load_system_config() -> anyhow::Result<SystemConfig> {
    let Some(path) = system_config_path() else {
        return Ok(SystemConfig::default());
    };
    let explicit = std::env::var_os("LAKE_CONFIG").is_some_and(|v| !v.is_empty());
    match tarn_store::read_config_file(&path) {
        Ok(text) => SystemConfig::parse(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit => {
            Err(crate::ui::with_hint(
                anyhow::anyhow!("LAKE_CONFIG names {}, which does not exist", path.display()),
                "create the file, or unset LAKE_CONFIG to use ~/.lake/config.toml",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SystemConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
