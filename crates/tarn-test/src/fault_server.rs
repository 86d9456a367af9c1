//! A small HTTP/1.1 server on 127.0.0.1 written on raw tokio sockets, so that faults can be
//! injected byte by byte. It serves a directory (anonymous reads, like a public bucket) or
//! forwards to an upstream server (a fault-injecting proxy in front of s3s-fs; the `Host`
//! header is passed through so SigV4 signatures stay valid).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do to one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Serve normally.
    None,
    /// Reset the connection without answering.
    Reset,
    /// Answer with this status and a short body.
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Send the full `Content-Length` but only half the body, then close.
    Truncate,
    /// Send the head and half the body, then go silent for this long, then close.
    Stall(Duration),
    /// Flip one byte of the body.
    Corrupt,
    /// Send the body chunked (no `Content-Length`), as some servers and proxies do.
    Chunked,
    /// Answer this instead of the backend (status, content type, body).
    Reply(u16, String, Vec<u8>),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The path without the query, percent-decoded.
    pub fn path(&self) -> String {
        percent_decode(self.target.split('?').next().unwrap_or(""))
    }
}

/// Decides the fault for a request; `attempt` counts requests with the same method and
/// target (1 for the first).
pub type Plan = Arc<dyn Fn(&Request, u32) -> Fault + Send + Sync>;

/// No faults.
pub fn no_faults() -> Plan {
    Arc::new(|_, _| Fault::None)
}

/// Where responses come from.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Files under this directory (GET and HEAD; PUT writes; other methods 405).
    Dir(PathBuf),
    /// Forward to this server.
    Proxy(SocketAddr),
    /// Accept connections and never read or answer (a hung server).
    Blackhole,
}

/// A running server; stops when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Faults injected so far.
    pub faults: Arc<AtomicU64>,
    /// Every request (method, target, fault).
    pub log: Arc<Mutex<Vec<(String, String, Fault)>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A service over `<tmp>/remote` (created): the fault-injecting server with `plan` on that
/// directory, and `<tmp>/config.toml` naming it as the S3 service `name` (its `a0` and `r0`
/// buckets), as `tarn_cmd` finds it.
pub fn service_over_dir(tmp: &Path, name: &str, plan: Plan) -> Server {
    let remote = tmp.join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    let server = Server::start(Backend::Dir(remote), plan);
    crate::write_s3_config(
        &tmp.join("config.toml"),
        name,
        &format!("{}/a0", server.url()),
        &format!("{}/r0", server.url()),
    );
    server
}

impl Server {
    /// Starts a server on an ephemeral 127.0.0.1 port.
    pub fn start(backend: Backend, plan: Plan) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("addr");
        let faults = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (f2, l2) = (faults.clone(), log.clone());
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (backend, plan, faults, log, attempts) = (
                    backend.clone(),
                    plan.clone(),
                    f2.clone(),
                    l2.clone(),
                    attempts.clone(),
                );
                tokio::spawn(async move {
                    let _ = handle(sock, backend, plan, faults, log, attempts).await;
                });
            }
        });
        Server {
            addr,
            faults,
            log,
            rt: Some(rt),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every logged request as `METHOD target`, oldest first; clears the log.
    pub fn take_log(&self) -> Vec<String> {
        let mut log = self.log.lock().unwrap();
        let out = log.iter().map(|(m, t, _)| format!("{m} {t}")).collect();
        log.clear();
        out
    }

    /// Requests seen whose target contains `needle`.
    pub fn count(&self, method: &str, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, t, _)| m == method && t.contains(needle))
            .count()
    }
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = buf[head_end + 4..].to_vec();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let expect_continue = get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expect_continue {
        sock.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        loop {
            while find(&rest, b"\r\n").is_none() {
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    return Ok(None);
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            let le = find(&rest, b"\r\n").unwrap();
            let size_text = String::from_utf8_lossy(&rest[..le]).into_owned();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
            while rest.len() < le + 2 + size + 2 {
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    return Ok(None);
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            out.extend_from_slice(&rest[le + 2..le + 2 + size]);
            rest.drain(..le + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
        out
    } else {
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = sock.read(&mut tmp).await?;
            if n == 0 {
                return Ok(None);
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes `%XX` escapes.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response(status: u16, extra: &[(&str, String)], body: &[u8], head_only: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    if !head_only {
        r.extend_from_slice(body);
    }
    r
}

async fn backend_response(backend: &Backend, req: &Request) -> std::io::Result<Vec<u8>> {
    match backend {
        Backend::Dir(root) => {
            let path = req.path();
            if path.split('/').any(|c| c == "..") {
                return Ok(response(400, &[], b"bad path", false));
            }
            let file = root.join(path.trim_start_matches('/'));
            if let Some(reply) = reservoir_emulation(root, req, &path).await {
                return Ok(reply);
            }
            match req.method.as_str() {
                "GET" | "HEAD" => match tokio::fs::read(&file).await {
                    Ok(bytes) if file.is_file() => Ok(response(
                        200,
                        &[("Content-Type", "application/octet-stream".into())],
                        &bytes,
                        req.method == "HEAD",
                    )),
                    _ => Ok(response(404, &[], b"not found", req.method == "HEAD")),
                },
                "PUT" => {
                    if let Some(parent) = file.parent() {
                        tokio::fs::create_dir_all(parent).await?;
                    }
                    tokio::fs::write(&file, &req.body).await?;
                    Ok(response(200, &[], b"", false))
                }
                _ => Ok(response(405, &[], b"method not allowed", false)),
            }
        }
        Backend::Blackhole => Ok(Vec::new()),
        Backend::Proxy(up) => {
            let mut s = TcpStream::connect(up).await?;
            let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
            for (k, v) in &req.headers {
                if matches!(
                    k.as_str(),
                    "connection" | "transfer-encoding" | "content-length" | "expect"
                ) {
                    continue;
                }
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str(&format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                req.body.len()
            ));
            s.write_all(head.as_bytes()).await?;
            s.write_all(&req.body).await?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await?;
            Ok(out)
        }
    }
}

/// Reservoir's API over a directory, for conformance tests (the logged request paths are what
/// the tests assert): `GET …/build-outputs?rev=R…` serves `<path>/R.jsonl`; `POST …/artifacts`
/// with a JSON array of hashes answers `{"data":[…]}` with `http://<Host><path>/<hash>.art`
/// for each, which `GET` then serves from the directory like any file.
async fn reservoir_emulation(root: &Path, req: &Request, path: &str) -> Option<Vec<u8>> {
    if req.method == "GET" && path.ends_with("/build-outputs") {
        let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let rev = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("rev="))
            .map(percent_decode)
            .unwrap_or_default();
        if rev.is_empty() || rev.contains('/') {
            return Some(response(400, &[], b"bad rev", false));
        }
        let file = root
            .join(path.trim_start_matches('/'))
            .join(format!("{rev}.jsonl"));
        return Some(match tokio::fs::read(&file).await {
            Ok(bytes) => response(
                200,
                &[(
                    "Content-Type",
                    "application/vnd.reservoir.outputs+json-lines".into(),
                )],
                &bytes,
                false,
            ),
            Err(_) => response(404, &[], b"not found", false),
        });
    }
    if req.method == "POST" && path.ends_with("/artifacts") {
        let Ok(hashes) = serde_json::from_slice::<Vec<String>>(&req.body) else {
            return Some(response(400, &[], b"expected a JSON array", false));
        };
        let host = req.header("host").unwrap_or("127.0.0.1");
        let urls: Vec<String> = hashes
            .iter()
            .map(|h| format!("http://{host}{path}/{h}.art"))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "data": urls })).unwrap();
        return Some(response(
            200,
            &[("Content-Type", "application/json".into())],
            &body,
            false,
        ));
    }
    None
}

async fn handle(
    mut sock: TcpStream,
    backend: Backend,
    plan: Plan,
    faults: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<(String, String, Fault)>>>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
) -> std::io::Result<()> {
    if let Backend::Blackhole = backend {
        tokio::time::sleep(Duration::from_secs(120)).await;
        return Ok(());
    }
    let Some(req) = read_request(&mut sock).await? else {
        return Ok(());
    };
    let attempt = {
        let mut a = attempts.lock().unwrap();
        let n = a
            .entry(format!("{} {}", req.method, req.target))
            .or_insert(0);
        *n += 1;
        *n
    };
    // A plan may block (a test holds one request until something else has happened), so it
    // runs off the worker: the tasks queued on this worker, other connections among them,
    // move on to another thread instead of waiting behind it.
    let fault = tokio::task::block_in_place(|| plan(&req, attempt));
    log.lock()
        .unwrap()
        .push((req.method.clone(), req.target.clone(), fault.clone()));
    if fault != Fault::None {
        faults.fetch_add(1, Ordering::Relaxed);
    }
    let head_only = req.method == "HEAD";
    match fault {
        Fault::Reset => {
            #[allow(deprecated)]
            sock.set_linger(Some(Duration::ZERO))?;
            drop(sock);
            return Ok(());
        }
        Fault::Status(s) => {
            sock.write_all(&response(s, &[], b"injected failure", head_only))
                .await?;
        }
        Fault::TooMany(secs) => {
            sock.write_all(&response(
                429,
                &[("Retry-After", secs.to_string())],
                b"slow down",
                head_only,
            ))
            .await?;
        }
        Fault::Reply(s, ct, body) => {
            sock.write_all(&response(s, &[("Content-Type", ct)], &body, head_only))
                .await?;
        }
        other => {
            let full = backend_response(&backend, &req).await?;
            let split = find(&full, b"\r\n\r\n")
                .map(|p| p + 4)
                .unwrap_or(full.len());
            let (head, body) = full.split_at(split);
            match other {
                Fault::Truncate => {
                    sock.write_all(head).await?;
                    sock.write_all(&body[..body.len() / 2]).await?;
                }
                Fault::Stall(d) => {
                    sock.write_all(head).await?;
                    sock.write_all(&body[..body.len() / 2]).await?;
                    sock.flush().await?;
                    tokio::time::sleep(d).await;
                }
                Fault::Chunked => {
                    let head = String::from_utf8_lossy(head).into_owned();
                    let mut h = String::new();
                    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
                        if !line.to_ascii_lowercase().starts_with("content-length") {
                            h.push_str(line);
                            h.push_str("\r\n");
                        }
                    }
                    h.push_str("Transfer-Encoding: chunked\r\n\r\n");
                    sock.write_all(h.as_bytes()).await?;
                    for c in body.chunks(1000) {
                        sock.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                            .await?;
                        sock.write_all(c).await?;
                        sock.write_all(b"\r\n").await?;
                    }
                    sock.write_all(b"0\r\n\r\n").await?;
                }
                Fault::Corrupt => {
                    let mut b = body.to_vec();
                    if let Some(x) = b.first_mut() {
                        *x ^= 0xff;
                    }
                    sock.write_all(head).await?;
                    sock.write_all(&b).await?;
                }
                _ => sock.write_all(&full).await?,
            }
        }
    }
    let _ = sock.shutdown().await;
    Ok(())
}
