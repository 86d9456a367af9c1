//! Where the local cache lives: the same rules as Lake's `Env.compute` / `computeLakeCache`.

use std::path::{Path, PathBuf};

use tarn_core::{elan_toolchain_name, toolchain_dir};

/// The environment variables that decide the cache location, captured once so that the
/// rules stay a pure function (and testable without touching the process environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheEnv {
    /// `LAKE_CACHE_DIR` (set-but-empty matters, so it is kept as given).
    pub lake_cache_dir: Option<String>,
    /// `ELAN_HOME`.
    pub elan_home: Option<String>,
    /// `ELAN` (set but blank disables elan, as in Lake's `findElanInstall?`).
    pub elan: Option<String>,
    /// `ELAN_TOOLCHAIN`.
    pub elan_toolchain: Option<String>,
    /// `XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<String>,
    /// `HOME`.
    pub home: Option<String>,
}

impl CacheEnv {
    /// Reads the variables from the process environment.
    pub fn from_process() -> CacheEnv {
        let var = |k: &str| std::env::var(k).ok();
        CacheEnv {
            lake_cache_dir: var("LAKE_CACHE_DIR"),
            elan_home: var("ELAN_HOME"),
            elan: var("ELAN"),
            elan_toolchain: var("ELAN_TOOLCHAIN"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            home: var("HOME"),
        }
    }
}

/// How the cache root was chosen, for `-v` output and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSource {
    /// `--cache-dir`.
    Flag,
    /// `LAKE_CACHE_DIR` (non-empty).
    LakeCacheDir,
    /// `LAKE_CACHE_DIR` set but empty: the package's `.lake/cache`.
    PackageLocal,
    /// `ELAN_HOME` with a toolchain.
    Toolchain,
    /// `$XDG_CACHE_HOME/lake`.
    Xdg,
    /// `~/.cache/lake`.
    Home,
}

/// Bytes available to this user on the file system that holds `dir` (or, while `dir` does
/// not exist yet, its nearest existing ancestor): what a `get` may fill at most.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe = p,
            _ => {
                probe = Path::new(".");
                break;
            }
        }
    }
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(probe)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = probe;
        Ok(u64::MAX)
    }
}

/// Resolves the cache root like Lake:
///
/// 1. `LAKE_CACHE_DIR` non-empty → it;
/// 2. `LAKE_CACHE_DIR` set but empty → `<package root>/.lake/cache` (none without a package);
/// 3. `ELAN_HOME` set, `ELAN` not set to a blank value, and a toolchain (`ELAN_TOOLCHAIN`,
///    else `toolchain_hint`, the package's `lean-toolchain`, under the name elan gives it) →
///    `<ELAN_HOME>/toolchains/<mangled>/lake/cache`;
/// 4. `$XDG_CACHE_HOME/lake`; 5. `$HOME/.cache/lake`.
pub fn resolve_cache_root(
    env: &CacheEnv,
    package_root: Option<&Path>,
    toolchain_hint: Option<&str>,
) -> Option<(PathBuf, CacheSource)> {
    match env.lake_cache_dir.as_deref() {
        Some(dir) if !dir.is_empty() => {
            return Some((PathBuf::from(dir), CacheSource::LakeCacheDir))
        }
        Some(_) => {
            return package_root.map(|p| (p.join(".lake").join("cache"), CacheSource::PackageLocal))
        }
        None => {}
    }
    let elan_disabled = env.elan.as_deref().is_some_and(|e| e.trim().is_empty());
    let elan_home = env
        .elan_home
        .as_deref()
        .filter(|s| !s.is_empty() && !elan_disabled);
    if let Some(elan) = elan_home {
        let toolchain = match env.elan_toolchain.as_deref() {
            Some(t) => Some(t.to_string()),
            None => toolchain_hint.map(|h| elan_toolchain_name(h).unwrap_or_else(|| h.to_string())),
        };
        if let Some(tc) = toolchain
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            return Some((
                Path::new(elan)
                    .join("toolchains")
                    .join(toolchain_dir(tc))
                    .join("lake")
                    .join("cache"),
                CacheSource::Toolchain,
            ));
        }
    }
    system_cache_root(env)
}

/// The system cache (Lake's `lakeSystemCache?`): `$XDG_CACHE_HOME/lake` or `~/.cache/lake`,
/// or `LAKE_CACHE_DIR` when it is non-empty. Used by `clean` without a workspace.
pub fn system_cache_root(env: &CacheEnv) -> Option<(PathBuf, CacheSource)> {
    if let Some(dir) = env.lake_cache_dir.as_deref().filter(|d| !d.is_empty()) {
        return Some((PathBuf::from(dir), CacheSource::LakeCacheDir));
    }
    if let Some(xdg) = env.xdg_cache_home.as_deref().filter(|s| !s.is_empty()) {
        return Some((Path::new(xdg).join("lake"), CacheSource::Xdg));
    }
    env.home
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|h| (Path::new(h).join(".cache").join("lake"), CacheSource::Home))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> CacheEnv {
        CacheEnv {
            home: Some("/home/u".into()),
            ..CacheEnv::default()
        }
    }

    #[test]
    fn follows_lakes_order() {
        let pkg = Path::new("/p");
        let mut e = env();
        assert_eq!(
            resolve_cache_root(&e, Some(pkg), None).unwrap().0,
            Path::new("/home/u/.cache/lake")
        );
        e.xdg_cache_home = Some("/xdg".into());
        assert_eq!(
            resolve_cache_root(&e, Some(pkg), None).unwrap().0,
            Path::new("/xdg/lake")
        );
        e.elan_home = Some("/elan".into());
        assert_eq!(
            resolve_cache_root(&e, Some(pkg), None).unwrap().0,
            Path::new("/xdg/lake"),
            "no toolchain: no toolchain cache"
        );
        e.elan_toolchain = Some("leanprover/lean4:v4.22.0".into());
        assert_eq!(
            resolve_cache_root(&e, Some(pkg), None).unwrap().0,
            Path::new("/elan/toolchains/leanprover--lean4---v4.22.0/lake/cache")
        );
        e.lake_cache_dir = Some(String::new());
        assert_eq!(
            resolve_cache_root(&e, Some(pkg), None).unwrap().0,
            Path::new("/p/.lake/cache")
        );
        assert_eq!(resolve_cache_root(&e, None, None), None);
        e.lake_cache_dir = Some("/c".into());
        assert_eq!(
            resolve_cache_root(&e, Some(pkg), None).unwrap().0,
            Path::new("/c")
        );
    }

    #[test]
    fn toolchain_hint_is_used_without_elan_toolchain() {
        let e = CacheEnv {
            elan_home: Some("/elan".into()),
            ..env()
        };
        assert_eq!(
            resolve_cache_root(&e, None, Some("leanprover/lean4:v4.9.0\n"))
                .unwrap()
                .0,
            Path::new("/elan/toolchains/leanprover--lean4---v4.9.0/lake/cache")
        );
        // The hint under elan's name for it (elan adds the origin and the `v`).
        assert_eq!(
            resolve_cache_root(&e, None, Some("4.9.0\n")).unwrap().0,
            Path::new("/elan/toolchains/leanprover--lean4---v4.9.0/lake/cache")
        );
    }

    #[test]
    fn a_blank_elan_disables_the_toolchain_cache() {
        let mut e = CacheEnv {
            elan_home: Some("/elan".into()),
            elan_toolchain: Some("leanprover/lean4:v4.22.0".into()),
            ..env()
        };
        e.elan = Some(" ".into());
        assert_eq!(
            resolve_cache_root(&e, None, None).unwrap().0,
            Path::new("/home/u/.cache/lake")
        );
        e.elan = Some("/opt/elan/bin/elan".into());
        assert_eq!(
            resolve_cache_root(&e, None, None).unwrap().0,
            Path::new("/elan/toolchains/leanprover--lean4---v4.22.0/lake/cache")
        );
    }
}
