//! The S3 subset Lake, awscli and rclone use: GET/HEAD/PUT/DELETE of
//! `/<a0>/<scope…>/<hash>.art` and `/<r0>/<scope…>[/pt/<p>][/tc/<t>]/<rev>.jsonl`, with
//! upload validation.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::sync::atomic::Ordering::Relaxed;
use tarn_core::{object_key, Hash};
use tarn_core::{ARTIFACT_CONTENT_TYPE, MAPPINGS_CONTENT_TYPE};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::upload::{ok_put, receive, store_replacing, upload_auth};
use super::{batch, check_components, has_param, listing, signature, PathParts, Req};
use crate::auth::{authenticate, authorize, BodyCheck};
use crate::cache::Cached;
use crate::config::Access;
use crate::error::{xml_escape, S3Error};
use crate::metrics::{Reject, Route};
use crate::storage::{ObjectBody, ObjectMeta, PutMode, PutOutcome};
use crate::validate::check_mappings;
use crate::AppRef;

/// Handles a request under the artifact or revision prefix.
pub(crate) async fn route(
    app: &AppRef,
    req: Req,
    parts: PathParts,
) -> (Route, Result<Response<Body>, S3Error>) {
    let is_art = parts.comps[0] == app.cfg.artifact_prefix;
    if parts.comps.len() == 1 {
        let bucket = parts.comps[0].clone();
        return (Route::List, listing::bucket(app, req, &bucket).await);
    }
    if is_art && has_param(req.uri().query(), tarn_core::batch::QUERY) {
        return (
            Route::Batch,
            batch::missing(app, req, &parts.comps[1..]).await,
        );
    }
    let route = if is_art {
        Route::Artifact
    } else {
        Route::Revision
    };
    (route, object(app, req, is_art, parts).await)
}

fn etag(meta: &ObjectMeta) -> String {
    let t = meta
        .modified
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{:x}-{:x}\"", meta.len, t)
}

async fn object(
    app: &AppRef,
    req: Req,
    is_art: bool,
    parts: PathParts,
) -> Result<Response<Body>, S3Error> {
    let rest = &parts.comps[1..];
    check_components(rest)?;
    let method = req.method().clone();
    let is_get = method == Method::GET || method == Method::HEAD;
    let name = rest.last().expect("non-empty");
    let hash = if is_art {
        object_key::parse_artifact_file(name)
    } else {
        None
    };
    let signature_of = if is_art {
        None
    } else {
        object_key::parse_signature_file(name).map(str::to_string)
    };
    let valid_name = if is_art {
        hash.is_some()
    } else {
        object_key::is_revision_file(name) || signature_of.is_some()
    };
    // A directory named like an object (`…/<h>.art/<h>.art`) would clash with the object
    // of that name on local storage: no stored key has one.
    let object_named_dir = rest[..rest.len() - 1]
        .iter()
        .any(|c| object_key::parse_artifact_file(c).is_some() || object_key::is_revision_file(c));
    if rest.len() < 2 || !valid_name || parts.trailing_slash || object_named_dir {
        if is_get {
            return Err(S3Error::no_such_key());
        }
        app.metrics.reject(Reject::BadRequest);
        return Err(S3Error::bad(
            "InvalidArgument",
            if is_art {
                "artifact keys are <scope…>/<16 hex digits>.art (no scope component named like an object)"
            } else {
                "revision keys are <scope…>[/pt/<platform>][/tc/<toolchain>]/<rev>.jsonl (or .jsonl.sig; no scope component named like an object)"
            },
        ));
    }
    let scope_comps = if is_art {
        &rest[..rest.len() - 1]
    } else {
        object_key::revision_scope(&rest[..rest.len() - 1])
    };
    let scope = scope_comps.join("/");
    // An artifact's key is built from its parsed hash (Lake's lower-case name), so
    // `…/ABCD….art` and `…/abcd….art` are one object, never two.
    let key = match hash {
        Some(h) => {
            let mut comps = parts.comps[..parts.comps.len() - 1].to_vec();
            comps.push(object_key::artifact_file(h));
            comps.join("/")
        }
        None => parts.comps.join("/"),
    };
    let ctype = if is_art {
        ARTIFACT_CONTENT_TYPE
    } else if signature_of.is_some() {
        signature::CONTENT_TYPE
    } else {
        MAPPINGS_CONTENT_TYPE
    };
    match method {
        Method::GET | Method::HEAD => {
            let auth = authenticate(&app.cfg, &method, req.uri(), req.headers(), false)?;
            authorize(&app.cfg, auth.key, Access::Read, &scope)?;
            serve_object(app, &key, method == Method::HEAD, ctype, req.headers()).await
        }
        Method::PUT => {
            // Only uploads whose signature holds are journaled for the status page:
            // anonymous or forged ones would let anyone write there (and push the real
            // rejections out); they are counted in the metrics only.
            let key_id = authenticate(&app.cfg, &method, req.uri(), req.headers(), false)
                .ok()
                .and_then(|a| a.key.map(|k| k.id.clone()));
            // A signed revision (or signature) upload whose body the signature does not
            // cover is refused if replayed (crate::replay says why only those).
            let claim = match key_id {
                Some(_) if !is_art && !crate::replay::body_is_signed(req.headers()) => {
                    crate::replay::claim_write(app, req.headers())?
                }
                _ => None,
            };
            let r = if is_art {
                put_artifact(app, req, &scope, &key, hash.expect("valid name")).await
            } else if let Some(rev) = &signature_of {
                signature::put(app, req, &scope, rev, &key).await
            } else {
                put_revision(app, req, scope_comps, &key).await
            };
            if let Some(c) = claim {
                c.settle(match &r {
                    Ok(resp) => resp.status().as_u16(),
                    Err(e) => e.status.as_u16(),
                });
            }
            if let Err(e) = &r {
                tracing::debug!("upload of {key} refused");
                if e.status != StatusCode::INTERNAL_SERVER_ERROR && key_id.is_some() {
                    app.status.journal.reject(crate::status::journal::Rejection {
                        at_unix: crate::status::now_unix(),
                        scope: scope.clone(),
                        key: key.clone(),
                        status: e.status.as_u16(),
                        code: e.code.to_string(),
                        key_id,
                    });
                }
            }
            r
        }
        Method::DELETE => {
            let auth = authenticate(&app.cfg, &method, req.uri(), req.headers(), false)?;
            authorize(&app.cfg, auth.key, Access::Admin, &scope)?;
            // A signed DELETE is refused if replayed (crate::replay); kept only once done.
            let claim = crate::replay::claim_write(app, req.headers())?;
            let meta = match app.storage.head(&key).await {
                Ok(m) => m,
                Err(e) => {
                    if let Some(c) = claim {
                        c.settle(500);
                    }
                    return Err(S3Error::internal(e));
                }
            };
            app.cache.remove(&key);
            app.status.scanner.changed();
            app.listings.invalidate();
            let deleted = app.storage.delete(&key).await;
            if let Some(c) = claim {
                c.settle(if deleted.is_ok() { 204 } else { 500 });
            }
            if deleted.map_err(S3Error::internal)? {
                if let Some(m) = meta {
                    app.metrics.removed(m.len);
                }
            }
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        Method::POST
            if has_param(req.uri().query(), "uploads") || has_param(req.uri().query(), "uploadId") =>
        {
            Err(S3Error::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "multipart uploads are not supported; upload in one PUT (awscli: aws configure set default.s3.multipart_threshold 5GB)",
            ))
        }
        _ => Err(S3Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )),
    }
}

/// The `Range` header resolved against `len` (`tarn_core::byte_range`): `Some(Ok((first,
/// last)))`, `Some(Err(()))` when unsatisfiable, `None` when absent or ignored.
fn parse_range(h: Option<&HeaderValue>, len: u64) -> Option<Result<(u64, u64), ()>> {
    use tarn_core::byte_range::{resolve, Resolved};
    match resolve(h?.to_str().ok()?, len) {
        Resolved::Range { first, last } => Some(Ok((first, last))),
        Resolved::Unsatisfiable => Some(Err(())),
        Resolved::Ignored => None,
    }
}

fn cached_response(app: &AppRef, c: &Cached, head: bool, ctype: &'static str) -> Response<Body> {
    let mut r = Response::new(if head {
        Body::empty()
    } else {
        app.metrics.bytes_out.fetch_add(c.meta.len, Relaxed);
        Body::from(c.body.clone())
    });
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, c.content_length.clone());
    h.insert(header::LAST_MODIFIED, c.last_modified.clone());
    h.insert(header::ETAG, c.etag.clone());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// GET/HEAD of a stored object (also used by the Reservoir routes); counts the read for
/// the object's scope (a hit with the bytes sent, or a miss).
pub(crate) async fn serve_object(
    app: &AppRef,
    key: &str,
    head: bool,
    ctype: &'static str,
    req_headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let r = serve_stored(app, key, head, ctype, req_headers).await;
    if let Some(scope) = object_key::scope_of_key(key, &app.cfg.revision_prefix) {
        match &r {
            Ok(resp) => {
                let sent = if head {
                    0
                } else {
                    resp.headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                app.status.traffic.read(&scope, true, sent);
            }
            Err(e) if e.status == StatusCode::NOT_FOUND => {
                app.status.traffic.read(&scope, false, 0)
            }
            Err(_) => {}
        }
    }
    r
}

async fn serve_stored(
    app: &AppRef,
    key: &str,
    head: bool,
    ctype: &'static str,
    req_headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    // Artifacts are immutable: small ones are served from memory.
    let cacheable = ctype == ARTIFACT_CONTENT_TYPE
        && app.cache.enabled()
        && !req_headers.contains_key(header::RANGE);
    if cacheable {
        if let Some(c) = app.cache.get(key) {
            return Ok(cached_response(app, &c, head, ctype));
        }
    }
    // Ranged GETs on the S3 backend are passed through (awscli downloads big objects in
    // ranged parts).
    if let (crate::storage::Storage::S3(s3), Some(range), false) = (
        &app.storage,
        req_headers.get(header::RANGE).and_then(|r| r.to_str().ok()),
        head,
    ) {
        let (content_range, obj) = match s3.get_range(key, range).await {
            Ok(Some(x)) => x,
            Ok(None) => return Err(S3Error::no_such_key()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return Err(S3Error::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ))
            }
            Err(e) => return Err(S3Error::internal(e)),
        };
        let ObjectBody::Remote(resp) = obj.body else {
            unreachable!("S3 bodies are remote")
        };
        app.metrics.bytes_out.fetch_add(obj.meta.len, Relaxed);
        let mut b = Response::builder()
            .status(if content_range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            })
            .header(header::CONTENT_TYPE, ctype)
            .header(header::CONTENT_LENGTH, obj.meta.len)
            .header(
                header::LAST_MODIFIED,
                httpdate::fmt_http_date(obj.meta.modified),
            )
            .header(header::ACCEPT_RANGES, "bytes");
        if let Some(cr) = content_range {
            b = b.header(header::CONTENT_RANGE, cr);
        }
        return b.body(Body::from_stream(resp)).map_err(S3Error::internal);
    }
    let (meta, body) = if head {
        let meta = app
            .storage
            .head(key)
            .await
            .map_err(S3Error::internal)?
            .ok_or_else(S3Error::no_such_key)?;
        (meta, None)
    } else {
        let obj = app
            .storage
            .get(key)
            .await
            .map_err(S3Error::internal)?
            .ok_or_else(S3Error::no_such_key)?;
        if cacheable && obj.meta.len <= crate::cache::MAX_ENTRY {
            if let ObjectBody::Bytes(bytes) = obj.body {
                let c = app.cache.insert(
                    key,
                    Cached {
                        body: bytes,
                        meta: obj.meta,
                        last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(
                            obj.meta.modified,
                        ))
                        .map_err(S3Error::internal)?,
                        etag: HeaderValue::from_str(&etag(&obj.meta)).map_err(S3Error::internal)?,
                        content_length: HeaderValue::from(obj.meta.len),
                    },
                );
                return Ok(cached_response(app, &c, false, ctype));
            }
        }
        (obj.meta, Some(obj.body))
    };
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(meta.modified),
        )
        .header(header::ETAG, etag(&meta))
        .header(header::ACCEPT_RANGES, "bytes");
    let range = match &body {
        Some(ObjectBody::Remote(_)) => None,
        _ => parse_range(req_headers.get(header::RANGE), meta.len),
    };
    let (status, len, body) = match (range, body) {
        (Some(Err(())), _) => {
            return Err(S3Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            ))
        }
        (Some(Ok((s, e))), body) => {
            b = b.header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{}", meta.len));
            let n = e - s + 1;
            let body = match body {
                None => Body::empty(),
                Some(ObjectBody::Bytes(bytes)) => Body::from(bytes.slice(s as usize..=e as usize)),
                Some(ObjectBody::File(mut f)) => {
                    f.seek(std::io::SeekFrom::Start(s))
                        .await
                        .map_err(S3Error::internal)?;
                    Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                        f.take(n),
                        128 << 10,
                    ))
                }
                Some(ObjectBody::Remote(_)) => unreachable!("no ranges on remote bodies"),
            };
            (StatusCode::PARTIAL_CONTENT, n, body)
        }
        (None, None) => (StatusCode::OK, meta.len, Body::empty()),
        (None, Some(ObjectBody::Bytes(bytes))) => (StatusCode::OK, meta.len, Body::from(bytes)),
        (None, Some(ObjectBody::File(f))) => (
            StatusCode::OK,
            meta.len,
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f, 128 << 10)),
        ),
        (None, Some(ObjectBody::Remote(resp))) => {
            (StatusCode::OK, meta.len, Body::from_stream(resp))
        }
    };
    if !head {
        app.metrics.bytes_out.fetch_add(len, Relaxed);
    }
    b.status(status)
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .map_err(S3Error::internal)
}

async fn put_artifact(
    app: &AppRef,
    req: Req,
    scope: &str,
    key: &str,
    hash: Hash,
) -> Result<Response<Body>, S3Error> {
    let auth = upload_auth(app, &req, scope)?;
    // Present already (the name is the content hash): nothing to do, and no need to read
    // the body, unless the signature can only be checked against it.
    if !matches!(auth.body, BodyCheck::Pending(_))
        && app
            .storage
            .head(key)
            .await
            .map_err(S3Error::internal)?
            .is_some()
    {
        app.metrics.uploads_existing.fetch_add(1, Relaxed);
        return Ok(ok_put(&hash.hex()));
    }
    let spooled = receive(app, req, &auth, app.cfg.max_artifact_bytes, true).await?;
    if spooled.lake_hash != Some(hash) {
        app.metrics.reject(Reject::HashMismatch);
        let got = spooled.lake_hash.map(|h| h.hex()).unwrap_or_default();
        return Err(S3Error::bad(
            "BadDigest",
            format!("the body hashes to {got}, not to its name {}", hash.hex()),
        ));
    }
    let len = spooled.spool.len;
    match app
        .storage
        .put(key, spooled.spool, PutMode::NoClobber)
        .await
        .map_err(S3Error::internal)?
    {
        PutOutcome::Created => {
            app.metrics.stored(len);
            app.metrics.uploads_created.fetch_add(1, Relaxed);
        }
        PutOutcome::Existed => {
            app.metrics.uploads_existing.fetch_add(1, Relaxed);
        }
    }
    Ok(ok_put(&hash.hex()))
}

async fn put_revision(
    app: &AppRef,
    req: Req,
    scope_comps: &[String],
    key: &str,
) -> Result<Response<Body>, S3Error> {
    let scope = scope_comps.join("/");
    let auth = upload_auth(app, &req, &scope)?;
    let uploaded_with = signature::uploaded_with(&req)?;
    let spooled = receive(app, req, &auth, app.cfg.max_revision_bytes, false).await?;
    let path = spooled.spool.temp.path().to_path_buf();
    // Revision files are parsed in memory: a shared budget bounds how many bytes at once.
    let share = app.budget.signed_share(spooled.spool.len).await;
    let bytes = tokio::fs::read(&path).await.map_err(S3Error::internal)?;
    let checked = check_mappings(&bytes);
    let etag = tarn_core::sigv4::sha256_hex(&bytes)[..32].to_string();
    let digest = tarn_core::trust::StrongDigest::of_revision_file(&bytes);
    drop(bytes);
    drop(share);
    let hashes = match checked {
        Ok(h) => h,
        Err(e) => {
            app.metrics.reject(Reject::BadRevision);
            return Err(S3Error::bad(
                "InvalidRevisionFile",
                format!("not a Lake mapping file: {e}"),
            ));
        }
    };
    if app.cfg.require_artifacts && !hashes.is_empty() {
        let missing = batch::missing_hashes(app, scope_comps, &hashes).await?;
        if !missing.is_empty() {
            app.metrics.reject(Reject::MissingArtifacts);
            let shown: Vec<String> = missing.iter().take(20).map(|h| h.hex()).collect();
            let mut e = S3Error::new(
                StatusCode::CONFLICT,
                "MissingArtifacts",
                format!(
                    "{} artifact(s) referenced by this revision are not in scope {scope:?}; upload them first: {}{}",
                    missing.len(),
                    shown.join(", "),
                    if missing.len() > 20 { ", …" } else { "" }
                ),
            );
            for h in missing.iter().take(10_000) {
                e.extra
                    .push_str(&format!("<Missing>{}</Missing>", xml_escape(&h.hex())));
            }
            return Err(e);
        }
    }
    let mut distinct = hashes;
    distinct.sort_unstable();
    distinct.dedup();
    // No signature upload for this key between the check and the store.
    let one_at_a_time = app.revision_locks.lock(key).await;
    let signed =
        signature::check_revision(app, &scope, key, &digest, &distinct, uploaded_with).await?;
    let len = spooled.spool.len;
    store_replacing(app, key, spooled).await?;
    drop(one_at_a_time);
    app.status.scanner.changed();
    let file = key.rsplit('/').next().unwrap_or(key);
    app.status
        .journal
        .upload(crate::status::journal::UploadRecord {
            at_unix: crate::status::now_unix(),
            key: key.to_string(),
            scope,
            rev: file.strip_suffix(".jsonl").unwrap_or(file).to_string(),
            key_id: auth.key.map(|k| k.id.clone()),
            bytes: len,
            artifacts: distinct.len() as u64,
            signed_by: signed.as_ref().map(|s| s.key_id.clone()),
            signature_verified: signed.is_some_and(|s| s.verified),
        })
        .await;
    Ok(ok_put(&etag))
}
