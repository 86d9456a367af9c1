//! # tarn-test
//!
//! The test kit shared by every crate's integration tests: the real `tarn` binary run with a
//! clean environment, `tarn serve` started on a free port, a raw-socket client to attack a
//! listening server from any loopback address, a fault-injecting HTTP server,
//! Lake's own `curl` command lines, deterministic artifacts and mapping files, real `.ltar`
//! archives and leantar, Lake's up-to-date rule as a restore oracle, a child's peak memory
//! from the kernel ([`run_measured`]), a second reader of a cache that shares no code with
//! tarn ([`cache_problems`]), and the real
//! external peers (the s3s-fs server, awscli, rclone) with one rule for when they are
//! missing (see [`peers`]).
//!
//! ```no_run
//! use tarn_test::{artifacts, run, tarn_bin, tarn_cmd, write_staging};
//! let tmp = tempfile::tempdir().unwrap();
//! let arts = artifacts(3, 7);
//! write_staging(&tmp.path().join("staging"), &arts, 7);
//! let (code, _out, err) = run(tarn_cmd(&tarn_bin(), tmp.path()).arg("--help"));
//! assert_eq!(code, 0, "{err}");
//! ```
//!
//! Nothing here is a mock of tarn: every helper drives a real process, socket or file.

mod cmd;
mod conventions;
mod fault_server;
mod fixtures;
mod forge;
pub mod framing;
mod hostile_http;
mod lake_curl;
mod lake_rule;
mod ltar;
#[cfg(unix)]
mod measure;
mod oracle;
pub mod peers;
mod raw_client;
mod serve;
mod suite;

#[cfg(unix)]
pub use cmd::tarn_measured_cmd;
pub use cmd::{
    git, git_package, make_writable, mkfifo, run, stderr, stdout, tarn_bin, tarn_cmd,
    tarn_in_workspace, unique, write_s3_config, Sandbox,
};
pub use conventions::json_keys_not_snake_case;
pub use fault_server::{
    no_faults, percent_decode, service_over_dir, Backend, Fault, Plan, Request, Server,
};
pub use fixtures::{
    artifacts, bulk_request_body, bytes_for, check_cache, hash_hex, make_artifacts, mapping_for,
    mappings, write_remote_artifacts, write_staging, Art,
};
/// Forged MurmurHash64A collisions (docs/trust.md).
pub use forge::{forge_collision, forge_collision_sized};
/// A scriptable hostile HTTP server or bucket on raw sockets.
pub use hostile_http::{
    endless, endless_listing_page, hostile_server, one_artifact_bucket, one_key_listing, read_head,
    reply_head, respond, respond_ok, Headers, Script, EMPTY_LISTING,
};
pub use lake_curl::{curl, curl_bin, http_get_text, lake_parallel_put, lake_put};
pub use lake_rule::{assert_lake_rule, lake_rule_problems, Dirs};
pub use ltar::{leantar, ltar_data, module_bytes, pack_module, synth_archive, ModuleBytes};
#[cfg(unix)]
pub use measure::{live_peak_rss_kb, reset_peak_rss, run_measured, MeasuredCommand};
/// The cache judged by a second reader that shares no code with tarn.
pub use oracle::{cache_problems, name_matches_content};
pub use peers::{require_program, S3};
/// A raw-socket client for attacking a listening server.
pub use raw_client::{connect_from, get_from, hostile_client_config, raw_healthz, raw_request};
pub use serve::{metric_sample, stored_files, wait_until, TarnServer};
pub use suite::assert_every_test_file_is_a_module;
/// Lake-shaped caches and mapping files (the `tarn-fixture` crate).
pub use tarn_fixture as fixture;
/// The tests' one pseudo-random generator (SplitMix64, from `tarn-fixture`).
pub use tarn_fixture::SplitMix64 as Rng;
