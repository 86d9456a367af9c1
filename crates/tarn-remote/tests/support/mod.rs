//! Test support shared by tarn-remote's and tarn-cli's remote tests (tarn-cli includes this
//! file with `#[path]`): a small HTTP/1.1 server on 127.0.0.1 written on raw tokio sockets, so
//! that faults can be injected byte by byte. It serves a directory (anonymous reads, like a
//! public bucket) or forwards to an upstream server (a fault-injecting proxy in front of
//! s3s-fs; the `Host` header is passed through so SigV4 signatures stay valid). Plus fixture
//! helpers and the S3 environment of `scripts/test.sh`.
#![allow(dead_code)]

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
    let fault = plan(&req, attempt);
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

// ---------------------------------------------------------------------------------------
// Fixtures

/// Deterministic pseudo-random bytes.
pub fn bytes_for(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One generated artifact.
#[derive(Debug, Clone)]
pub struct Art {
    /// Local file name `<hash>.<ext>`.
    pub file_name: String,
    /// Hex hash.
    pub hash: String,
    /// Content.
    pub content: Vec<u8>,
}

/// `n` artifacts with varied sizes and extensions, deterministic per `seed`.
pub fn artifacts(n: usize, seed: u64) -> Vec<Art> {
    const EXTS: [&str; 5] = ["olean", "ilean", "c", "ltar", "olean.server"];
    (0..n)
        .map(|i| {
            let s = seed * 1_000_003 + i as u64;
            let len = 1 + (s as usize * 7919) % 6000;
            let content = bytes_for(s, len);
            let hash = tarn_core::Hash::of_bytes(&content).hex();
            Art {
                file_name: format!("{hash}.{}", EXTS[i % EXTS.len()]),
                hash,
                content,
            }
        })
        .collect()
}

/// A mapping file (G3 header) with one entry per artifact, input hashes derived from `seed`.
pub fn mappings(arts: &[Art], seed: u64) -> Vec<u8> {
    let mut out = b"\"2026-03-17\"\n".to_vec();
    for (i, a) in arts.iter().enumerate() {
        let input = tarn_core::Hash::of_bytes(format!("input {seed} {i}").as_bytes()).hex();
        out.extend_from_slice(format!("[\"{input}\",\"{}\"]\n", a.file_name).as_bytes());
    }
    out
}

/// Writes a staging directory: the artifacts plus `outputs.jsonl`.
pub fn write_staging(dir: &Path, arts: &[Art], seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for a in arts {
        std::fs::write(dir.join(&a.file_name), &a.content).unwrap();
    }
    std::fs::write(dir.join("outputs.jsonl"), mappings(arts, seed)).unwrap();
}

/// Writes artifacts into a bucket-like tree as a service would hold them:
/// `<root>/<artifact_prefix>/<hash>.art`.
pub fn write_remote_artifacts(root: &Path, artifact_prefix: &str, arts: &[Art]) {
    let dir = root.join(artifact_prefix);
    std::fs::create_dir_all(&dir).unwrap();
    for a in arts {
        std::fs::write(dir.join(format!("{}.art", a.hash)), &a.content).unwrap();
    }
}

/// Checks that `cache/artifacts` holds every artifact with the right content hash, and returns
/// the names that are missing or wrong.
pub fn check_cache(cache: &Path, arts: &[Art]) -> Vec<String> {
    arts.iter()
        .filter(|a| {
            let p = cache.join("artifacts").join(&a.file_name);
            match std::fs::read(&p) {
                Ok(b) => tarn_core::Hash::of_bytes(&b).hex() != a.hash,
                Err(_) => true,
            }
        })
        .map(|a| a.file_name.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The real S3 server (scripts/test.sh)

/// The s3s-fs server started by `scripts/test.sh`.
#[derive(Debug, Clone)]
pub struct S3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret.
    pub secret_key: String,
    /// Region the server expects.
    pub region: String,
    /// `$S3_STATE_DIR/data` (s3s-fs stores objects as plain files there), if known.
    pub data_dir: Option<PathBuf>,
}

impl S3 {
    /// Reads the environment; fails (never skips) when the server is not configured.
    pub fn from_env() -> S3 {
        if std::env::var("TARN_TEST_S3").ok().as_deref() != Some("1") {
            panic!(
                "this test needs the real S3 server (s3s-fs): run scripts/test.sh, or start \
                 scripts/s3-test-server.sh, source its env file and export TARN_TEST_S3=1"
            );
        }
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        S3 {
            endpoint: var("S3_ENDPOINT"),
            bucket: var("S3_BUCKET"),
            access_key: var("S3_ACCESS_KEY"),
            secret_key: var("S3_SECRET_KEY"),
            region: var("S3_REGION"),
            data_dir: std::env::var("S3_STATE_DIR")
                .ok()
                .map(|d| PathBuf::from(d).join("data")),
        }
    }

    /// `id:secret`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.access_key, self.secret_key)
    }

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("S3_ENDPOINT is http://IP:PORT")
    }
}

/// A prefix unique to this test run, so tests can share one bucket.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Writes a system configuration with one S3 service.
pub fn write_s3_config(path: &Path, name: &str, artifact_endpoint: &str, revision_endpoint: &str) {
    std::fs::write(
        path,
        format!(
            "[[cache.service]]\nname = \"{name}\"\nkind = \"s3\"\nartifactEndpoint = \"{artifact_endpoint}\"\nrevisionEndpoint = \"{revision_endpoint}\"\n"
        ),
    )
    .unwrap();
}

/// A `tarn` command with a clean environment: no Lake or tarn variables from the caller,
/// `HOME` and `LAKE_CONFIG` pointing into `home`.
pub fn tarn_cmd(bin: &Path, home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("LAKE_")
            || k.starts_with("TARN_")
            || k.starts_with("RESERVOIR_")
            || k.starts_with("ELAN")
        {
            c.env_remove(&k);
        }
    }
    c.env("HOME", home)
        .env("LAKE_CONFIG", home.join("config.toml"))
        .env("TARN_RETRY_BASE_MS", "10")
        .env("TARN_RETRY_MAX_MS", "100");
    c
}

/// Runs a command, returning (exit code, stdout, stderr).
pub fn run(c: &mut std::process::Command) -> (i32, String, String) {
    let out = c.output().expect("spawn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `git` in `dir`, panicking on failure; returns stdout trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A package directory that is a git repository with `commits` commits (newest last in the
/// returned list); `lakefile.toml` names the package `name`.
pub fn git_package(dir: &Path, name: &str, commits: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("lakefile.toml"), format!("name = \"{name}\"\n")).unwrap();
    let mut revs = Vec::new();
    for i in 0..commits {
        std::fs::write(dir.join("file.txt"), format!("{i}\n")).unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", &format!("c{i}")]);
        revs.push(git(dir, &["rev-parse", "HEAD"]));
    }
    revs
}
