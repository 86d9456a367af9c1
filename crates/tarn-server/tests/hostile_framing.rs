//! Hostile framing on raw sockets against a server listening in process (RELIABILITY.md
//! rows 9c, 9f, 9l): oversized request heads, abusive chunked bodies, `Expect:
//! 100-continue` with a huge length, pipelined requests whose replies are never read, and
//! HTTP/2 (prior knowledge) floods written frame by frame. The attacks are
//! [`tarn_test::framing`]'s; the server process's peak memory under each is asserted
//! against the binary (`crates/tarn-cli/tests/hostile_framing.rs`). What the request
//! handler does with odd requests is `hostile_requests.rs`.

use std::time::{Duration, Instant};

use tarn_test::framing::{self, h2, healthz_status, reply_status};
use tarn_test::stored_files;

use crate::listening::Listening;

/// A server with [`framing::framing_config`] and `extra` on top.
fn serve(extra: &str) -> Listening {
    Listening::start(&format!("{extra}\n{}", framing::framing_config()))
}

fn healthz_ok(addr: &str) {
    assert_eq!(healthz_status(addr), 200, "/healthz");
}

#[test]
fn oversized_request_heads_are_refused_at_once() {
    // Row 9c, the head: the listener refuses before any handler runs.
    let srv = serve("");
    let mut slowest = Duration::ZERO;
    for a in framing::oversized_heads(&srv.addr) {
        assert_eq!(reply_status(&a.reply), 431, "{}: {}", a.what, a.reply);
        assert!(a.took < Duration::from_secs(2), "{}: {:?}", a.what, a.took);
        slowest = slowest.max(a.took);
    }
    eprintln!(
        "hostile-framing heads slowest {:.3}s",
        slowest.as_secs_f64()
    );
    healthz_ok(&srv.addr);
}

#[test]
fn abusive_chunked_bodies_are_refused_and_tiny_chunks_parse_in_bounded_time() {
    // Row 9c, chunked framing.
    let srv = serve("");
    for a in framing::abusive_chunked_bodies(&srv.addr) {
        let code = reply_status(&a.reply);
        assert!(code == 400 || code == 0, "{}: {}", a.what, a.reply);
        assert!(a.took < Duration::from_secs(2), "{}: {:?}", a.what, a.took);
        eprintln!(
            "hostile-framing chunked {}: status {code} in {:.3}s",
            a.what,
            a.took.as_secs_f64()
        );
    }
    // 500,000 one-byte chunks spelling a valid (mostly blank) bulk body.
    let (reply, took) = framing::tiny_chunks(&srv.addr);
    assert_eq!(reply_status(&reply), 200, "500,000 chunks: {reply}");
    assert!(took < Duration::from_secs(20), "500,000 chunks: {took:?}");
    eprintln!(
        "hostile-framing chunked 500000 one-byte chunks: 200 in {:.2}s",
        took.as_secs_f64()
    );
    // `Content-Length` beside `Transfer-Encoding`: the chunked framing is the one read.
    let reply = framing::content_length_with_chunked(&srv.addr);
    assert_eq!(
        reply_status(&reply),
        200,
        "Content-Length with chunked: {reply}"
    );
    healthz_ok(&srv.addr);
}

#[test]
fn expect_continue_with_a_4_gib_body_is_refused_before_any_body_byte() {
    // Row 9c: no `100 Continue` for an upload that will be refused.
    let srv = serve("");
    for a in framing::expect_continue_4_gib(&srv.addr) {
        assert!(
            a.reply.starts_with("HTTP/1.1 403"),
            "{}: {}",
            a.what,
            a.reply
        );
        assert!(a.took < Duration::from_secs(2), "{}: {:?}", a.what, a.took);
    }
    assert!(stored_files(&srv.data()).is_empty());
}

#[test]
fn pipelined_requests_whose_replies_are_never_read_stop_the_server_reading() {
    // Row 9f, first half: 400,000 pipelined GETs (20 MB) on one connection, no reply read.
    let srv = serve("idle_timeout_secs = 3\n");
    let p = framing::unread_pipeline(&srv.addr);
    // The server stopped reading once its replies could not be written (what it took is
    // what the kernel's socket buffers hold of requests and replies): the rest of the
    // pipeline was never taken off the wire.
    assert!(
        p.written < p.total,
        "the server read all {} of {} bytes",
        p.written,
        p.total
    );
    healthz_ok(&srv.addr);
    eprintln!(
        "hostile-framing pipelining: {} of {} bytes taken",
        p.written, p.total
    );
}

#[test]
fn slow_readers_of_pipelined_downloads_are_closed_at_the_idle_timeout() {
    // Row 9f, second half: connections pipelining 40 GETs of a 200 kB artifact and never
    // reading hold their slots only until `idle_timeout_secs`.
    let srv = serve("idle_timeout_secs = 2\nheader_read_timeout_secs = 2\n");
    let start = Instant::now();
    let mut conns = framing::slow_pipelined_readers(&srv.addr, &srv.data());
    std::thread::sleep(Duration::from_secs(5));
    healthz_ok(&srv.addr);
    for s in &mut conns {
        // Closed by the server: reading drains what was sent and ends, well short of the
        // 40 replies (8 MB) asked for.
        let (closed, got) = framing::drain(s);
        assert!(
            closed && got < 40 * framing::SLOW_READER_ARTIFACT_BYTES,
            "still open after {:?}, {got} bytes",
            start.elapsed()
        );
    }
}

#[test]
fn http2_rapid_reset_ends_in_goaway_enhance_your_calm() {
    // Row 9l: 100,000 streams opened and reset at once.
    let srv = serve("");
    let start = Instant::now();
    let (got, written) = framing::h2_rapid_reset(&srv.addr);
    let goaway = got.iter().find(|f| f.kind == h2::GOAWAY).expect("a GOAWAY");
    assert_eq!(goaway.error_code(), h2::ENHANCE_YOUR_CALM);
    let last = u32::from_be_bytes(goaway.payload[0..4].try_into().unwrap()) & 0x7fff_ffff;
    assert!(written < 200_000, "every frame was taken");
    eprintln!(
        "hostile-framing h2 rapid reset: GOAWAY ENHANCE_YOUR_CALM after {} streams (last stream {last}), {:.2}s",
        last.div_ceil(2),
        start.elapsed().as_secs_f64()
    );
    healthz_ok(&srv.addr);
}

#[test]
fn http2_streams_over_the_limit_are_refused() {
    // Row 9l: 1,000 concurrent streams, none ever ended by the client: Reservoir bulk
    // requests whose bodies never come, so every accepted stream stays open (a stream
    // answered at once would be closed by the server and free its place).
    let srv = serve("");
    let (answered, refused) = framing::h2_held_streams(&srv.addr, 1_000 - 256);
    eprintln!("hostile-framing h2 1000 streams: {answered} answered, {refused} refused");
    assert_eq!(
        (answered, refused),
        (0, 1_000 - 256),
        "streams past the 256th"
    );
    healthz_ok(&srv.addr);
}

#[test]
fn http2_continuation_flood_is_cut_off() {
    // Row 9l: a HEADERS frame without END_HEADERS, then endless CONTINUATION frames.
    let srv = serve("");
    let start = Instant::now();
    let (got, written) = framing::h2_continuation_flood(&srv.addr);
    let took = start.elapsed();
    assert!(written < 1_000_000, "all 1,000,000 frames were taken");
    assert!(
        got.iter().all(|f| f.kind != h2::HEADERS),
        "the endless header block was answered"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    eprintln!(
        "hostile-framing h2 CONTINUATION flood: closed after {written} frames written, {:.2}s, {}",
        took.as_secs_f64(),
        got.iter()
            .find(|f| f.kind == h2::GOAWAY)
            .map_or("no GOAWAY".to_string(), |g| format!(
                "GOAWAY code {}",
                g.error_code()
            ))
    );
    healthz_ok(&srv.addr);
}

#[test]
fn http2_settings_and_ping_floods_are_absorbed_within_bounded_memory() {
    // Row 9l: 200,000 SETTINGS frames, then 480,000 PINGs whose acknowledgements are never
    // read; `/healthz` answers on another connection throughout.
    let srv = serve("");
    for (what, frame, count) in framing::h2_control_floods() {
        let start = Instant::now();
        let taken = framing::h2_unread_flood(&srv.addr, &frame, count, || healthz_ok(&srv.addr));
        healthz_ok(&srv.addr);
        eprintln!(
            "hostile-framing h2 {what} flood: {taken} of {count} frames taken in {:.2}s",
            start.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn http2_with_a_100_kb_header_is_refused() {
    // Row 9c, HTTP/2: a header list over `max_request_head_bytes` (64 KiB).
    let srv = serve("");
    let answer =
        framing::h2_big_header(&srv.addr).expect("an answer to the oversized header block");
    // The answer is a `431`, never the `200` of `/healthz`: `:status` (static index 8)
    // with the value "431", plain or Huffman-coded (0x83: three bytes, coded).
    assert_eq!(answer.kind, h2::HEADERS, "frame type {}", answer.kind);
    let value = &answer.payload[1..];
    assert!(
        answer.payload[0] & 0x0f == 8
            && (value.starts_with(b"\x03431") || value.starts_with(&[0x83, 0x69, 0x90, 0xff])),
        "not a 431: {:?}",
        answer.payload
    );
    eprintln!("hostile-framing h2 100 kB header: 431");
    healthz_ok(&srv.addr);
}
