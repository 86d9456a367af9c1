//! Hostile clients on real sockets against a server listening in process (issue 18, items
//! 3 and 6): one address holding every connection it can get, every slot held by idle
//! keep-alives, keep-alive connections left waiting, and a reader slower than the minimum
//! send rate. Attacks whose claim is the server process's own peak memory stay with the
//! binary (`crates/tarn-cli/tests/hostile_client.rs`, `hostile_framing.rs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tarn_test::{
    connect_from, get_from, hostile_client_config, lake_put, make_artifacts, raw_request,
};

use crate::listening::Listening;

/// A server with the configuration `hostile_client.rs` serves
/// ([`tarn_test::hostile_client_config`]: anyone reads, `ci` writes `main/*`, 100
/// connections, 2 s for a request head and for an idle connection).
fn serve() -> Listening {
    Listening::start(hostile_client_config())
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
    let srv = serve();
    let a = &srv.addr;
    let t = Instant::now();
    let normal = raw_request(
        a,
        b"GET /a0/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let normal_time = t.elapsed();
    assert!(normal.starts_with("HTTP/1.1 404"), "{normal}");
    let mut conns = Vec::new();
    for _ in 0..150 {
        let mut s = TcpStream::connect(a).unwrap();
        let _ = s.write_all(b"GET /a0/x/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\n");
        conns.push(s);
    }
    let (reply, latency) = missing_object_from("127.0.0.2", a);
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
    let srv = serve();
    let a = &srv.addr;
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut s = connect_from(&format!("127.0.0.{}", 1 + i / 25), a);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(400));
    let (reply, latency) = missing_object_from("127.0.0.9", a);
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
    let srv = Listening::start("header_read_timeout_secs = 2\nidle_timeout_secs = 60\n");
    let mut s = TcpStream::connect(&srv.addr).unwrap();
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
    let srv = serve();
    let mut s = TcpStream::connect(&srv.addr).unwrap();
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
    let srv = Listening::start(
        "header_read_timeout_secs = 2\nidle_timeout_secs = 60\nbody_read_timeout_secs = 2\n\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"main/*\"]\n",
    );
    let a = &srv.addr;
    let arts = tempfile::tempdir().unwrap();
    let (file, hash, data) = make_artifacts(arts.path(), 1, 16 << 20, 9).remove(0);
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
        let slow = s.spawn(|| read_slowly_then_drain(a, &path, 500, Duration::from_secs(8)));
        let fast = s.spawn(|| read_slowly_then_drain(a, &path, 256 << 10, Duration::from_secs(8)));
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
