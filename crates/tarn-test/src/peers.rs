//! The real external peers some tests talk to (the s3s-fs server, awscli, rclone, openssl,
//! Chromium), and the rule for when one is missing: never a silent pass.
//!
//! * A test that needs a peer carries `#[ignore = "needs …; scripts/test.sh runs it"]`, so a
//!   plain `cargo test` or `cargo nextest run` reports it as ignored (not run), never as
//!   passed.
//! * `scripts/test.sh` installs and starts the peers and runs every test, the ignored ones
//!   included (`cargo nextest run --workspace --run-ignored all`).
//! * Run with its peer missing, such a test fails at once, saying how to install the peer
//!   ([`require_program`], [`S3::from_env`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Fails the calling test: it needs `peer`, which is missing; `fix` says how to get it.
fn missing(peer: &str, fix: &str) -> ! {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    panic!(
        "{test} needs {peer}, which is missing here: {fix} (scripts/test.sh installs and \
         starts every peer, then runs every test)"
    );
}

/// Fails the calling test, naming `install`, unless the program `name` is on `PATH`.
pub fn require_program(name: &str, install: &str) {
    if !on_path(name) {
        missing(&format!("`{name}`"), install);
    }
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
    /// The server `scripts/test.sh` started, read from its environment; fails the calling
    /// test, saying how to start one, when there is none.
    pub fn from_env() -> S3 {
        if std::env::var("TARN_TEST_S3").ok().as_deref() != Some("1") {
            missing(
                "the real S3 server (s3s-fs)",
                "start scripts/s3-test-server.sh, source its env file and export TARN_TEST_S3=1",
            );
        }
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        S3 {
            endpoint: var("S3_ENDPOINT"),
            bucket: var("S3_BUCKET"),
            access_key: var("S3_ACCESS_KEY"),
            secret_key: var("S3_SECRET_KEY"),
            region: var("S3_REGION"),
            data_dir: std::env::var("S3_STATE_DIR")
                .ok()
                .map(|d| PathBuf::from(d).join("data")),
        }
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
