//! The Reservoir subset Lake's `reservoir` service kind uses (spec §6.3, §6.5), served from
//! the same objects as the S3 routes:
//!
//! * `GET {api}/{repositories|packages}/<scope…>/artifacts/<hash>.art` → `a0/<scope>/<hash>.art`;
//! * `GET {api}/repositories/<owner>/<repo>/build-outputs?rev=R[&platform=P][&toolchain=T]` →
//!   `r0/<owner>/<repo>[/pt/P][/tc/toolchain2Dir(T)]/R.jsonl` (exactly the S3 URL Lake uploads
//!   a repository scope to); for `packages/<scope>` the platform and toolchain are ignored,
//!   as Lake's S3 URLs do for a plain scope;
//! * `POST {api}/…/<scope…>/artifacts` with a JSON array of hashes → `{"data":[urls]}`.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use tarn_core::{object_key, reservoir, Hash};
use tarn_core::{ARTIFACT_CONTENT_TYPE, MAPPINGS_CONTENT_TYPE};

use super::s3::serve_object;
use super::{base_url, check_components, encode_components, param, peer_ip, text, PathParts, Req};
use crate::auth::{authenticate, authorize};
use crate::body_pace::{collect, CollectError};
use crate::budget::Pool;
use crate::config::Access;
use crate::error::S3Error;
use crate::metrics::Route;
use crate::AppRef;

/// Largest Reservoir bulk request body (a JSON array of hashes: about 200,000 of them).
const BULK_BODY_LIMIT: u64 = 4 << 20;

fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    text(
        status,
        "application/json",
        reservoir::encode_error(status.as_u16(), message),
    )
}

fn from_s3(e: S3Error) -> Response<Body> {
    json_error(
        e.status,
        &crate::error::cut(&e.message, crate::error::MAX_ECHO_BYTES),
    )
}

/// Handles a request under the Reservoir prefix.
pub(crate) async fn route(app: &AppRef, req: Req, parts: PathParts) -> (Route, Response<Body>) {
    let rest = &parts.comps[app.reservoir_prefix.len()..];
    let kind = rest[0].as_str();
    if kind != "repositories" && kind != "packages" || rest.len() < 3 {
        return (
            Route::Other,
            json_error(StatusCode::NOT_FOUND, "unknown API path"),
        );
    }
    let is_repo = kind == "repositories";
    let rest = &rest[1..];
    let n = rest.len();
    let method = req.method().clone();
    // …/artifacts/<hash>.art
    if n >= 3 && rest[n - 2] == "artifacts" {
        let scope = &rest[..n - 2];
        let Some(hash) = object_key::parse_artifact_file(&rest[n - 1]) else {
            return (
                Route::ReservoirArtifact,
                json_error(StatusCode::NOT_FOUND, "not an artifact name"),
            );
        };
        if method != Method::GET && method != Method::HEAD {
            return (
                Route::ReservoirArtifact,
                json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "artifacts are read-only here",
                ),
            );
        }
        let r = artifact(app, &req, scope, hash).await;
        return (Route::ReservoirArtifact, r.unwrap_or_else(from_s3));
    }
    let scope = &rest[..n - 1];
    match (rest[n - 1].as_str(), &method) {
        ("artifacts", &Method::POST) => {
            let r = bulk(app, req, kind, scope).await;
            (Route::ReservoirBulk, r.unwrap_or_else(from_s3))
        }
        ("build-outputs", &Method::GET) | ("build-outputs", &Method::HEAD) => {
            let r = build_outputs(app, &req, is_repo, scope).await;
            (Route::ReservoirRevision, r.unwrap_or_else(from_s3))
        }
        _ => (
            Route::Other,
            json_error(StatusCode::NOT_FOUND, "unknown API path"),
        ),
    }
}

/// Checks the scope and read access; returns the memory pool the request draws from.
fn read_auth(app: &AppRef, req: &Req, scope: &[String]) -> Result<Pool, S3Error> {
    check_components(scope)?;
    if scope.is_empty() {
        return Err(S3Error::bad("InvalidArgument", "no scope"));
    }
    let auth = authenticate(&app.cfg, req.method(), req.uri(), req.headers(), false)?;
    authorize(&app.cfg, auth.key, Access::Read, &scope.join("/"))?;
    Ok(auth.pool())
}

async fn artifact(
    app: &AppRef,
    req: &Req,
    scope: &[String],
    hash: Hash,
) -> Result<Response<Body>, S3Error> {
    read_auth(app, req, scope)?;
    let key = object_key::artifact_key(&app.cfg.artifact_prefix, scope, hash);
    serve_object(
        app,
        &key,
        req.method() == Method::HEAD,
        ARTIFACT_CONTENT_TYPE,
        req.headers(),
    )
    .await
}

async fn build_outputs(
    app: &AppRef,
    req: &Req,
    is_repo: bool,
    scope: &[String],
) -> Result<Response<Body>, S3Error> {
    read_auth(app, req, scope)?;
    let q = req.uri().query();
    let rev = param(q, "rev")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| S3Error::bad("InvalidArgument", "the rev parameter is required"))?;
    let mut comps: Vec<String> = scope.to_vec();
    if is_repo {
        comps.extend(object_key::revision_dir_suffix(
            param(q, "platform").as_deref(),
            param(q, "toolchain").as_deref(),
        ));
    }
    comps.push(object_key::revision_file(&rev));
    check_components(&comps)?;
    let key = format!("{}/{}", app.cfg.revision_prefix, comps.join("/"));
    serve_object(
        app,
        &key,
        req.method() == Method::HEAD,
        MAPPINGS_CONTENT_TYPE,
        req.headers(),
    )
    .await
}

/// The bulk reply is sent in pieces of about this many bytes, one at a time.
const BULK_REPLY_PIECE: usize = 64 << 10;

async fn bulk(
    app: &AppRef,
    req: Req,
    _kind: &str,
    scope: &[String],
) -> Result<Response<Body>, S3Error> {
    let pool = read_auth(app, &req, scope)?;
    let base = base_url(app, &req)?;
    // The body is accounted in the budget as it arrives, then the hashes parsed from it;
    // the reply is streamed a piece at a time, and its share (the hashes and two pieces)
    // travels with the reply body until the last piece has been handed to the connection,
    // so concurrent bulk requests, read or not, cannot add up beyond the budget.
    let mut share = app.budget.share(pool, peer_ip(&req));
    let body = collect(
        req.into_body().take(),
        BULK_BODY_LIMIT as usize,
        &app.cfg,
        &mut share,
    )
    .await
    .map_err(|e| match e {
        CollectError::Slow(e) => e,
        CollectError::TooLarge => S3Error::bad("InvalidArgument", "body too large"),
        CollectError::Cut(m) => S3Error::bad(
            "IncompleteBody",
            format!("the request body was cut off: {m}"),
        ),
    })?;
    // At most one hash per comma, and 8 bytes each.
    let elements = body.iter().filter(|&&b| b == b',').count() as u64 + 1;
    share.grow(elements * 8).await?;
    let hashes = reservoir::parse_bulk_request(&body)
        .map_err(|e| S3Error::bad("InvalidArgument", e.to_string()))?;
    drop(body);
    share.shrink_to(hashes.len() as u64 * 8 + 2 * BULK_REPLY_PIECE as u64);
    let prefix = format!(
        "{base}/{}{}",
        app.cfg.artifact_prefix,
        encode_components(scope)
    );
    let encoder = reservoir::BulkReplyEncoder::new(&prefix, hashes);
    let len = encoder.total_len();
    let pieces = futures_util::stream::unfold((encoder, share), |(mut encoder, share)| async {
        let piece = encoder.next_piece(BULK_REPLY_PIECE)?;
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(piece)),
            (encoder, share),
        ))
    });
    let mut reply = text(
        StatusCode::OK,
        "application/json",
        Body::from_stream(pieces),
    );
    reply
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(reply)
}
