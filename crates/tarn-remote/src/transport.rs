//! The HTTP transport: one reqwest client (rustls, keep-alive, HTTP/2 where offered), a
//! global bound on concurrent requests, retries with exponential backoff and jitter
//! (connection errors, 5xx, 408, 429 with `Retry-After`, truncated or corrupt bodies), a
//! stall timeout per transfer, optional SigV4 signing, and downloads streamed into cache temp
//! files while they are hashed.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use tarn_core::sigv4::EMPTY_SHA256;
use tarn_core::trust::{StrongDigest, StrongHasher};
use tarn_core::{printable_line, StreamingHasher};
use tarn_core::{ArtifactName, Hash};
use tarn_core::{Limits, MAX_ARTIFACT_ENV, MAX_ERROR_BODY_BYTES, MAX_REPLY_ENV};
use tarn_store::{open_untrusted, StagingDir};
use tarn_store::{Cache, FileChanged, Inserted, StoreError};
use tokio::sync::Semaphore;

use crate::bounded_body::{BodyBounds, BodyError, BoundedBody, RateClock};
use crate::disk_budget::{DiskBound, DiskBudget};
use crate::progress::{Event, Progress};
use crate::signing::Signer;

/// Redirects an anonymous download follows before giving up (curl's default is 50; 10 is
/// reqwest's, and plenty for a cache in front of a CDN).
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Tuning knobs for the transport.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Requests in flight at once.
    pub jobs: usize,
    /// Retries after the first attempt (so `retries + 1` attempts at most).
    pub retries: u32,
    /// A transfer that moves no byte for this long is abandoned and retried.
    pub stall_timeout: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// First backoff delay; doubles with every attempt.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// Largest `Retry-After` honoured (longer ones are cut to this).
    pub max_retry_after: Duration,
    /// Signs requests when set.
    pub signer: Option<Signer>,
    /// Also sign GET and HEAD requests (private buckets). Uploads are always signed.
    pub sign_downloads: bool,
    /// Bounds on what a server may make this client hold or wait for: reply and artifact
    /// sizes, the per-transfer deadline and minimum rate (see [`tarn_core::Limits`]).
    pub limits: Limits,
    /// The most bytes downloads through this transport may write to disk, artifacts kept
    /// and temp files in flight together (`None`: unbounded). One `tarn get` is one
    /// transport.
    pub disk_bound: Option<DiskBound>,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            jobs: 32,
            retries: 5,
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            signer: None,
            sign_downloads: false,
            limits: tarn_store::limits().clone(),
            disk_bound: None,
        }
    }
}

/// A download whose SHA-256 or size is not the signed one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SHA-256 {actual} ({actual_size} bytes) does not match the signed {expected} ({expected_size} bytes); quarantined as {}", quarantined.display())]
pub struct StrongMismatch {
    /// The signed SHA-256 (hex).
    pub expected: String,
    /// The signed size.
    pub expected_size: u64,
    /// The SHA-256 of what arrived (hex).
    pub actual: String,
    /// The size of what arrived.
    pub actual_size: u64,
    /// Where the bytes went.
    pub quarantined: PathBuf,
}

/// Why one attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferError {
    /// The server answered with an unexpected status.
    #[error("HTTP {status}{detail}")]
    Status {
        /// The status code.
        status: u16,
        /// `: <S3 error code and message>` or a short body excerpt, or empty.
        detail: String,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// Connecting, sending or receiving failed.
    #[error("{message}")]
    Network {
        /// What failed, with its causes, on one line.
        message: String,
        /// The HTTP client's error, when the failure is one (to tell a refused connection
        /// or a timeout from the rest); absent for a body longer than its `Content-Length`.
        #[source]
        source: Option<Arc<reqwest::Error>>,
    },
    /// A redirect was refused (to another host for a signed request or an upload), looped,
    /// or went past `MAX_REDIRECTS` (10); never retried.
    #[error("{0}")]
    Redirect(String),
    /// No byte moved for the stall timeout.
    #[error("stalled: no data for {0:?}")]
    Stalled(Duration),
    /// The body ended before `Content-Length` bytes arrived.
    #[error("body truncated: got {got} of {expected} bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The downloaded content does not hash to the artifact's name.
    #[error("downloaded artifact hash mismatch{}", shown_hash(actual))]
    HashMismatch {
        /// The hash of what arrived; empty when a redirect to another host sent it (a
        /// service must not learn, through tarn's output, a hash of what an internal
        /// address it pointed tarn at returns).
        actual: String,
    },
    /// The downloaded content has the right Lake hash but not the SHA-256 or size the
    /// revision's signature gives (a forged 64-bit collision, or another artifact): the bytes
    /// were moved to the cache's quarantine. Never retried.
    #[error("{0}")]
    StrongMismatch(Box<StrongMismatch>),
    /// The reply announces another size than the revision's signature gives; nothing was
    /// read. Never retried.
    #[error("the reply announces {announced} bytes, but the signed size is {signed}")]
    SignedSizeMismatch {
        /// `Content-Length`.
        announced: u64,
        /// The signed size.
        signed: u64,
    },
    /// The attempt ran past the per-transfer deadline.
    #[error(
        "no complete reply within the transfer deadline of {0:?} (TARN_TRANSFER_DEADLINE_SECS)"
    )]
    Deadline(Duration),
    /// Bytes kept coming, but slower than the minimum rate.
    #[error("too slow: {got} bytes in {secs:.0}s, below the minimum of {min_rate} bytes/s (TARN_MIN_RATE_BYTES)")]
    TooSlow {
        /// Bytes moved so far.
        got: u64,
        /// Seconds elapsed.
        secs: f64,
        /// The minimum rate.
        min_rate: u64,
    },
    /// Writing on would pass the bound on the disk this `get` may fill; never retried, and
    /// no further artifact is started.
    #[error(
        "not downloaded: this get may write at most {} bytes to disk ({}; raise it with \
         --max-bytes or TARN_MAX_GET_BYTES), and that is reached",
        .0.bytes,
        .0.source
    )]
    DiskBound(DiskBound),
    /// The body is larger than the limit for its kind.
    #[error("reply larger than the limit of {limit} bytes (raise it with {env})")]
    TooLarge {
        /// The limit.
        limit: u64,
        /// The environment variable that raises it.
        env: &'static str,
    },
    /// A local problem with a named file: the cache directory, or the file to upload
    /// (unreadable, not the content its name says, or changed while it was sent:
    /// [`StoreError::is_file_changed`]).
    #[error("{0}")]
    Local(#[source] Arc<StoreError>),
    /// The URL does not parse.
    #[error("invalid URL: {0}")]
    InvalidUrl(#[source] url::ParseError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] Arc<reqwest::Error>),
}

impl TransferError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            // A request tarn serve took for a replay (the same request signed in the same
            // second) succeeds once signed again, a second later.
            TransferError::Status { status, detail, .. } => {
                *status >= 500
                    || *status == 429
                    || *status == 408
                    || *status == 403 && detail.starts_with(": RequestReplayed")
            }
            TransferError::Network { .. }
            | TransferError::Stalled(_)
            | TransferError::Truncated { .. }
            | TransferError::HashMismatch { .. }
            | TransferError::Deadline(_)
            | TransferError::TooSlow { .. } => true,
            TransferError::Local(_)
            | TransferError::Redirect(_)
            | TransferError::InvalidUrl(_)
            | TransferError::Client(_)
            | TransferError::DiskBound(_)
            | TransferError::StrongMismatch(_)
            | TransferError::SignedSizeMismatch { .. }
            | TransferError::TooLarge { .. } => false,
        }
    }

    /// The HTTP status, if the failure was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            TransferError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the service refused the credentials (HTTP 401 or 403).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// Whether the file being uploaded changed while it was read or sent.
    pub fn is_file_changed(&self) -> bool {
        matches!(self, TransferError::Local(e) if e.is_file_changed())
    }
}

impl From<StoreError> for TransferError {
    fn from(e: StoreError) -> TransferError {
        TransferError::Local(Arc::new(e))
    }
}

impl Failed {
    /// Whether the service refused the credentials (HTTP 401 or 403).
    pub fn is_auth_failure(&self) -> bool {
        self.error.is_auth_failure()
    }
}

/// The final failure of a request, after every attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {url}: {error}{}", if *.attempts > 1 { format!(" (after {} attempts)", .attempts) } else { String::new() })]
pub struct Failed {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The URL.
    pub url: String,
    /// The last attempt's error.
    pub error: TransferError,
    /// How many attempts were made.
    pub attempts: u32,
}

/// A buffered response (small bodies only: revision files, API replies).
#[derive(Debug, Clone)]
pub struct SmallResponse {
    /// The status.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

/// Counters shared by every request of a transport.
#[derive(Debug, Default)]
pub struct Stats {
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Body bytes received.
    pub bytes_down: AtomicU64,
    /// Body bytes sent.
    pub bytes_up: AtomicU64,
}

/// The transport. Clone it freely: clones share the client, the concurrency bound and the
/// counters.
///
/// Redirects: an anonymous `GET` or `HEAD` follows up to `MAX_REDIRECTS` (10) of them to any
/// http(s) URL, as Lake's `curl -L` does (a public cache may hand downloads to a CDN); what
/// arrives is still checked against the artifact's name. A signed request, and any request
/// with a body, follows a redirect only within the same origin (scheme, host, port): a
/// redirect elsewhere is an error naming its target, so an upload's body and its signature
/// headers never reach a host the configuration does not name. No redirect error is retried.
#[derive(Clone, Debug)]
pub struct Transport {
    client: reqwest::Client,
    /// The client for signed requests and requests with a body (same-origin redirects only).
    same_origin: reqwest::Client,
    opts: Arc<TransportOptions>,
    limits: Limits,
    limit: Arc<Semaphore>,
    progress: Progress,
    stats: Arc<Stats>,
    disk: Arc<DiskBudget>,
}

impl Transport {
    /// A transport with these options, reporting to `progress`.
    pub fn new(opts: TransportOptions, progress: Progress) -> Result<Transport, TransferError> {
        let build = |policy: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .user_agent(concat!("tarn/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(opts.connect_timeout)
                .pool_max_idle_per_host(opts.jobs.max(1))
                .tcp_nodelay(true)
                .redirect(policy)
                .referer(false)
                .build()
                .map_err(|e| TransferError::Client(Arc::new(e)))
        };
        let client = build(reqwest::redirect::Policy::limited(MAX_REDIRECTS))?;
        let same_origin = build(reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().unwrap_or(attempt.url());
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().origin() == first.origin() {
                attempt.follow()
            } else {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "the server redirected a signed request or upload to another host ({to}); \
                     tarn does not follow it"
                ))
            }
        }))?;
        Ok(Transport {
            client,
            same_origin,
            limit: Arc::new(Semaphore::new(opts.jobs.max(1))),
            limits: opts.limits.clone(),
            disk: Arc::new(DiskBudget::new(opts.disk_bound.clone())),
            opts: Arc::new(opts),
            progress,
            stats: Arc::new(Stats::default()),
        })
    }

    /// Counts `n` bytes written to disk outside a download (a local copy of a downloaded
    /// artifact) against the disk bound; the bound's error when they would pass it.
    pub(crate) fn reserve_disk(&self, n: u64) -> Result<(), TransferError> {
        let mut held = self.disk.reservation();
        self.disk
            .reserve(&mut held, n)
            .map_err(|bound| TransferError::DiskBound(bound.clone()))?;
        held.keep();
        Ok(())
    }

    /// The options in use.
    pub fn options(&self) -> &TransportOptions {
        &self.opts
    }

    /// The shared counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The progress sink.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of retries. A permit of
    /// the concurrency bound is held during each attempt but not while waiting to retry.
    async fn with_retries<T, F, Fut>(
        &self,
        method: &str,
        url: &str,
        attempt: F,
    ) -> Result<T, Failed>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransferError>>,
    {
        self.with_retries_max(method, url, self.opts.retries, attempt)
            .await
    }

    async fn with_retries_max<T, F, Fut>(
        &self,
        method: &str,
        url: &str,
        retries: u32,
        mut attempt: F,
    ) -> Result<T, Failed>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransferError>>,
    {
        let mut n = 0u32;
        loop {
            n += 1;
            let result = {
                let _permit = self
                    .limit
                    .acquire()
                    .await
                    .expect("semaphore is never closed");
                attempt().await
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && n <= retries => {
                    let delay = match &e {
                        TransferError::Status {
                            retry_after: Some(d),
                            ..
                        } => (*d).min(self.opts.max_retry_after),
                        _ => backoff(self.opts.backoff_base, self.opts.backoff_max, n),
                    };
                    tracing::debug!("{method} {url}: {e}; retrying in {delay:?}");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    self.progress.emit(Event::Retry {
                        url: url.to_string(),
                        attempt: n,
                        reason: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    return Err(Failed {
                        method: method.to_string(),
                        url: url.to_string(),
                        error,
                        attempts: n,
                    })
                }
            }
        }
    }

    fn builder(
        &self,
        method: Method,
        url: &reqwest::Url,
        headers: &[(&str, &str)],
        sign: bool,
        payload_hash: &str,
    ) -> reqwest::RequestBuilder {
        let signed = sign && self.opts.signer.is_some();
        let client = if signed || !matches!(method, Method::GET | Method::HEAD) {
            &self.same_origin
        } else {
            &self.client
        };
        let mut rb = client.request(method.clone(), url.clone());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if sign {
            if let Some(signer) = &self.opts.signer {
                for (k, v) in signer.headers(method.as_str(), url, payload_hash) {
                    rb = rb.header(k, v);
                }
            }
        }
        rb
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, TransferError> {
        match tokio::time::timeout(self.opts.stall_timeout, rb.send()).await {
            Err(_) => Err(TransferError::Stalled(self.opts.stall_timeout)),
            Ok(Err(e)) => Err(network_error(e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// The body of `resp` under one attempt's time bounds ([`BoundedBody`]): the stall
    /// timeout between chunks, the minimum average rate once the attempt has lasted the
    /// stall timeout (wall time), and the transfer deadline.
    fn bounded(&self, resp: reqwest::Response) -> BoundedBody {
        BoundedBody::new(
            resp,
            BodyBounds {
                stall: self.opts.stall_timeout,
                min_rate: self.limits.min_rate,
                grace: self.opts.stall_timeout,
                deadline: Some(self.limits.transfer_deadline),
                clock: RateClock::Wall,
            },
        )
    }

    /// Reads a whole small body: at most `max_reply_bytes` (a longer one, announced or
    /// streamed, is refused without reading on), under the stall timeout, the minimum rate
    /// and the transfer deadline.
    async fn read_small(&self, resp: reqwest::Response) -> Result<SmallResponse, TransferError> {
        self.read_small_capped(resp, self.limits.max_reply_bytes, MAX_REPLY_ENV)
            .await
    }

    async fn read_small_capped(
        &self,
        resp: reqwest::Response,
        limit: u64,
        env: &'static str,
    ) -> Result<SmallResponse, TransferError> {
        let status = resp.status().as_u16();
        let expected = resp.content_length();
        if status >= 400 {
            return self.read_error_body(status, resp).await;
        }
        if expected.is_some_and(|n| n > limit) {
            return Err(TransferError::TooLarge { limit, env });
        }
        let mut body = Vec::new();
        let mut stream = self.bounded(resp);
        while let Some(next) = stream.next().await {
            let chunk = next.map_err(|e| bounded_error(e, body.len() as u64, expected))?;
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(TransferError::TooLarge { limit, env });
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(exp) = expected {
            if exp != body.len() as u64 {
                return Err(TransferError::Truncated {
                    got: body.len() as u64,
                    expected: exp,
                });
            }
        }
        Ok(SmallResponse {
            status,
            body: Bytes::from(body),
        })
    }

    /// One request with a small in-memory body (or none), retried as needed. Any status that
    /// is not retryable (or still failing after the last retry, as an error) is returned for
    /// the caller to interpret.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        sign: bool,
    ) -> Result<SmallResponse, Failed> {
        self.request_with_retries(method, url, headers, body, sign, self.opts.retries)
            .await
    }

    /// [`Transport::request`] with its own retry count (0: a single attempt, for probes).
    pub async fn request_with_retries(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        sign: bool,
        retries: u32,
    ) -> Result<SmallResponse, Failed> {
        let parsed = parse_url(method.as_str(), url)?;
        let payload_hash = match &body {
            Some(b) => tarn_core::sigv4::sha256_hex(b),
            None => EMPTY_SHA256.to_string(),
        };
        let up = body.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        self.with_retries_max(method.as_str(), url, retries, || {
            let mut rb = self.builder(method.clone(), &parsed, headers, sign, &payload_hash);
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            async move {
                let resp = self.send(rb).await?;
                let retry_after = parse_retry_after(resp.headers());
                let small = self.read_small(resp).await?;
                self.stats.bytes_up.fetch_add(up, Ordering::Relaxed);
                let st = StatusCode::from_u16(small.status).unwrap_or(StatusCode::OK);
                let detail = if st.is_success() {
                    String::new()
                } else {
                    error_detail(&small.body)
                };
                // A replay is told apart from the original by a new signature, which needs
                // a new second.
                let retry_after = match detail.starts_with(": RequestReplayed") {
                    true => Some(retry_after.unwrap_or_default().max(Duration::from_secs(1))),
                    false => retry_after,
                };
                let failed = TransferError::Status {
                    status: small.status,
                    detail,
                    retry_after,
                };
                if !st.is_success() && failed.retryable() {
                    return Err(failed);
                }
                Ok(small)
            }
        })
        .await
    }

    /// The start of an error body: at most [`MAX_ERROR_BODY_BYTES`] bytes are kept (enough for
    /// an S3 `<Error>` document); the rest is never read, and the connection is dropped.
    /// Errors while reading are ignored: the status is what matters.
    async fn read_error_body(
        &self,
        status: u16,
        resp: reqwest::Response,
    ) -> Result<SmallResponse, TransferError> {
        let mut body = Vec::new();
        let mut stream = self.bounded(resp);
        while (body.len() as u64) < MAX_ERROR_BODY_BYTES {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    let room = MAX_ERROR_BODY_BYTES as usize - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                _ => break,
            }
        }
        Ok(SmallResponse {
            status,
            body: Bytes::from(body),
        })
    }

    /// `GET url`: the body on 200, `None` on 404, an error otherwise.
    pub async fn get_optional(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Option<Bytes>, Failed> {
        let r = self
            .request(Method::GET, url, headers, None, self.opts.sign_downloads)
            .await?;
        match r.status {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            s => Err(status_failure("GET", url, s, &r.body)),
        }
    }

    /// `HEAD url`: whether the object exists (2xx) or not (404); an error otherwise.
    pub async fn exists(&self, url: &str, sign: bool) -> Result<bool, Failed> {
        let r = self.request(Method::HEAD, url, &[], None, sign).await?;
        match r.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            s => Err(status_failure("HEAD", url, s, &r.body)),
        }
    }

    /// `PUT url` with an in-memory body and `headers` besides its content type, signed;
    /// success on 200, 201 or 204.
    pub(crate) async fn put_bytes(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(), Failed> {
        let mut all = vec![("content-type", content_type)];
        all.extend_from_slice(headers);
        let r = self
            .request(Method::PUT, url, &all, Some(body), true)
            .await?;
        match r.status {
            200 | 201 | 204 => Ok(()),
            s => Err(status_failure("PUT", url, s, &r.body)),
        }
    }

    /// `PUT url` streaming the file at `path`, signed with its real SHA-256; success on 200,
    /// 201 or 204. See [`Transport::put_artifact`]; this variant checks no content hash.
    pub async fn put_file(
        &self,
        url: &str,
        content_type: &str,
        path: &Path,
    ) -> Result<StrongDigest, Failed> {
        self.put_open_file(
            url,
            content_type,
            Source::Path(path.to_path_buf()),
            path,
            None,
            None,
        )
        .await
    }

    /// `PUT url` with the artifact file at `path`, whose content must hash to `hash`. The
    /// file is opened once (no link followed, no blocking, regular files only: see
    /// [`tarn_store::open_untrusted`]) and every read goes through that descriptor. With
    /// `validated` (the SHA-256 and size taken when the file was validated) nothing is read
    /// before sending; without, one pass computes the SHA-256 and checks Lake's hash first.
    /// The upload streams from the descriptor and hashes again, and a body whose bytes stop
    /// matching `hash` or the SHA-256 is aborted before its last byte, so the service never
    /// stores it: what leaves the machine is exactly what was validated, whatever happens to
    /// the path (a same-Lake-hash rewrite is caught too). Returns the SHA-256 and size of
    /// the bytes sent (what a revision signature records).
    pub async fn put_artifact(
        &self,
        url: &str,
        content_type: &str,
        path: &Path,
        hash: Hash,
        validated: Option<StrongDigest>,
    ) -> Result<StrongDigest, Failed> {
        self.put_open_file(
            url,
            content_type,
            Source::Path(path.to_path_buf()),
            path,
            Some(hash),
            validated,
        )
        .await
    }

    /// [`Transport::put_artifact`] for an artifact of a validated staging directory (with
    /// the digest taken when validating, if one was): the file is opened relative to the
    /// directory's descriptor ([`StagingDir::open_artifact`]), never by path, so a directory
    /// swapped for a link after validation is never read.
    pub(crate) async fn put_staged_artifact(
        &self,
        url: &str,
        content_type: &str,
        staging: Arc<StagingDir>,
        name: &ArtifactName,
        validated: Option<StrongDigest>,
    ) -> Result<(), Failed> {
        let path = staging.dir.join(name.file_name());
        self.put_open_file(
            url,
            content_type,
            Source::Staged(staging, name.clone()),
            &path,
            Some(name.hash),
            validated,
        )
        .await
        .map(|_| ())
    }

    async fn put_open_file(
        &self,
        url: &str,
        content_type: &str,
        source: Source,
        path: &Path,
        expected: Option<Hash>,
        validated: Option<StrongDigest>,
    ) -> Result<StrongDigest, Failed> {
        let parsed = parse_url("PUT", url)?;
        let local = |error: TransferError| Failed {
            method: "PUT".into(),
            url: url.to_string(),
            error,
            attempts: 1,
        };
        let p: PathBuf = path.to_path_buf();
        let (file, digest) = tokio::task::spawn_blocking(move || {
            let (mut file, len0) = match source {
                Source::Path(p) => open_untrusted(&p).map(|(f, m)| (f, m.len()))?,
                Source::Staged(staging, name) => {
                    let o = staging.open_artifact(&name)?;
                    (o.file, o.len)
                }
            };
            if let Some(digest) = validated {
                // Hashed when validated; the sending pass checks both hashes again.
                if len0 != digest.size {
                    return Err(StoreError::Changed {
                        path: p,
                        source: FileChanged::Size {
                            expected: digest.size,
                            seen: len0,
                        },
                    });
                }
                return Ok((file, digest));
            }
            let (lake, digest) = tarn_store::hash_reader_strong(&mut file, len0)
                .map_err(|e| StoreError::io(&p, e))?;
            if let Some(want) = expected {
                if lake != want {
                    return Err(StoreError::HashMismatch {
                        path: p,
                        expected: want,
                        actual: lake,
                    });
                }
            }
            Ok((file, digest))
        })
        .await
        .map_err(|e| {
            local(TransferError::Network {
                message: format!("hashing the file: {e}"),
                source: None,
            })
        })?
        .map_err(|e| local(e.into()))?;
        let file = Arc::new(file);
        let len = digest.size;
        let sha = hex::encode(digest.sha256);
        let checked = expected.map(|lake| (lake, digest.sha256));
        self.with_retries("PUT", url, || {
            let rb = self.builder(
                Method::PUT,
                &parsed,
                &[("content-type", content_type)],
                true,
                &sha,
            );
            let file = file.clone();
            async move {
                let last = Arc::new(AtomicU64::new(now_millis()));
                let sent = Arc::new(AtomicU64::new(0));
                let (last2, sent2) = (last.clone(), sent.clone());
                let progress = self.progress.clone();
                let stats = self.stats.clone();
                let stream = checked_file_stream(file, len, checked).map(move |chunk| {
                    if let Ok(c) = &chunk {
                        last2.store(now_millis(), Ordering::Relaxed);
                        sent2.fetch_add(c.len() as u64, Ordering::Relaxed);
                        progress.emit(Event::Bytes(c.len() as u64));
                        stats.bytes_up.fetch_add(c.len() as u64, Ordering::Relaxed);
                    }
                    chunk
                });
                let rb = rb
                    .header("content-length", len)
                    .body(reqwest::Body::wrap_stream(stream));
                let stall = self.opts.stall_timeout;
                let deadline = self.limits.transfer_deadline;
                let resp = tokio::select! {
                    r = rb.send() => r.map_err(|e| match FileChanged::find(&e) {
                        // The checked stream ended the body: the file is not what was hashed.
                        Some(changed) => StoreError::Changed {
                            path: path.to_path_buf(),
                            source: changed.clone(),
                        }
                        .into(),
                        None => network_error(e),
                    })?,
                    e = upload_watchdog(last, sent, len, stall, self.limits.min_rate) => return Err(e),
                    _ = tokio::time::sleep(deadline) => return Err(TransferError::Deadline(deadline)),
                };
                let retry_after = parse_retry_after(resp.headers());
                let small = self.read_small(resp).await?;
                match small.status {
                    200 | 201 | 204 => Ok(()),
                    status => Err(TransferError::Status {
                        status,
                        detail: error_detail(&small.body),
                        retry_after,
                    }),
                }
            }
        })
        .await?;
        Ok(digest)
    }

    /// Downloads `url` into the cache as artifact `name`: streamed into a temp file in
    /// `artifacts/` while hashed, then published only if the hash matches the name. Returns
    /// the number of bytes and whether the artifact was new.
    pub async fn download_artifact(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        cache: &Cache,
        name: &ArtifactName,
    ) -> Result<(u64, Inserted), Failed> {
        self.download_artifact_checked(url, headers, cache, name, None)
            .await
    }

    /// [`Transport::download_artifact`], and with `signed` the SHA-256 and size a verified
    /// revision signature gives: computed in the same pass as Lake's hash, and on a mismatch
    /// the bytes go to the cache's quarantine, never under the artifact's name
    /// ([`TransferError::StrongMismatch`]).
    pub(crate) async fn download_artifact_checked(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        cache: &Cache,
        name: &ArtifactName,
        signed: Option<StrongDigest>,
    ) -> Result<(u64, Inserted), Failed> {
        let parsed = parse_url("GET", url)?;
        let sign = self.opts.sign_downloads;
        self.with_retries("GET", url, || {
            let rb = self.builder(Method::GET, &parsed, headers, sign, EMPTY_SHA256);
            let parsed = &parsed;
            async move {
                if let Some(bound) = self.disk.spent() {
                    return Err(TransferError::DiskBound(bound.clone()));
                }
                let resp = self.send(rb).await?;
                let status = resp.status().as_u16();
                let answered = resp.url().clone();
                let redirected_away = answered.origin() != parsed.origin();
                if status != 200 {
                    let retry_after = parse_retry_after(resp.headers());
                    let body = self
                        .read_small(resp)
                        .await
                        .map(|s| s.body)
                        .unwrap_or_default();
                    return Err(TransferError::Status {
                        status,
                        detail: download_error_detail(parsed, &answered, &body),
                        retry_after,
                    });
                }
                let expected = resp.content_length();
                if let (Some(announced), Some(signed)) = (expected, signed) {
                    if announced != signed.size {
                        return Err(TransferError::SignedSizeMismatch {
                            announced,
                            signed: signed.size,
                        });
                    }
                }
                let max = self.limits.max_artifact_bytes;
                if expected.is_some_and(|n| n > max) {
                    return Err(TransferError::TooLarge {
                        limit: max,
                        env: MAX_ARTIFACT_ENV,
                    });
                }
                let mut reserved = self.disk.reservation();
                let mut temp = cache.temp_artifact()?;
                let temp_path = temp.path().to_path_buf();
                let temp_path = temp_path.as_path();
                let mut hasher = expected.map(StreamingHasher::new);
                let mut strong = signed.map(|_| StrongHasher::new());
                let mut got = 0u64;
                let mut stream = self.bounded(resp);
                // Writes go to a buffered std file: chunks are small and the page cache
                // absorbs them, which is cheaper than a blocking-pool round trip per chunk.
                let mut out = std::io::BufWriter::with_capacity(256 * 1024, temp.file_mut());
                while let Some(next) = stream.next().await {
                    let chunk = next.map_err(|e| bounded_error(e, got, expected))?;
                    got += chunk.len() as u64;
                    if got > max {
                        return Err(TransferError::TooLarge {
                            limit: max,
                            env: MAX_ARTIFACT_ENV,
                        });
                    }
                    self.disk
                        .reserve(&mut reserved, chunk.len() as u64)
                        .map_err(|bound| TransferError::DiskBound(bound.clone()))?;
                    if let Some(exp) = expected {
                        if got > exp {
                            return Err(TransferError::Network {
                                message: format!("body longer than Content-Length {exp}"),
                                source: None,
                            });
                        }
                    }
                    if let Some(h) = hasher.as_mut() {
                        h.update(&chunk);
                    }
                    if let Some(h) = strong.as_mut() {
                        h.update(&chunk);
                    }
                    out.write_all(&chunk)
                        .map_err(|e| StoreError::io(temp_path, e))?;
                    self.stats
                        .bytes_down
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    self.progress.emit(Event::Bytes(chunk.len() as u64));
                }
                out.flush().map_err(|e| StoreError::io(temp_path, e))?;
                drop(out);
                if let Some(exp) = expected {
                    if got != exp {
                        return Err(TransferError::Truncated { got, expected: exp });
                    }
                }
                if let (Some(h), Some(want)) = (strong, signed) {
                    let actual = h.finish().sha256;
                    if actual != want.sha256 || got != want.size {
                        let quarantined = temp.quarantine(cache, &name.file_name())?;
                        return Err(TransferError::StrongMismatch(Box::new(StrongMismatch {
                            expected: hex::encode(want.sha256),
                            expected_size: want.size,
                            actual: hex::encode(actual),
                            actual_size: got,
                            quarantined,
                        })));
                    }
                }
                let known = hasher.and_then(|h| h.finish());
                match cache.publish_artifact(temp, name, known) {
                    Ok(Inserted::New) => {
                        reserved.keep();
                        Ok((got, Inserted::New))
                    }
                    Ok(inserted) => Ok((got, inserted)),
                    Err(StoreError::HashMismatch { actual, .. }) => {
                        Err(TransferError::HashMismatch {
                            actual: if redirected_away {
                                String::new()
                            } else {
                                actual.hex()
                            },
                        })
                    }
                    Err(e) => Err(e.into()),
                }
            }
        })
        .await
    }
}

/// `, got <hash>`, or nothing for an empty hash.
fn shown_hash(actual: &str) -> String {
    if actual.is_empty() {
        String::new()
    } else {
        format!(", got {actual}")
    }
}

/// The detail of an error reply to an anonymous download: the body's useful part
/// ([`error_detail`]), unless a redirect led to another host (scheme, host or port): then
/// only that host is named, never its body, so a hostile service cannot read an internal
/// address's replies through tarn's output.
fn download_error_detail(asked: &reqwest::Url, answered: &reqwest::Url, body: &[u8]) -> String {
    if asked.origin() == answered.origin() {
        error_detail(body)
    } else {
        format!(
            " from {} (reached by a redirect to another host; its reply is not shown)",
            answered.origin().ascii_serialization()
        )
    }
}

fn parse_url(method: &str, url: &str) -> Result<reqwest::Url, Failed> {
    reqwest::Url::parse(url).map_err(|e| Failed {
        method: method.to_string(),
        url: url.to_string(),
        error: TransferError::InvalidUrl(e),
        attempts: 1,
    })
}

fn status_failure(method: &str, url: &str, status: u16, body: &[u8]) -> Failed {
    Failed {
        method: method.to_string(),
        url: url.to_string(),
        error: TransferError::Status {
            status,
            detail: error_detail(body),
            retry_after: None,
        },
        attempts: 1,
    }
}

/// A body cut off by its bounds, or failing after `got` of `expected` bytes.
fn bounded_error(e: BodyError, got: u64, expected: Option<u64>) -> TransferError {
    match e {
        BodyError::Stalled(d) => TransferError::Stalled(d),
        BodyError::TooSlow {
            got,
            secs,
            min_rate,
        } => TransferError::TooSlow {
            got,
            secs,
            min_rate,
        },
        BodyError::Deadline(d) => TransferError::Deadline(d),
        BodyError::Network(e) => body_error(e, got, expected),
    }
}

fn body_error(e: reqwest::Error, got: u64, expected: Option<u64>) -> TransferError {
    match expected {
        Some(exp) if got < exp => TransferError::Truncated { got, expected: exp },
        _ => network_error(e),
    }
}

/// A failure of the HTTP client: a refused or endless redirect is
/// [`TransferError::Redirect`] (not retried), anything else [`TransferError::Network`]
/// (carrying `e`).
fn network_error(e: reqwest::Error) -> TransferError {
    if e.is_redirect() {
        TransferError::Redirect(error_chain(&e))
    } else {
        TransferError::Network {
            message: error_chain(&e),
            source: Some(Arc::new(e)),
        }
    }
}

/// An error and its causes on one line (reqwest's top-level message alone is vague).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The useful part of an error body: S3's `<Code>` and `<Message>`, else a short excerpt;
/// always one printable line (no control character reaches the terminal, no forged line:
/// [`tarn_core::printable_line`]) of bounded length.
pub(crate) fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))? + start;
        // XML text: entities (`&quot;`, `&#10;`) are shown as what they stand for, then made
        // printable like any outside text; a malformed one is shown as sent.
        let raw = &text[start..end];
        let shown = quick_xml::escape::unescape(raw).unwrap_or(std::borrow::Cow::Borrowed(raw));
        Some(printable_line(&shown, 200))
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!(": {c}: {m}"),
        (Some(c), None) => format!(": {c}"),
        _ => {
            let t = printable_line(&text, 200);
            if t.is_empty() {
                String::new()
            } else {
                format!(": {t}")
            }
        }
    }
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date (a date in the past is 0).
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    retry_after_value(v, SystemTime::now())
}

/// Parses a `Retry-After` value relative to `now`.
pub(crate) fn retry_after_value(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, capped at `max`, then a random
/// point in its upper half (so retries of many transfers spread out but never collapse to 0).
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let cap = exp.min(max);
    let half = cap / 2;
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let jitter_nanos = if half.as_nanos() == 0 {
        0
    } else {
        r % half.as_nanos() as u64
    };
    half + Duration::from_nanos(jitter_nanos)
}

fn now_millis() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Resolves with the error that ends an upload attempt: no body chunk taken for `stall`
/// (`last`, see `now_millis`), or, while part of the `len`-byte body is still unsent, fewer
/// than `min_rate` bytes per second taken on average (`sent`) once the attempt has lasted
/// `stall`: a server that reads just enough to dodge the stall timeout cannot hold the
/// upload for the whole transfer deadline. Waiting for the reply after the last byte is
/// bounded by `stall` alone.
async fn upload_watchdog(
    last: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    len: u64,
    stall: Duration,
    min_rate: u64,
) -> TransferError {
    let start = Instant::now();
    let tick = (stall / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        // The rate first: when both apply, "too slow" says more than "stalled".
        let elapsed = start.elapsed();
        let got = sent.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if elapsed > stall && got < len && (got as f64) < min_rate as f64 * secs {
            return TransferError::TooSlow {
                got,
                secs,
                min_rate,
            };
        }
        let idle = now_millis().saturating_sub(last.load(Ordering::Relaxed));
        if idle >= stall.as_millis() as u64 {
            return TransferError::Stalled(stall);
        }
    }
}

/// Where an upload's bytes are read from.
enum Source {
    /// A file named by a path ([`open_untrusted`]).
    Path(PathBuf),
    /// An artifact of a validated staging directory, opened relative to its descriptor.
    Staged(Arc<StagingDir>, ArtifactName),
}

/// The bytes `0..len` of `file`, read with positional reads (each retry starts afresh and
/// never depends on a shared offset). With `expected`, Lake's hash of the bytes is checked
/// before the last chunk is released, and so is the SHA-256 computed when the file was
/// validated (a rewrite with a forged Lake-hash collision changes it): on a mismatch (or a
/// file that shrank) the stream ends with an error instead, so the receiver sees a short
/// body and stores nothing.
fn checked_file_stream(
    file: Arc<std::fs::File>,
    len: u64,
    expected: Option<(Hash, [u8; 32])>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    const CHUNK: u64 = 64 * 1024;
    struct State {
        offset: u64,
        lake: StreamingHasher,
        strong: StrongHasher,
        done: bool,
    }
    let state = State {
        offset: 0,
        lake: StreamingHasher::new(len),
        strong: StrongHasher::new(),
        done: false,
    };
    futures_util::stream::unfold(state, move |mut st| {
        let file = file.clone();
        async move {
            let offset = st.offset;
            if st.done || offset >= len && len > 0 || (len == 0 && offset > 0) {
                return None;
            }
            let want = CHUNK.min(len - offset) as usize;
            let mut buf = vec![0u8; want];
            let mut filled = 0;
            while filled < want {
                match read_at(&file, &mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
            }
            st.done = true;
            if filled < want {
                let e = FileChanged::Size {
                    expected: len,
                    seen: offset + filled as u64,
                };
                return Some((Err(e.into_io()), st));
            }
            buf.truncate(filled);
            st.lake.update(&buf);
            if expected.is_some() {
                st.strong.update(&buf);
            }
            st.offset = offset + filled as u64;
            if st.offset < len {
                st.done = false;
                return Some((Ok(Bytes::from(buf)), st));
            }
            if let Some((want, want_sha)) = expected {
                let lake = std::mem::replace(&mut st.lake, StreamingHasher::new(0)).finish();
                if let Some(actual) = lake.filter(|a| *a != want) {
                    let e = FileChanged::Content {
                        expected: want,
                        actual,
                    };
                    return Some((Err(e.into_io()), st));
                }
                let sha = std::mem::take(&mut st.strong).finish().sha256;
                if sha != want_sha {
                    let e = FileChanged::StrongContent {
                        expected: hex::encode(want_sha),
                        actual: hex::encode(sha),
                    };
                    return Some((Err(e.into_io()), st));
                }
            }
            Some((Ok(Bytes::from(buf)), st))
        }
    })
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after_value("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(retry_after_value(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(retry_after_value(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after_value("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..10 {
            let d = backoff(base, max, attempt);
            let cap = (base * (1 << (attempt - 1))).min(max);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?}");
        }
        let samples: std::collections::HashSet<_> =
            (0..20).map(|_| backoff(base, max, 4)).collect();
        assert!(samples.len() > 1, "no jitter");
    }

    #[test]
    fn classifies_errors() {
        let st = |status| TransferError::Status {
            status,
            detail: String::new(),
            retry_after: None,
        };
        assert!(st(500).retryable() && st(503).retryable() && st(429).retryable());
        assert!(!st(404).retryable() && !st(403).retryable());
        assert!(TransferError::Truncated {
            got: 1,
            expected: 2
        }
        .retryable());
        assert!(!TransferError::Local(Arc::new(StoreError::io(
            Path::new("x"),
            std::io::Error::other("x")
        )))
        .retryable());
    }

    #[test]
    fn s3_error_details() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message></Error>";
        assert_eq!(error_detail(body), ": SignatureDoesNotMatch: bad sig");
        assert_eq!(error_detail(b"  "), "");
        assert_eq!(error_detail(b"oops"), ": oops");
        // Issue 18, item 6: entities were printed as sent.
        let body = b"<Error><Code>InvalidArgument</Code><Message>scope &quot;a&amp;b&quot; &lt;x&gt;&#33;</Message></Error>";
        assert_eq!(error_detail(body), ": InvalidArgument: scope \"a&b\" <x>!");
        // A line break by entity is still one printable line.
        let body = b"<Error><Code>X</Code><Message>a&#10;::warning::b</Message></Error>";
        assert!(!error_detail(body).contains('\n'), "{}", error_detail(body));
        // A malformed entity is shown as sent.
        let body = b"<Error><Code>X</Code><Message>a &bogus b</Message></Error>";
        assert_eq!(error_detail(body), ": X: a &bogus b");
    }
}
