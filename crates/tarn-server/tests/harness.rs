//! The in-process harness: a `tarn serve` request handler ([`tarn_server::Handler`]) on
//! local storage in a fresh temporary directory, requests built and signed here, replies
//! read back, and the objects the server stored.
//!
//! Requests never touch a socket: [`Server::send`] calls the handler the way a connection
//! task does. A [`Case`] is one row of a table — request in, status, S3 error code, reply
//! text and objects stored out — and [`Server::check`] runs a table in order, reporting
//! every row that failed (by name), not only the first.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use tarn_core::sigv4::{sha256_hex, AmzDate, Credentials, SimpleRequest};
use tarn_server::config::ServerConfig;
use tarn_server::gc::{GcPolicy, GcReport, ScrubReport};

/// The `Host` header of every request (and of every signature).
pub(crate) const HOST: &str = "127.0.0.1:9000";

/// The two keys most cases use: `ci` may write `main/*`, `fork` may write `forks/*`
/// (`[[key]]` tables; put them after a configuration's top-level settings).
pub(crate) const CI_AND_FORK_KEYS: &str = r#"[[key]]
id = "ci"
secret = "ci-secret"
write = ["main/*"]

[[key]]
id = "fork"
secret = "fork-secret"
write = ["forks/*"]
"#;

/// A `[[key]]` table: `id` with the secret `<id>-secret`, writing the scopes `write` and
/// administering `admin` (scope patterns such as `main/*`; none: no `admin` line).
pub(crate) fn key(id: &str, write: &[&str], admin: &[&str]) -> String {
    let list = |scopes: &[&str]| {
        let quoted: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut table = format!(
        "[[key]]\nid = \"{id}\"\nsecret = \"{id}-secret\"\nwrite = {}\n",
        list(write)
    );
    if !admin.is_empty() {
        table.push_str(&format!("admin = {}\n", list(admin)));
    }
    table
}

/// A `[storage]` table for the real S3 server `s3` reached at `endpoint` (its own, or a
/// proxy in front of it) under `prefix`, then a `ci` key that writes and administers every
/// scope; `top` holds top-level settings, which must come before the tables.
pub(crate) fn s3_storage_with_ci_key(
    top: &str,
    endpoint: &str,
    s3: &tarn_test::S3,
    prefix: &str,
) -> String {
    format!(
        r#"{top}[storage]
kind = "s3"
endpoint = "{endpoint}"
bucket = "{}"
region = "{}"
prefix = "{prefix}"
access_key = "{}"
secret_key = "{}"

[[key]]
id = "ci"
secret = "ci-secret"
write = ["*"]
admin = ["*"]
"#,
        s3.bucket, s3.region, s3.access_key, s3.secret_key
    )
}

/// A server under test: the handler, its runtime and its data directory.
pub(crate) struct Server {
    handler: Arc<tarn_server::Handler>,
    rt: tokio::runtime::Runtime,
    cfg: ServerConfig,
    data: PathBuf,
    tmp: tempfile::TempDir,
}

impl Server {
    /// A server configured by `toml` (a `tarn serve --config` file; the harness adds
    /// `data = "<temp>/data"` at the top, so `toml` must not set `data`).
    pub(crate) fn start(toml: &str) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let text = format!("data = \"{}\"\n{toml}", data.display());
        // As parsed: the handler reads the `[[signed]]` trusted-key files itself.
        let cfg = ServerConfig::parse(&text)
            .unwrap_or_else(|e| panic!("the test's configuration: {e}\n{text}"));
        Server::with_config(cfg, tmp)
    }

    /// A server with `cfg` as given (its `data` should lie inside `tmp`, which lives as long
    /// as the server).
    pub(crate) fn with_config(cfg: ServerConfig, tmp: tempfile::TempDir) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = cfg.data.clone().unwrap_or_else(|| tmp.path().join("data"));
        let handler = rt
            .block_on(tarn_server::Handler::new(cfg.clone()))
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("the handler did not start: {e}"));
        Server {
            handler,
            rt,
            cfg,
            data,
            tmp,
        }
    }

    /// The same configuration and data directory in a new handler, as after a restart of
    /// `tarn serve` (in-memory state gone, storage and the status journal kept).
    pub(crate) fn restart(self) -> Server {
        let Server { cfg, tmp, .. } = self;
        Server::with_config(cfg, tmp)
    }

    /// Runs GC as `tarn serve gc` does: another instance opened for maintenance on the same
    /// storage.
    pub(crate) fn gc(&self, policy: GcPolicy) -> GcReport {
        let app = tarn_server::App::for_maintenance(self.cfg.clone()).unwrap();
        self.rt
            .block_on(tarn_server::gc::run_gc(&app, policy))
            .unwrap()
    }

    /// Runs a scrub as `tarn serve scrub` does (without repair).
    pub(crate) fn scrub(&self) -> ScrubReport {
        self.try_scrub().unwrap_or_else(|e| panic!("scrub: {e}"))
    }

    /// Runs GC as `tarn serve gc` does with the configuration's `[gc]` policy; an error
    /// as `tarn` prints it (the message, then each cause).
    pub(crate) fn try_gc(&self) -> Result<GcReport, String> {
        let gc = &self.cfg.gc;
        let policy = GcPolicy {
            keep_revs: gc.keep_revs,
            keep_days: gc.keep_days,
            grace_hours: gc.grace_hours,
            dry_run: false,
        };
        let app = tarn_server::App::for_maintenance(self.cfg.clone()).map_err(|e| chain(&e))?;
        self.rt
            .block_on(tarn_server::gc::run_gc(&app, policy))
            .map_err(|e| chain(&e))
    }

    /// Runs a scrub as `tarn serve scrub` does (without repair); an error as `tarn` prints
    /// it.
    pub(crate) fn try_scrub(&self) -> Result<ScrubReport, String> {
        let app = tarn_server::App::for_maintenance(self.cfg.clone()).map_err(|e| chain(&e))?;
        self.rt
            .block_on(tarn_server::gc::scrub(&app, false))
            .map_err(|e| chain(&e))
    }

    /// The data directory.
    pub(crate) fn data(&self) -> &Path {
        &self.data
    }

    /// A scratch directory beside the data directory, removed with the server.
    pub(crate) fn scratch(&self) -> &Path {
        self.tmp.path()
    }

    /// Sends one request and reads the whole reply.
    pub(crate) fn send(&self, req: Req) -> Reply {
        self.rt.block_on(self.send_async(req))
    }

    /// Serves the handler over HTTP/1.1 on 127.0.0.1 at a free port, for a peer that can
    /// only talk through a socket (a browser); returns `http://127.0.0.1:PORT`. A plain
    /// hyper connection loop: the listener's own limits are tested through the binary.
    pub(crate) fn listen(&self) -> String {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handler = self.handler.clone();
        self.rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let reply = handler.handle(req.map(Body::new)).await;
                                Ok::<_, std::convert::Infallible>(reply)
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        url
    }

    /// Sends `req` and reads its reply's body as it comes: the status, the bytes received,
    /// and how the body ended (`Err` with the cause when it broke off, as a stalled
    /// download does).
    pub(crate) fn send_streamed(&self, req: Req) -> (u16, usize, Result<(), String>) {
        use futures_util::StreamExt;
        self.rt.block_on(async {
            let resp = answer(&self.handler, req).await;
            let status = resp.status().as_u16();
            let mut body = resp.into_body().into_data_stream();
            let mut received = 0;
            while let Some(piece) = body.next().await {
                match piece {
                    Ok(bytes) => received += bytes.len(),
                    Err(e) => return (status, received, Err(chain(&e))),
                }
            }
            (status, received, Ok(()))
        })
    }

    /// Sends `req` with `body` in place of its own (a stream the test controls, e.g. one
    /// that counts what the server pulls); `req` says the headers, `Content-Length` included.
    pub(crate) fn send_with_body(&self, req: Req, body: Body) -> Reply {
        let (parts, _) = req.build().into_parts();
        let resp = self
            .rt
            .block_on(self.handler.handle(Request::from_parts(parts, body)));
        self.rt.block_on(Reply::read(resp))
    }

    /// Sends `reqs` at once (their futures polled together, as concurrent connections'
    /// requests are) and returns the replies in order.
    pub(crate) fn send_concurrently(&self, reqs: Vec<Req>) -> Vec<Reply> {
        self.rt.block_on(futures_util::future::join_all(
            reqs.into_iter().map(|r| self.send_async(r)),
        ))
    }

    /// Starts sending `req` on the server's runtime and returns at once (the reply is
    /// read whole when it comes; drop or abort the handle to give the request up).
    pub(crate) fn spawn(&self, req: Req) -> tokio::task::JoinHandle<u16> {
        let handler = self.handler.clone();
        self.rt
            .spawn(async move { answer(&handler, req).await.status().as_u16() })
    }

    /// Runs `fut` on the server's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Sends one request and reads the whole reply, on the caller's runtime.
    pub(crate) async fn send_async(&self, req: Req) -> Reply {
        Reply::read(answer(&self.handler, req).await).await
    }

    /// Every object stored under the data directory (relative paths, sorted; spool, key and
    /// status files left out).
    pub(crate) fn stored(&self) -> Vec<String> {
        tarn_test::stored_files(&self.data)
    }

    /// The upload bodies being spooled now (files in the `.tarn-spool*` directories of the
    /// data directory).
    pub(crate) fn spool_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.data)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(".tarn-spool") {
                for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    out.push(f.path());
                }
            }
        }
        out
    }

    /// The bytes of the stored object at `rel` (`a0/scope/<hash>.art`), if any.
    pub(crate) fn object(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.data.join(rel)).ok()
    }

    /// One Prometheus sample of `/metrics` (summed over the label sets containing `labels`).
    pub(crate) fn metric(&self, name: &str, labels: &str) -> u64 {
        let text = self.send(Req::get("/metrics")).text();
        tarn_test::metric_sample(&text, name, labels)
    }

    /// Runs `cases` in order; panics listing every case that failed.
    pub(crate) fn check(&self, cases: Vec<Case>) {
        let mut failed = Vec::new();
        for case in cases {
            let before = self.stored();
            let reply = self.send(case.req);
            let after = self.stored();
            let added: Vec<String> = after
                .iter()
                .filter(|p| !before.contains(p))
                .cloned()
                .collect();
            let removed: Vec<String> = before
                .iter()
                .filter(|p| !after.contains(p))
                .cloned()
                .collect();
            let mut wrong = Vec::new();
            if reply.status != case.status {
                wrong.push(format!("status {} (want {})", reply.status, case.status));
            }
            if let Some(code) = case.code {
                if reply.code().as_deref() != Some(code) {
                    wrong.push(format!("S3 error code {:?} (want {code})", reply.code()));
                }
            }
            for s in &case.contains {
                if !reply.text().contains(s.as_str()) {
                    wrong.push(format!("reply lacks {s:?}"));
                }
            }
            for s in &case.lacks {
                if reply.text().contains(s.as_str()) {
                    wrong.push(format!("reply contains {s:?}"));
                }
            }
            // A refusal never stores anything; otherwise the case says what it stores.
            let want_added = match (&case.stores, case.status >= 400) {
                (Some(s), _) => Some(s.clone()),
                (None, true) => Some(Vec::new()),
                (None, false) => None,
            };
            if let Some(mut want) = want_added {
                want.sort();
                if added != want {
                    wrong.push(format!("stored {added:?} (want {want:?})"));
                }
            }
            if !removed.is_empty() && !case.removes {
                wrong.push(format!("removed {removed:?}"));
            }
            if !wrong.is_empty() {
                failed.push(format!(
                    "case {:?}: {}\n    reply: {}",
                    case.name,
                    wrong.join("; "),
                    reply.text().chars().take(400).collect::<String>()
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "{} case(s) failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
}

/// Hands `req` to the handler, from its peer address if it has one.
async fn answer(handler: &tarn_server::Handler, req: Req) -> axum::http::Response<Body> {
    match req.peer {
        Some(peer) => handler.handle_from(peer, req.build()).await,
        None => handler.handle(req.build()).await,
    }
}

/// An error and its causes, one after the other, as `tarn` prints them.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!("\n  caused by: {c}"));
        cause = c.source();
    }
    text
}

/// A request to send: method, path with query, headers, body; anonymous unless
/// [`Req::signed`].
#[derive(Debug, Clone)]
pub(crate) struct Req {
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    key: Option<String>,
    payload_hash: Option<String>,
    signed_at: Option<u64>,
    content_length: bool,
    host: Option<String>,
    stall_after: Option<usize>,
    trickle: Option<(usize, usize, Duration)>,
    peer: Option<IpAddr>,
}

impl Req {
    /// A request with `method` for `target` (path and query as sent on the wire).
    pub(crate) fn new(method: Method, target: &str) -> Req {
        Req {
            method,
            target: target.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            key: None,
            payload_hash: None,
            signed_at: None,
            content_length: true,
            host: None,
            stall_after: None,
            trickle: None,
            peer: None,
        }
    }

    /// `GET target`.
    pub(crate) fn get(target: &str) -> Req {
        Req::new(Method::GET, target)
    }

    /// `HEAD target`.
    pub(crate) fn head(target: &str) -> Req {
        Req::new(Method::HEAD, target)
    }

    /// `PUT target` with `body`.
    pub(crate) fn put(target: &str, body: impl Into<Vec<u8>>) -> Req {
        Req::new(Method::PUT, target).body(body)
    }

    /// `POST target` with `body`.
    pub(crate) fn post(target: &str, body: impl Into<Vec<u8>>) -> Req {
        Req::new(Method::POST, target).body(body)
    }

    /// `DELETE target`.
    pub(crate) fn delete(target: &str) -> Req {
        Req::new(Method::DELETE, target)
    }

    /// The body (sent with its `Content-Length`).
    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sends this `Host` header instead of [`HOST`] (signatures still name [`HOST`]).
    pub(crate) fn host(mut self, host: &str) -> Req {
        self.host = Some(host.to_string());
        self
    }

    /// Sends only the body's first `n` bytes, then nothing more while the request lives
    /// (a client trickling or stalling its upload; headers announce the whole body).
    pub(crate) fn stalled_after(mut self, n: usize) -> Req {
        self.stall_after = Some(n);
        self
    }

    /// Sends the body's first `first` bytes at once, then `piece` bytes every `every` until
    /// it is all sent (a client trickling its upload; headers announce the whole body).
    pub(crate) fn trickled(mut self, first: usize, piece: usize, every: Duration) -> Req {
        self.trickle = Some((first, piece.max(1), every));
        self
    }

    /// Comes from a connection of `ip` (an IPv4 or IPv6 address), as the listener tells the
    /// handler; without it the request has no peer address.
    pub(crate) fn by_peer(mut self, ip: &str) -> Req {
        self.peer = Some(ip.parse().expect("an IP address"));
        self
    }

    /// Sends no `Content-Length` header.
    pub(crate) fn without_content_length(mut self) -> Req {
        self.content_length = false;
        self
    }

    /// Signs with SigV4 as tarn's client does (`x-amz-content-sha256` = the body's SHA-256,
    /// region `auto`) with `key` = `id:secret`.
    pub(crate) fn signed(mut self, key: &str) -> Req {
        self.key = Some(key.to_string());
        self
    }

    /// Signs with `key`, declaring and signing `payload_hash` instead of the body's SHA-256
    /// (`UNSIGNED-PAYLOAD`, or a wrong hash).
    pub(crate) fn signed_with_payload(mut self, key: &str, payload_hash: &str) -> Req {
        self.key = Some(key.to_string());
        self.payload_hash = Some(payload_hash.to_string());
        self
    }

    /// Signs with `key` as if at `unix_secs` (a clock far off the server's).
    pub(crate) fn signed_at(mut self, key: &str, unix_secs: u64) -> Req {
        self.key = Some(key.to_string());
        self.signed_at = Some(unix_secs);
        self
    }

    fn build(self) -> Request<Body> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(&self.target)
            .header("host", self.host.as_deref().unwrap_or(HOST));
        if self.content_length
            && (!self.body.is_empty() || matches!(self.method, Method::PUT | Method::POST))
        {
            b = b.header("content-length", self.body.len().to_string());
        }
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(key) = &self.key {
            let creds = Credentials::parse(key).expect("a key is id:secret");
            let (path, query) = self
                .target
                .split_once('?')
                .unwrap_or((self.target.as_str(), ""));
            let payload = self
                .payload_hash
                .clone()
                .unwrap_or_else(|| sha256_hex(&self.body));
            let now = self.signed_at.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            });
            let signed = SimpleRequest {
                method: self.method.as_str(),
                host: HOST,
                path,
                query,
                payload_hash: &payload,
            }
            .sign(&creds, "auto", &AmzDate::from_unix(now));
            for (k, v) in signed {
                b = b.header(k, v);
            }
        }
        let body = match (self.stall_after, self.trickle) {
            (None, Some((first, piece, every))) => {
                let pieces = futures_util::stream::unfold(
                    (self.body, 0usize),
                    move |(body, sent)| async move {
                        if sent >= body.len() {
                            return None;
                        }
                        let n = if sent == 0 && first > 0 {
                            first
                        } else {
                            if sent > 0 || first == 0 {
                                tokio::time::sleep(every).await;
                            }
                            piece
                        };
                        let end = (sent + n).min(body.len());
                        let chunk = body[sent..end].to_vec();
                        Some((Ok::<_, std::io::Error>(chunk), (body, end)))
                    },
                );
                Body::from_stream(pieces)
            }
            (None, None) => Body::from(self.body),
            (Some(n), _) => {
                use futures_util::StreamExt;
                let first = self.body[..n.min(self.body.len())].to_vec();
                let sent = futures_util::stream::iter([Ok::<_, std::io::Error>(first)]);
                Body::from_stream(sent.chain(futures_util::stream::pending()))
            }
        };
        b.body(body).expect("a well-formed request")
    }
}

/// A reply, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    async fn read(resp: axum::http::Response<Body>) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("reply body")
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The S3 error code (`<Code>…</Code>`), if the body is an S3 error.
    pub(crate) fn code(&self) -> Option<String> {
        let t = self.text();
        let start = t.find("<Code>")? + "<Code>".len();
        let end = t[start..].find("</Code>")? + start;
        Some(t[start..end].to_string())
    }

    /// The body as JSON (panics with the body when it is not).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// One header's value, if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(HeaderName::from_bytes(name.as_bytes()).ok()?)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    }
}

/// One row of a table: a request and what must come of it.
pub(crate) struct Case {
    name: String,
    req: Req,
    status: u16,
    code: Option<&'static str>,
    contains: Vec<String>,
    lacks: Vec<String>,
    stores: Option<Vec<String>>,
    removes: bool,
}

impl Case {
    /// `req`, expected to get `status`. A refusal (4xx, 5xx) must store nothing; a success
    /// is not checked for stored objects unless [`Case::stores`] says what it stores.
    pub(crate) fn new(name: impl Into<String>, req: Req, status: u16) -> Case {
        Case {
            name: name.into(),
            req,
            status,
            code: None,
            contains: Vec::new(),
            lacks: Vec::new(),
            stores: None,
            removes: false,
        }
    }

    /// The reply is an S3 error with this `<Code>`.
    pub(crate) fn code(mut self, code: &'static str) -> Case {
        self.code = Some(code);
        self
    }

    /// The reply's body contains `text`.
    pub(crate) fn contains(mut self, text: impl Into<String>) -> Case {
        self.contains.push(text.into());
        self
    }

    /// The reply's body does not contain `text`.
    pub(crate) fn lacks(mut self, text: impl Into<String>) -> Case {
        self.lacks.push(text.into());
        self
    }

    /// The request adds exactly these objects (paths relative to the data directory).
    pub(crate) fn stores<S: AsRef<str>>(mut self, objects: &[S]) -> Case {
        self.stores = Some(objects.iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// The request may remove objects (a DELETE).
    pub(crate) fn removes(mut self) -> Case {
        self.removes = true;
        self
    }
}
