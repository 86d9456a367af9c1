//! Running the `tarn` binary (and `git`) from tests: a clean environment, the exit code and
//! both output streams, and the small configuration files the commands read.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The `tarn` binary under test: nextest's `NEXTEST_BIN_EXE_tarn`, otherwise `tarn` next to
/// the running test binary's `deps/` directory (where Cargo puts it before it runs the
/// integration tests of `tarn-cli`).
pub fn tarn_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NEXTEST_BIN_EXE_tarn") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("test binary directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("tarn{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the tarn binary is not at {} (only tarn-cli's tests can run it)",
        bin.display()
    );
    bin
}
/// A prefix unique to this test run, so tests can share one bucket.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// `tarn ARGS` in `dir` as a Lake workspace's tests run it: home `home`, Lake's cache at
/// `cache`, a dummy upload key, Reservoir's API at `<server>/api/v1`, 5 s timeouts and one
/// retry; returns (exit code, stdout, stderr).
pub fn tarn_in_workspace(
    home: &Path,
    dir: &Path,
    cache: &Path,
    server: &str,
    args: &[&str],
) -> (i32, String, String) {
    let mut c = tarn_cmd(&tarn_bin(), home);
    c.current_dir(dir)
        .env("LAKE_CACHE_DIR", cache)
        .env("LAKE_CACHE_KEY", "mock:key")
        .env("RESERVOIR_API_URL", format!("{server}/api/v1"))
        .args(args)
        .args(["--timeout", "5", "--retries", "1"]);
    run(&mut c)
}

/// Writes a system configuration with one S3 service.
pub fn write_s3_config(path: &Path, name: &str, artifact_endpoint: &str, revision_endpoint: &str) {
    std::fs::write(
        path,
        format!(
            "[[cache.service]]\nname = \"{name}\"\nkind = \"s3\"\nartifactEndpoint = \"{artifact_endpoint}\"\nrevisionEndpoint = \"{revision_endpoint}\"\n"
        ),
    )
    .unwrap();
}

/// A `tarn` command with a clean environment: no Lake or tarn variables from the caller,
/// `HOME` and `LAKE_CONFIG` pointing into `home`.
pub fn tarn_cmd(bin: &Path, home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    for (key, value) in sealed_env_changes(home) {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    c
}

/// [`tarn_cmd`] as a [`MeasuredCommand`](crate::MeasuredCommand), for `run_measured`.
#[cfg(unix)]
pub fn tarn_measured_cmd(bin: &Path, home: &Path) -> crate::MeasuredCommand {
    let mut c = crate::MeasuredCommand::new(bin);
    for (key, value) in sealed_env_changes(home) {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    c
}

/// The environment changes of [`tarn_cmd`], in order: each variable removed (`None`) or set.
fn sealed_env_changes(home: &Path) -> Vec<(OsString, Option<OsString>)> {
    let mut changes: Vec<(OsString, Option<OsString>)> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("LAKE_")
                || k.starts_with("TARN_")
                || k.starts_with("RESERVOIR_")
                || k.starts_with("ELAN")
        })
        .map(|k| (k, None))
        .collect();
    // Git never looks above the test's own directories: under scripts/test.sh they lie
    // inside tarn's checkout, whose HEAD a test of "no git repository" would otherwise find.
    if let Some(parent) = home.parent() {
        changes.push(("GIT_CEILING_DIRECTORIES".into(), Some(parent.into())));
    }
    changes.push(("HOME".into(), Some(home.into())));
    changes.push(("LAKE_CONFIG".into(), Some(home.join("config.toml").into())));
    changes.push(("TARN_RETRY_BASE_MS".into(), Some("10".into())));
    changes.push(("TARN_RETRY_MAX_MS".into(), Some("100".into())));
    changes
}

/// Makes a FIFO (named pipe) at `path` with the system's `mkfifo` command: the special file
/// tests use where opening a file for reading would block. The error names `path`.
pub fn mkfifo(path: &Path) -> std::io::Result<()> {
    let status = std::process::Command::new("mkfifo").arg(path).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "mkfifo {} failed: {status}",
            path.display()
        )))
    }
}

/// Runs a command, returning (exit code, stdout, stderr).
pub fn run(c: &mut std::process::Command) -> (i32, String, String) {
    let out = c.output().expect("spawn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `git` in `dir`, panicking on failure; returns stdout trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A package directory that is a git repository with `commits` commits (newest last in the
/// returned list); `lakefile.toml` names the package `name`.
pub fn git_package(dir: &Path, name: &str, commits: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("lakefile.toml"), format!("name = \"{name}\"\n")).unwrap();
    let mut revs = Vec::new();
    for i in 0..commits {
        std::fs::write(dir.join("file.txt"), format!("{i}\n")).unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", &format!("c{i}")]);
        revs.push(git(dir, &["rev-parse", "HEAD"]));
    }
    revs
}

/// A scratch directory with a sealed `tarn`: commands run in it with an empty environment
/// except `PATH`, `HOME=<dir>/home` and `LAKE_CONFIG=<dir>/config.toml`, so no user
/// configuration or cache can leak in. Removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A fresh, empty sandbox.
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The sandbox directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `p` inside the sandbox.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The sealed `tarn` command, run in the sandbox directory.
    pub fn command(&self) -> std::process::Command {
        let home = self.path("home");
        std::fs::create_dir_all(&home).expect("sandbox home");
        let mut cmd = std::process::Command::new(tarn_bin());
        cmd.current_dir(self.root())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("LAKE_CONFIG", self.path("config.toml"));
        cmd
    }

    /// A generated Lake-shaped cache at `fx/cache` in the sandbox (its mapping file at
    /// `fx/mappings.jsonl`).
    pub fn fixture(&self, spec: tarn_fixture::FixtureSpec) -> tarn_fixture::Fixture {
        tarn_fixture::generate(&spec, &self.path("fx/cache")).expect("generate the fixture")
    }

    /// Runs `tarn args…` sealed.
    pub fn tarn(&self, args: &[&str]) -> std::process::Output {
        self.tarn_env(args, &[])
    }

    /// Runs `tarn args…` sealed, plus the variables `vars`.
    pub fn tarn_env(&self, args: &[&str], vars: &[(&str, &Path)]) -> std::process::Output {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().expect("spawn tarn")
    }
}

/// A finished process's stdout as text (lossy).
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished process's stderr as text (lossy).
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Makes `p` writable again (cached artifacts are read-only; tests that corrupt one need
/// this first).
pub fn make_writable(p: &Path) {
    let mut perms = std::fs::metadata(p).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(p, perms).unwrap();
}
