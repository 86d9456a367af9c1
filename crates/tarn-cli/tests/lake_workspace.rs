//! Workspace-wide transfers on the Mathlib-shaped fixture (`tarn_fixture::workspace`), against
//! a logging HTTP server on 127.0.0.1: every URL tarn requests for `get`, `get --package`,
//! `get --deps`, `put --repo` and `put-staged --repo` must be the URL Lake's rules give
//! (`Lake/CLI/Main.lean`: `cachePlatform`, `cacheToolchain`, `<scope>/<name>` on Reservoir,
//! each package's own git revision). The expected URLs are written out here by hand from those
//! rules, not computed with tarn's own code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tarn_fixture::workspace::{mathlib_workspace, FixturePackage, WorkspaceFixture, TOOLCHAIN};
use tarn_test::*;

use crate::BIN;

/// The platform tarn assumes when no `lean` can be run (none is on the test's `PATH`): what
/// Lean's release builds report on this kind of machine (docs/remote.md).
fn host() -> String {
    let arch = std::env::consts::ARCH;
    match (std::env::consts::OS, arch) {
        ("linux", _) => format!("{arch}-unknown-linux-gnu"),
        ("macos", "aarch64") => "arm64-apple-darwin24.6.0".to_string(),
        ("macos", _) => format!("{arch}-apple-darwin"),
        ("windows", _) => format!("{arch}-w64-windows-gnu"),
        (os, _) => format!("{arch}-unknown-{os}"),
    }
}

/// The toolchain as a Reservoir query value (`leanprover%2Flean4%3Av4.29.0`).
fn toolchain_query() -> String {
    TOOLCHAIN.replace('/', "%2F").replace(':', "%3A")
}

/// The toolchain as an S3 path part (Lake's `toolchain2Dir`: `/` → `--`, `:` → `---`).
fn toolchain_dir() -> String {
    TOOLCHAIN.replace('/', "--").replace(':', "---")
}

/// `owner/repo` of a git URL (its last two path components).
fn owner_repo(url: &str) -> String {
    let url = url.trim_end_matches(".git");
    let mut parts = url.rsplit('/');
    let repo = parts.next().unwrap();
    let owner = parts.next().unwrap();
    format!("{owner}/{repo}")
}

struct Ws {
    tmp: tempfile::TempDir,
    fx: WorkspaceFixture,
    server: Server,
}

impl Ws {
    fn new() -> Ws {
        let tmp = tempfile::tempdir().unwrap();
        let fx = mathlib_workspace(&tmp.path().join("mathlib")).unwrap();
        let server = service_over_dir(tmp.path(), "ok", no_faults());
        Ws { tmp, fx, server }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    fn dep(&self, name: &str) -> &FixturePackage {
        self.fx.packages.iter().find(|p| p.name == name).unwrap()
    }

    fn tarn(&self, args: &[&str]) -> (i32, String, String) {
        tarn_in_workspace(
            self.tmp.path(),
            &self.fx.root,
            &self.cache(),
            &self.server.url(),
            args,
        )
    }

    fn take_log(&self) -> Vec<String> {
        self.server.take_log()
    }

    /// Publishes outputs for `rev` on the emulated Reservoir API under `<collection>/<scope>`.
    fn publish_reservoir(&self, scope: &str, rev: &str, arts: &[Art], seed: u64) {
        let api = self.path(&format!("remote/api/v1/packages/{scope}"));
        write_remote_artifacts(&api, "artifacts", arts);
        std::fs::create_dir_all(api.join("build-outputs")).unwrap();
        std::fs::write(
            api.join(format!("build-outputs/{rev}.jsonl")),
            mappings(arts, seed),
        )
        .unwrap();
    }

    /// Publishes outputs on the S3 layout: artifacts under `a0/<scope>`, the revision file at
    /// `r0/<revision_path>`.
    fn publish_s3(&self, scope: &str, revision_path: &str, arts: &[Art], seed: u64) {
        let remote = self.path("remote");
        write_remote_artifacts(&remote, &format!("a0/{scope}"), arts);
        let file = remote.join(format!("r0/{revision_path}"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, mappings(arts, seed)).unwrap();
    }
}

/// Lake's revision URL on Reservoir for dependency `p` at `rev`.
fn reservoir_revision_get(p: &FixturePackage, rev: &str) -> String {
    let platform = if p.platform_independent {
        String::new()
    } else {
        format!("&platform={}", host())
    };
    format!(
        "GET /api/v1/packages/{}/{}/build-outputs?rev={rev}{platform}&toolchain={}",
        p.scope,
        p.name,
        toolchain_query()
    )
}

#[test]
fn reservoir_get_goes_over_every_reservoir_dependency_with_its_own_options() {
    let w = Ws::new();
    let reservoir: Vec<&FixturePackage> =
        w.fx.packages
            .iter()
            .filter(|p| !p.scope.is_empty())
            .collect();
    assert_eq!(reservoir.len(), 7);
    // Outputs for all but `Qq`, which fails; the others must land regardless.
    for (i, p) in reservoir.iter().enumerate() {
        if p.name != "Qq" {
            let arts = artifacts(2, 200 + i as u64);
            w.publish_reservoir(
                &format!("{}/{}", p.scope, p.name),
                &p.rev,
                &arts,
                200 + i as u64,
            );
        }
    }
    std::fs::write(w.path("config.toml"), "").unwrap();
    let (code, _, err) = w.tarn(&["get"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("checkdecls: skipping non-Reservoir dependency"),
        "{err}"
    );
    assert!(
        err.contains("failed to download artifacts for some dependencies"),
        "{err}"
    );
    assert!(err.contains("Qq"), "names the failed package: {err}");
    let log = w.take_log();
    let got: BTreeSet<&str> = log.iter().map(String::as_str).collect();
    let mut want = BTreeSet::new();
    for p in &reservoir {
        want.insert(reservoir_revision_get(p, &p.rev));
        if p.name == "Qq" {
            // The revision search goes on down Qq's own history (3 commits), all 404.
            let revs = git(&p.dir, &["rev-list", "HEAD"]);
            for r in revs.lines() {
                want.insert(reservoir_revision_get(p, r));
            }
        } else {
            want.insert(format!(
                "POST /api/v1/packages/{}/{}/artifacts",
                p.scope, p.name
            ));
        }
    }
    let revision_and_bulk: BTreeSet<String> = got
        .iter()
        .filter(|l| !l.ends_with(".art"))
        .map(|l| l.to_string())
        .collect();
    assert_eq!(revision_and_bulk, want);
    assert_eq!(
        log.iter().filter(|l| l.ends_with(".art")).count(),
        12,
        "two artifacts for each of six packages"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("mathlib") || l.contains("checkdecls")),
        "the root and the git-only dependency are never asked for: {log:?}"
    );
    for p in &reservoir {
        let fetched = w
            .cache()
            .join(format!("revisions/{}/{}.jsonl", p.name, p.rev))
            .is_file();
        assert_eq!(fetched, p.name != "Qq", "{}", p.name);
    }
    // Lake refuses --rev here; with a custom endpoint, a scope is needed.
    let (code, _, err) = w.tarn(&["get", "--rev", "HEAD"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "the `--rev` option is not supported for a multi-package Reservoir `cache get`"
        ),
        "{err}"
    );
    write_s3_config(
        &w.path("config.toml"),
        "ok",
        &format!("{}/a0", w.server.url()),
        &format!("{}/r0", w.server.url()),
    );
    let (code, _, err) = w.tarn(&["get", "--service", "ok"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the `--scope` or `--repo` option must be set"),
        "{err}"
    );
    assert!(w.take_log().is_empty());
}

#[test]
fn package_selects_one_dependency_its_scope_revision_and_repository() {
    let w = Ws::new();
    std::fs::write(w.path("config.toml"), "").unwrap();
    let aesop = w.dep("aesop").clone();
    assert!(
        aesop.platform_independent,
        "fixture: aesop is platform-independent"
    );
    let arts = artifacts(2, 300);
    w.publish_reservoir("leanprover-community/aesop", &aesop.rev, &arts, 300);
    let (code, _, err) = w.tarn(&["get", "--package", "aesop"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("skipping"), "{err}");
    let log = w.take_log();
    assert_eq!(log[0], reservoir_revision_get(&aesop, &aesop.rev));
    assert_eq!(
        log[1],
        "POST /api/v1/packages/leanprover-community/aesop/artifacts"
    );
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(check_cache(&w.cache(), &arts).is_empty());
    assert!(w.cache().join("outputs/aesop").is_dir());
    assert!(!w.cache().join("outputs/mathlib").exists());

    // --rev resolves in aesop's checkout, and only that revision is looked up.
    let older = git(&aesop.dir, &["rev-parse", "HEAD~1"]);
    let (code, _, err) = w.tarn(&["get", "--package", "aesop", "--rev", "HEAD~1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("outputs not found for revision {older}")),
        "{err}"
    );
    assert_eq!(w.take_log(), vec![reservoir_revision_get(&aesop, &older)]);

    for (args, expect) in [
        (
            vec!["get", "--package", "checkdecls"],
            "checkdecls: not a Reservoir dependency",
        ),
        (vec!["get", "--package", "bogus"], "unknown package `bogus`"),
    ] {
        let (code, _, err) = w.tarn(&args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    assert!(w.take_log().is_empty());
}

#[test]
fn package_with_a_custom_scope_or_a_mappings_file_uses_that_package() {
    let w = Ws::new();
    let batteries = w.dep("batteries").clone();
    let arts = artifacts(3, 400);
    w.publish_s3("dep", &format!("dep/{}.jsonl", batteries.rev), &arts, 400);
    let (code, _, err) = w.tarn(&[
        "get",
        "--package",
        "batteries",
        "--scope",
        "dep",
        "--service",
        "ok",
        "--rev",
        "HEAD",
    ]);
    assert_eq!(code, 0, "{err}");
    let log = w.take_log();
    assert_eq!(log[0], format!("GET /r0/dep/{}.jsonl", batteries.rev));
    assert!(w
        .cache()
        .join(format!("revisions/batteries/{}.jsonl", batteries.rev))
        .is_file());

    // A mappings file with --package loads into that package's outputs/.
    std::fs::remove_dir_all(w.cache()).unwrap();
    let file = w.path("dep-outputs.jsonl");
    std::fs::write(&file, mappings(&arts, 400)).unwrap();
    let (code, _, err) = w.tarn(&[
        "get",
        file.to_str().unwrap(),
        "--package",
        "batteries",
        "--scope",
        "dep",
        "--service",
        "ok",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_dir(w.cache().join("outputs/batteries"))
            .unwrap()
            .count(),
        3
    );
    assert!(!w.cache().join("outputs/mathlib").exists());
    assert!(check_cache(&w.cache(), &arts).is_empty());

    // `add --package` attaches mappings to the selected package; an unknown one is refused.
    let (code, _, err) = w.tarn_local(&["add", file.to_str().unwrap(), "--package", "Qq"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_dir(w.cache().join("outputs/Qq"))
            .unwrap()
            .count(),
        3
    );
    let (code, _, err) = w.tarn_local(&["add", file.to_str().unwrap(), "--package", "bogus"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown package `bogus`"), "{err}");
}

impl Ws {
    /// `tarn ARGS` for a local command (no transfer flags).
    fn tarn_local(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = tarn_cmd(Path::new(BIN), self.tmp.path());
        c.current_dir(&self.fx.root)
            .env("LAKE_CACHE_DIR", self.cache())
            .args(args);
        run(&mut c)
    }
}

#[test]
fn put_and_put_staged_urls_follow_each_packages_options() {
    let w = Ws::new();
    let arts = artifacts(2, 500);
    let dir = w.cache().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for a in &arts {
        std::fs::write(dir.join(&a.file_name), &a.content).unwrap();
    }
    let out = w.path("outputs.jsonl");
    std::fs::write(&out, mappings(&arts, 500)).unwrap();
    let out = out.to_str().unwrap();
    let last_put = |w: &Ws| -> String {
        let log = w.take_log();
        log.into_iter().rfind(|l| l.starts_with("PUT ")).unwrap()
    };
    // The root: platformIndependent and fixedToolchain, so neither pt/ nor tc/.
    let (code, _, err) = w.tarn(&[
        "put",
        out,
        "--service",
        "ok",
        "--repo",
        "leanprover-community/mathlib4",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        last_put(&w),
        format!(
            "PUT /r0/leanprover-community/mathlib4/{}.jsonl",
            w.fx.root_rev
        )
    );
    // A dependency: its own HEAD, host platform, the workspace's toolchain.
    let qq = w.dep("Qq").clone();
    assert!(!qq.platform_independent);
    let (code, _, err) = w.tarn(&[
        "put",
        out,
        "--service",
        "ok",
        "--repo",
        "leanprover-community/quote4",
        "--package",
        "Qq",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        last_put(&w),
        format!(
            "PUT /r0/leanprover-community/quote4/pt/{}/tc/{}/{}.jsonl",
            host(),
            toolchain_dir(),
            qq.rev
        )
    );
    // Explicit --platform/--toolchain still give way to the root's options.
    let (code, _, err) = w.tarn(&[
        "put",
        out,
        "--service",
        "ok",
        "--repo",
        "leanprover-community/mathlib4",
        "--platform",
        "foo",
        "--toolchain",
        "bar",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        last_put(&w),
        format!(
            "PUT /r0/leanprover-community/mathlib4/{}.jsonl",
            w.fx.root_rev
        )
    );
    // put-staged: only what the flags say; --rev resolves in the package (-d).
    let staging = w.path("staging");
    write_staging(&staging, &arts, 500);
    let (code, _, err) = w.tarn(&[
        "put-staged",
        staging.to_str().unwrap(),
        "--service",
        "ok",
        "--repo",
        "leanprover-community/mathlib4",
        "--rev",
        "HEAD",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        last_put(&w),
        format!(
            "PUT /r0/leanprover-community/mathlib4/{}.jsonl",
            w.fx.root_rev
        )
    );
}

#[test]
fn get_deps_fetches_every_dependency_from_its_repository_scope() {
    let w = Ws::new();
    assert_eq!(w.fx.packages.len(), 8);
    let mut want = BTreeSet::new();
    for (i, p) in w.fx.packages.iter().enumerate() {
        let seed = 600 + i as u64;
        let arts = artifacts(2, seed);
        let scope = owner_repo(&p.url);
        let pt = if p.platform_independent {
            String::new()
        } else {
            format!("pt/{}/", host())
        };
        let revision = format!("{scope}/{pt}tc/{}/{}.jsonl", toolchain_dir(), p.rev);
        w.publish_s3(&scope, &revision, &arts, seed);
        want.insert(format!("GET /r0/{revision}"));
        for a in &arts {
            want.insert(format!("GET /a0/{scope}/{}.art", a.hash));
        }
    }
    let (code, _, err) = w.tarn(&["get", "--deps", "--service", "ok"]);
    assert_eq!(code, 0, "{err}");
    let got: BTreeSet<String> = w.take_log().into_iter().collect();
    assert_eq!(
        got, want,
        "every dependency, the git-only one included, nothing else"
    );
    for p in &w.fx.packages {
        assert!(
            w.cache()
                .join(format!("revisions/{}/{}.jsonl", p.name, p.rev))
                .is_file(),
            "{}: Lake's revisions/<pkg>/ layout",
            p.name
        );
        assert_eq!(
            std::fs::read_dir(w.cache().join(format!("outputs/{}", p.name)))
                .unwrap()
                .count(),
            2,
            "{}: Lake's outputs/<pkg>/ layout",
            p.name
        );
    }
    // An explicit scope overrides the one derived from the URL; Reservoir is refused.
    let (code, _, err) = w.tarn(&[
        "get",
        "--deps",
        "--service",
        "ok",
        "--dep-scope",
        "checkdecls=mirror/checkdecls",
        "--force-download",
    ]);
    assert_eq!(
        code, 1,
        "nothing is published under mirror/checkdecls: {err}"
    );
    assert!(
        err.contains("failed to download artifacts for some dependencies"),
        "{err}"
    );
    // Nothing was ever published there: running again cannot help, and the hint says so.
    assert!(
        err.contains("hint: nothing is published for these packages at the revisions searched"),
        "{err}"
    );
    assert!(!err.contains("rerun"), "{err}");
    let log = w.take_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /r0/mirror/checkdecls/")),
        "{log:?}"
    );
    std::fs::write(w.path("config.toml"), "").unwrap();
    let (code, _, err) = w.tarn(&["get", "--deps"]);
    assert_eq!(code, 1);
    assert!(err.contains("`--deps` needs an S3 service"), "{err}");
}

#[test]
fn elan_toolchain_and_reservoir_base_url_are_read_as_lake_reads_them() {
    let w = Ws::new();
    std::fs::write(w.path("config.toml"), "").unwrap();
    let qq = w.dep("Qq").clone();
    let get_qq = |elan: Option<&str>| -> String {
        let mut c = tarn_cmd(Path::new(BIN), w.tmp.path());
        c.current_dir(&w.fx.root)
            .env("LAKE_CACHE_DIR", w.cache())
            // One trailing `/` is dropped before `/v1` is appended.
            .env("RESERVOIR_API_BASE_URL", format!("{}/api/", w.server.url()))
            .args(["get", "--package", "Qq", "--rev", "HEAD", "--retries", "0"]);
        if let Some(t) = elan {
            c.env("ELAN_TOOLCHAIN", t);
        }
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 1, "nothing published: {err}");
        let log = w.take_log();
        assert_eq!(log.len(), 1, "{log:?}");
        log[0].clone()
    };
    let base = format!(
        "GET /api/v1/packages/leanprover-community/Qq/build-outputs?rev={}&platform={}",
        qq.rev,
        host()
    );
    // Unset: the workspace's lean-toolchain.
    assert_eq!(
        get_qq(None),
        format!("{base}&toolchain={}", toolchain_query())
    );
    // Set but empty: no toolchain at all (Lake's own cache test relies on this).
    assert_eq!(get_qq(Some("")), base);
    // Set: used as given.
    assert_eq!(
        get_qq(Some("leanprover/lean4:v4.30.0")),
        format!("{base}&toolchain=leanprover%2Flean4%3Av4.30.0")
    );
}

/// `lean --version` of official releases, as users recorded them on each OS.
const RECORDED_LEAN: [(&str, &str); 3] = [
    (
        "Lean (version 4.30.0, x86_64-unknown-linux-gnu, commit d024af099ca4bf2c86f649261ebf59565dc8c622, Release)",
        "x86_64-unknown-linux-gnu",
    ),
    (
        "Lean (version 4.33.1, arm64-apple-darwin24.6.0, commit 819816b2e0a3bf405af45ae5c7af2491d8f5bee6, Release)",
        "arm64-apple-darwin24.6.0",
    ),
    (
        "Lean (version 4.33.1, x86_64-w64-windows-gnu, commit 819816b2e0a3bf405af45ae5c7af2491d8f5bee6, Release)",
        "x86_64-w64-windows-gnu",
    ),
];

/// Writes an executable stand-in `lean` into `dir` that prints `line` for `--version`.
#[cfg(unix)]
fn standin_lean(dir: &Path, line: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let lean = dir.join("lean");
    std::fs::write(&lean, format!("#!/bin/sh\nprintf '%s\\n' '{line}'\n")).unwrap();
    std::fs::set_permissions(&lean, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `PATH` with `dir` first.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

impl Ws {
    /// `tarn ARGS` with extra environment variables.
    fn tarn_env(&self, env: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> (i32, String, String) {
        let mut c = tarn_cmd(Path::new(BIN), self.tmp.path());
        c.current_dir(&self.fx.root)
            .env("LAKE_CACHE_DIR", self.cache())
            .env("LAKE_CACHE_KEY", "mock:key")
            .env("RESERVOIR_API_URL", format!("{}/api/v1", self.server.url()))
            .envs(env.iter().copied())
            .args(args)
            .args(["--timeout", "5", "--retries", "0"]);
        run(&mut c)
    }
}

#[cfg(unix)]
#[test]
fn platform_and_toolchain_are_the_ones_the_workspaces_lean_reports() {
    // Lake puts its own build's `System.Platform.target` and, without ELAN_TOOLCHAIN, its
    // `Lean.toolchain` (`leanprover/lean4:` + the version, no `v`) into revision URLs. A
    // stand-in `lean` prints each OS's recorded `--version`; the expected URLs are spelled out.
    let w = Ws::new();
    let qq = w.dep("Qq").clone();
    let arts = artifacts(2, 700);
    let dir = w.cache().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for a in &arts {
        std::fs::write(dir.join(&a.file_name), &a.content).unwrap();
    }
    let out = w.path("outputs.jsonl");
    std::fs::write(&out, mappings(&arts, 700)).unwrap();
    let staging = w.path("staging");
    write_staging(&staging, &arts, 700);
    let bin = w.path("lean-bin");
    for (line, target) in RECORDED_LEAN {
        standin_lean(&bin, line);
        let version = line
            .split(", ")
            .next()
            .unwrap()
            .trim_start_matches("Lean (version ");
        for elan in [None, Some("leanprover/lean4:v4.33.1")] {
            let path = path_with(&bin);
            let mut env: Vec<(&str, &std::ffi::OsStr)> = vec![("PATH", path.as_os_str())];
            if let Some(t) = elan {
                env.push(("ELAN_TOOLCHAIN", std::ffi::OsStr::new(t)));
            }
            let (tc_query, tc_dir) = match elan {
                None => (
                    format!("leanprover%2Flean4%3A{version}"),
                    format!("leanprover--lean4---{version}"),
                ),
                Some(_) => (
                    "leanprover%2Flean4%3Av4.33.1".to_string(),
                    "leanprover--lean4---v4.33.1".to_string(),
                ),
            };
            let case = format!("{target}, ELAN_TOOLCHAIN={elan:?}");
            let reservoir = format!(
                "GET /api/v1/packages/leanprover-community/Qq/build-outputs?rev={}&platform={target}&toolchain={tc_query}",
                qq.rev
            );
            // get --package (Reservoir).
            let (code, _, err) = w.tarn_env(&env, &["get", "--package", "Qq", "--rev", "HEAD"]);
            assert_eq!(code, 1, "{case}: nothing published: {err}");
            assert!(!err.contains("no `lean`"), "{case}: {err}");
            assert_eq!(w.take_log(), vec![reservoir.clone()], "{case}");
            // get (Reservoir, every dependency): Qq's request among them.
            let (code, _, err) = w.tarn_env(&env, &["get"]);
            assert_eq!(code, 1, "{case}: nothing published: {err}");
            assert!(w.take_log().contains(&reservoir), "{case}");
            // get --repo on S3.
            let (code, _, err) = w.tarn_env(
                &env,
                &[
                    "get",
                    "--package",
                    "Qq",
                    "--service",
                    "ok",
                    "--repo",
                    "leanprover-community/quote4",
                    "--rev",
                    "HEAD",
                ],
            );
            assert_eq!(code, 1, "{case}: nothing published: {err}");
            assert_eq!(
                w.take_log(),
                vec![format!(
                    "GET /r0/leanprover-community/quote4/pt/{target}/tc/{tc_dir}/{}.jsonl",
                    qq.rev
                )],
                "{case}"
            );
            // put --repo.
            let (code, _, err) = w.tarn_env(
                &env,
                &[
                    "put",
                    out.to_str().unwrap(),
                    "--service",
                    "ok",
                    "--repo",
                    "leanprover-community/quote4",
                    "--package",
                    "Qq",
                    "--force",
                ],
            );
            assert_eq!(code, 0, "{case}: {err}");
            let log = w.take_log();
            assert_eq!(
                log.last().unwrap(),
                &format!(
                    "PUT /r0/leanprover-community/quote4/pt/{target}/tc/{tc_dir}/{}.jsonl",
                    qq.rev
                ),
                "{case}"
            );
            // put-staged --repo: Lake detects neither without a workspace.
            let (code, _, err) = w.tarn_env(
                &env,
                &[
                    "put-staged",
                    staging.to_str().unwrap(),
                    "--service",
                    "ok",
                    "--repo",
                    "leanprover-community/quote4",
                    "--rev",
                    "HEAD",
                    "--force",
                ],
            );
            assert_eq!(code, 0, "{case}: {err}");
            let log = w.take_log();
            assert_eq!(
                log.last().unwrap(),
                &format!(
                    "PUT /r0/leanprover-community/quote4/{}.jsonl",
                    w.fx.root_rev
                ),
                "{case}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn under_elan_the_toolchain_is_elans_name_and_the_answer_is_kept_per_toolchain() {
    // `lake` run through elan's proxy sees ELAN_TOOLCHAIN set by elan to its name for the
    // package's lean-toolchain (`leanprover/lean4:v4.29.0`, with the `v`).
    let w = Ws::new();
    let qq = w.dep("Qq").clone();
    let elan_home = w.path("elan");
    let bin = elan_home.join("bin");
    standin_lean(&bin, RECORDED_LEAN[1].0);
    let path = path_with(&bin);
    let get = |env: &[(&str, &std::ffi::OsStr)]| -> String {
        let (code, _, err) = w.tarn_env(env, &["get", "--package", "Qq", "--rev", "HEAD"]);
        assert_eq!(code, 1, "nothing published: {err}");
        let log = w.take_log();
        assert_eq!(log.len(), 1, "{log:?}");
        log[0].clone()
    };
    let xdg = w.path(".cache");
    let env = [
        ("PATH", path.as_os_str()),
        ("ELAN_HOME", elan_home.as_os_str()),
        ("XDG_CACHE_HOME", xdg.as_os_str()),
    ];
    let want = format!(
        "GET /api/v1/packages/leanprover-community/Qq/build-outputs?rev={}&platform=arm64-apple-darwin24.6.0&toolchain={}",
        qq.rev,
        toolchain_query()
    );
    assert_eq!(get(&env), want);
    let kept = w.path(".cache/tarn/lean-version/leanprover--lean4---v4.29.0.txt");
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        format!("{}\n", RECORDED_LEAN[1].0)
    );
    // The kept answer is used: a changed stand-in is not asked again.
    standin_lean(&bin, RECORDED_LEAN[2].0);
    assert_eq!(get(&env), want);
    // An empty ELAN disables elan (Lake's `findElanInstall?`): the Lean on PATH is then asked,
    // and its own `Lean.toolchain` is used.
    let blank = std::ffi::OsString::new();
    let env = [
        ("PATH", path.as_os_str()),
        ("ELAN_HOME", elan_home.as_os_str()),
        ("XDG_CACHE_HOME", xdg.as_os_str()),
        ("ELAN", blank.as_os_str()),
    ];
    assert_eq!(
        get(&env),
        format!(
            "GET /api/v1/packages/leanprover-community/Qq/build-outputs?rev={}&platform=x86_64-w64-windows-gnu&toolchain=leanprover%2Flean4%3A4.33.1",
            qq.rev
        )
    );
}

#[test]
fn without_a_lean_tarn_warns_and_guesses() {
    let w = Ws::new();
    let qq = w.dep("Qq").clone();
    let empty = w.path("no-lean");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = w.tarn_env(
        &[
            ("PATH", path_with(&empty).as_os_str()),
            ("LEAN_SYSROOT", empty.as_os_str()),
        ],
        &["get", "--package", "Qq", "--rev", "HEAD"],
    );
    assert_eq!(code, 1, "nothing published: {err}");
    assert!(
        err.contains("could not run") && err.contains("pass --platform"),
        "{err}"
    );
    assert_eq!(
        w.take_log(),
        vec![format!(
            "GET /api/v1/packages/leanprover-community/Qq/build-outputs?rev={}&platform={}&toolchain={}",
            qq.rev,
            host(),
            toolchain_query()
        )]
    );
}

#[test]
fn reservoir_names_a_renamed_dependency_by_its_own_declared_name() {
    // A dependency required as `Qq` whose lakefile says `package Quote4`: Lake's Reservoir URLs
    // use the package's own name (`reservoirName` = `origName`), the local cache the manifest's.
    let w = Ws::new();
    let qq = w.dep("Qq").clone();
    let lakefile = qq.dir.join("lakefile.lean");
    let text = std::fs::read_to_string(&lakefile).unwrap();
    assert!(text.contains("package Qq where"), "fixture: {text}");
    std::fs::write(
        &lakefile,
        text.replace("package Qq where", "package Quote4 where"),
    )
    .unwrap();
    let (code, _, err) = w.tarn(&[
        "get",
        "--package",
        "Qq",
        "--rev",
        "HEAD",
        "--platform",
        "p",
        "--toolchain",
        "",
    ]);
    assert_eq!(code, 1, "nothing published: {err}");
    assert!(err.contains("calls itself `Quote4`"), "{err}");
    assert_eq!(
        w.take_log(),
        vec![format!(
            "GET /api/v1/packages/leanprover-community/Quote4/build-outputs?rev={}&platform=p",
            qq.rev
        )]
    );
}
