//! Loads a Lake workspace from disk the way Lake sees it: the root package's configuration
//! (`lakefile.lean` or `lakefile.toml`), `lean-toolchain`, `lake-manifest.json`, and each
//! dependency's own configuration in its checkout under the packages directory.
//!
//! Parsing is `tarn_core` ([`tarn_core::parse_lakefile_lean`], [`tarn_core::PackageConfig`],
//! [`tarn_core::Manifest`]); this module only reads files, every one bounded
//! ([`MAX_LAKEFILE_BYTES`] for lakefiles, [`MAX_CONFIG_BYTES`] for the rest). What cannot be read exactly (a non-literal option, a dependency not
//! checked out yet) comes back as a [`Warning`], never as a silent default.
//!
//! ```no_run
//! use tarn_store::Workspace;
//! let (ws, warnings) = Workspace::load(std::path::Path::new("."))?;
//! for w in &warnings { eprintln!("warning: {w}"); }
//! for dep in ws.dependencies() {
//!     let platform = dep.cache_platform(Some(tarn_core::host_platform()));
//!     println!("{} {:?} {:?}", dep.name, dep.reservoir_scope(), platform);
//! }
//! # Ok::<(), tarn_store::StoreError>(())
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tarn_core::PackageConfig;
pub use tarn_core::Warning;
use tarn_core::{
    check_inside_workspace, default_toolchain, parse_lean_toolchain, DependencyKind, Manifest,
    DEFAULT_PACKAGES_DIR,
};
use tarn_core::{parse_lakefile_lean, secret_shaped, MAX_CONFIG_BYTES, MAX_LAKEFILE_BYTES};

use crate::error::StoreError;
use crate::local_file::{read_text_inside, real_root, resolve_inside, ReadLimit};

/// The Lean-language configuration file name.
pub(crate) const LAKEFILE_LEAN: &str = "lakefile.lean";
/// The TOML configuration file name.
pub(crate) const LAKEFILE_TOML: &str = "lakefile.toml";
/// The manifest file name.
pub(crate) const MANIFEST_FILE: &str = "lake-manifest.json";
/// The toolchain file name.
pub(crate) const TOOLCHAIN_FILE: &str = "lean-toolchain";
/// Most bytes of `lean-toolchain` read (it holds one line, such as
/// `leanprover/lean4:v4.22.0`). Public for the test that reads a file one byte over it
/// (`tests/workspace.rs`).
pub const MAX_TOOLCHAIN_BYTES: u64 = 64 << 10;

/// Whether `dir` holds a Lake package configuration (`lakefile.lean` or `lakefile.toml`).
pub fn is_package_dir(dir: &Path) -> bool {
    dir.join(LAKEFILE_LEAN).is_file() || dir.join(LAKEFILE_TOML).is_file()
}

/// The configuration of the package in `dir` as Lake picks it (`lakefile.lean`, else
/// `lakefile.toml`), read bounded and parsed: the one reader of a root configuration, used
/// by [`Workspace::load`] and by commands that need only the package's name. `Ok(None)`
/// when `dir` has neither file.
pub fn read_root_config(dir: &Path) -> Result<Option<RootConfig>, StoreError> {
    let mut warnings = Vec::new();
    let root = real_root(dir).map_err(|e| StoreError::io(dir, e))?;
    Ok(
        read_package_config(&root, dir, None, &mut warnings)?.map(|(config, path)| RootConfig {
            config,
            path,
            warnings,
        }),
    )
}

/// A package's configuration as read by [`read_root_config`].
#[derive(Debug, Clone)]
pub struct RootConfig {
    /// The options (and the package name).
    pub config: PackageConfig,
    /// The file read.
    pub path: PathBuf,
    /// Options that could not be read exactly, and a `lakefile.toml` shadowed by a
    /// `lakefile.lean`.
    pub warnings: Vec<Warning>,
}

/// The toolchain named by `dir`'s `lean-toolchain` (first non-blank line, trimmed), read
/// bounded by [`MAX_TOOLCHAIN_BYTES`], and only if it resolves inside `dir`. `Ok(None)`
/// when there is no such file.
pub fn read_lean_toolchain(dir: &Path) -> Result<Option<String>, StoreError> {
    let root = real_root(dir).map_err(|e| StoreError::io(dir, e))?;
    Ok(read_bounded(
        &root,
        &dir.join(TOOLCHAIN_FILE),
        MAX_TOOLCHAIN_BYTES,
        TOOLCHAIN_FILE,
    )?
    .as_deref()
    .and_then(parse_lean_toolchain))
}

/// One package of a workspace: the root or a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The package name (for a dependency: its manifest name; for the root: its config's).
    pub name: String,
    /// The package directory (holding its lakefile).
    pub dir: PathBuf,
    /// The git working tree the package's revisions come from: the root directory, the
    /// dependency's checkout (`<packagesDir>/<name>`, even with a `subDir`), or a path
    /// dependency's directory.
    pub repo_dir: PathBuf,
    /// Options from its configuration file (defaults when it has none).
    pub config: PackageConfig,
    /// The configuration file read, if any.
    pub config_path: Option<PathBuf>,
    /// The name the package's own configuration declares (Lake's `origName`), when it was
    /// read and differs from `name` (a dependency required under another name).
    pub declared_name: Option<String>,
    /// Reservoir scope (owner) from the manifest; `""` for the root and non-Reservoir ones.
    pub scope: String,
    /// Git remote URL from the manifest (dependencies).
    pub url: Option<String>,
    /// Locked commit from the manifest (git dependencies).
    pub rev: Option<String>,
    /// The revision the `require` asked for (git dependencies).
    pub input_rev: Option<String>,
    /// Required only through another dependency.
    pub inherited: bool,
    /// `None` for the root, else how the dependency is sourced.
    pub kind: Option<DependencyKind>,
}

impl Package {
    /// Whether this is the workspace's root package.
    pub fn is_root(&self) -> bool {
        self.kind.is_none()
    }

    /// `<scope>/<name>` on Reservoir, or `None` when the package did not come from Reservoir.
    /// The name is the one the package declares itself (Lake's `reservoirName`, `origName`:
    /// "the name of the package as it appears in Reservoir URLs"), not the manifest's.
    pub fn reservoir_scope(&self) -> Option<String> {
        let name = self.declared_name.as_deref().unwrap_or(&self.name);
        (!self.scope.is_empty()).then(|| format!("{}/{name}", self.scope))
    }

    /// Lake's `cachePlatform`: `None` (no `pt/`) when platform-independent.
    pub fn cache_platform(&self, platform: Option<String>) -> Option<String> {
        self.config.cache_platform(platform)
    }

    /// Lake's `cacheToolchain`: `None` (no `tc/`) for `bootstrap` or `fixedToolchain`.
    pub fn cache_toolchain(&self, toolchain: Option<String>) -> Option<String> {
        self.config.cache_toolchain(toolchain)
    }
}

/// A workspace: the root package and its locked dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The root package directory.
    pub root_dir: PathBuf,
    /// Where dependencies are checked out (`<root>/<packagesDir>`).
    pub packages_dir: PathBuf,
    /// The toolchain named by the root's `lean-toolchain` (first line, trimmed), if any.
    pub lean_toolchain: Option<String>,
    /// The manifest, when the workspace has one.
    pub manifest: Option<Manifest>,
    /// Every package: the root first, then the dependencies in manifest order.
    pub packages: Vec<Package>,
}

impl Package {
    /// The root package of a workspace in `dir`.
    fn root(dir: &Path, config: PackageConfig, config_path: Option<PathBuf>) -> Package {
        Package {
            name: config.name.clone(),
            dir: dir.to_path_buf(),
            repo_dir: dir.to_path_buf(),
            config,
            config_path,
            declared_name: None,
            scope: String::new(),
            url: None,
            rev: None,
            input_rev: None,
            inherited: false,
            kind: None,
        }
    }
}

impl Workspace {
    /// A workspace of one package named `name` in `dir` with no configuration file (tarn's
    /// `--package NAME` outside a Lake package): Lake's defaults, no manifest, no toolchain.
    pub fn single(dir: &Path, name: &str) -> Workspace {
        let config = PackageConfig {
            name: name.to_string(),
            ..PackageConfig::default()
        };
        Workspace {
            root_dir: dir.to_path_buf(),
            packages_dir: dir.join(DEFAULT_PACKAGES_DIR),
            lean_toolchain: None,
            manifest: None,
            packages: vec![Package::root(dir, config, None)],
        }
    }

    /// Reads the workspace rooted at `dir`. Errors (naming the file) when the root has no
    /// configuration, or a file is unreadable, too large or malformed; a dependency that is
    /// not checked out, or an option that is not a literal, is a warning.
    ///
    /// Nothing outside `dir` is read or named as a package directory: `packagesDir` and a
    /// path dependency's `dir` must be relative paths that stay inside
    /// ([`tarn_core::check_inside_workspace`]), and every directory and file the workspace
    /// names must resolve inside `dir` through any symbolic link;
    /// anything else is an error naming the file and the field.
    pub fn load(dir: &Path) -> Result<(Workspace, Vec<Warning>), StoreError> {
        let root = real_root(dir).map_err(|e| StoreError::io(dir, e))?;
        let RootConfig {
            config: root_config,
            path: root_config_path,
            mut warnings,
        } = read_root_config(dir)?.ok_or_else(|| StoreError::Invalid {
            path: dir.to_path_buf(),
            message: format!(
                "no {LAKEFILE_LEAN} or {LAKEFILE_TOML} here (not a Lake package directory)"
            ),
        })?;
        let lean_toolchain = read_lean_toolchain(dir)?;
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = match read_bounded(&root, &manifest_path, MAX_CONFIG_BYTES, MANIFEST_FILE)? {
            Some(text) => Some(
                Manifest::parse(text.as_bytes(), &manifest_path.display().to_string()).map_err(
                    |e| StoreError::Invalid {
                        path: manifest_path.clone(),
                        message: withhold_secrets(e.message),
                    },
                )?,
            ),
            None => None,
        };
        // Lake materialises dependencies in the root configuration's `packagesDir`; the
        // manifest records the value of the last update and stands in when the
        // configuration does not say (or says it in a way tarn cannot read).
        let from_manifest = manifest.as_ref().map(|m| m.packages_dir.clone());
        let packages_rel = match (&root_config.packages_dir, &from_manifest) {
            (Some(config), Some(recorded)) => {
                if path_parts(config) != path_parts(recorded) {
                    warnings.push(Warning {
                        file: manifest_path.display().to_string(),
                        line: None,
                        message: format!(
                            "`packagesDir` is {recorded:?} here but {config:?} in the package \
                             configuration; tarn uses {config:?} as Lake does (`lake update` \
                             moves the checkouts)"
                        ),
                    });
                }
                config.clone()
            }
            (Some(config), None) => config.clone(),
            (None, Some(recorded)) => recorded.clone(),
            (None, None) => DEFAULT_PACKAGES_DIR.to_string(),
        };
        if let Err(message) = check_inside_workspace(&packages_rel) {
            return Err(StoreError::Invalid {
                path: root_config_path.clone(),
                message: format!("`packagesDir` {message}"),
            });
        }
        let packages_dir = dir.join(&packages_rel);
        check_dir_inside(&root, &packages_dir, "`packagesDir`")?;
        let mut packages = vec![Package::root(dir, root_config, Some(root_config_path))];
        for entry in manifest.iter().flat_map(|m| &m.packages) {
            let (repo_dir, pkg_dir) = match entry.kind {
                DependencyKind::Git => {
                    let repo = packages_dir.join(&entry.name);
                    let pkg = match &entry.sub_dir {
                        Some(sub) => repo.join(sub),
                        None => repo.clone(),
                    };
                    (repo, pkg)
                }
                DependencyKind::Path => {
                    let d = dir.join(entry.dir.as_deref().unwrap_or("."));
                    (d.clone(), d)
                }
            };
            let what = format!("dependency `{}`", entry.name);
            check_dir_inside(&root, &repo_dir, &what)?;
            check_dir_inside(&root, &pkg_dir, &what)?;
            let found =
                read_package_config(&root, &pkg_dir, entry.config_file.as_deref(), &mut warnings)?;
            let (mut config, config_path) = match found {
                Some((c, p)) => (c, Some(p)),
                None => {
                    warnings.push(Warning {
                        file: pkg_dir.display().to_string(),
                        line: None,
                        message: format!(
                            "dependency `{}` is not checked out (no lakefile); its options are \
                             unknown and assumed unset: run `lake update` or `lake build` first",
                            entry.name
                        ),
                    });
                    (PackageConfig::default(), None)
                }
            };
            let mut declared_name = None;
            if let Some(path) = &config_path {
                if !config.name.is_empty() && config.name != entry.name {
                    warnings.push(Warning {
                        file: path.display().to_string(),
                        line: None,
                        message: format!(
                            "the package calls itself `{}` but the manifest names it `{}`; \
                             as in Lake, the local cache uses the manifest's name and \
                             Reservoir the package's own",
                            config.name, entry.name
                        ),
                    });
                    declared_name = Some(config.name.clone());
                }
            }
            config.name = entry.name.clone();
            packages.push(Package {
                name: entry.name.clone(),
                dir: pkg_dir,
                repo_dir,
                config,
                config_path,
                declared_name,
                scope: entry.scope.clone(),
                url: entry.url.clone(),
                rev: entry.rev.clone(),
                input_rev: entry.input_rev.clone(),
                inherited: entry.inherited,
                kind: Some(entry.kind.clone()),
            });
        }
        Ok((
            Workspace {
                root_dir: dir.to_path_buf(),
                packages_dir,
                lean_toolchain,
                manifest,
                packages,
            },
            warnings,
        ))
    }

    /// The root package.
    pub fn root(&self) -> &Package {
        &self.packages[0]
    }

    /// The dependencies, in manifest order (Lake's `ws.packages` after the root).
    pub fn dependencies(&self) -> &[Package] {
        &self.packages[1..]
    }

    /// The package named `name` (root or dependency).
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The default toolchain for cache URLs: `elan_toolchain` (the `ELAN_TOOLCHAIN`
    /// variable, `None` when unset) whenever it is set (empty: no toolchain), else this
    /// workspace's `lean-toolchain`, normalised.
    pub fn default_toolchain(&self, elan_toolchain: Option<&str>) -> Option<String> {
        default_toolchain(elan_toolchain, self.lean_toolchain.as_deref())
    }
}

/// Reads the configuration of the package in `dir`: `config_file` when the manifest names
/// one and it exists, else `lakefile.lean`, else `lakefile.toml` (Lake's order). `Ok(None)` when there is
/// none.
fn read_package_config(
    root: &Path,
    dir: &Path,
    config_file: Option<&str>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<(PackageConfig, PathBuf)>, StoreError> {
    let lean = dir.join(LAKEFILE_LEAN);
    let toml = dir.join(LAKEFILE_TOML);
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(name) = config_file {
        candidates.push(dir.join(name));
    } else if lean.is_file() && toml.is_file() {
        warnings.push(Warning {
            file: dir.display().to_string(),
            line: None,
            message: format!(
                "both {LAKEFILE_LEAN} and {LAKEFILE_TOML} exist; using {LAKEFILE_LEAN} as Lake does"
            ),
        });
    }
    for p in [lean, toml] {
        if !candidates.contains(&p) {
            candidates.push(p);
        }
    }
    for path in candidates {
        let Some(text) = read_bounded(root, &path, MAX_LAKEFILE_BYTES, "a lakefile")? else {
            continue;
        };
        let shown = path.display().to_string();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let config = if is_toml {
            PackageConfig::parse_toml(&text).map_err(|e| StoreError::Invalid {
                path: path.clone(),
                message: withhold_secrets(e.to_string()),
            })?
        } else {
            let (config, w) =
                parse_lakefile_lean(&text, &shown).map_err(|e| StoreError::Invalid {
                    path: path.clone(),
                    message: match e.line {
                        Some(l) => format!("line {l}: {}", withhold_secrets(e.message)),
                        None => withhold_secrets(e.message),
                    },
                })?;
            warnings.extend(w);
            config
        };
        return Ok(Some((config, path)));
    }
    Ok(None)
}

/// A parser's message about a checkout file, unless it quotes text that looks secret
/// ([`tarn_core::secret_shaped`], with every environment value of 8 characters or more as
/// known secrets): then only its position (`line L, column C`, when it starts so) and a
/// note. A configuration file may be a link to `/proc/self/environ` or a key file, and its
/// lines must never reach a CI log.
fn withhold_secrets(message: String) -> String {
    let env: Vec<String> = std::env::vars_os()
        .filter_map(|(_, v)| v.into_string().ok())
        .filter(|v| v.len() >= 8)
        .collect();
    let known: Vec<&str> = env.iter().map(String::as_str).collect();
    if !secret_shaped(&message, &known) {
        return message;
    }
    let position = message
        .find(", column ")
        .and_then(|i| message[i..].find(':').map(|j| &message[..i + j]));
    let note = "the parser's message is withheld: it quotes text that looks like a secret";
    match position {
        Some(p) => format!("{p}: {note}"),
        None => format!("cannot be parsed ({note})"),
    }
}

/// The components of a relative path, `.` left out.
fn path_parts(p: &str) -> Vec<std::path::Component<'_>> {
    Path::new(p)
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect()
}

/// Refuses a directory of the workspace (`what`: `` `packagesDir` ``, a dependency) that
/// leads outside `root` (canonical) through a symbolic link; one that does not exist yet
/// is fine (a dependency not checked out).
fn check_dir_inside(root: &Path, dir: &Path, what: &str) -> Result<(), StoreError> {
    match resolve_inside(dir, root) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Invalid {
            path: dir.to_path_buf(),
            message: format!("{what}: {e}"),
        }),
    }
}

/// Reads a UTF-8 text file of a checkout (a lakefile, `lake-manifest.json`,
/// `lean-toolchain`) of at most `limit` bytes, through the one bounded, non-blocking reader
/// ([`read_text_inside`]): a FIFO or device is refused with an error naming the file, never
/// waited on or read without end, and so is a file that resolves outside `root` (the
/// workspace, canonical). `Ok(None)` when it does not exist or is a directory (Lake does
/// not take a directory for a configuration file either).
pub(crate) fn read_bounded(
    root: &Path,
    path: &Path,
    limit: u64,
    what: &str,
) -> Result<Option<String>, StoreError> {
    let limit = ReadLimit {
        bytes: limit,
        what,
        env: None,
    };
    match read_text_inside(path, root, &limit) {
        Ok(text) => Ok(Some(text)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}
