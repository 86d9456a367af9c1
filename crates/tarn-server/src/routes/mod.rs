//! Request dispatch: one function looks at the path and sends the request to the S3,
//! Reservoir, batch, listing or admin handlers. No router tables, no locks.

pub(crate) mod admin;
pub(crate) mod batch;
pub(crate) mod listing;
pub(crate) mod reservoir;
pub(crate) mod s3;
pub(crate) mod signature;
pub(crate) mod status;
pub(crate) mod upload;

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use tarn_core::uri_encode;

use crate::error::S3Error;
use crate::metrics::Route;
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
    let sent = if method == Method::HEAD {
        0
    } else {
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    app.status
        .traffic
        .request(crate::status::traffic::now_minute(), sent);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 400 || !(method == Method::GET || method == Method::HEAD) {
        tracing::info!(target: "tarn_server::access", method = %method, uri = %uri, status, ms, "request");
    } else {
        tracing::debug!(target: "tarn_server::access", method = %method, uri = %uri, status, ms, "request");
    }
    resp
}

pub(crate) use tarn_core::request_target::{has_param, param, split_path, PathParts};

/// Checks scope components (400 on `..`, empty, reserved names, over-long names; the rules
/// are `tarn_core::request_target::check_components`).
pub(crate) fn check_components(comps: &[String]) -> Result<(), S3Error> {
    use tarn_core::request_target::ComponentError;
    tarn_core::request_target::check_components(comps).map_err(|e| {
        let code = match e {
            ComponentError::TooLong => "KeyTooLongError",
            ComponentError::Invalid => "InvalidURI",
        };
        S3Error::bad(code, e.to_string())
    })
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

/// Base URL for links in replies: `public_url`, else the request's `Host` (or HTTP/2
/// authority), which must be a `host[:port]` of at most
/// [`tarn_core::request_target::MAX_HOST_BYTES`] (`400` otherwise: a reply's size and content
/// never follow an arbitrary header).
pub(crate) fn base_url(app: &crate::App, req: &Req) -> Result<String, S3Error> {
    if let Some(u) = &app.cfg.public_url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    let host = match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok(),
        None => Some(req.uri().authority().map_or("127.0.0.1", |a| a.as_str())),
    };
    match host {
        Some(host) if tarn_core::request_target::valid_host(host) => Ok(format!(
            "{}://{host}",
            if app.tls { "https" } else { "http" }
        )),
        _ => Err(S3Error::bad(
            "InvalidArgument",
            format!(
                "the Host header must be a host[:port] of at most {} bytes (letters, digits, '-', '.', '_', or an IPv6 address in brackets); set public_url to build URLs without it",
                tarn_core::request_target::MAX_HOST_BYTES
            ),
        )),
    }
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
        "/api/status" => return (Route::Status, status::api(app, &req).await),
        "/" if status::wants_page(&req) => return (Route::Status, status::page(app, &req).await),
        _ => {}
    }
    let parts = split_path(raw);
    let resource = raw.to_string();
    if parts.invalid_utf8 {
        // `%FF` and `%EF%BF%BD` must not name the same object: no key holds a name that is
        // not UTF-8.
        let e = S3Error::bad(
            "InvalidURI",
            "a path component is not valid UTF-8 once percent-decoded",
        );
        return (Route::Other, e.into_response(&resource, head));
    }
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
