//! `tarn serve` against hostile clients on raw sockets (issue 9, items 2, 3 and 8): a bad
//! signature with a 300 MiB body, slow and silent connections past the connection cap, idle
//! keep-alive connections, concurrent Reservoir bulk requests and a 30 MiB revision file. The
//! server must refuse early and clearly, stay up, and keep its memory bounded; its peak RSS
//! is printed (`hostile-client-rss`) for RELIABILITY.md. (Bodies that trickle or stall are
//! the handler's: tested in process in `crates/tarn-server/tests/slow_bodies.rs`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tarn_test::*;

/// The server's memory goal under this suite.
const SERVER_RSS_GOAL_KB: u64 = 400 * 1024;

fn start(tmp: &Path) -> TarnServer {
    start_with(tmp, "")
}

/// A server with the suite's configuration plus `extra` top-level lines.
fn start_with(tmp: &Path, extra: &str) -> TarnServer {
    let cfg = tmp.join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data = "{}"
public_read = ["*"]
max_connections = 100
header_read_timeout_secs = 2
idle_timeout_secs = 2
{extra}

[[key]]
id = "ci"
secret = "ci-secret"
write = ["main/*"]
"#,
            tmp.join("data").display()
        ),
    )
    .unwrap();
    TarnServer::start(&["--config", cfg.to_str().unwrap()])
}

pub(crate) fn addr(srv: &TarnServer) -> String {
    srv.url.trim_start_matches("http://").to_string()
}

/// The running server's resident high-water mark, kept by the kernel since it started.
pub(crate) fn peak_rss_kb(srv: &TarnServer) -> u64 {
    live_peak_rss_kb(srv.child.id()).expect("the server is running")
}

fn report(name: &str, srv: &TarnServer) {
    let kb = peak_rss_kb(srv);
    eprintln!("hostile-client-rss {name} {kb} kB");
    assert!(kb <= SERVER_RSS_GOAL_KB, "{name}: server peak RSS {kb} kB");
}

/// Sends a raw request and reads the whole reply (the server closes or answers in time).
fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && out.starts_with(b"HTTP/1.1 ") {
                    // Headers are in; read the short body if any, then stop.
                    if let Some(len) = content_length(&out) {
                        let head = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        if out.len() >= head + len {
                            break;
                        }
                    }
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn content_length(reply: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(reply).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
}

fn healthz(addr: &str) -> String {
    raw(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
}

fn spool_bytes(data: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(data) else {
        return 0;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tarn-spool") {
            if let Ok(files) = std::fs::read_dir(e.path()) {
                for f in files.flatten() {
                    total += f.metadata().map(|m| m.len()).unwrap_or(0);
                }
            }
        }
    }
    total
}

#[test]
fn a_bad_signature_is_refused_before_any_body_byte_is_spooled() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let data = tmp.path().join("data");
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, peak, data) = (stop.clone(), peak.clone(), data.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(spool_bytes(&data), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let date = tarn_core::sigv4::AmzDate::from_unix(now);
    let total: u64 = 300 << 20;
    let head = format!(
        "PUT /a0/main/x/0123456789abcdef.art HTTP/1.1\r\nHost: {}\r\nx-amz-date: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=ci/{}/auto/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={}\r\nContent-Length: {total}\r\n\r\n",
        addr(&srv),
        date.0,
        date.date(),
        "0".repeat(64)
    );
    let mut s = TcpStream::connect(addr(&srv)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'z'; 1 << 20];
    let mut sent = 0u64;
    while sent < total && s.write_all(&chunk).is_ok() {
        sent += chunk.len() as u64;
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let max_spool = peak.load(Ordering::Relaxed);
    eprintln!(
        "bad signature: sent {sent} bytes before the server closed, spool peak {max_spool} bytes"
    );
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains("SignatureDoesNotMatch"), "{reply}");
    assert!(max_spool == 0, "spooled {max_spool} bytes before refusing");
    assert!(sent < total, "the server read the whole 300 MiB body");
    assert!(healthz(&addr(&srv)).starts_with("HTTP/1.1 200"));
    report("bad-signature-300MiB", &srv);
}

#[test]
fn slow_and_silent_connections_hit_the_cap_get_503_and_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let a = addr(&srv);
    // 150 connections (cap 100) from six addresses (each may hold 25): most send half a
    // request, some send nothing at all.
    let mut conns = Vec::new();
    for i in 0..150 {
        let mut s = connect_from(&format!("127.0.0.{}", 1 + i / 25), &a);
        if i % 3 != 0 {
            let _ = s.write_all(b"GET /a0/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n");
        }
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conns.push(s);
    }
    // Over the cap: a clear refusal, at once; /healthz is still answered (issue 18, item 3:
    // monitoring must tell "full" from "down").
    let refused = raw(
        &a,
        b"GET /a0/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("too many connections"),
        "{refused}"
    );
    let t = Instant::now();
    let health = healthz(&a);
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "/healthz while full: {health}"
    );
    eprintln!(
        "/healthz with every connection slot taken: {:?}",
        t.elapsed()
    );
    // Every hostile connection is closed by the server within the header timeout (2 s).
    let start = Instant::now();
    let mut answers_503 = 0;
    for mut s in conns {
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        if buf.starts_with(b"HTTP/1.1 503") {
            answers_503 += 1;
        } else {
            assert!(r.is_ok() || buf.is_empty(), "{r:?}");
        }
    }
    assert!(answers_503 >= 40, "only {answers_503} refusals");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "slow connections held for {:?}",
        start.elapsed()
    );
    // Slots are free again.
    let ok = healthz(&a);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    report("slowloris-150", &srv);
}

/// A connection to `addr` from the loopback address `from` (the whole 127.0.0.0/8 range is
/// local on Linux): another client, as the server sees it.
pub(crate) fn connect_from(from: &str, addr: &str) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
        sock.connect(addr.parse().unwrap()).await.unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// GETs `path` from the loopback address `from` on a new connection: the whole reply and
/// how long it took.
pub(crate) fn get_from(from: &str, addr: &str, path: &str) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let mut s = connect_from(from, addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    (reply, t.elapsed())
}

/// GETs a missing object from the loopback address `from` on a new connection: the whole
/// reply and how long it took.
fn missing_object_from(from: &str, addr: &str) -> (String, Duration) {
    let (reply, took) = get_from(from, addr, "/a0/x/0123456789abcdef.art");
    (String::from_utf8_lossy(&reply).into_owned(), took)
}

/// Issue 18, item 3: one address holding every connection it can get (half-sent headers,
/// 150 against a cap of 100) takes at most a quarter of the slots; a client from another
/// address is served at once, not refused.
#[test]
fn one_address_holds_at_most_its_share_of_connections_and_another_client_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let a = addr(&srv);
    let t = Instant::now();
    let normal = raw(
        &a,
        b"GET /a0/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let normal_time = t.elapsed();
    assert!(normal.starts_with("HTTP/1.1 404"), "{normal}");
    let mut conns = Vec::new();
    for _ in 0..150 {
        let mut s = TcpStream::connect(&a).unwrap();
        let _ = s.write_all(b"GET /a0/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n");
        conns.push(s);
    }
    let (reply, latency) = missing_object_from("127.0.0.2", &a);
    eprintln!(
        "another address's GET beside 150 held connections: {latency:?} (alone: {normal_time:?})"
    );
    assert!(
        reply.starts_with("HTTP/1.1 404"),
        "another address was refused: {reply}"
    );
    // The attacker's connections past its share (25) were refused: `503`, or closed
    // unanswered once 64 refusals were in progress.
    let mut refused = 0;
    for c in &mut conns[25..] {
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        refused += usize::from(buf.starts_with(b"HTTP/1.1 503"));
    }
    assert!(refused >= 1, "no connection over the share was refused");
    drop(conns);
}

/// Issue 18, item 3: every slot held by idle keep-alive connections (100 from four
/// addresses, cap 100, each having had one answer): a new client is served by closing the
/// idlest of them, not refused.
#[test]
fn at_the_cap_the_idlest_keep_alive_connection_makes_room() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let a = addr(&srv);
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut s = connect_from(&format!("127.0.0.{}", 1 + i / 25), &a);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(400));
    let (reply, latency) = missing_object_from("127.0.0.9", &a);
    eprintln!("a new client's GET with every slot held by idle keep-alives: {latency:?}");
    assert!(
        reply.starts_with("HTTP/1.1 404"),
        "the new client was refused: {reply}"
    );
    // A keep-alive was closed for it (the idlest: the first one opened, unless the loaded
    // machine let the header timeout close some first).
    std::thread::sleep(Duration::from_millis(100));
    let mut closed = 0;
    for c in &mut conns {
        c.set_nonblocking(true).unwrap();
        if matches!(c.read(&mut [0u8; 16]), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no keep-alive connection was closed");
}

/// Issue 18, item 6: a keep-alive connection waiting for its next request is closed after
/// `header_read_timeout_secs` (the wait for a request head), not `idle_timeout_secs`, as
/// docs/server.md says; measured with the two set apart (2 s and 60 s).
#[test]
fn a_keep_alive_waiting_for_its_next_request_closes_at_the_header_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "data = \"{}\"\nheader_read_timeout_secs = 2\nidle_timeout_secs = 60\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let srv = TarnServer::start(&["--config", cfg.to_str().unwrap()]);
    let mut s = TcpStream::connect(addr(&srv)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    let t = start.elapsed();
    eprintln!("an idle keep-alive closed after {t:?} (header timeout 2 s, idle timeout 60 s)");
    assert!(r.is_ok(), "{r:?}");
    assert!(buf.starts_with(b"HTTP/1.1 200"));
    assert!(
        t >= Duration::from_secs(1) && t < Duration::from_secs(10),
        "{t:?}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let mut s = TcpStream::connect(addr(&srv)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    // The reply, then EOF once the connection has been idle for 2 s.
    let r = s.read_to_end(&mut buf);
    assert!(r.is_ok(), "{r:?}");
    assert!(buf.starts_with(b"HTTP/1.1 200"));
    let t = start.elapsed();
    assert!(
        t >= Duration::from_secs(1) && t < Duration::from_secs(10),
        "{t:?}"
    );
}

#[test]
fn concurrent_bulk_requests_and_a_30_mib_revision_keep_server_memory_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let a = addr(&srv);
    // About 4 MiB of hashes per request, 12 requests at once.
    let mut body = String::from("[");
    let mut i = 0u64;
    while body.len() < (4 << 20) - 40 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "\"{:016x}\"",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ));
        i += 1;
    }
    body.push(']');
    let req = Arc::new(
        format!(
            "POST /api/v1/repositories/o/r/artifacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    // Twelve clients, each at its own address (one address may hold only half of the
    // anonymous pool, so one client's requests would take turns).
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let (a, req) = (a.clone(), req.clone());
            std::thread::spawn(move || {
                // While the anonymous budget is taken a request is answered 503,
                // which clients retry (the answer may be lost to a reset when the server
                // closes with the rest of the body unread).
                for _ in 0..60 {
                    let mut s = connect_from(&format!("127.0.0.{}", 10 + i), &a);
                    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                    let _ = s.write_all(&req);
                    let mut out = Vec::new();
                    let _ = s.read_to_end(&mut out);
                    if out.starts_with(b"HTTP/1.1 200") {
                        return true;
                    }
                    assert!(
                        out.is_empty()
                            || out.starts_with(b"HTTP/1.1 503")
                                && String::from_utf8_lossy(&out)
                                    .contains("in use by other requests"),
                        "{}",
                        String::from_utf8_lossy(&out[..out.len().min(300)])
                    );
                    std::thread::sleep(Duration::from_millis(300));
                }
                false
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap(), "a bulk request failed");
    }
    report("bulk-12x4MiB", &srv);

    // A 30 MiB revision file, uploaded the way Lake does (curl 7.88).
    let rev = tmp.path().join("rev.jsonl");
    let mut text = String::from("\"2026-03-17\"\n");
    let mut n = 0u64;
    while text.len() < 30 << 20 {
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        text.push_str(&format!(
            "[\"{:016x}\",{{\"o\":[\"{:016x}.olean\"],\"i\":\"{:016x}.ilean\",\"c\":\"{:016x}.c\"}}]\n",
            h,
            h ^ 1,
            h ^ 2,
            h ^ 3
        ));
        n += 1;
    }
    std::fs::write(&rev, &text).unwrap();
    let (code, reply) = lake_put(
        "ci:ci-secret",
        &rev,
        &format!("{}/r0/main/x/{}.jsonl", srv.url, "1".repeat(40)),
        "application/vnd.reservoir.outputs+json",
    );
    // Parsed completely (its artifacts are missing, so it is refused with 409).
    assert_eq!(code, 409, "{reply}");
    report("revision-30MiB", &srv);
}

fn reply_ok(reply: &str) -> bool {
    reply.starts_with("HTTP/1.1 200")
}

/// A Reservoir bulk request for `n` hashes with this `Host` header.
pub(crate) fn bulk_request(host: &str, n: u64) -> Vec<u8> {
    let body = bulk_request_body(n);
    let mut req = format!(
        "POST /api/v1/repositories/o/r/artifacts HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend(body);
    req
}

/// Sends `req` from `clients` threads at once, client `i` from the address `from(i)`, each
/// sending it again on a new connection every 200 ms (as a client does while the budget is
/// busy and it gets `503`) until a `200` head arrives or `give_up` has passed; `read` then
/// takes what it wants of the reply. Returns how many were answered.
fn answered_from_many_addresses(
    addr: &str,
    req: Vec<u8>,
    clients: usize,
    from: fn(usize) -> String,
    give_up: Duration,
    read: fn(&mut TcpStream),
) -> u64 {
    let req = Arc::new(req);
    let answered = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (a, req, answered) = (addr.to_string(), req.clone(), answered.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                while t.elapsed() < give_up {
                    let mut s = connect_from(&from(i), &a);
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let _ = s.write_all(&req);
                    let mut head = [0u8; 12];
                    if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200") {
                        read(&mut s);
                        answered.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    answered.load(Ordering::Relaxed)
}

#[test]
fn a_bulk_reply_is_bounded_whatever_the_host_header_and_unread_replies_stay_accounted() {
    // Issue 18, item 1. Before the fix every URL of the reply was built from the Host header
    // (a 900 kB one was accepted), the whole reply was built in memory, and the parse-budget
    // share was dropped before it was sent: 40 clients asking about 100,000 hashes each with
    // a long Host, never reading, took the server past a gigabyte.
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let a = addr(&srv);
    let longest_host = format!("{}:7070", "h".repeat(255));
    // Forty clients, each at its own address (one address holds at most half of the
    // anonymous pool, so one client's unread replies would take turns); once answered, the
    // reply's first bytes are read and nothing more.
    let answered = answered_from_many_addresses(
        &a,
        bulk_request(&longest_host, 100_000),
        40,
        |i| format!("127.0.1.{}", 1 + i),
        Duration::from_secs(180),
        |_| std::thread::sleep(Duration::from_secs(3)),
    );
    assert_eq!(answered, 40, "not every bulk request was answered");
    assert!(reply_ok(&healthz(&a)));
    let kb = peak_rss_kb(&srv);
    eprintln!("hostile-client-rss bulk-unread-40x100000-host261 {kb} kB");
    assert!(kb <= 150 * 1024, "server peak RSS {kb} kB");

    // A request head over max_request_head_bytes is refused (431) or closed (the Host checks
    // are in tarn-server's tests/reservoir.rs).
    {
        let mut s = TcpStream::connect(&a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&bulk_request(&"h".repeat(900_000), 1));
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
            "a 900 kB Host: {reply:.200}"
        );
    }
    assert!(reply_ok(&healthz(&a)));
}

/// GETs `path` on a new connection, reads the reply at `rate` bytes a second for `slow`,
/// then as fast as it can (at most 20 s): the bytes received in all.
fn read_slowly_then_drain(addr: &str, path: &str, rate: usize, slow: Duration) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let start = Instant::now();
    let mut got = 0;
    let mut piece = vec![0u8; rate / 10];
    while start.elapsed() < slow {
        match s.read(&mut piece) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got += n,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    got + rest.len()
}

/// Issue 18, item 3: a client reading a large reply slower than `min_send_rate_bytes` (here
/// 500 bytes a second against the default 1 KiB/s) is cut off once the reply has waited on
/// it for `body_read_timeout_secs` (2 s here), long before `idle_timeout_secs` (60 s); one
/// reading 256 KiB/s for the same time gets the whole reply. (On loopback a client's TCP
/// window opens in steps of 64 KiB, the most a slow reader can be measured by.)
#[test]
fn a_client_reading_a_reply_slower_than_the_minimum_send_rate_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "data = \"{}\"\nheader_read_timeout_secs = 2\nidle_timeout_secs = 60\nbody_read_timeout_secs = 2\n\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"main/*\"]\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let srv = TarnServer::start(&["--config", cfg.to_str().unwrap()]);
    let a = addr(&srv);
    let (file, hash, data) = make_artifacts(&tmp.path().join("arts"), 1, 16 << 20, 9).remove(0);
    let path = format!("/a0/main/x/{hash}.art");
    let (code, body) = lake_put(
        "ci:ci-secret",
        &file,
        &format!("{}{path}", srv.url),
        "application/vnd.reservoir.artifact",
    );
    assert_eq!(code, 200, "{body}");
    let whole = data.len();
    let (slow, fast) = std::thread::scope(|s| {
        let slow = s.spawn(|| read_slowly_then_drain(&a, &path, 500, Duration::from_secs(8)));
        let fast = s.spawn(|| read_slowly_then_drain(&a, &path, 256 << 10, Duration::from_secs(8)));
        (slow.join().unwrap(), fast.join().unwrap())
    });
    eprintln!(
        "a reply of {whole} bytes: the 500 B/s reader got {slow} bytes before it was cut off, the 256 KiB/s reader {fast}"
    );
    assert!(
        slow < whole,
        "a reader at 500 B/s was never cut off (got all {slow} bytes)"
    );
    assert!(
        fast > whole,
        "the 8 KiB/s reader was cut off after {fast} bytes"
    );
}

/// Issue 18 (the batch API): 48 anonymous batch existence requests at once, from 12
/// addresses, each naming 10,000 hashes in a public scope whose path is as long as a key
/// allows, their replies read slowly. What the server holds for each (the body, the parsed
/// hashes, the object keys built from them, the reply) is accounted in the anonymous parse
/// pool until the reply has been handed over, so together they stay within it.
#[test]
fn concurrent_batch_requests_with_long_scopes_stay_within_the_parse_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let a = addr(&srv);
    // Four components of 240 bytes: a 960-byte scope, each object key near 1,024 bytes.
    let scope = vec!["s".repeat(240); 4].join("/");
    let hashes: Vec<tarn_core::Hash> = (0..10_000u64)
        .map(|i| tarn_core::Hash(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1))
        .collect();
    let body = tarn_core::batch::encode_request(&hashes);
    let mut req = format!(
        "POST /a0/{scope}/?tarn-missing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend(body);
    let answered = answered_from_many_addresses(
        &a,
        req,
        48,
        |i| format!("127.0.2.{}", 1 + i % 12),
        Duration::from_secs(120),
        |s| {
            // The reply, read slowly.
            std::thread::sleep(Duration::from_secs(2));
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            let rest = String::from_utf8_lossy(&rest);
            assert!(rest.contains("\"missing\""), "{rest:.300}");
        },
    );
    assert_eq!(answered, 48, "not every batch request was answered");
    let kb = peak_rss_kb(&srv);
    eprintln!("hostile-client-rss batch-48x10000-scope960 {kb} kB");
    assert!(kb <= 100 * 1024, "server peak RSS {kb} kB");
}
