//! Receiving an upload, for every route that takes one (objects and revision signatures):
//! authentication and authorization, the body spooled within its limits and checked against
//! its signature, and storing a validated body under its final name.

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::http::{header, HeaderMap, Response, StatusCode};

use super::Req;
use crate::auth::{authenticate, authorize, BodyCheck, BodyEncoding};
use crate::body_pace::BodyPace;
use crate::config::Access;
use crate::error::S3Error;
use crate::metrics::Reject;
use crate::storage::{PutMode, PutOutcome};
use crate::validate::{spool_body, too_large, SpoolOptions, Spooled};
use crate::AppRef;

/// A header's value as a number, if it is one.
fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The reply to a stored upload: 200 with the object's ETag.
pub(crate) fn ok_put(etag: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::ETAG, format!("\"{etag}\""))
        .body(Body::empty())
        .expect("valid response")
}

/// Authenticates and authorizes an upload, counting refusals.
pub(crate) fn upload_auth<'a>(
    app: &'a AppRef,
    req: &Req,
    scope: &str,
) -> Result<crate::auth::Authenticated<'a>, S3Error> {
    let r = authenticate(&app.cfg, req.method(), req.uri(), req.headers(), true).and_then(|a| {
        authorize(&app.cfg, a.key, Access::Write, scope)?;
        Ok(a)
    });
    if r.is_err() {
        app.metrics.reject(Reject::Auth);
    }
    r
}

/// Spools an authorized upload's body (within `limit`, a slot per key, at a minimum pace),
/// checking it against the signature's payload hash; `lake_hash` also hashes it as Lake does.
pub(crate) async fn receive(
    app: &AppRef,
    req: Req,
    auth: &crate::auth::Authenticated<'_>,
    limit: u64,
    lake_hash: bool,
) -> Result<Spooled, S3Error> {
    let (check, encoding) = (&auth.body, auth.encoding);
    let headers = req.headers();
    let declared_len = if encoding == BodyEncoding::AwsChunked {
        header_u64(headers, "x-amz-decoded-content-length")
    } else {
        header_u64(headers, "content-length")
    };
    if declared_len.is_some_and(|n| n > limit) {
        app.metrics.reject(Reject::TooLarge);
        return Err(too_large(limit));
    }
    let expected_len = header_u64(headers, "content-length");
    let opts = SpoolOptions {
        limit,
        expected_len,
        sha256: !matches!(check, BodyCheck::None),
        lake_hash,
        aws_chunked: encoding == BodyEncoding::AwsChunked,
    };
    let Some(spool_dir) = app.storage.spool_dir() else {
        return Err(S3Error::internal(
            "upload to a server opened without a spool directory",
        ));
    };
    // A bounded number of bodies are spooled at once, a quarter of them per key; the
    // others wait here, unread.
    let _slot = app
        .upload_slots
        .acquire(auth.key.map(|k| k.id.as_str()))
        .await;
    // The body's pace is measured from here: a client waiting for a slot is not reading.
    let spooled = spool_body(
        spool_dir,
        req.into_body().take(),
        opts,
        BodyPace::new(&app.cfg),
        &app.metrics.bytes_in,
    )
    .await
    .inspect_err(|e| {
        if e.status == StatusCode::PAYLOAD_TOO_LARGE {
            app.metrics.reject(Reject::TooLarge);
        } else if e.status == StatusCode::REQUEST_TIMEOUT {
            app.metrics.reject(Reject::SlowBody);
        } else {
            app.metrics.reject(Reject::BadRequest);
        }
    })?;
    match check {
        BodyCheck::None => {}
        BodyCheck::Declared(want) => {
            if spooled.wire_sha256.as_deref() != Some(want.as_str()) {
                app.metrics.reject(Reject::BadRequest);
                return Err(S3Error::bad(
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        BodyCheck::Pending(p) => {
            if !p.verify(spooled.wire_sha256.as_deref().unwrap_or("")) {
                app.metrics.reject(Reject::Auth);
                return Err(S3Error::new(
                    StatusCode::FORBIDDEN,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                ));
            }
        }
    }
    Ok(spooled)
}

/// Stores a validated upload under `key`, replacing what is there (revision files and their
/// signatures; artifacts are never replaced), and counts it.
pub(crate) async fn store_replacing(
    app: &AppRef,
    key: &str,
    spooled: Spooled,
) -> Result<(), S3Error> {
    let len = spooled.spool.len;
    let outcome = app
        .storage
        .put(key, spooled.spool, PutMode::Replace)
        .await
        .map_err(S3Error::internal)?;
    if outcome == PutOutcome::Created {
        app.metrics.stored(len);
        app.metrics.uploads_created.fetch_add(1, Relaxed);
    } else {
        app.metrics.uploads_existing.fetch_add(1, Relaxed);
    }
    Ok(())
}
