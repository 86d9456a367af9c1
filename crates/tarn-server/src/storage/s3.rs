//! S3 backend: a small SigV4-signed, path-style client (reqwest). Each upload is a single
//! PUT of a complete, already validated spool file, so the bucket never holds a partial
//! object; replicas keep no state of their own.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, StatusCode};
use tarn_core::sigv4::{self, AmzDate, Credentials, SimpleRequest, UNSIGNED_PAYLOAD};
use tarn_core::uri_encode;
use tarn_core::{MAX_ERROR_BODY_BYTES, MAX_S3_LISTING_PAGE_BYTES};
use tarn_remote::{BodyBounds, BodyError, BoundedBody, Capped, RateClock};

use super::{Listed, Object, ObjectBody, ObjectMeta, PutMode, PutOutcome, Spool};

/// Connection settings of the S3 backend.
#[derive(Debug, Clone)]
pub(crate) struct S3Settings {
    /// e.g. `http://127.0.0.1:9000` (no trailing `/`).
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// SigV4 region.
    pub region: String,
    /// Credentials.
    pub creds: Credentials,
    /// Key prefix inside the bucket (`""` or ending in `/`).
    pub prefix: String,
    /// Time and count bounds on the bucket's replies.
    pub bounds: S3Bounds,
}

/// How long the bucket may take and how much a listing may hold (`[storage]` in
/// `serve.toml`): the bucket is trusted for availability, never for size or time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct S3Bounds {
    /// Status and headers of every request, and the whole of a small reply.
    pub request_timeout: Duration,
    /// Longest pause in an object body; also when its average rate starts to count.
    pub stall_timeout: Duration,
    /// Slowest average rate of an object body (after `stall_timeout`) and of a PUT body.
    pub min_rate: u64,
    /// Most keys one listing collects (and at most one page per 100 of them).
    pub max_listing_keys: u64,
}

impl Default for S3Bounds {
    fn default() -> Self {
        S3Bounds {
            request_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(30),
            min_rate: 1024,
            max_listing_keys: 5_000_000,
        }
    }
}

/// An S3 bucket as storage.
pub(crate) struct S3Store {
    s: S3Settings,
    http: reqwest::Client,
    host: String,
    base_path: String,
    spool: Option<PathBuf>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn parse_http_date(v: Option<&reqwest::header::HeaderValue>) -> SystemTime {
    v.and_then(|v| v.to_str().ok())
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .unwrap_or(UNIX_EPOCH)
}

/// `2026-11-25T10:01:10.000Z` → time (the epoch when unreadable).
fn parse_iso(s: &str) -> SystemTime {
    tarn_core::s3_listing::parse_iso_time(s)
        .map(|t| UNIX_EPOCH + Duration::from_secs(t))
        .unwrap_or(UNIX_EPOCH)
}

/// Reads `body`, never holding more than `limit` bytes: a body announcing more is not
/// read at all, a longer one is abandoned at the limit (the shared
/// [`tarn_remote::read_capped`]); errors name the bucket and the request.
pub(crate) async fn read_capped(body: RemoteBody, limit: u64) -> io::Result<Capped> {
    let RemoteBody { inner, what } = body;
    tarn_remote::read_capped(inner, limit)
        .await
        .map_err(|e| describe(&what, e))
}

/// An object body streamed from the bucket, bounded in time by the shared
/// [`BoundedBody`]: an error after `stall_timeout` without a byte, or once the average
/// rate is below `min_rate` after the body has been arriving for `stall_timeout`. Only the
/// time spent waiting for the bucket counts ([`RateClock::Waiting`]): a reader that pauses
/// (a slow client downstream) does not make the bucket slow. Errors name the bucket and
/// the request.
pub(crate) struct RemoteBody {
    inner: BoundedBody,
    what: String,
}

impl RemoteBody {
    fn new(resp: reqwest::Response, what: String, bounds: &S3Bounds) -> RemoteBody {
        let bounds = BodyBounds {
            stall: bounds.stall_timeout,
            min_rate: bounds.min_rate,
            grace: bounds.stall_timeout,
            deadline: None,
            clock: RateClock::Waiting,
        };
        RemoteBody {
            inner: BoundedBody::new(resp, bounds),
            what,
        }
    }

    /// The length the bucket announced, if any.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.inner.content_length
    }
}

/// `e` as an I/O error naming `what` and the setting that cut the body off.
fn describe(what: &str, e: BodyError) -> io::Error {
    match e {
        BodyError::Stalled(stall) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what}: no byte for {} s (storage.stall_timeout_secs)",
                stall.as_secs()
            ),
        ),
        BodyError::TooSlow {
            got,
            secs,
            min_rate,
        } => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what}: too slow: {got} bytes in {secs:.0} s, below the minimum of \
                 {min_rate} bytes/s (storage.min_rate_bytes)"
            ),
        ),
        BodyError::Deadline(_) | BodyError::Network(_) => other(format!("{what}: {e}")),
    }
}

impl Stream for RemoteBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(describe(&this.what, e)))),
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl S3Store {
    /// A client for `s`; upload spool files go to `spool` (created here); without one
    /// (maintenance: `gc`, `scrub`) uploads cannot be accepted.
    pub(crate) fn new(mut s: S3Settings, spool: Option<&Path>) -> io::Result<S3Store> {
        if let Some(spool) = spool {
            std::fs::create_dir_all(spool)?;
        }
        s.endpoint = s.endpoint.trim_end_matches('/').to_string();
        if !s.prefix.is_empty() && !s.prefix.ends_with('/') {
            s.prefix.push('/');
        }
        let url = reqwest::Url::parse(&s.endpoint).map_err(other)?;
        let host = sigv4::host_header(url.host_str().unwrap_or(""), url.port());
        let base_path = format!(
            "{}/{}",
            url.path().trim_end_matches('/'),
            uri_encode(&s.bucket)
        );
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(10).min(s.bounds.request_timeout))
            // A bucket is trusted for availability only: a redirect would carry the
            // server's signed requests (and x-amz-* headers) to another host. S3 reports a
            // wrong region or endpoint as an error, so a 3xx is an error here too.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(other)?;
        Ok(S3Store {
            s,
            http,
            host,
            base_path,
            spool: spool.map(Path::to_path_buf),
        })
    }

    /// The spool directory, if uploads are accepted.
    pub(crate) fn spool_dir(&self) -> Option<&Path> {
        self.spool.as_deref()
    }

    /// Removes spool files of processes that no longer run (a server killed mid-upload);
    /// returns how many.
    pub(crate) fn clean_dead_spool(&self) -> usize {
        match &self.spool {
            Some(dir) => tarn_store::sweep_dirs(std::slice::from_ref(dir), Duration::ZERO)
                .removed
                .len(),
            None => 0,
        }
    }

    fn object_path(&self, key: &str) -> String {
        let full = format!("{}{key}", self.s.prefix);
        let enc: Vec<String> = full.split('/').map(uri_encode).collect();
        format!("{}/{}", self.base_path, enc.join("/"))
    }

    fn request(&self, method: Method, path: &str, query: &str) -> reqwest::RequestBuilder {
        let date = AmzDate::from_unix(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        let signed = SimpleRequest {
            method: method.as_str(),
            host: &self.host,
            path,
            query,
            payload_hash: UNSIGNED_PAYLOAD,
        }
        .sign(&self.s.creds, &self.s.region, &date);
        let mut url = format!("{}{path}", self.s.endpoint_origin());
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut request = self.http.request(method, url);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        request
    }

    /// An error naming the bucket and `what` (e.g. `GET a0/x/1.art`).
    fn err(&self, what: &str, e: impl std::fmt::Display) -> io::Error {
        other(format!("S3 bucket {}: {what}: {e}", self.s.bucket))
    }

    /// The error for a request that did not finish within `limit`.
    fn timed_out(&self, what: &str, limit: Duration, setting: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "S3 bucket {}: {what}: no complete answer within {} s ({setting})",
                self.s.bucket,
                limit.as_secs()
            ),
        )
    }

    /// Runs `work` (a request and the reading of its small reply) within the request
    /// timeout.
    async fn within<T>(
        &self,
        what: &str,
        work: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        let limit = self.s.bounds.request_timeout;
        tokio::time::timeout(limit, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(what, limit, "storage.request_timeout_secs")))
    }

    /// Sends `request`, waiting for the status and headers no longer than the request
    /// timeout.
    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> io::Result<reqwest::Response> {
        self.within(what, async {
            request.send().await.map_err(|e| self.err(what, e))
        })
        .await
    }

    /// See [`super::Storage::get`].
    pub(crate) async fn get(&self, key: &str) -> io::Result<Option<Object>> {
        let what = format!("GET {key}");
        let resp = self
            .send(&what, self.request(Method::GET, &self.object_path(key), ""))
            .await?;
        match resp.status() {
            StatusCode::OK => {
                let meta = ObjectMeta {
                    len: resp.content_length().unwrap_or(0),
                    modified: parse_http_date(resp.headers().get("last-modified")),
                };
                Ok(Some(Object {
                    meta,
                    body: ObjectBody::Remote(self.body(resp, &what)),
                }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(self.err(&what, s)),
        }
    }

    fn body(&self, resp: reqwest::Response, what: &str) -> RemoteBody {
        RemoteBody::new(
            resp,
            format!("S3 bucket {}: {what}", self.s.bucket),
            &self.s.bounds,
        )
    }

    /// A ranged GET passed through to the bucket: `(Content-Range, object)` for a 206,
    /// `(None, object)` when the bucket sent the whole object, `Err` kind `InvalidInput` for
    /// 416, `None` when absent.
    pub(crate) async fn get_range(
        &self,
        key: &str,
        range: &str,
    ) -> io::Result<Option<(Option<String>, Object)>> {
        let what = format!("GET {key} ({range})");
        let resp = self
            .send(
                &what,
                self.request(Method::GET, &self.object_path(key), "")
                    .header("range", range),
            )
            .await?;
        let status = resp.status();
        match status {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                let cr = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let meta = ObjectMeta {
                    len: resp.content_length().unwrap_or(0),
                    modified: parse_http_date(resp.headers().get("last-modified")),
                };
                Ok(Some((
                    if status == StatusCode::PARTIAL_CONTENT {
                        cr
                    } else {
                        None
                    },
                    Object {
                        meta,
                        body: ObjectBody::Remote(self.body(resp, &what)),
                    },
                )))
            }
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "range"))
            }
            s => Err(self.err(&what, s)),
        }
    }

    /// See [`super::Storage::head`].
    pub(crate) async fn head(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        let what = format!("HEAD {key}");
        let resp = self
            .send(
                &what,
                self.request(Method::HEAD, &self.object_path(key), ""),
            )
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(ObjectMeta {
                len: resp
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                modified: parse_http_date(resp.headers().get("last-modified")),
            })),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(self.err(&what, s)),
        }
    }

    /// See [`super::Storage::put`].
    pub(crate) async fn put(
        &self,
        key: &str,
        spool: Spool,
        mode: PutMode,
    ) -> io::Result<PutOutcome> {
        let existed = self.head(key).await?.is_some();
        if existed && mode == PutMode::NoClobber {
            return Ok(PutOutcome::Existed);
        }
        let what = format!("PUT {key}");
        // The body must go at the minimum rate at least; the reply comes within the
        // request timeout after it.
        let limit = self.s.bounds.request_timeout
            + Duration::from_secs(spool.len / self.s.bounds.min_rate.max(1));
        let work = async {
            let file = tokio::fs::File::open(spool.temp.path()).await?;
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                file,
                256 << 10,
            ));
            let resp = self
                .request(Method::PUT, &self.object_path(key), "")
                .header("content-length", spool.len)
                .body(body)
                .send()
                .await
                .map_err(|e| self.err(&what, e))?;
            if !resp.status().is_success() {
                let s = resp.status();
                let text = match read_capped(self.body(resp, &what), MAX_ERROR_BODY_BYTES).await {
                    Ok(Capped::Whole(b) | Capped::Cut(b)) => {
                        String::from_utf8_lossy(&b).into_owned()
                    }
                    Err(_) => String::new(),
                };
                return Err(self.err(&what, format!("{s} {text}")));
            }
            Ok(())
        };
        tokio::time::timeout(limit, work)
            .await
            .unwrap_or_else(|_| {
                Err(self.timed_out(
                    &what,
                    limit,
                    "storage.request_timeout_secs plus the body at storage.min_rate_bytes",
                ))
            })?;
        drop(spool);
        Ok(if existed {
            PutOutcome::Existed
        } else {
            PutOutcome::Created
        })
    }

    /// See [`super::Storage::delete`].
    pub(crate) async fn delete(&self, key: &str) -> io::Result<bool> {
        let existed = self.head(key).await?.is_some();
        let what = format!("DELETE {key}");
        let resp = self
            .send(
                &what,
                self.request(Method::DELETE, &self.object_path(key), ""),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(existed),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.err(&what, s)),
        }
    }

    /// One ListObjectsV2 page (at most [`MAX_S3_LISTING_PAGE_BYTES`]), within the request
    /// timeout.
    async fn list_page(&self, query: &str, full_prefix: &str) -> io::Result<Vec<u8>> {
        let what = format!("listing {full_prefix:?}");
        self.within(&what, async {
            let resp = self
                .request(Method::GET, &self.base_path, query)
                .send()
                .await
                .map_err(|e| self.err(&what, e))?;
            if !resp.status().is_success() {
                return Err(self.err(&what, resp.status()));
            }
            let limit = MAX_S3_LISTING_PAGE_BYTES;
            match read_capped(self.body(resp, &what), limit).await? {
                Capped::Whole(b) => Ok(b),
                Capped::Cut(_) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "S3 bucket {}: the listing of {full_prefix:?} sent a page larger \
                         than the limit of {} MiB",
                        self.s.bucket,
                        limit >> 20
                    ),
                )),
            }
        })
        .await
    }

    /// See [`super::Storage::list`]. A listing that goes on past
    /// [`S3Bounds::max_listing_keys`] keys (or one page per 100 of them) is an error, never
    /// a truncated answer: callers decide what to delete from it.
    pub(crate) async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let full_prefix = format!("{}{prefix}", self.s.prefix);
        let max_keys = self.s.bounds.max_listing_keys;
        let max_pages = max_keys.div_ceil(100).max(1);
        let (mut pages, mut keys) = (0u64, 0u64);
        loop {
            if pages == max_pages {
                return Err(self.too_long(&full_prefix, format!("{pages} pages")));
            }
            pages += 1;
            let mut query = format!("list-type=2&prefix={}", uri_encode(&full_prefix));
            if let Some(t) = &token {
                query = format!("continuation-token={}&{query}", uri_encode(t));
            }
            let body = self.list_page(&query, &full_prefix).await?;
            let text = String::from_utf8_lossy(&body);
            let page = tarn_core::s3_listing::parse_page(&text)
                .map_err(|e| other(format!("S3 bucket {}: listing: {e}", self.s.bucket)))?;
            if page.truncated && page.next_token.is_some() && page.next_token == token {
                return Err(other(format!(
                    "S3 bucket {}: the listing of {full_prefix:?} repeats its continuation token",
                    self.s.bucket
                )));
            }
            keys += page.entries.len() as u64;
            if keys > max_keys {
                return Err(self.too_long(&full_prefix, format!("{max_keys} keys")));
            }
            for e in page.entries {
                let (key, len, modified) = (e.key, e.size, e.last_modified);
                if let Some(k) = key.strip_prefix(&self.s.prefix) {
                    out.push(Listed {
                        key: k.to_string(),
                        meta: ObjectMeta {
                            len,
                            modified: parse_iso(&modified),
                        },
                    });
                }
            }
            match page.next_token {
                Some(t) if page.truncated => token = Some(t),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn too_long(&self, full_prefix: &str, past: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "S3 bucket {}: the listing of {full_prefix:?} goes on past {past} \
                 (storage.max_listing_keys)",
                self.s.bucket
            ),
        )
    }

    /// Whether the bucket answers.
    pub(crate) async fn healthy(&self) -> bool {
        match self
            .request(Method::HEAD, &self.base_path, "")
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }
}

impl S3Settings {
    fn endpoint_origin(&self) -> String {
        // The endpoint's scheme://host[:port]; its path (if any) is part of `base_path`.
        match reqwest::Url::parse(&self.endpoint) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => self.endpoint.clone(),
        }
    }
}
