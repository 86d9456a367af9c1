//! Request dispatch: one function looks at the path and sends the request to the S3,
//! Reservoir, batch, listing or admin handlers. No router tables, no locks.

pub(crate) mod admin;
pub(crate) mod batch;
pub(crate) mod listing;
pub(crate) mod reservoir;
pub(crate) mod s3;

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use tarn_core::scope::uri_encode;
use tarn_core::sigv4::percent_decode;

use crate::error::S3Error;
use crate::metrics::Route;
use crate::storage::valid_component;
use crate::AppRef;

/// A request body that is `Sync` (handlers hold `&Req` across awaits; axum's `Body` is
/// only `Send`).
pub(crate) struct SyncBody(std::sync::Mutex<Body>);

impl SyncBody {
    /// The body.
    pub(crate) fn take(self) -> Body {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request as the handlers see it.
pub(crate) type Req = Request<SyncBody>;

/// Answers one request (the hyper service).
pub(crate) async fn handle(app: AppRef, req: Request<Body>) -> Response<Body> {
    let req = req.map(|b| SyncBody(std::sync::Mutex::new(b)));
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let (route, resp) = dispatch(&app, req).await;
    let status = resp.status().as_u16();
    app.metrics.request(route, method.as_str(), status);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 400 || !(method == Method::GET || method == Method::HEAD) {
        tracing::info!(target: "tarn_server::access", method = %method, uri = %uri, status, ms, "request");
    } else {
        tracing::debug!(target: "tarn_server::access", method = %method, uri = %uri, status, ms, "request");
    }
    resp
}

/// Path components, percent-decoded; `trailing_slash` when the path ends with `/`.
pub(crate) struct PathParts {
    /// Decoded components (no empty ones).
    pub comps: Vec<String>,
    /// The raw path ended with `/`.
    pub trailing_slash: bool,
}

/// Splits and decodes a raw path.
pub(crate) fn split_path(raw: &str) -> PathParts {
    let trailing_slash = raw.len() > 1 && raw.ends_with('/');
    let comps = raw
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains('%') {
                percent_decode(s)
            } else {
                s.to_string()
            }
        })
        .collect();
    PathParts {
        comps,
        trailing_slash,
    }
}

/// Whether the raw query string has parameter `name` (with or without a value).
pub(crate) fn has_param(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == name || p.split_once('=').is_some_and(|(k, _)| k == name))
    })
}

/// The decoded value of query parameter `name`.
pub(crate) fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| percent_decode(&v.replace('+', "%20")))
    })
}

/// Longest path component accepted (a file name on common file systems).
const MAX_COMPONENT_BYTES: usize = 255;
/// Longest object key accepted (S3's limit).
const MAX_KEY_BYTES: usize = 1024;

/// Checks scope components (400 on `..`, empty, reserved names, over-long names).
pub(crate) fn check_components(comps: &[String]) -> Result<(), S3Error> {
    // File systems refuse names over 255 bytes; S3 refuses keys over 1024. Both are a 400,
    // never an internal error.
    if comps.iter().any(|c| c.len() > MAX_COMPONENT_BYTES)
        || comps.iter().map(|c| c.len() + 1).sum::<usize>() > MAX_KEY_BYTES
    {
        return Err(S3Error::bad(
            "KeyTooLongError",
            format!("a path component is longer than {MAX_COMPONENT_BYTES} bytes or the key longer than {MAX_KEY_BYTES}"),
        ));
    }
    if comps.iter().all(|c| valid_component(c)) {
        Ok(())
    } else {
        Err(S3Error::bad(
            "InvalidURI",
            "a path component is empty, '.', '..', starts with '.tarn' or holds '/', '\\' or NUL",
        ))
    }
}

/// Lake's `appendScope`: `/`-joined, each component `uriEncode`d, with a leading `/`.
pub(crate) fn encode_components(comps: &[String]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&uri_encode(c));
    }
    s
}

/// Base URL for links in replies: `public_url`, else the request's Host.
pub(crate) fn base_url(app: &crate::App, req: &Req) -> String {
    if let Some(u) = &app.cfg.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("127.0.0.1");
    format!("{}://{host}", if app.tls { "https" } else { "http" })
}

/// A plain-text answer.
pub(crate) fn text(
    status: StatusCode,
    ctype: &'static str,
    body: impl Into<Body>,
) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

async fn dispatch(app: &AppRef, req: Req) -> (Route, Response<Body>) {
    let raw = req.uri().path();
    let head = req.method() == Method::HEAD;
    match raw {
        "/healthz" => return (Route::Health, admin::healthz(app).await),
        "/metrics" => return (Route::Metrics, admin::metrics(app)),
        _ => {}
    }
    let parts = split_path(raw);
    let resource = raw.to_string();
    let first = parts.comps.first().map(String::as_str);
    let result: (Route, Result<Response<Body>, S3Error>) = if first.is_none() {
        (Route::List, listing::list_buckets(app, req).await)
    } else if first == Some(app.cfg.artifact_prefix.as_str())
        || first == Some(app.cfg.revision_prefix.as_str())
    {
        s3::route(app, req, parts).await
    } else if parts.comps.len() > app.reservoir_prefix.len()
        && parts.comps[..app.reservoir_prefix.len()] == app.reservoir_prefix[..]
    {
        return reservoir::route(app, req, parts).await;
    } else {
        (
            Route::Other,
            Err(S3Error::new(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist.",
            )),
        )
    };
    match result {
        (route, Ok(r)) => (route, r),
        (route, Err(e)) => (route, e.into_response(&resource, head)),
    }
}
