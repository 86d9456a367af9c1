//! A Mathlib-shaped Lake workspace on disk, for tests and benchmarks of workspace-wide
//! commands: a root `lakefile.lean` in Mathlib's style (with `enableArtifactCache`,
//! `restoreAllArtifacts`, `platformIndependent` and `fixedToolchain`), `lean-toolchain`, a
//! `lake-manifest.json` (version 1.1.0) with Mathlib's seven Reservoir dependencies and one
//! git-only dependency, and each checkout under `.lake/packages/<name>` a real git
//! repository with a few commits, made by the real `git`.
//!
//! Commits use fixed authors and dates, so every repository's HEAD (and so every `rev` in
//! the manifest) is the same on every machine.
//!
//! ```no_run
//! let ws = tarn_fixture::workspace::mathlib_workspace(std::path::Path::new("/tmp/ws"))?;
//! assert_eq!(ws.packages.len(), 8);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{generate_to, Fixture, FixtureSpec};

/// The toolchain the fixture's `lean-toolchain` files name.
pub const TOOLCHAIN: &str = "leanprover/lean4:v4.29.0";

/// Which configuration language a fixture package uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigLanguage {
    /// `lakefile.lean`.
    Lean,
    /// `lakefile.toml`.
    Toml,
}

impl ConfigLanguage {
    /// The configuration file name.
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigLanguage::Lean => "lakefile.lean",
            ConfigLanguage::Toml => "lakefile.toml",
        }
    }
}

/// One dependency the fixture writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixturePackage {
    /// Manifest name (directory under `.lake/packages`).
    pub name: String,
    /// Reservoir scope, `""` for the git-only dependency.
    pub scope: String,
    /// Git URL recorded in the manifest.
    pub url: String,
    /// `inputRev` recorded in the manifest.
    pub input_rev: String,
    /// HEAD of the checkout = the manifest's `rev`.
    pub rev: String,
    /// The checkout directory.
    pub dir: PathBuf,
    /// Its configuration language.
    pub language: ConfigLanguage,
    /// Whether its config says `platformIndependent = true`.
    pub platform_independent: bool,
}

impl FixturePackage {
    /// `<scope>/<name>` on Reservoir, `None` for the git-only dependency.
    pub fn reservoir_scope(&self) -> Option<String> {
        (!self.scope.is_empty()).then(|| format!("{}/{}", self.scope, self.name))
    }
}

/// What [`mathlib_workspace`] wrote.
#[derive(Debug, Clone)]
pub struct WorkspaceFixture {
    /// The root package directory (a git repository).
    pub root: PathBuf,
    /// The root package name (`mathlib`).
    pub root_name: String,
    /// HEAD of the root repository.
    pub root_rev: String,
    /// The dependencies, in manifest order.
    pub packages: Vec<FixturePackage>,
}

/// A dependency's fixed description.
struct Dep {
    name: &'static str,
    scope: &'static str,
    url: &'static str,
    input_rev: &'static str,
    language: ConfigLanguage,
    platform_independent: bool,
    config: &'static str,
}

/// Mathlib's dependencies in the order Lake records them, plus one required from git.
const DEPS: &[Dep] = &[
    Dep {
        name: "plausible",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/plausible",
        input_rev: "main",
        language: ConfigLanguage::Toml,
        platform_independent: false,
        config: "name = \"plausible\"\ndefaultTargets = [\"Plausible\"]\ntestDriver = \"Test\"\n\n[[lean_lib]]\nname = \"Plausible\"\n\n[[lean_lib]]\nname = \"Test\"\nglobs = [\"Test.+\"]\n",
    },
    Dep {
        name: "LeanSearchClient",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/LeanSearchClient",
        input_rev: "main",
        language: ConfigLanguage::Toml,
        platform_independent: false,
        config: "name = \"LeanSearchClient\"\ndefaultTargets = [\"LeanSearchClient\"]\n\n[[lean_lib]]\nname = \"LeanSearchClient\"\n",
    },
    Dep {
        name: "importGraph",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/import-graph",
        input_rev: "main",
        language: ConfigLanguage::Toml,
        platform_independent: false,
        config: "name = \"importGraph\"\ndefaultTargets = [\"ImportGraph\"]\n\n[[require]]\nname = \"batteries\"\nscope = \"leanprover-community\"\nrev = \"main\"\n\n[[lean_lib]]\nname = \"ImportGraph\"\n\n[[lean_exe]]\nname = \"graph\"\nroot = \"ImportGraph.Main\"\nsupportInterpreter = true\n",
    },
    Dep {
        name: "proofwidgets",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/ProofWidgets4",
        input_rev: "v0.0.86",
        language: ConfigLanguage::Lean,
        platform_independent: false,
        config: "import Lake\nopen Lake DSL System\n\npackage proofwidgets where\n  preferReleaseBuild := true\n  buildArchive? := \"ProofWidgets4.tar.gz\"\n  releaseRepo := \"https://github.com/leanprover-community/ProofWidgets4\"\n\nrequire \"leanprover-community\" / \"batteries\" @ git \"main\"\n\n/-- The widget sources; built with npm when a release archive is missing. -/\ndef widgetDir (pkg : Package) : FilePath := pkg.dir / \"widget\"\n\n@[default_target]\nlean_lib ProofWidgets where\n  -- JavaScript bundles are fetched with the release archive.\n  extraDepTargets := #[]\n",
    },
    Dep {
        name: "aesop",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/aesop",
        input_rev: "master",
        language: ConfigLanguage::Toml,
        platform_independent: true,
        config: "name = \"aesop\"\ndefaultTargets = [\"Aesop\"]\ntestDriver = \"AesopTest\"\nprecompileModules = false # the Mathlib cache has no shared libraries\nplatformIndependent = true\n\n[[require]]\nname = \"batteries\"\ngit = \"https://github.com/leanprover-community/batteries\"\nrev = \"main\"\n\n[[lean_lib]]\nname = \"Aesop\"\n\n[[lean_lib]]\nname = \"AesopTest\"\nglobs = [\"AesopTest.+\"]\n",
    },
    Dep {
        name: "Qq",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/quote4",
        input_rev: "master",
        language: ConfigLanguage::Lean,
        platform_independent: false,
        config: "import Lake\n\nopen Lake DSL\n\npackage Qq where\n  -- quotations are plain Lean: nothing platform-specific to configure\n\n@[default_target]\nlean_lib Qq\n",
    },
    Dep {
        name: "batteries",
        scope: "leanprover-community",
        url: "https://github.com/leanprover-community/batteries",
        input_rev: "main",
        language: ConfigLanguage::Toml,
        platform_independent: false,
        config: "name = \"batteries\"\ntestDriver = \"BatteriesTest\"\nlintDriver = \"runLinter\"\ndefaultTargets = [\"Batteries\", \"runLinter\"]\n\n[leanOptions]\nlinter.missingDocs = true\n\n[[lean_lib]]\nname = \"Batteries\"\n\n[[lean_exe]]\nname = \"runLinter\"\nsrcDir = \"scripts\"\nsupportInterpreter = true\n",
    },
    Dep {
        name: "checkdecls",
        scope: "",
        url: "https://github.com/PatrickMassot/checkdecls.git",
        input_rev: "master",
        language: ConfigLanguage::Lean,
        platform_independent: false,
        config: "import Lake\nopen Lake DSL\n\npackage checkdecls {\n  -- a blueprint helper, required from git rather than Reservoir\n}\n\n@[default_target]\nlean_lib Checkdecls\n",
    },
];

/// The root `lakefile.lean`, in Mathlib's layout: `require`s by Reservoir scope, option
/// abbreviations, the `package` block with comments and the four cache options, libraries.
const ROOT_LAKEFILE: &str = r#"import Lake

open Lake DSL

/-!
## Upstream dependencies
-/

require "leanprover-community" / "batteries" @ git "main"
require "leanprover-community" / "Qq" @ git "master"
require "leanprover-community" / "aesop" @ git "master"
require "leanprover-community" / "proofwidgets" @ git "v0.0.86" -- pinned: widgets ship JavaScript
  with NameMap.empty.insert `errorOnBuild
    "ProofWidgets is out of date. \
    Fetch the cache again."
require "leanprover-community" / "importGraph" @ git "main"
require "leanprover-community" / "LeanSearchClient" @ git "main"
require "leanprover-community" / "plausible" @ git "main"
require checkdecls from git "https://github.com/PatrickMassot/checkdecls.git"

/-!
## Build options
-/

/-- Linters every library of this package runs. -/
abbrev fixtureLinters : Array LeanOption := #[
  ⟨`linter.style.longFile, .ofNat 1500⟩,
  ⟨`linter.style.header, true⟩,
]

/-- Options for `lake build`; `weak.` so that downstream packages may ignore them. -/
abbrev fixtureLeanOptions := #[
    ⟨`pp.unicode.fun, true⟩,
    ⟨`autoImplicit, false⟩
  ] ++ fixtureLinters.map fun s ↦ { s with name := `weak ++ s.name }

package mathlib where
  testDriver := "MathlibTest"
  -- The cache options below change where artifacts live, never their content.
  -- weakLeanArgs := #[]
  enableArtifactCache := true
  restoreAllArtifacts := true
  platformIndependent := true
  fixedToolchain := true

/-!
## Libraries
-/

@[default_target]
lean_lib Mathlib where
  leanOptions := fixtureLeanOptions

lean_lib Cache

lean_lib MathlibTest where
  globs := #[.submodules `MathlibTest]

/-- `lake exe cache get` fetches prebuilt files. -/
lean_exe cache where
  root := `Cache.Main
"#;

/// Writes the Mathlib-shaped workspace into `root` (created if missing; must not already
/// hold a workspace) and returns what it wrote.
pub fn mathlib_workspace(root: &Path) -> io::Result<WorkspaceFixture> {
    fs::create_dir_all(root)?;
    if root.join("lakefile.lean").exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: already holds a workspace", root.display()),
        ));
    }
    let packages_dir = root.join(".lake").join("packages");
    let mut packages = Vec::new();
    for (i, dep) in DEPS.iter().enumerate() {
        let dir = packages_dir.join(dep.name);
        fs::create_dir_all(&dir)?;
        git(&dir, &["init", "-q"], i)?;
        // As in a checkout Lake made: `origin` is the manifest's URL (never contacted).
        git(&dir, &["remote", "add", "origin", dep.url], i)?;
        fs::write(dir.join(dep.language.file_name()), dep.config)?;
        fs::write(dir.join("lean-toolchain"), format!("{TOOLCHAIN}\n"))?;
        let lib = dep.name.to_string();
        fs::write(
            dir.join(format!("{lib}.lean")),
            format!("-- {lib}: library root\n"),
        )?;
        commit(&dir, &format!("{}: initial import", dep.name), i, 0)?;
        fs::write(
            dir.join(format!("{lib}.lean")),
            format!("-- {lib}: library root\nimport {lib}.Basic\n"),
        )?;
        fs::create_dir_all(dir.join(lib.as_str()))?;
        fs::write(
            dir.join(lib.as_str()).join("Basic.lean"),
            format!("/-! Basic definitions of {lib}. -/\ndef {lib}.version := 1\n"),
        )?;
        commit(&dir, "add Basic", i, 1)?;
        fs::write(
            dir.join(lib.as_str()).join("Basic.lean"),
            format!("/-! Basic definitions of {lib}. -/\ndef {lib}.version := 2\n"),
        )?;
        commit(&dir, "bump version", i, 2)?;
        let rev = head(&dir)?;
        packages.push(FixturePackage {
            name: dep.name.to_string(),
            scope: dep.scope.to_string(),
            url: dep.url.to_string(),
            input_rev: dep.input_rev.to_string(),
            rev,
            dir,
            language: dep.language,
            platform_independent: dep.platform_independent,
        });
    }
    let root_index = DEPS.len();
    git(root, &["init", "-q"], root_index)?;
    fs::write(root.join(".gitignore"), "/.lake\n")?;
    fs::write(root.join("lakefile.lean"), ROOT_LAKEFILE)?;
    fs::write(root.join("lean-toolchain"), format!("{TOOLCHAIN}\n"))?;
    fs::write(root.join("lake-manifest.json"), manifest_text(&packages))?;
    fs::write(root.join("Mathlib.lean"), "-- the library root\n")?;
    commit(root, "initial import", root_index, 0)?;
    fs::write(
        root.join("Mathlib.lean"),
        "-- the library root\nimport Mathlib.Logic\n",
    )?;
    fs::create_dir_all(root.join("Mathlib"))?;
    fs::write(
        root.join("Mathlib").join("Logic.lean"),
        "theorem t : True := trivial\n",
    )?;
    commit(root, "add Mathlib.Logic", root_index, 1)?;
    let root_rev = head(root)?;
    Ok(WorkspaceFixture {
        root: root.to_path_buf(),
        root_name: "mathlib".to_string(),
        root_rev,
        packages,
    })
}

/// One package's generated cache: its mapping file and what was written.
#[derive(Debug, Clone)]
pub struct PackageCache {
    /// The package name (root or dependency).
    pub name: String,
    /// What the generator wrote (mapping file path, artifacts).
    pub fixture: Fixture,
}

impl WorkspaceFixture {
    /// Generates a Lake-shaped cache for the root and every dependency: `modules` small
    /// `.ltar` modules each (a different seed per package), artifacts in the shared
    /// `<cache_root>/artifacts/`, each mapping file at `<mappings_dir>/<name>.jsonl`.
    pub fn package_caches(
        &self,
        cache_root: &Path,
        mappings_dir: &Path,
        modules: usize,
    ) -> io::Result<Vec<PackageCache>> {
        fs::create_dir_all(mappings_dir)?;
        let names = std::iter::once(self.root_name.as_str())
            .chain(self.packages.iter().map(|p| p.name.as_str()));
        let mut out = Vec::new();
        for (i, name) in names.enumerate() {
            let spec = FixtureSpec::small(modules).with_seed(1000 + i as u64);
            let fixture = generate_to(
                &spec,
                cache_root,
                &mappings_dir.join(format!("{name}.jsonl")),
            )?;
            out.push(PackageCache {
                name: name.to_string(),
                fixture,
            });
        }
        Ok(out)
    }
}

/// `lake-manifest.json` as Lake writes it (version 1.1.0): Lean's `Json.pretty` of the
/// manifest object plus a final newline.
pub fn manifest_text(packages: &[FixturePackage]) -> String {
    let entries: Vec<serde_json::Value> = packages
        .iter()
        .map(|p| {
            serde_json::json!({
                "url": p.url,
                "type": "git",
                "subDir": null,
                "scope": p.scope,
                "rev": p.rev,
                "name": p.name,
                "manifestFile": "lake-manifest.json",
                "inputRev": p.input_rev,
                "inherited": false,
                "configFile": p.language.file_name(),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "version": "1.1.0",
        "packagesDir": ".lake/packages",
        "packages": entries,
        "name": "mathlib",
        "lakeDir": ".lake",
    });
    format!("{}\n", tarn_core::lean_json::pretty(&manifest))
}

/// Runs `git` in `dir` with a fixed identity and clock (`who` and `step` pick the date), and
/// no user or system configuration.
fn git_command(dir: &Path, who: usize, step: usize) -> Command {
    let date = format!("{} +0000", 1_700_000_000 + who * 86_400 + step * 3_600);
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env(
            "GIT_CONFIG_GLOBAL",
            if cfg!(windows) { "NUL" } else { "/dev/null" },
        )
        .env("GIT_AUTHOR_NAME", "Fixture Author")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.invalid")
        .env("GIT_COMMITTER_NAME", "Fixture Author")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.invalid")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date);
    cmd
}

fn run(mut cmd: Command, dir: &Path, what: &str) -> io::Result<String> {
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running git in {}: {e}", dir.display())))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{}: git {what} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git(dir: &Path, args: &[&str], who: usize) -> io::Result<String> {
    let mut cmd = git_command(dir, who, 0);
    cmd.args(args);
    run(cmd, dir, &args.join(" "))
}

fn commit(dir: &Path, message: &str, who: usize, step: usize) -> io::Result<()> {
    let mut add = git_command(dir, who, step);
    add.args(["add", "-A"]);
    run(add, dir, "add")?;
    let mut c = git_command(dir, who, step);
    c.args(["commit", "-q", "--no-gpg-sign", "-m", message]);
    run(c, dir, "commit")?;
    Ok(())
}

fn head(dir: &Path) -> io::Result<String> {
    git(dir, &["rev-parse", "HEAD"], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_has_lakes_layout() {
        let p = FixturePackage {
            name: "batteries".into(),
            scope: "leanprover-community".into(),
            url: "https://github.com/leanprover-community/batteries".into(),
            input_rev: "main".into(),
            rev: "0123456789abcdef0123456789abcdef01234567".into(),
            dir: PathBuf::from("/x"),
            language: ConfigLanguage::Toml,
            platform_independent: false,
        };
        let mut q = p.clone();
        q.name = "checkdecls".into();
        q.scope = String::new();
        q.language = ConfigLanguage::Lean;
        assert_eq!(
            manifest_text(&[p, q]),
            r#"{"version": "1.1.0",
 "packagesDir": ".lake/packages",
 "packages":
 [{"url": "https://github.com/leanprover-community/batteries",
   "type": "git",
   "subDir": null,
   "scope": "leanprover-community",
   "rev": "0123456789abcdef0123456789abcdef01234567",
   "name": "batteries",
   "manifestFile": "lake-manifest.json",
   "inputRev": "main",
   "inherited": false,
   "configFile": "lakefile.toml"},
  {"url": "https://github.com/leanprover-community/batteries",
   "type": "git",
   "subDir": null,
   "scope": "",
   "rev": "0123456789abcdef0123456789abcdef01234567",
   "name": "checkdecls",
   "manifestFile": "lake-manifest.json",
   "inputRev": "main",
   "inherited": false,
   "configFile": "lakefile.lean"}],
 "name": "mathlib",
 "lakeDir": ".lake"}
"#
        );
    }
}
