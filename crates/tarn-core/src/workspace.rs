//! The workspace files next to the lakefiles: `lake-manifest.json`, `lean-toolchain`, and the
//! defaults Lake derives from them (toolchain, platform). Parsing only; the loader that reads a
//! whole workspace from disk is `tarn_store::Workspace`.
//!
//! ```
//! use tarn_core::{default_toolchain, Manifest};
//! let m = Manifest::parse(br#"{"version": "1.1.0", "packagesDir": ".lake/packages",
//!   "packages": [{"url": "https://github.com/leanprover-community/batteries", "type": "git",
//!     "subDir": null, "scope": "leanprover-community", "rev": "0123456789abcdef0123456789abcdef01234567",
//!     "name": "batteries", "manifestFile": "lake-manifest.json", "inputRev": "main",
//!     "inherited": false, "configFile": "lakefile.toml"}],
//!   "name": "mathlib", "lakeDir": ".lake"}"#, "lake-manifest.json").unwrap();
//! assert_eq!(m.packages[0].scope, "leanprover-community");
//! assert_eq!(default_toolchain(None, Some("v4.22.0\n")).as_deref(), Some("leanprover/lean4:v4.22.0"));
//! ```

use serde::Deserialize;
use serde_json::Value;

use crate::scope::normalize_toolchain;

/// Largest manifest or `lean-toolchain` tarn reads: 4 MiB. Mathlib's manifest is 3 KiB;
/// anything larger is refused with the file's name.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The packages directory when the manifest does not name one.
pub const DEFAULT_PACKAGES_DIR: &str = ".lake/packages";

/// A manifest that cannot be used, naming the file and (where there is one) the package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    /// The file (as the caller named it).
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// Where a dependency's source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyKind {
    /// A git checkout under the packages directory.
    Git,
    /// A local directory (`dir`, relative to the workspace root).
    Path,
}

/// One entry of `packages[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPackage {
    /// The package name (its directory under the packages directory).
    pub name: String,
    /// The Reservoir scope (owner), `""` when the dependency did not come from Reservoir.
    pub scope: String,
    /// `git` or `path`.
    pub kind: DependencyKind,
    /// Git remote URL (git dependencies).
    pub url: Option<String>,
    /// The locked commit (git dependencies).
    pub rev: Option<String>,
    /// The branch, tag or revision the `require` asked for.
    pub input_rev: Option<String>,
    /// The package's directory inside its repository (git dependencies), if not the top.
    pub sub_dir: Option<String>,
    /// The package's directory relative to the workspace root (path dependencies).
    pub dir: Option<String>,
    /// Whether the dependency is required only by another dependency.
    pub inherited: bool,
    /// The package's configuration file name (`lakefile.lean` / `lakefile.toml`).
    pub config_file: Option<String>,
    /// The package's own manifest file name.
    pub manifest_file: Option<String>,
}

impl ManifestPackage {
    /// Lake's `Package.reservoirScope`: `<scope>/<name>`, or `None` for a dependency that
    /// did not come from Reservoir (empty scope).
    #[cfg(test)]
    pub(crate) fn reservoir_scope(&self) -> Option<String> {
        (!self.scope.is_empty()).then(|| format!("{}/{}", self.scope, self.name))
    }
}

/// `lake-manifest.json`: the locked dependencies of a workspace, in Lake's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `version` as written (`"1.1.0"`, or `7` for the last numeric version).
    pub version: String,
    /// The root package's name, when recorded.
    pub name: Option<String>,
    /// `lakeDir`, when recorded.
    pub lake_dir: Option<String>,
    /// `packagesDir` (absent → [`DEFAULT_PACKAGES_DIR`]).
    pub packages_dir: String,
    /// `fixedToolchain` of the root (manifest 1.2.0), when recorded.
    pub fixed_toolchain: Option<bool>,
    /// The dependencies, in manifest order.
    pub packages: Vec<ManifestPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    version: Value,
    name: Option<String>,
    lake_dir: Option<String>,
    packages_dir: Option<String>,
    fixed_toolchain: Option<bool>,
    #[serde(default)]
    packages: Vec<RawPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPackage {
    name: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(rename = "type")]
    type_: Option<String>,
    url: Option<String>,
    rev: Option<String>,
    input_rev: Option<String>,
    sub_dir: Option<String>,
    dir: Option<String>,
    #[serde(default)]
    inherited: bool,
    config_file: Option<String>,
    manifest_file: Option<String>,
}

impl Manifest {
    /// Parses `lake-manifest.json` bytes (versions 7 and 1.x). `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Manifest, ManifestError> {
        let err = |message: String| ManifestError {
            file: file.to_string(),
            message,
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(err(format!(
                "{} bytes is more than a manifest may have ({MAX_CONFIG_BYTES})",
                bytes.len()
            )));
        }
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| err(format!("invalid manifest: {e}")))?;
        let version = match &raw.version {
            Value::String(s) if s.starts_with("1.") => s.clone(),
            Value::Number(n) if n.as_u64() == Some(7) => n.to_string(),
            other => {
                return Err(err(format!(
                    "unsupported manifest version {other} (tarn reads 7 and 1.x; run `lake update` with a newer Lake)"
                )))
            }
        };
        let mut packages = Vec::with_capacity(raw.packages.len());
        // Names seen so far: a set, so that many packages cost linear time, not quadratic.
        let mut names = std::collections::HashSet::new();
        for (i, p) in raw.packages.into_iter().enumerate() {
            let at = |message: String| {
                err(format!(
                    "packages[{i}]{}: {message}",
                    p.name
                        .as_deref()
                        .map(|n| if has_control(n) {
                            format!(" ({n:?})")
                        } else {
                            format!(" ({n})")
                        })
                        .unwrap_or_default()
                ))
            };
            let name = p.name.clone().ok_or_else(|| at("missing `name`".into()))?;
            check_component(&name).map_err(|m| at(format!("`name` {m}")))?;
            if !names.insert(name.clone()) {
                return Err(at("another package has the same name".into()));
            }
            // Every string a manifest gives tarn may be printed, put in a URL or a path:
            // none may hold a line break (a forged log line or CI workflow command) or
            // another control character.
            for (key, value) in [
                ("scope", Some(&p.scope)),
                ("url", p.url.as_ref()),
                ("rev", p.rev.as_ref()),
                ("inputRev", p.input_rev.as_ref()),
            ] {
                if let Some(v) = value.filter(|v| has_control(v)) {
                    return Err(at(format!("`{key}` {v:?} holds a control character")));
                }
            }
            let kind = match p.type_.as_deref() {
                Some("git") => DependencyKind::Git,
                Some("path") => DependencyKind::Path,
                Some(other) => return Err(at(format!("unknown `type` {other:?}"))),
                None => return Err(at("missing `type` (\"git\" or \"path\")".into())),
            };
            match kind {
                DependencyKind::Git => {
                    if p.url.as_deref().is_none_or(str::is_empty) {
                        return Err(at("a git dependency needs `url`".into()));
                    }
                    if p.rev.as_deref().is_none_or(str::is_empty) {
                        return Err(at("a git dependency needs `rev`".into()));
                    }
                    if let Some(sub) = &p.sub_dir {
                        check_relative(sub).map_err(|m| at(format!("`subDir` {m}")))?;
                    }
                }
                DependencyKind::Path => match p.dir.as_deref() {
                    None | Some("") => {
                        return Err(at("a path dependency needs `dir`".into()));
                    }
                    Some(dir) => {
                        check_inside_workspace(dir).map_err(|m| at(format!("`dir` {m}")))?
                    }
                },
            }
            for (key, value) in [
                ("configFile", &p.config_file),
                ("manifestFile", &p.manifest_file),
            ] {
                if let Some(v) = value {
                    check_relative(v).map_err(|m| at(format!("`{key}` {m}")))?;
                }
            }
            packages.push(ManifestPackage {
                name,
                scope: p.scope,
                kind,
                url: p.url,
                rev: p.rev,
                input_rev: p.input_rev,
                sub_dir: p.sub_dir,
                dir: p.dir,
                inherited: p.inherited,
                config_file: p.config_file,
                manifest_file: p.manifest_file,
            });
        }
        let packages_dir = raw
            .packages_dir
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| DEFAULT_PACKAGES_DIR.to_string());
        check_inside_workspace(&packages_dir).map_err(|m| err(format!("`packagesDir` {m}")))?;
        Ok(Manifest {
            version,
            name: raw.name,
            lake_dir: raw.lake_dir,
            packages_dir,
            fixed_toolchain: raw.fixed_toolchain,
            packages,
        })
    }

    /// The dependency named `name`.
    #[cfg(test)]
    pub(crate) fn package(&self, name: &str) -> Option<&ManifestPackage> {
        self.packages.iter().find(|p| p.name == name)
    }
}

/// A package name is a directory name: not empty, no separators, not `.`/`..`, no control
/// character.
fn check_component(s: &str) -> Result<(), String> {
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\']) || has_control(s) {
        return Err(format!("{s:?} cannot name a directory"));
    }
    Ok(())
}

/// A path inside the package: relative, no `..`, no control character.
fn check_relative(s: &str) -> Result<(), String> {
    if is_absolute(s) || has_control(s) || s.split(['/', '\\']).any(|c| c == "..") {
        return Err(format!("{s:?} must be a relative path inside the package"));
    }
    Ok(())
}

/// Whether `s` holds a control character (a line break, NUL, an escape): never part of a
/// path, name or revision tarn accepts from a checkout.
pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Whether `s` is an absolute path on any platform Lake runs on (`/x`, `\\x`, `C:x`).
fn is_absolute(s: &str) -> bool {
    let b = s.as_bytes();
    s.starts_with(['/', '\\']) || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// Checks a directory a checkout names relative to the workspace root (`packagesDir`, a
/// path dependency's `dir`): not empty, not absolute, no control character, and never above
/// the root however its `..` components fall (`.lake/packages/a/../b` is inside, `../b` is
/// not). Lexical only: that no symbolic link leads out is checked where the directory is
/// used (`tarn_store::Workspace`). The error says which rule was broken, for
/// ``"`dir` {error}"``.
pub fn check_inside_workspace(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if has_control(s) {
        return Err(format!("{s:?} holds a control character"));
    }
    if is_absolute(s) {
        return Err(format!(
            "{s:?} is an absolute path; tarn reads only inside the workspace"
        ));
    }
    let mut depth: usize = 0;
    for part in s.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    format!("{s:?} leads out of the workspace; tarn reads only inside it")
                })?
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// The toolchain named by a `lean-toolchain` file: its first non-blank line, trimmed.
pub fn parse_lean_toolchain(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// The toolchain Lake puts in cache URLs when none is given (Appendix D; Lake's
/// `Env.computeToolchain` is `(← IO.getEnv "ELAN_TOOLCHAIN").getD Lean.toolchain`):
/// `ELAN_TOOLCHAIN` whenever it is set, verbatim (set but empty means no toolchain, `None`),
/// else the toolchain Lake itself runs under, which under elan is the workspace's
/// `lean-toolchain`, normalised.
pub fn default_toolchain(
    elan_toolchain: Option<&str>,
    lean_toolchain: Option<&str>,
) -> Option<String> {
    if let Some(t) = elan_toolchain {
        return (!t.is_empty()).then(|| t.to_string());
    }
    lean_toolchain
        .and_then(parse_lean_toolchain)
        .map(|t| normalize_toolchain(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `lake-manifest.json` as Lake 4.2x writes it (shape of a real Mathlib consumer's).
    const V1_1: &str = r#"{"version": "1.1.0",
 "packagesDir": ".lake/packages",
 "packages":
 [{"url": "https://github.com/leanprover-community/mathlib4.git",
   "type": "git",
   "subDir": null,
   "scope": "",
   "rev": "f897ebcf72cd16f89ab4577d0c826cd14afaafc7",
   "name": "mathlib",
   "manifestFile": "lake-manifest.json",
   "inputRev": "stable",
   "inherited": false,
   "configFile": "lakefile.lean"},
  {"url": "https://github.com/leanprover-community/plausible",
   "type": "git",
   "subDir": null,
   "scope": "leanprover-community",
   "rev": "dfd06ebfe8d0e8fa7faba9cb5e5a2e74e7bd2805",
   "name": "plausible",
   "manifestFile": "lake-manifest.json",
   "inputRev": "main",
   "inherited": true,
   "configFile": "lakefile.toml"},
  {"type": "path",
   "scope": "",
   "name": "local",
   "manifestFile": "lake-manifest.json",
   "inherited": false,
   "dir": "./vendor/local",
   "configFile": "lakefile.toml"}],
 "name": "Q3",
 "lakeDir": ".lake"}
"#;

    #[test]
    fn reads_a_version_1_1_manifest() {
        let m = Manifest::parse(V1_1.as_bytes(), "lake-manifest.json").unwrap();
        assert_eq!(m.version, "1.1.0");
        assert_eq!(m.name.as_deref(), Some("Q3"));
        assert_eq!(m.packages_dir, ".lake/packages");
        let names: Vec<_> = m.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["mathlib", "plausible", "local"]);
        let mathlib = &m.packages[0];
        assert_eq!(mathlib.scope, "");
        assert_eq!(mathlib.reservoir_scope(), None);
        assert_eq!(mathlib.kind, DependencyKind::Git);
        assert_eq!(mathlib.input_rev.as_deref(), Some("stable"));
        assert_eq!(mathlib.sub_dir, None);
        let plausible = m.package("plausible").unwrap();
        assert_eq!(
            plausible.reservoir_scope().as_deref(),
            Some("leanprover-community/plausible")
        );
        assert!(plausible.inherited);
        assert_eq!(plausible.config_file.as_deref(), Some("lakefile.toml"));
        assert_eq!(
            plausible.rev.as_deref(),
            Some("dfd06ebfe8d0e8fa7faba9cb5e5a2e74e7bd2805")
        );
        let local = &m.packages[2];
        assert_eq!(local.kind, DependencyKind::Path);
        assert_eq!(local.dir.as_deref(), Some("./vendor/local"));
    }

    #[test]
    fn reads_version_7_and_defaults_the_packages_dir() {
        // mathlib4's manifest at version 7 (2023): no `scope`.
        let m = Manifest::parse(
            br#"{"version": 7, "packages": [{"url": "https://github.com/leanprover-community/quote4",
   "type": "git", "subDir": null, "rev": "ccba5d35d07a448fab14c0e391c8105df6e2564c",
   "name": "Qq", "manifestFile": "lake-manifest.json", "inputRev": "master",
   "inherited": false, "configFile": "lakefile.lean"}], "name": "mathlib", "lakeDir": ".lake"}"#,
            "m.json",
        )
        .unwrap();
        assert_eq!(m.packages_dir, DEFAULT_PACKAGES_DIR);
        assert_eq!(m.packages[0].scope, "");
    }

    #[test]
    fn refuses_bad_manifests_naming_file_and_package() {
        for (text, needle) in [
            (
                r#"{"version": 6, "packages": []}"#,
                "unsupported manifest version 6",
            ),
            (
                r#"{"version": "2.0.0", "packages": []}"#,
                "unsupported manifest version",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"type": "git", "url": "u", "rev": "r"}]}"#,
                "packages[0]: missing `name`",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "../x", "type": "git", "url": "u", "rev": "r"}]}"#,
                "cannot name a directory",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "git", "url": "u"}]}"#,
                "packages[0] (x): a git dependency needs `rev`",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "svn"}]}"#,
                "unknown `type`",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "git", "url": "u", "rev": "r", "subDir": "../../etc"}]}"#,
                "`subDir`",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "path", "dir": "d"}, {"name": "x", "type": "path", "dir": "e"}]}"#,
                "same name",
            ),
            (
                r#"{"version": "1.1.0", "packagesDir": "../../../../../etc", "packages": []}"#,
                "`packagesDir` \"../../../../../etc\" leads out of the workspace",
            ),
            (
                r#"{"version": "1.1.0", "packagesDir": "/", "packages": []}"#,
                "`packagesDir` \"/\" is an absolute path",
            ),
            (
                r#"{"version": "1.1.0", "packagesDir": "deps\n/tmp/x", "packages": []}"#,
                "holds a control character",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "path", "dir": "../../../../../etc"}]}"#,
                "packages[0] (x): `dir` \"../../../../../etc\" leads out of the workspace",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "path", "dir": "/"}]}"#,
                "`dir` \"/\" is an absolute path",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x\n::warning::forged", "type": "path", "dir": "d"}]}"#,
                "cannot name a directory",
            ),
            (
                r#"{"version": "1.1.0", "packages": [{"name": "x", "type": "git", "url": "u", "rev": "r", "configFile": "C:/x"}]}"#,
                "`configFile`",
            ),
            ("{", "invalid manifest"),
        ] {
            let e = Manifest::parse(text.as_bytes(), "w/lake-manifest.json")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("w/lake-manifest.json: "), "{e}");
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        let big = vec![b' '; (MAX_CONFIG_BYTES + 1) as usize];
        let e = Manifest::parse(&big, "big.json").unwrap_err().to_string();
        assert!(
            e.starts_with("big.json: ") && e.contains("more than"),
            "{e}"
        );
    }

    #[test]
    fn directories_inside_the_workspace_are_told_from_those_outside() {
        for inside in [
            ".lake/packages",
            "./vendor/local",
            ".lake/packages/a/../b",
            "a/./b/",
        ] {
            assert_eq!(check_inside_workspace(inside), Ok(()), "{inside}");
        }
        for outside in [
            "",
            "..",
            "a/../..",
            "/etc",
            "\\\\host\\x",
            "C:\\x",
            "a\u{1b}b",
            "a\rb",
        ] {
            assert!(check_inside_workspace(outside).is_err(), "{outside:?}");
        }
    }

    #[test]
    fn default_toolchain_prefers_elan_then_the_workspace() {
        assert_eq!(
            default_toolchain(Some("leanprover/lean4:v4.9.0"), Some("v4.22.0")).as_deref(),
            Some("leanprover/lean4:v4.9.0")
        );
        // ELAN_TOOLCHAIN is taken verbatim, as Lake's `CacheToolchain.ofElanToolchain` does.
        assert_eq!(
            default_toolchain(Some("v4.9.0"), None).as_deref(),
            Some("v4.9.0")
        );
        // Set but empty: Lake takes the empty string, i.e. no toolchain part.
        assert_eq!(
            default_toolchain(Some(""), Some("leanprover/lean4:v4.22.0\n")),
            None
        );
        assert_eq!(
            default_toolchain(None, Some("leanprover/lean4:v4.22.0\n")).as_deref(),
            Some("leanprover/lean4:v4.22.0")
        );
        assert_eq!(
            default_toolchain(None, Some("\n  4.22.0-rc1  \n")).as_deref(),
            Some("leanprover/lean4:v4.22.0-rc1")
        );
        assert_eq!(default_toolchain(None, Some("  \n")), None);
        assert_eq!(default_toolchain(None, None), None);
    }
}
