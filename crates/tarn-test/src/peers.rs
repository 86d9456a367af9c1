//! The real external peers some tests talk to (the s3s-fs server, awscli, rclone), and the
//! rule for when they are missing: a plain `cargo test` skips those tests with a note on
//! stderr; under CI (`CI=true`) or `scripts/test.sh` (`TARN_TEST_S3=1`) a missing peer fails
//! the test loudly, so nothing is skipped where everything is supposed to run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// True where every test must run: under CI (`CI=true` or `CI=1`) or `scripts/test.sh`
/// (`TARN_TEST_S3=1`).
pub fn everything_must_run() -> bool {
    let ci = std::env::var("CI").unwrap_or_default();
    ci.eq_ignore_ascii_case("true")
        || ci == "1"
        || std::env::var("TARN_TEST_S3").ok().as_deref() == Some("1")
}

/// Reports a missing peer: panics where everything must run, otherwise prints a note that
/// the calling test is skipped.
fn missing(peer: &str, fix: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if everything_must_run() {
        panic!("{test} needs {peer}, which is missing here (CI or scripts/test.sh): {fix}");
    }
    eprintln!("SKIPPED {test}: needs {peer} ({fix}); scripts/test.sh runs it");
}

/// Whether the program `name` is on `PATH`. When it is not: `false` (the caller returns,
/// a note is printed) where skipping is allowed, a panic naming `install` under CI or
/// `scripts/test.sh`.
pub fn require_program(name: &str, install: &str) -> bool {
    if on_path(name) {
        return true;
    }
    missing(&format!("`{name}`"), install);
    false
}

fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name)))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Windows has no execute bit: a program is a file named `<name>.exe` (or the name itself).
#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file() || p.with_extension("exe").is_file()
}

/// The s3s-fs server started by `scripts/test.sh`.
#[derive(Debug, Clone)]
pub struct S3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret.
    pub secret_key: String,
    /// Region the server expects.
    pub region: String,
    /// `$S3_STATE_DIR/data` (s3s-fs stores objects as plain files there), if known.
    pub data_dir: Option<PathBuf>,
}

impl S3 {
    /// The server `scripts/test.sh` started, read from its environment; `None` (the caller
    /// returns, a note is printed) when there is none and skipping is allowed. Under CI or
    /// `scripts/test.sh` a missing server fails the test instead.
    pub fn from_env() -> Option<S3> {
        if std::env::var("TARN_TEST_S3").ok().as_deref() != Some("1") {
            missing(
                "the real S3 server (s3s-fs)",
                "run scripts/test.sh, or start scripts/s3-test-server.sh, source its env file \
                 and export TARN_TEST_S3=1",
            );
            return None;
        }
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        Some(S3 {
            endpoint: var("S3_ENDPOINT"),
            bucket: var("S3_BUCKET"),
            access_key: var("S3_ACCESS_KEY"),
            secret_key: var("S3_SECRET_KEY"),
            region: var("S3_REGION"),
            data_dir: std::env::var("S3_STATE_DIR")
                .ok()
                .map(|d| PathBuf::from(d).join("data")),
        })
    }

    /// `id:secret`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.access_key, self.secret_key)
    }

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("S3_ENDPOINT is http://IP:PORT")
    }
}
