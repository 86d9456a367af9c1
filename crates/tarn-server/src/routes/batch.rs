//! The batch existence API (`POST /<a0>/<scope…>/?tarn-missing`, docs/server-api.md).

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use futures_util::StreamExt;
use tarn_core::{batch, object_key, Hash};

use super::{check_components, peer_ip, text, Req};
use crate::auth::{authenticate, authorize, BodyCheck};
use crate::body_pace::{collect, CollectError};
use crate::config::Access;
use crate::error::S3Error;
use crate::storage::Storage;
use crate::AppRef;

/// The hashes among `hashes` with no `<hash>.art` in the scope, in the given order.
pub(crate) async fn missing_hashes(
    app: &AppRef,
    scope_comps: &[String],
    hashes: &[Hash],
) -> Result<Vec<Hash>, S3Error> {
    let dir = format!("{}/{}", app.cfg.artifact_prefix, scope_comps.join("/"));
    // Each object key (up to 1 KiB) is built when it is checked, never all at once.
    let present: Vec<bool> = match &app.storage {
        Storage::Local(_) => {
            let app2 = app.clone();
            let (comps, asked) = (scope_comps.to_vec(), hashes.to_vec());
            tokio::task::spawn_blocking(move || {
                let Storage::Local(l) = &app2.storage else {
                    unreachable!()
                };
                let prefix = &app2.cfg.artifact_prefix;
                asked
                    .iter()
                    .map(|h| l.exists_sync(&object_key::artifact_key(prefix, &comps, *h)))
                    .collect()
            })
            .await
            .map_err(S3Error::internal)?
        }
        Storage::S3(_) if hashes.len() > 64 => {
            // One listing beats thousands of HEADs; it is shared by concurrent requests
            // and briefly reused (crate::listings says why that is safe).
            let have = app
                .listings
                .present(app, &dir)
                .await
                .map_err(S3Error::internal)?;
            hashes.iter().map(|h| have.contains(h)).collect()
        }
        Storage::S3(_) => {
            let results: Vec<Result<bool, S3Error>> =
                futures_util::stream::iter(hashes.iter().copied())
                    .map(|h| {
                        let app = app.clone();
                        let k = object_key::artifact_key(&app.cfg.artifact_prefix, scope_comps, h);
                        async move {
                            Ok(app
                                .storage
                                .head(&k)
                                .await
                                .map_err(S3Error::internal)?
                                .is_some())
                        }
                    })
                    .buffered(32)
                    .collect()
                    .await;
            results.into_iter().collect::<Result<_, _>>()?
        }
    };
    Ok(hashes
        .iter()
        .zip(present)
        .filter(|(_, p)| !p)
        .map(|(h, _)| *h)
        .collect())
}

/// The request's hashes, or the S3 error for a refused body (413 for too many).
fn parse_hashes(body: &[u8]) -> Result<Vec<Hash>, S3Error> {
    batch::parse_request(body).map_err(|e| match e {
        batch::RequestError::TooMany => S3Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            e.to_string(),
        ),
        _ => S3Error::bad("InvalidArgument", e.to_string()),
    })
}

/// Answers a batch existence request.
pub(crate) async fn missing(
    app: &AppRef,
    req: Req,
    scope_comps: &[String],
) -> Result<Response<Body>, S3Error> {
    if req.method() != Method::POST {
        return Err(S3Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "?tarn-missing takes a POST",
        ));
    }
    check_components(scope_comps)?;
    if scope_comps.is_empty() {
        return Err(S3Error::bad("InvalidArgument", "no scope in the path"));
    }
    let scope = scope_comps.join("/");
    let auth = authenticate(&app.cfg, req.method(), req.uri(), req.headers(), true)?;
    authorize(&app.cfg, auth.key, Access::Read, &scope)?;
    let mut share = app.budget.share(auth.pool(), peer_ip(&req));
    let body = collect(
        req.into_body().take(),
        batch::MAX_BODY,
        &app.cfg,
        &mut share,
    )
    .await
    .map_err(|e| match e {
        CollectError::Slow(e) => e,
        CollectError::TooLarge => S3Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            format!("the body exceeds {} bytes", batch::MAX_BODY),
        ),
        CollectError::Cut(m) => S3Error::bad(
            "IncompleteBody",
            format!("the request body was cut off: {m}"),
        ),
    })?;
    app.metrics.bytes_in.fetch_add(body.len() as u64, Relaxed);
    match &auth.body {
        BodyCheck::None => {}
        BodyCheck::Declared(want) => {
            if tarn_core::sigv4::sha256_hex(&body) != *want {
                return Err(S3Error::bad(
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        BodyCheck::Pending(p) => {
            if !p.verify(&tarn_core::sigv4::sha256_hex(&body)) {
                return Err(S3Error::new(
                    StatusCode::FORBIDDEN,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                ));
            }
        }
    }
    // Parsing holds a JSON value per element (about 80 bytes with the set of hashes seen):
    // more elements than a request may name are refused before it.
    let elements = body.iter().filter(|&&b| b == b',').count() + 1;
    if elements > batch::MAX_HASHES + 16 {
        return Err(S3Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            format!("at most {} hashes per request", batch::MAX_HASHES),
        ));
    }
    share.grow(elements as u64 * 80).await?;
    let hashes = parse_hashes(&body)?;
    drop(body);
    let missing = missing_hashes(app, scope_comps, &hashes).await?;
    app.metrics.batch_requests.fetch_add(1, Relaxed);
    app.metrics
        .batch_hashes
        .fetch_add(hashes.len() as u64, Relaxed);
    drop(hashes);
    // The reply's share travels with it until it has been handed to the connection, so
    // unread replies stay accounted.
    let reply = batch::encode_reply(&missing);
    let len = reply.len();
    share.shrink_to(len as u64);
    // The share ends with the stream, which the connection polls again only once the
    // reply has left its write buffer.
    let body = futures_util::stream::unfold(
        (Some(bytes::Bytes::from(reply)), share),
        |(reply, share)| async move {
            let piece = reply?;
            Some((Ok::<_, std::convert::Infallible>(piece), (None, share)))
        },
    );
    let mut reply = text(StatusCode::OK, "application/json", Body::from_stream(body));
    reply.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(len),
    );
    Ok(reply)
}
