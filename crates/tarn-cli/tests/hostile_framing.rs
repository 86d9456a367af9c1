//! The `tarn serve` process's peak memory under hostile framing on raw sockets
//! (RELIABILITY.md rows 9c, 9f, 9l). The attacks are [`tarn_test::framing`]'s; what the
//! server does under each (statuses, `GOAWAY`s, closed connections, timings) is asserted
//! in process (`crates/tarn-server/tests/hostile_framing.rs`). Only the server's own
//! process can say what it held, so here one binary meets every attack in turn and its
//! resident high-water mark (the kernel's `VmHWM`, reset before each attack) is asserted
//! and printed after each (`hostile-framing rss …`) for RELIABILITY.md.

use std::path::Path;
use std::time::Duration;

use tarn_test::framing;
use tarn_test::*;

/// The server's memory bound under every attack here.
const SERVER_RSS_BOUND_KB: u64 = 100 * 1024;

/// `tarn serve` on `tmp/data` with [`framing::framing_config`], connections idle or
/// without a request head for 2 s closed (so the slow readers' slots come back).
fn serve(tmp: &Path) -> TarnServer {
    let cfg = tmp.join("framing.toml");
    let text = format!(
        "data = \"{}\"\nidle_timeout_secs = 2\nheader_read_timeout_secs = 2\n{}",
        tmp.join("data").display(),
        framing::framing_config()
    );
    std::fs::write(&cfg, text).unwrap();
    TarnServer::start(&["--config", cfg.to_str().unwrap()])
}

/// Asserts the server's peak RSS since the last reset is within the bound, prints it under
/// `name`, and resets the peak for the next attack.
fn rss_within_bound(name: &str, srv: &TarnServer) -> u64 {
    let pid = srv.child.id();
    let kb = live_peak_rss_kb(pid).expect("the server is running");
    eprintln!("hostile-framing rss {name} {kb} kB");
    assert!(kb <= SERVER_RSS_BOUND_KB, "{name}: server peak RSS {kb} kB");
    assert!(reset_peak_rss(pid), "the kernel refused to reset VmHWM");
    kb
}

#[test]
fn hostile_framing_attacks_stay_within_the_server_memory_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(tmp.path());
    let addr = srv.url.trim_start_matches("http://").to_string();
    let addr = addr.as_str();
    // The pipeline first, so its "before" is the idle server.
    let before = rss_within_bound("pipelining-before", &srv);
    let pipeline = framing::unread_pipeline(addr);
    let after = rss_within_bound("pipelining", &srv);
    eprintln!(
        "hostile-framing pipelining: {} of {} bytes taken, RSS {before} -> {after} kB",
        pipeline.written, pipeline.total
    );
    drop(pipeline);

    framing::oversized_heads(addr);
    rss_within_bound("heads", &srv);

    framing::abusive_chunked_bodies(addr);
    framing::tiny_chunks(addr);
    framing::content_length_with_chunked(addr);
    rss_within_bound("chunked", &srv);

    framing::expect_continue_4_gib(addr);
    rss_within_bound("expect-continue", &srv);

    let readers = framing::slow_pipelined_readers(addr, &tmp.path().join("data"));
    std::thread::sleep(Duration::from_secs(5));
    rss_within_bound("slow-readers", &srv);
    drop(readers);

    framing::h2_rapid_reset(addr);
    rss_within_bound("h2-rapid-reset", &srv);

    framing::h2_held_streams(addr, 1_000 - 256);
    rss_within_bound("h2-streams", &srv);

    framing::h2_continuation_flood(addr);
    rss_within_bound("h2-continuation", &srv);

    for (what, frame, count) in framing::h2_control_floods() {
        framing::h2_unread_flood(addr, &frame, count, || {});
        rss_within_bound(&format!("h2-{what}"), &srv);
    }

    framing::h2_big_header(addr);
    rss_within_bound("h2-big-header", &srv);
    // The server is still up after all of it (what it answered is asserted in process).
    assert_eq!(
        framing::healthz_status(addr),
        200,
        "/healthz after the attacks"
    );
}
