//! Hostile framing on raw sockets (RELIABILITY.md rows 9c, 9f, 9l), as attacks any listening
//! server can be met with: oversized request heads, abusive chunked bodies,
//! `Expect: 100-continue` with a huge length, pipelined requests whose replies are never
//! read, and HTTP/2 (prior knowledge) floods written frame by frame ([`h2`]). Each attack
//! returns what the server did; the tests decide what must come of it (the server's
//! behaviour in process, its peak memory against the binary).

pub mod h2;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The server configuration the framing attacks meet (without `data`): anyone reads, the
/// key `ci` (secret `ci-secret`) writes `main/*`.
pub fn framing_config() -> &'static str {
    "public_read = [\"*\"]\n\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"main/*\"]\n"
}

/// Writes `request` (a write error is the server closing: fine) and reads until the
/// server closes or 10 s pass; returns the reply's text and the time to its first byte.
pub fn exchange(addr: &str, request: &[u8]) -> (String, Duration) {
    exchange_waiting(addr, request, Duration::from_secs(10))
}

/// [`exchange`], waiting up to `patience` for each read of the reply.
pub fn exchange_waiting(addr: &str, request: &[u8], patience: Duration) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(patience)).unwrap();
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

/// The status code of a raw HTTP/1.1 reply (`0` when the server closed without one).
pub fn reply_status(reply: &str) -> u16 {
    reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The status of `GET /healthz` on a new connection ([`exchange`]).
pub fn healthz_status(addr: &str) -> u16 {
    let (reply, _) = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    reply_status(&reply)
}

/// One request of an attack and what came of it.
#[derive(Debug)]
pub struct Answer {
    /// What the request was.
    pub what: &'static str,
    /// The reply's text.
    pub reply: String,
    /// The time to its first byte.
    pub took: Duration,
}

/// Sends each `(what, request)` on its own connection ([`exchange`]).
fn answers(addr: &str, requests: Vec<(&'static str, Vec<u8>)>) -> Vec<Answer> {
    requests
        .into_iter()
        .map(|(what, request)| {
            let (reply, took) = exchange(addr, &request);
            Answer { what, reply, took }
        })
        .collect()
}

/// Row 9c, the head: a 1 MiB query, 100,000 query parameters, one 1 MiB header, 200 and
/// 10,000 headers, on `/`, `/api/status`, `/healthz`, `/metrics` and an artifact.
pub fn oversized_heads(addr: &str) -> Vec<Answer> {
    let headers = |n: usize| (0..n).map(|i| format!("x-h{i}: v\r\n")).collect::<String>();
    let params = (0..100_000)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let requests = vec![
        (
            "a 1 MiB query",
            format!(
                "GET /?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(1 << 20)
            ),
        ),
        (
            "100,000 query parameters",
            format!("GET /api/status?{params} HTTP/1.1\r\nHost: x\r\n\r\n"),
        ),
        (
            "one 1 MiB header",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
                "b".repeat(1 << 20)
            ),
        ),
        (
            "200 headers",
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{}\r\n", headers(200)),
        ),
        (
            "10,000 headers",
            format!(
                "GET /a0/main/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n{}\r\n",
                headers(10_000)
            ),
        ),
    ];
    answers(
        addr,
        requests
            .into_iter()
            .map(|(what, r)| (what, r.into_bytes()))
            .collect(),
    )
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

/// Row 9c, chunked framing: a 1 MiB chunk-size line, an 18-digit chunk size, a 1 MiB chunk
/// extension, a 1 MiB trailer (each a Reservoir bulk request).
pub fn abusive_chunked_bodies(addr: &str) -> Vec<Answer> {
    let mib = 1 << 20;
    answers(
        addr,
        vec![
            (
                "a 1 MiB chunk-size line",
                chunked_bulk(
                    "",
                    format!("{}1\r\nx\r\n0\r\n\r\n", "0".repeat(mib)).as_bytes(),
                ),
            ),
            (
                "an 18-digit chunk size",
                chunked_bulk("", b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
            ),
            (
                "a 1 MiB chunk extension",
                chunked_bulk(
                    "",
                    format!("1;e={}\r\nx\r\n0\r\n\r\n", "a".repeat(mib)).as_bytes(),
                ),
            ),
            (
                "a 1 MiB trailer",
                chunked_bulk(
                    "",
                    format!("2\r\n[]\r\n0\r\nx-t: {}\r\n\r\n", "t".repeat(mib)).as_bytes(),
                ),
            ),
        ],
    )
}

/// Row 9c, chunked framing: a valid (mostly blank) bulk body in 500,000 one-byte chunks; the
/// reply and the whole exchange's time.
pub fn tiny_chunks(addr: &str) -> (String, Duration) {
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
    // The caller bounds the time (20 s); a shorter read timeout would turn a slow parse on a
    // loaded machine into "no reply" instead of a measured time.
    let (reply, _) = exchange_waiting(addr, &chunked_bulk("", &body), Duration::from_secs(60));
    (reply, start.elapsed())
}

/// Row 9c: `Content-Length: 1` beside `Transfer-Encoding: chunked` on a 2-byte chunked bulk
/// body (`[]`): the reply.
pub fn content_length_with_chunked(addr: &str) -> String {
    exchange(
        addr,
        &chunked_bulk("Content-Length: 1\r\n", b"2\r\n[]\r\n0\r\n\r\n"),
    )
    .0
}

/// Row 9c: a `PUT` of an artifact with `Expect: 100-continue` and a 4 GiB `Content-Length`,
/// unsigned and with a bad signature for the key `ci`.
pub fn expect_continue_4_gib(addr: &str) -> Vec<Answer> {
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
    let requests = [("unsigned", String::new()), ("a bad signature", forged)]
        .into_iter()
        .map(|(what, auth)| {
            let request = format!(
                "PUT /a0/main/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                4u64 << 30
            );
            (what, request.into_bytes())
        })
        .collect();
    answers(addr, requests)
}

/// A pipeline written without reading a reply: the connection (still open) and how much
/// of it the server took.
#[derive(Debug)]
pub struct Pipeline {
    /// The connection, left open.
    pub conn: TcpStream,
    /// Bytes the server took.
    pub written: usize,
    /// Bytes in the whole pipeline.
    pub total: usize,
}

/// Row 9f, first half: 400,000 pipelined `GET /healthz` (20 MB) on one connection, no
/// reply read, written until a write stalls for 1 s.
pub fn unread_pipeline(addr: &str) -> Pipeline {
    let one = b"GET /healthz HTTP/1.1\r\nHost: pipelining.example\r\n\r\n";
    let all: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 400_000)
        .collect();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let written = write_until_stalled(&mut conn, &all, |_| {});
    Pipeline {
        conn,
        written,
        total: all.len(),
    }
}

/// The size of the artifact [`slow_pipelined_readers`] asks for.
pub const SLOW_READER_ARTIFACT_BYTES: usize = 200_000;

/// Row 9f, second half: stores a 200 kB artifact under `data` (the server's data
/// directory), then opens 4 connections each pipelining 40 `GET`s of it and reading
/// nothing; returns them, open.
pub fn slow_pipelined_readers(addr: &str, data: &Path) -> Vec<TcpStream> {
    let art = crate::bytes_for(5, SLOW_READER_ARTIFACT_BYTES);
    let h = crate::hash_hex(&art);
    let dir = data.join("a0/main/x");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{h}.art")), &art).unwrap();
    let get = format!("GET /a0/main/x/{h}.art HTTP/1.1\r\nHost: x\r\n\r\n");
    (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(get.repeat(40).as_bytes()).unwrap();
            s
        })
        .collect()
}

/// Reads `conn` until it ends or is quiet for 5 s: whether the server closed it, and the
/// bytes read.
pub fn drain(conn: &mut TcpStream) -> (bool, usize) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = 0usize;
    let mut buf = [0u8; 64 << 10];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (true, got),
            Err(_) => return (false, got),
        }
    }
}

/// Row 9l: 100,000 HTTP/2 streams opened and reset at once, until a `GOAWAY`: the frames
/// read and how many were written.
pub fn h2_rapid_reset(addr: &str) -> (Vec<h2::Frame>, usize) {
    let frames = (0..100_000u32).flat_map(|i| {
        let id = 2 * i + 1;
        [
            h2::frame(h2::HEADERS, h2::END_HEADERS, id, &h2::get("/healthz")),
            h2::frame(h2::RST_STREAM, 0, id, &8u32.to_be_bytes()),
        ]
    });
    h2::flood(addr, frames, |f| f.kind == h2::GOAWAY)
}

/// Row 9l: 1,000 concurrent HTTP/2 streams, none ever ended by the client (Reservoir bulk
/// requests whose bodies never come); reads until `stop_at` of them were answered or
/// refused. Returns how many were answered (`HEADERS`) and refused (`REFUSED_STREAM`).
pub fn h2_held_streams(addr: &str, stop_at: usize) -> (usize, usize) {
    let bulk = "/api/v1/packages/leanprover/dep/artifacts";
    let frames = (0..1_000u32)
        .map(move |i| h2::frame(h2::HEADERS, h2::END_HEADERS, 2 * i + 1, &h2::post(bulk)));
    let mut answered = 0;
    let mut refused = 0;
    h2::flood(addr, frames, |f| {
        if f.kind == h2::HEADERS {
            answered += 1;
        }
        if f.kind == h2::RST_STREAM && f.error_code() == h2::REFUSED_STREAM {
            refused += 1;
        }
        answered + refused >= stop_at
    });
    (answered, refused)
}

/// Row 9l: a `HEADERS` frame without `END_HEADERS`, then up to 1,000,000 `CONTINUATION`
/// frames, until a `GOAWAY`: the frames read and how many were written.
pub fn h2_continuation_flood(addr: &str) -> (Vec<h2::Frame>, usize) {
    let first = std::iter::once(h2::frame(h2::HEADERS, 0, 1, &h2::get("/healthz")));
    let rest = (0..1_000_000u32).map(|i| {
        h2::frame(
            h2::CONTINUATION,
            0,
            1,
            &h2::literal(&format!("x-c{i}"), &"v".repeat(100)),
        )
    });
    h2::flood(addr, first.chain(rest), |f| f.kind == h2::GOAWAY)
}

/// The two unread-control-frame floods of row 9l: 200,000 `SETTINGS` frames and 480,000
/// `PING`s whose acknowledgements are never read.
pub fn h2_control_floods() -> [(&'static str, Vec<u8>, usize); 2] {
    [
        (
            "SETTINGS",
            h2::frame(h2::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]),
            200_000,
        ),
        ("PING", h2::frame(h2::PING, 0, 0, &[7; 8]), 480_000),
    ]
}

/// Writes `count` copies of `frame` on a new HTTP/2 connection without reading, until a
/// write stalls for 3 s, calling `meanwhile` after about every MiB; returns how many frames
/// the server took (the connection is closed on return).
pub fn h2_unread_flood(
    addr: &str,
    frame: &[u8],
    count: usize,
    mut meanwhile: impl FnMut(),
) -> usize {
    let mut s = h2::connect(addr);
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let all: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * count)
        .collect();
    let written = write_until_stalled(&mut s, &all, |written| {
        if written % (1 << 20) < 64 * 1024 {
            meanwhile();
        }
    });
    written / frame.len()
}

/// Writes `all` to `conn` in 64 KiB pieces until it is all written or a write fails (its
/// timeout: the server stopped reading, or it closed), calling `after_each` with the bytes
/// written so far; returns them.
fn write_until_stalled(
    conn: &mut TcpStream,
    all: &[u8],
    mut after_each: impl FnMut(usize),
) -> usize {
    let mut written = 0;
    while written < all.len() {
        match conn.write(&all[written..(written + 64 * 1024).min(all.len())]) {
            Ok(n) => written += n,
            Err(_) => break,
        }
        after_each(written);
    }
    written
}

/// Row 9c, HTTP/2: `GET /healthz` with a 100 kB header (over `max_request_head_bytes`),
/// the block split into `HEADERS` and `CONTINUATION` frames; the server's answer on stream
/// 1 (or its `GOAWAY`), if any.
pub fn h2_big_header(addr: &str) -> Option<h2::Frame> {
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
    let (got, _) = h2::flood(addr, frames.into_iter(), |f| {
        (f.kind == h2::HEADERS && f.stream == 1 && f.flags & h2::END_HEADERS != 0)
            || (f.kind == h2::RST_STREAM && f.stream == 1)
            || f.kind == h2::GOAWAY
    });
    got.into_iter()
        .find(|f| f.stream == 1 || f.kind == h2::GOAWAY)
}
