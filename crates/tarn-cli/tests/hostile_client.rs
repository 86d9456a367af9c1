//! `tarn serve` against hostile clients on raw sockets (issue 9, items 2, 3 and 8): a bad
//! signature with a 300 MiB body, slow and silent connections past the connection cap, idle
//! keep-alive connections, concurrent Reservoir bulk requests and a 30 MiB revision file. The
//! server must refuse early and clearly, stay up, and keep its memory bounded; its peak RSS
//! is printed (`hostile-client-rss`) for RELIABILITY.md.

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
    let cfg = tmp.join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data = "{}"
public_read = ["*"]
max_connections = 100
header_read_timeout_secs = 2
idle_timeout_secs = 2

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

fn addr(srv: &TarnServer) -> String {
    srv.url.trim_start_matches("http://").to_string()
}

fn peak_rss_kb(srv: &TarnServer) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
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
    // 150 connections (cap 100): most send half a request, some send nothing at all.
    let mut conns = Vec::new();
    for i in 0..150 {
        let mut s = TcpStream::connect(&a).unwrap();
        if i % 3 != 0 {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
        }
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conns.push(s);
    }
    // Over the cap: a clear refusal, at once.
    let refused = healthz(&a);
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("too many connections"),
        "{refused}"
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
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (a, req) = (a.clone(), req.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&a).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                s.write_all(&req).unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                out.starts_with(b"HTTP/1.1 200")
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

#[test]
fn an_over_long_path_is_a_400_and_an_upper_case_hash_is_not_a_second_object() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let long = "x".repeat(300);
    let reply = raw(
        &addr(&srv),
        format!(
            "GET /a0/{long}/0123456789abcdef.art HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("KeyTooLongError"), "{reply}");
    // The same artifact under an upper-case name and its own: one object, Lake's name.
    let arts = make_artifacts(&tmp.path().join("arts"), 1, 100, 4);
    let (p, h, _) = &arts[0];
    for name in [h.to_ascii_uppercase(), h.clone()] {
        let (code, body) = lake_put(
            "ci:ci-secret",
            p,
            &format!("{}/a0/main/x/{name}.art", srv.url),
            "application/vnd.reservoir.artifact",
        );
        assert!(code == 200 || (400..500).contains(&code), "{code} {body}");
    }
    assert_eq!(
        stored_files(&tmp.path().join("data")),
        vec![format!("a0/main/x/{h}.art")]
    );
}
