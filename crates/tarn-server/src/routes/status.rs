//! `GET /` (the status page, for browsers) and `GET /api/status` (the same as JSON).
//!
//! `GET /` is also S3's ListBuckets, which S3 clients always sign. So the page is served to
//! a `GET`/`HEAD` of `/` that is unsigned, or signed but asking for `text/html` in
//! `Accept`; any other request to `/` stays ListBuckets.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};

use super::Req;
use crate::auth::authenticate;
use crate::error::S3Error;
use crate::status;
use crate::AppRef;

/// Whether a request to `/` is for the status page rather than ListBuckets.
pub(crate) fn wants_page(req: &Req) -> bool {
    if !(req.method() == Method::GET || req.method() == Method::HEAD) {
        return false;
    }
    let signed = req.headers().contains_key(header::AUTHORIZATION)
        || req
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature="));
    let html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"));
    !signed || html
}

fn method_not_allowed() -> S3Error {
    S3Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "only GET and HEAD are allowed here",
    )
}

/// Builds the status for the request's key (anonymous when unsigned).
async fn build(app: &AppRef, req: &Req) -> Result<status::Status, S3Error> {
    if !(req.method() == Method::GET || req.method() == Method::HEAD) {
        return Err(method_not_allowed());
    }
    let auth = authenticate(&app.cfg, req.method(), req.uri(), req.headers(), false)?;
    Ok(status::build(app, auth.key).await)
}

fn reply(req: &Req, ctype: &'static str, body: String, csp: bool) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(if req.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    });
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, Accept"),
    );
    if csp {
        if let Ok(v) = HeaderValue::from_str(status::html::content_security_policy()) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    r
}

fn failed(req: &Req, e: S3Error) -> Response<Body> {
    e.into_response(req.uri().path(), req.method() == Method::HEAD)
}

/// `GET /`: the page.
pub(crate) async fn page(app: &AppRef, req: &Req) -> Response<Body> {
    match build(app, req).await {
        Ok(st) => reply(
            req,
            "text/html; charset=utf-8",
            status::html::render(&st),
            true,
        ),
        Err(e) => failed(req, e),
    }
}

/// `GET /api/status`: the JSON (version 1).
pub(crate) async fn api(app: &AppRef, req: &Req) -> Response<Body> {
    match build(app, req).await {
        Ok(st) => match serde_json::to_string(&st) {
            Ok(mut j) => {
                j.push('\n');
                reply(req, "application/json", j, false)
            }
            Err(e) => failed(req, S3Error::internal(e)),
        },
        Err(e) => failed(req, e),
    }
}
