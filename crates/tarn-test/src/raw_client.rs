//! A client on raw sockets for attacking a listening server: connections from any loopback
//! address (another client, as the server sees it), a request written as bytes and the
//! reply read as the server sends it, and `/healthz` asked on a fresh connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A connection to `addr` from the loopback address `from` (the whole 127.0.0.0/8 range is
/// local on Linux): another client, as the server sees it.
pub fn connect_from(from: &str, addr: &str) -> TcpStream {
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
pub fn get_from(from: &str, addr: &str, path: &str) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let mut s = connect_from(from, addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    (reply, t.elapsed())
}

/// Sends `request` on a new connection to `addr` and reads the reply until its head and
/// `Content-Length` body are in, the server closes, or 20 s pass: the reply as text.
pub fn raw_request(addr: &str, request: &[u8]) -> String {
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

/// `GET /healthz` on a new connection to `addr` ([`raw_request`]): the reply as text.
pub fn raw_healthz(addr: &str) -> String {
    raw_request(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
}

/// The server configuration the hostile-client attacks meet (without `data`): anyone reads,
/// the key `ci` (secret `ci-secret`) writes `main/*`, at most 100 connections, 2 s for a
/// request head and for an idle connection.
pub fn hostile_client_config() -> &'static str {
    r#"public_read = ["*"]
max_connections = 100
header_read_timeout_secs = 2
idle_timeout_secs = 2

[[key]]
id = "ci"
secret = "ci-secret"
write = ["main/*"]
"#
}
