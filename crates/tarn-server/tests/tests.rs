//! tarn-server's tests at its own boundary: one test binary (`autotests = false`) with a
//! module per feature, driving [`tarn_server::Handler`] in process — no socket, no child
//! process, so a case costs microseconds and a failure points at the server, not at a
//! client or the network. What needs a real socket but not the binary (per-address
//! connection shares, keep-alive timeouts, slow readers) runs against a server listening in
//! process ([`listening::Listening`], tested in `hostile_sockets.rs`). What needs the real
//! binary (the server process's peak memory under attack, TLS, interop with curl, awscli and
//! rclone, kill -9, the CLI) stays in `crates/tarn-cli/tests/`.
//!
//! # Adding a case
//!
//! Most tests are tables. Start a server with its configuration (a `tarn serve --config`
//! file without `data`, which the harness sets to a temporary directory), then list the
//! cases — a request and what must come of it — and check them in order:
//!
//! ```ignore
//! let srv = Server::start(r#"
//! [[key]]
//! id = "ci"
//! secret = "ci-secret"
//! write = ["main/*"]
//! "#);
//! let art = tarn_test::artifacts(1, 7).remove(0);
//! let url = format!("/a0/main/x/{}.art", art.hash);
//! srv.check(vec![
//!     Case::new("anonymous upload", Req::put(&url, art.content.clone()), 403)
//!         .code("AccessDenied"),
//!     Case::new("signed upload", Req::put(&url, art.content.clone()).signed("ci:ci-secret"), 200)
//!         .stores(&[format!("a0/main/x/{}.art", art.hash)]),
//! ]);
//! ```
//!
//! * [`harness::Req`] builds the request: `get`/`head`/`put`/`post`/`delete`, `.header`,
//!   `.body`, `.signed(key)` (SigV4 as tarn's client signs, from `tarn_core::sigv4`),
//!   `.stalled_after(n)`/`.trickled(..)` (a body that stops or trickles), `.by_peer(ip)` (the
//!   connection's address, for the per-address shares). [`harness::key`] writes a `[[key]]`
//!   table.
//! * [`harness::Case`] says what must come of it: the status, `.code` (the S3 error code),
//!   `.contains`/`.lacks` (reply text), `.stores` (exactly the objects the request adds).
//!   A refusal (status ≥ 400) must store nothing, checked for every case; no case may
//!   remove an object unless it says `.removes()`.
//! * [`harness::Server::check`] runs the table and reports every failing case by name.
//! * Outside tables: [`harness::Server::send`] returns the [`harness::Reply`] (status,
//!   headers, body, `.code()`, `.json()`); `send_streamed` reads a reply that may break off;
//!   `stored`, `object`, `spool_files` and `metric` read what the server holds and counts;
//!   `gc`/`scrub` (or `try_gc`/`try_scrub`, the error as `tarn` prints it) run maintenance
//!   on the same storage. A hostile S3 bucket for the storage backend is
//!   `tarn_test::hostile_server` (see `hostile_bucket.rs`).
//!
//! A new file here must be added as `mod name;` below (a test checks it).

mod harness;

mod auth;
mod batch;
mod gc;
mod hostile_bucket;
mod hostile_paths;
mod hostile_requests;
mod hostile_sockets;
mod listening;
mod listing;
mod reservoir;
mod signed_scopes;
mod slow_bodies;
mod status;
mod uploads;

#[test]
fn every_test_file_is_a_module_of_this_binary() {
    tarn_test::assert_every_test_file_is_a_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
    );
}
