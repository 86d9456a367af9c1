//! A scriptable HTTP peer on raw sockets: a test says, per request line, which bytes go back
//! (endless bodies, stalls, redirects, malformed heads), so a client or a storage backend can
//! be met with a hostile server or bucket. Also the ListObjectsV2 pages such a bucket sends.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// How the server answers one request (`"METHOD path"`), writing raw HTTP to the socket.
pub type Script = Arc<dyn Fn(&str, &mut TcpStream) + Send + Sync>;

/// Serves every connection on 127.0.0.1 (a free port) on its own thread with `script`, one
/// request per connection; returns the base URL `http://127.0.0.1:PORT`.
pub fn hostile_server(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let script = script.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                if let Some((method, path, _)) = read_head(&mut reader) {
                    script(&format!("{method} {path}"), &mut conn);
                }
            });
        }
    });
    url
}

/// A request's headers: (name lower-cased, value).
pub type Headers = Vec<(String, String)>;

/// Reads one request head from `reader`: the method, the target and the headers (names
/// lower-cased); `None` when the connection closed first.
pub fn read_head(reader: &mut impl BufRead) -> Option<(String, String, Headers)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let target = words.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some((method, target, headers))
}

/// A bucket listing one artifact, `key` of `size` bytes, under `a0/` and nothing under `r0/`
/// (ListObjectsV2); `object` answers every other request (the artifact's GET).
pub fn one_artifact_bucket(
    key: &str,
    size: u64,
    object: impl Fn(&mut TcpStream) + Send + Sync + 'static,
) -> String {
    let listing = one_key_listing(key, size);
    hostile_server(Arc::new(move |path, conn| {
        if path.contains("list-type=2") {
            let body = if path.contains("prefix=a0") {
                &listing
            } else {
                EMPTY_LISTING
            };
            return respond_ok(conn, body);
        }
        object(conn);
    }))
}

/// Writes 64 KiB chunks of `x` until the peer goes away (or `max` bytes).
pub fn endless(conn: &mut TcpStream, max: u64) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < max && conn.write_all(&chunk).is_ok() {
        sent += chunk.len() as u64;
    }
}

/// The head of a well-formed reply: `status`, `headers`, `Connection: close` and a
/// `Content-Length` of `len`. Deliberately malformed replies are written out by hand.
pub fn reply_head(status: &str, headers: &[(&str, &str)], len: u64) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head + &format!("Connection: close\r\nContent-Length: {len}\r\n\r\n")
}

/// Answers `conn` with a complete, well-formed reply carrying `body` (write errors are
/// ignored: the client may have gone).
pub fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut reply = reply_head(status, headers, body.len() as u64).into_bytes();
    reply.extend_from_slice(body);
    let _ = conn.write_all(&reply);
}

/// Answers `conn` with a complete `200` reply carrying `body`.
pub fn respond_ok(conn: &mut TcpStream, body: &str) {
    respond(conn, "200 OK", &[], body.as_bytes());
}

/// A ListObjectsV2 page listing nothing.
pub const EMPTY_LISTING: &str =
    "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

/// A ListObjectsV2 page listing `key` with `size` bytes.
pub fn one_key_listing(key: &str, size: u64) -> String {
    format!(
        "<ListBucketResult><IsTruncated>false</IsTruncated>\
         <Contents><Key>{key}</Key><Size>{size}</Size>\
         <LastModified>2020-01-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>"
    )
}

/// Page `page` of a ListObjectsV2 listing that never ends: 1,000 keys (`key(n)` for the
/// page's numbers `n`, 10 bytes each) and a fresh continuation token (`t<page>`).
pub fn endless_listing_page(page: u64, key: fn(u64) -> String) -> String {
    let keys: String = (0..1000)
        .map(|i| {
            format!(
                "<Contents><Key>{}</Key><Size>10</Size>\
                 <LastModified>2020-01-01T00:00:00.000Z</LastModified></Contents>",
                key(page * 1000 + i)
            )
        })
        .collect();
    format!(
        "<ListBucketResult><IsTruncated>true</IsTruncated>\
         <NextContinuationToken>t{page}</NextContinuationToken>{keys}</ListBucketResult>"
    )
}
