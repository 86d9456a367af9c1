//! The `tarn` binary's integration tests: one test binary (one link) with a module per
//! feature. Helpers come from the `tarn-test` kit. Every `.rs` file in this directory must be
//! a module here (`autotests = false` in Cargo.toml); a test checks that none is forgotten.
//!
//! They drive the binary with Unix tools (`sh`, `mkfifo`, symbolic links, `/dev/zero`, Lake's
//! `curl` lines), so they build and run on Linux and macOS only; on Windows the unit tests of
//! every crate run (docs/platforms.md).
#![cfg(unix)]

mod cache_prune;
mod cli_usage;
mod conventions;
mod crash_campaign;
mod first_contact;
mod hostile_checkout;
mod hostile_client;
mod hostile_config;
mod hostile_framing;
mod hostile_replies;
mod hostile_server;
mod hostile_staging;
mod lake_conformance;
mod lake_workspace;
mod local_commands;
mod local_staging;
mod remote_curl;
mod remote_faults;
mod remote_s3;
mod restore;
mod serve_awscli;
mod serve_crash;
mod serve_gc;
mod serve_keys;
mod serve_lake_curl;
mod serve_rclone;
mod serve_roundtrip;
mod serve_tls_gc;
mod stale_temp;
mod trust;

/// The tarn binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_tarn");

#[test]
fn every_test_file_is_a_module_of_this_binary() {
    tarn_test::assert_every_test_file_is_a_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
    );
}

#[test]
fn the_test_kit_runs_the_binary_under_test() {
    assert_eq!(tarn_test::tarn_bin(), std::path::Path::new(BIN));
}
