//! S3 backend: a small SigV4-signed, path-style client (reqwest). Each upload is a single
//! PUT of a complete, already validated spool file, so the bucket never holds a partial
//! object; replicas keep no state of their own.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use tarn_core::sigv4::{self, AmzDate, Credentials, SimpleRequest, UNSIGNED_PAYLOAD};
use tarn_core::uri_encode;
use tarn_core::{MAX_ERROR_BODY_BYTES, MAX_S3_LISTING_PAGE_BYTES};

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

/// A reply body read into memory up to a limit.
pub(crate) enum Capped {
    /// The whole body (at most the limit).
    Whole(Vec<u8>),
    /// The first `limit` bytes of a longer body (the rest was not read).
    Cut(Vec<u8>),
}

/// Reads `resp`'s body, never holding more than `limit` bytes: a body announcing more is
/// not read at all, a longer one is abandoned at the limit.
pub(crate) async fn read_capped(mut resp: reqwest::Response, limit: u64) -> io::Result<Capped> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(Capped::Cut(Vec::new()));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(other)? {
        let room = limit as usize - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Cut(out));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(out))
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
            .connect_timeout(Duration::from_secs(10))
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

    /// See [`super::Storage::get`].
    pub(crate) async fn get(&self, key: &str) -> io::Result<Option<Object>> {
        let resp = self
            .request(Method::GET, &self.object_path(key), "")
            .send()
            .await
            .map_err(other)?;
        match resp.status() {
            StatusCode::OK => {
                let meta = ObjectMeta {
                    len: resp.content_length().unwrap_or(0),
                    modified: parse_http_date(resp.headers().get("last-modified")),
                };
                Ok(Some(Object {
                    meta,
                    body: ObjectBody::Remote(resp),
                }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(other(format!("S3 GET {key}: {s}"))),
        }
    }

    /// A ranged GET passed through to the bucket: `(Content-Range, object)` for a 206,
    /// `(None, object)` when the bucket sent the whole object, `Err` kind `InvalidInput` for
    /// 416, `None` when absent.
    pub(crate) async fn get_range(
        &self,
        key: &str,
        range: &str,
    ) -> io::Result<Option<(Option<String>, Object)>> {
        let resp = self
            .request(Method::GET, &self.object_path(key), "")
            .header("range", range)
            .send()
            .await
            .map_err(other)?;
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
                        body: ObjectBody::Remote(resp),
                    },
                )))
            }
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "range"))
            }
            s => Err(other(format!("S3 GET {key}: {s}"))),
        }
    }

    /// See [`super::Storage::head`].
    pub(crate) async fn head(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        let resp = self
            .request(Method::HEAD, &self.object_path(key), "")
            .send()
            .await
            .map_err(other)?;
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
            s => Err(other(format!("S3 HEAD {key}: {s}"))),
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
            .map_err(other)?;
        drop(spool);
        if !resp.status().is_success() {
            let s = resp.status();
            let text = match read_capped(resp, MAX_ERROR_BODY_BYTES).await {
                Ok(Capped::Whole(b) | Capped::Cut(b)) => String::from_utf8_lossy(&b).into_owned(),
                Err(_) => String::new(),
            };
            return Err(other(format!("S3 PUT {key}: {s} {text}")));
        }
        Ok(if existed {
            PutOutcome::Existed
        } else {
            PutOutcome::Created
        })
    }

    /// See [`super::Storage::delete`].
    pub(crate) async fn delete(&self, key: &str) -> io::Result<bool> {
        let existed = self.head(key).await?.is_some();
        let resp = self
            .request(Method::DELETE, &self.object_path(key), "")
            .send()
            .await
            .map_err(other)?;
        match resp.status() {
            s if s.is_success() => Ok(existed),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(other(format!("S3 DELETE {key}: {s}"))),
        }
    }

    /// See [`super::Storage::list`].
    pub(crate) async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let full_prefix = format!("{}{prefix}", self.s.prefix);
        loop {
            let mut query = format!("list-type=2&prefix={}", uri_encode(&full_prefix));
            if let Some(t) = &token {
                query = format!("continuation-token={}&{query}", uri_encode(t));
            }
            let resp = self
                .request(Method::GET, &self.base_path, &query)
                .send()
                .await
                .map_err(other)?;
            if !resp.status().is_success() {
                return Err(other(format!("S3 list {prefix}: {}", resp.status())));
            }
            let limit = MAX_S3_LISTING_PAGE_BYTES;
            let body = match read_capped(resp, limit).await {
                Ok(Capped::Whole(b)) => b,
                Ok(Capped::Cut(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "S3 bucket {}: the listing of {full_prefix:?} sent a page larger \
                             than the limit of {} MiB",
                            self.s.bucket,
                            limit >> 20
                        ),
                    ))
                }
                Err(e) => return Err(other(format!("S3 bucket {}: listing: {e}", self.s.bucket))),
            };
            let text = String::from_utf8_lossy(&body);
            let page = tarn_core::s3_listing::parse_page(&text)
                .map_err(|e| other(format!("S3 bucket {}: listing: {e}", self.s.bucket)))?;
            if page.truncated && page.next_token.is_some() && page.next_token == token {
                return Err(other(format!(
                    "S3 bucket {}: the listing of {full_prefix:?} repeats its continuation token",
                    self.s.bucket
                )));
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
