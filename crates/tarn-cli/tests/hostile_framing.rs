//! `tarn serve` against hostile framing on raw sockets (RELIABILITY.md rows 9c, 9f, 9l):
//! oversized request heads, abusive chunked bodies, `Expect: 100-continue` with a huge
//! length, pipelined requests whose replies are never read, and HTTP/2 (prior knowledge)
//! floods written frame by frame. What the request handler does with odd requests is
//! tested in process (`crates/tarn-server/tests/hostile_requests.rs`).
//!
//! Every test asserts the server's resident high-water mark (the kernel's `VmHWM`) and
//! prints its figures (`hostile-framing …`) for RELIABILITY.md.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use tarn_test::*;

/// The server's memory bound under every attack here.
const SERVER_RSS_BOUND_KB: u64 = 100 * 1024;

/// `tarn serve` on `tmp/data`: anyone reads, `ci` writes `main/*`, `extra` added on top.
fn serve(tmp: &Path, extra: &str) -> TarnServer {
    let cfg = tmp.join("framing.toml");
    let text = format!(
        "data = \"{}\"\npublic_read = [\"*\"]\n{extra}\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"main/*\"]\n",
        tmp.join("data").display()
    );
    std::fs::write(&cfg, text).unwrap();
    TarnServer::start(&["--config", cfg.to_str().unwrap()])
}

/// [`serve`] in a new temporary directory; returns it, the server and its `host:port`.
fn started(extra: &str) -> (tempfile::TempDir, TarnServer, String) {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(tmp.path(), extra);
    let addr = srv.url.trim_start_matches("http://").to_string();
    (tmp, srv, addr)
}

/// Asserts the server's peak RSS is within the bound and prints it under `name`.
fn rss_within_bound(name: &str, srv: &TarnServer) -> u64 {
    let kb = live_peak_rss_kb(srv.child.id()).expect("the server is running");
    eprintln!("hostile-framing rss {name} {kb} kB");
    assert!(kb <= SERVER_RSS_BOUND_KB, "{name}: server peak RSS {kb} kB");
    kb
}

/// Writes `request` (a write error is the server closing: fine) and reads until the
/// server closes or 10 s pass; returns the reply's text and the time to its first byte.
fn exchange(addr: &str, request: &[u8]) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let request = request.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&request);
        })
    };
    let mut reply = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| start.elapsed());
        reply.extend_from_slice(&buf[..n]);
        if ends_a_reply(&reply) {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    (
        String::from_utf8_lossy(&reply).into_owned(),
        first.unwrap_or_else(|| start.elapsed()),
    )
}

/// Whether `reply` holds a final (non-1xx) head and its whole `Content-Length` body.
fn ends_a_reply(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    if text.starts_with("HTTP/1.1 1") {
        return false;
    }
    let len = text[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    reply.len() >= head_end + 4 + len
}

/// The status code of a raw reply (`0` when the server closed without one).
fn status(reply: &str) -> u16 {
    reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn healthz_ok(addr: &str) {
    let (reply, _) = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&reply), 200, "/healthz: {reply}");
}

#[test]
fn oversized_request_heads_are_refused_at_once() {
    // Row 9c, the head: the listener refuses before any handler runs.
    let (_tmp, srv, addr) = started("");
    let headers = |n: usize| (0..n).map(|i| format!("x-h{i}: v\r\n")).collect::<String>();
    let params = (0..100_000)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let cases = [
        (
            "a 1 MiB query",
            format!(
                "GET /?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(1 << 20)
            ),
            431,
        ),
        (
            "100,000 query parameters",
            format!("GET /api/status?{params} HTTP/1.1\r\nHost: x\r\n\r\n"),
            431,
        ),
        (
            "one 1 MiB header",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
                "b".repeat(1 << 20)
            ),
            431,
        ),
        (
            "200 headers",
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{}\r\n", headers(200)),
            431,
        ),
        (
            "10,000 headers",
            format!(
                "GET /a0/main/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n{}\r\n",
                headers(10_000)
            ),
            431,
        ),
    ];
    let mut slowest = Duration::ZERO;
    for (what, request, want) in cases {
        let (reply, took) = exchange(&addr, request.as_bytes());
        assert_eq!(status(&reply), want, "{what}: {reply}");
        assert!(took < Duration::from_secs(2), "{what}: {took:?}");
        slowest = slowest.max(took);
    }
    eprintln!(
        "hostile-framing heads slowest {:.3}s",
        slowest.as_secs_f64()
    );
    healthz_ok(&addr);
    rss_within_bound("heads", &srv);
}

/// A Reservoir bulk request (anonymous, so it reads its body) with `Transfer-Encoding:
/// chunked` and the raw `chunked` body.
fn chunked_bulk(extra_headers: &str, chunked: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /api/v1/packages/leanprover/dep/artifacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra_headers}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(chunked);
    r
}

#[test]
fn abusive_chunked_bodies_are_refused_and_tiny_chunks_parse_in_bounded_time() {
    // Row 9c, chunked framing.
    let (_tmp, srv, addr) = started("");
    let mib = 1 << 20;
    let refused: [(&str, Vec<u8>); 4] = [
        (
            "a 1 MiB chunk-size line",
            format!("{}1\r\nx\r\n0\r\n\r\n", "0".repeat(mib)).into_bytes(),
        ),
        (
            "an 18-digit chunk size",
            b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "a 1 MiB chunk extension",
            format!("1;e={}\r\nx\r\n0\r\n\r\n", "a".repeat(mib)).into_bytes(),
        ),
        (
            "a 1 MiB trailer",
            format!("2\r\n[]\r\n0\r\nx-t: {}\r\n\r\n", "t".repeat(mib)).into_bytes(),
        ),
    ];
    for (what, body) in refused {
        let (reply, took) = exchange(&addr, &chunked_bulk("", &body));
        let code = status(&reply);
        assert!(code == 400 || code == 0, "{what}: {reply}");
        assert!(took < Duration::from_secs(2), "{what}: {took:?}");
        eprintln!(
            "hostile-framing chunked {what}: status {code} in {:.3}s",
            took.as_secs_f64()
        );
    }
    // 500,000 one-byte chunks spelling a valid (mostly blank) bulk body.
    let mut text = vec![b' '; 500_000];
    text[0] = b'[';
    text[499_999] = b']';
    let mut body = Vec::with_capacity(3_000_000);
    for b in &text {
        body.extend_from_slice(b"1\r\n");
        body.push(*b);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let start = Instant::now();
    let (reply, _) = exchange(&addr, &chunked_bulk("", &body));
    let took = start.elapsed();
    assert_eq!(status(&reply), 200, "500,000 chunks: {reply}");
    assert!(took < Duration::from_secs(20), "500,000 chunks: {took:?}");
    eprintln!(
        "hostile-framing chunked 500000 one-byte chunks: 200 in {:.2}s",
        took.as_secs_f64()
    );
    // `Content-Length` beside `Transfer-Encoding`: the chunked framing is the one read.
    let (reply, _) = exchange(
        &addr,
        &chunked_bulk("Content-Length: 1\r\n", b"2\r\n[]\r\n0\r\n\r\n"),
    );
    assert_eq!(status(&reply), 200, "Content-Length with chunked: {reply}");
    healthz_ok(&addr);
    rss_within_bound("chunked", &srv);
}

#[test]
fn expect_continue_with_a_4_gib_body_is_refused_before_any_body_byte() {
    // Row 9c: no `100 Continue` for an upload that will be refused.
    let (tmp, srv, addr) = started("");
    let date = tarn_core::sigv4::AmzDate::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let forged = format!(
        "x-amz-date: {}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nAuthorization: AWS4-HMAC-SHA256 Credential=ci/{}/auto/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={}\r\n",
        date.0,
        date.date(),
        "0".repeat(64)
    );
    for (what, auth) in [("unsigned", String::new()), ("a bad signature", forged)] {
        let request = format!(
            "PUT /a0/main/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            4u64 << 30
        );
        let (reply, took) = exchange(&addr, request.as_bytes());
        assert!(reply.starts_with("HTTP/1.1 403"), "{what}: {reply}");
        assert!(took < Duration::from_secs(2), "{what}: {took:?}");
    }
    assert!(stored_files(&tmp.path().join("data")).is_empty());
    rss_within_bound("expect-continue", &srv);
}

#[test]
fn pipelined_requests_whose_replies_are_never_read_stop_the_server_reading() {
    // Row 9f, first half: 400,000 pipelined GETs (20 MB) on one connection, no reply read.
    let (_tmp, srv, addr) = started("idle_timeout_secs = 3\n");
    let before = rss_within_bound("pipelining-before", &srv);
    let one = b"GET /healthz HTTP/1.1\r\nHost: pipelining.example\r\n\r\n";
    let all: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 400_000)
        .collect();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut written = 0;
    while written < all.len() {
        match s.write(&all[written..(written + 64 * 1024).min(all.len())]) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    // The server stopped reading once its replies could not be written (what it took is
    // what the kernel's socket buffers hold of requests and replies): the rest of the
    // pipeline was never taken off the wire.
    assert!(
        written < all.len(),
        "the server read all {written} of {} bytes",
        all.len()
    );
    healthz_ok(&addr);
    let after = rss_within_bound("pipelining", &srv);
    eprintln!(
        "hostile-framing pipelining: {written} of {} bytes taken, RSS {before} -> {after} kB",
        all.len()
    );
    drop(s);
}

#[test]
fn slow_readers_of_pipelined_downloads_are_closed_at_the_idle_timeout() {
    // Row 9f, second half: connections pipelining 40 GETs of a 200 kB artifact and never
    // reading hold their slots only until `idle_timeout_secs`.
    let (tmp, srv, addr) = started("idle_timeout_secs = 2\nheader_read_timeout_secs = 2\n");
    let art = bytes_for(5, 200_000);
    let h = hash_hex(&art);
    let dir = tmp.path().join("data/a0/main/x");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{h}.art")), &art).unwrap();
    let get = format!("GET /a0/main/x/{h}.art HTTP/1.1\r\nHost: x\r\n\r\n");
    let start = Instant::now();
    let mut conns: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(get.repeat(40).as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    healthz_ok(&addr);
    for s in &mut conns {
        // Closed by the server: reading drains what was sent and ends, well short of the
        // 40 replies (8 MB) asked for.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = 0usize;
        let mut buf = [0u8; 64 << 10];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(
            closed && got < 40 * art.len(),
            "still open after {:?}, {got} bytes",
            start.elapsed()
        );
    }
    rss_within_bound("slow-readers", &srv);
}

/// HTTP/2 by hand: the preface, frames, and a reader of the server's frames.
mod h2 {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub(super) const DATA: u8 = 0;
    pub(super) const HEADERS: u8 = 1;
    pub(super) const RST_STREAM: u8 = 3;
    pub(super) const SETTINGS: u8 = 4;
    pub(super) const PING: u8 = 6;
    pub(super) const GOAWAY: u8 = 7;
    pub(super) const CONTINUATION: u8 = 9;
    pub(super) const END_STREAM: u8 = 1;
    pub(super) const END_HEADERS: u8 = 4;
    pub(super) const ENHANCE_YOUR_CALM: u32 = 0xb;
    pub(super) const REFUSED_STREAM: u32 = 0x7;

    /// One frame's bytes.
    pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A literal header field without indexing, with a new name (HPACK, no Huffman).
    pub(super) fn literal(name: &str, value: &str) -> Vec<u8> {
        let mut b = vec![0x00];
        b.extend(string(name));
        b.extend(string(value));
        b
    }

    fn string(s: &str) -> Vec<u8> {
        // HPACK integer with a 7-bit prefix.
        let mut out = Vec::new();
        let mut n = s.len();
        if n < 127 {
            out.push(n as u8);
        } else {
            out.push(127);
            n -= 127;
            while n >= 128 {
                out.push((n % 128) as u8 | 0x80);
                n /= 128;
            }
            out.push(n as u8);
        }
        out.extend_from_slice(s.as_bytes());
        out
    }

    /// `GET path` (`:method GET`, `:scheme http` from the static table).
    pub(super) fn get(path: &str) -> Vec<u8> {
        request(0x82, path)
    }

    /// `POST path` (`:method POST` from the static table).
    pub(super) fn post(path: &str) -> Vec<u8> {
        request(0x83, path)
    }

    fn request(method: u8, path: &str) -> Vec<u8> {
        let mut b = vec![method, 0x86];
        b.extend(literal(":path", path));
        b.extend(literal(":authority", "x"));
        b
    }

    /// A connection with the preface and an empty SETTINGS frame sent.
    pub(super) fn connect(addr: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        s.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
        s
    }

    /// A frame read from the server: type, flags, stream, payload.
    pub(super) struct Frame {
        pub(super) kind: u8,
        pub(super) flags: u8,
        pub(super) stream: u32,
        pub(super) payload: Vec<u8>,
    }

    impl Frame {
        /// The error code of a RST_STREAM or GOAWAY frame.
        pub(super) fn error_code(&self) -> u32 {
            let at = if self.kind == GOAWAY { 4 } else { 0 };
            u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
        }
    }

    /// The next frame, or `None` when the server closed or went quiet for the read timeout.
    pub(super) fn read(s: &mut TcpStream) -> Option<Frame> {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).ok()?;
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload,
        })
    }
}

/// Writes `frames` from another thread (stopping at the first write error, the server
/// closing) while this one reads the server's frames until `stop` says so, the server
/// closes, or it is quiet for 10 s; returns the frames read and how many were written.
fn h2_flood(
    addr: &str,
    frames: impl Iterator<Item = Vec<u8>> + Send + 'static,
    mut stop: impl FnMut(&h2::Frame) -> bool,
) -> (Vec<h2::Frame>, usize) {
    let mut s = h2::connect(addr);
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        for f in frames {
            if w.write_all(&f).is_err() {
                break;
            }
            n += 1;
        }
        n
    });
    let mut got = Vec::new();
    while let Some(f) = h2::read(&mut s) {
        let done = stop(&f);
        // Keep only what the tests look at (DATA and SETTINGS acks add nothing).
        if f.kind != h2::DATA {
            got.push(f);
        }
        if done {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let written = writer.join().unwrap();
    (got, written)
}

#[test]
fn http2_rapid_reset_ends_in_goaway_enhance_your_calm() {
    // Row 9l: 100,000 streams opened and reset at once.
    let (_tmp, srv, addr) = started("");
    let start = Instant::now();
    let frames = (0..100_000u32).flat_map(|i| {
        let id = 2 * i + 1;
        [
            h2::frame(h2::HEADERS, h2::END_HEADERS, id, &h2::get("/healthz")),
            h2::frame(h2::RST_STREAM, 0, id, &8u32.to_be_bytes()),
        ]
    });
    let (got, written) = h2_flood(&addr, frames, |f| f.kind == h2::GOAWAY);
    let goaway = got.iter().find(|f| f.kind == h2::GOAWAY).expect("a GOAWAY");
    assert_eq!(goaway.error_code(), h2::ENHANCE_YOUR_CALM);
    let last = u32::from_be_bytes(goaway.payload[0..4].try_into().unwrap()) & 0x7fff_ffff;
    assert!(written < 200_000, "every frame was taken");
    eprintln!(
        "hostile-framing h2 rapid reset: GOAWAY ENHANCE_YOUR_CALM after {} streams (last stream {last}), {:.2}s",
        last.div_ceil(2),
        start.elapsed().as_secs_f64()
    );
    healthz_ok(&addr);
    rss_within_bound("h2-rapid-reset", &srv);
}

#[test]
fn http2_streams_over_the_limit_are_refused() {
    // Row 9l: 1,000 concurrent streams, none ever ended by the client: Reservoir bulk
    // requests whose bodies never come, so every accepted stream stays open (a stream
    // answered at once would be closed by the server and free its place).
    let (_tmp, srv, addr) = started("");
    let bulk = "/api/v1/packages/leanprover/dep/artifacts";
    let frames = (0..1_000u32)
        .map(move |i| h2::frame(h2::HEADERS, h2::END_HEADERS, 2 * i + 1, &h2::post(bulk)));
    let mut answered = 0;
    let mut refused = 0;
    let (_, _) = h2_flood(&addr, frames, |f| {
        if f.kind == h2::HEADERS {
            answered += 1;
        }
        if f.kind == h2::RST_STREAM && f.error_code() == h2::REFUSED_STREAM {
            refused += 1;
        }
        answered + refused >= 1_000 - 256
    });
    eprintln!("hostile-framing h2 1000 streams: {answered} answered, {refused} refused");
    assert_eq!(
        (answered, refused),
        (0, 1_000 - 256),
        "streams past the 256th"
    );
    healthz_ok(&addr);
    rss_within_bound("h2-streams", &srv);
}

#[test]
fn http2_continuation_flood_is_cut_off() {
    // Row 9l: a HEADERS frame without END_HEADERS, then endless CONTINUATION frames.
    let (_tmp, srv, addr) = started("");
    let start = Instant::now();
    let first = std::iter::once(h2::frame(h2::HEADERS, 0, 1, &h2::get("/healthz")));
    let rest = (0..1_000_000u32).map(|i| {
        h2::frame(
            h2::CONTINUATION,
            0,
            1,
            &h2::literal(&format!("x-c{i}"), &"v".repeat(100)),
        )
    });
    let (got, written) = h2_flood(&addr, first.chain(rest), |f| f.kind == h2::GOAWAY);
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
    healthz_ok(&addr);
    rss_within_bound("h2-continuation", &srv);
}

#[test]
fn http2_settings_and_ping_floods_are_absorbed_within_bounded_memory() {
    // Row 9l: 200,000 SETTINGS frames, then 480,000 PINGs whose acknowledgements are never
    // read; `/healthz` answers on another connection throughout.
    let (_tmp, srv, addr) = started("");
    for (what, frame, count) in [
        (
            "SETTINGS",
            h2::frame(h2::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]),
            200_000usize,
        ),
        ("PING", h2::frame(h2::PING, 0, 0, &[7; 8]), 480_000),
    ] {
        let start = Instant::now();
        let mut s = h2::connect(&addr);
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let all: Vec<u8> = frame
            .iter()
            .copied()
            .cycle()
            .take(frame.len() * count)
            .collect();
        let mut written = 0;
        while written < all.len() {
            match s.write(&all[written..(written + 64 * 1024).min(all.len())]) {
                Ok(n) => written += n,
                Err(_) => break,
            }
            if written % (1 << 20) < 64 * 1024 {
                healthz_ok(&addr);
            }
        }
        healthz_ok(&addr);
        eprintln!(
            "hostile-framing h2 {what} flood: {} of {count} frames taken in {:.2}s",
            written / frame.len(),
            start.elapsed().as_secs_f64()
        );
        drop(s);
        rss_within_bound(&format!("h2-{what}"), &srv);
    }
}

#[test]
fn http2_with_a_100_kb_header_is_refused() {
    // Row 9c, HTTP/2: a header list over `max_request_head_bytes` (64 KiB).
    let (_tmp, srv, addr) = started("");
    let mut block = h2::get("/healthz");
    block.extend(h2::literal("x-big", &"b".repeat(100_000)));
    let pieces: Vec<&[u8]> = block.chunks(16_384).collect();
    let n = pieces.len();
    let frames: Vec<Vec<u8>> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let kind = if i == 0 {
                h2::HEADERS
            } else {
                h2::CONTINUATION
            };
            let flags = if i + 1 == n {
                h2::END_HEADERS | h2::END_STREAM
            } else {
                0
            };
            h2::frame(kind, flags, 1, p)
        })
        .collect();
    let (got, _) = h2_flood(&addr, frames.into_iter(), |f| {
        (f.kind == h2::HEADERS && f.stream == 1 && f.flags & h2::END_HEADERS != 0)
            || (f.kind == h2::RST_STREAM && f.stream == 1)
            || f.kind == h2::GOAWAY
    });
    let answer = got
        .iter()
        .find(|f| f.stream == 1 || f.kind == h2::GOAWAY)
        .expect("an answer to the oversized header block");
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
    healthz_ok(&addr);
    rss_within_bound("h2-big-header", &srv);
}
