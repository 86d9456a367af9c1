//! The `tarn` binary's integration tests: one test binary (one link) with a module per
//! feature. Helpers come from the `tarn-test` kit. Every `.rs` file in this directory must be
//! a module here (`autotests = false` in Cargo.toml); a test checks that none is forgotten.
//!
//! They drive the binary with Unix tools (`sh`, `mkfifo`, symbolic links, `/dev/zero`, Lake's
//! `curl` lines), so they build and run on Linux and macOS only; on Windows the unit tests of
//! every crate run (docs/platforms.md).
#![cfg(unix)]

mod cli_usage;
mod conventions;
mod crash_campaign;
mod first_contact;
mod hostile_client;
mod hostile_config;
mod hostile_server;
mod hostile_staging;
mod lake_conformance;
mod lake_workspace;
mod local_commands;
mod local_staging;
mod remote_curl;
mod remote_faults;
mod remote_s3;
mod serve_awscli;
mod serve_crash;
mod serve_gc;
mod serve_lake_curl;
mod serve_rclone;
mod serve_rejections;
mod serve_roundtrip;
mod serve_status;
mod serve_tls_gc;
mod stale_temp;

/// The tarn binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_tarn");

#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let me = std::fs::read_to_string(dir.join("tests.rs")).unwrap();
    let mut forgotten = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(module) = name.strip_suffix(".rs") {
            if module != "tests" && !me.contains(&format!("\nmod {module};\n")) {
                forgotten.push(name);
            }
        }
    }
    assert!(
        forgotten.is_empty(),
        "never compiled: add `mod <name>;` to tests/tests.rs for {forgotten:?}"
    );
}

#[test]
fn the_test_kit_runs_the_binary_under_test() {
    assert_eq!(tarn_test::tarn_bin(), std::path::Path::new(BIN));
}
