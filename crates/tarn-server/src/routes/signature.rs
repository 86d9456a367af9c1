//! Revision signatures (docs/trust.md): `PUT <revision key>.sig` stores a signature object
//! after checking it is one for this scope and revision (and, in a `[[signed]]` scope, that a
//! trusted key made it and it is not older than the one stored); a revision upload in a
//! `[[signed]]` scope is refused unless the signature stored beside it covers exactly this
//! revision file and its artifacts. The signature goes first, so a revision file never
//! becomes visible without the signature that covers it.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use tarn_core::trust::{SignatureFile, StrongDigest, TrustError};
use tarn_core::trust::{SIGNATURE_SHA256_HEADER, SIGNATURE_SUFFIX};
use tarn_core::Hash;

use super::upload::{ok_put, receive, store_replacing, upload_auth};
use super::Req;
use crate::error::S3Error;
use crate::metrics::Reject;
use crate::AppRef;

/// The content type of a signature object.
pub(crate) const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Who signed a revision that was stored, for the journal and status page.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    /// The signer's key id.
    pub key_id: String,
    /// Checked against the scope's trusted keys.
    pub verified: bool,
}

fn now_unix() -> u64 {
    crate::status::now_unix()
}

fn refused(app: &AppRef, code: &'static str, message: String) -> S3Error {
    app.metrics.reject(Reject::BadRevision);
    S3Error::bad(code, message)
}

fn forbidden(app: &AppRef, code: &'static str, message: String) -> S3Error {
    app.metrics.reject(Reject::BadRevision);
    S3Error::new(StatusCode::FORBIDDEN, code, message)
}

/// The bytes of the signature object stored at `key`; `None` when there is none.
async fn stored_bytes(app: &AppRef, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
    let bytes = crate::gc::read_all(app, key, app.cfg.max_revision_bytes)
        .await
        .map_err(S3Error::internal)?;
    Ok(bytes.flatten())
}

/// The signature object stored at `key`, parsed; `None` when there is none (or it is not
/// readable as one).
async fn stored(app: &AppRef, key: &str) -> Result<Option<SignatureFile>, S3Error> {
    Ok(stored_bytes(app, key)
        .await?
        .and_then(|b| SignatureFile::parse(&b).ok()))
}

/// The SHA-256 a revision upload says its signature has ([`SIGNATURE_SHA256_HEADER`]), if it
/// says one; a malformed value is refused (400).
pub(crate) fn uploaded_with(req: &Req) -> Result<Option<[u8; 32]>, S3Error> {
    let Some(value) = req.headers().get(SIGNATURE_SHA256_HEADER) else {
        return Ok(None);
    };
    let mut sha = [0u8; 32];
    match value
        .to_str()
        .ok()
        .map(|v| hex::decode_to_slice(v, &mut sha))
    {
        Some(Ok(())) => Ok(Some(sha)),
        _ => Err(S3Error::bad(
            "InvalidArgument",
            format!("{SIGNATURE_SHA256_HEADER} must be 64 hex digits (a SHA-256)"),
        )),
    }
}

/// `PUT <scope…>/<rev>.jsonl.sig`.
pub(crate) async fn put(
    app: &AppRef,
    req: Req,
    scope: &str,
    rev: &str,
    key: &str,
) -> Result<Response<Body>, S3Error> {
    let auth = upload_auth(app, &req, scope)?;
    let spooled = receive(app, req, &auth, app.cfg.max_revision_bytes, false).await?;
    let path = spooled.spool.temp.path().to_path_buf();
    let share = app.budget.signed_share(spooled.spool.len).await;
    let bytes = tokio::fs::read(&path).await.map_err(S3Error::internal)?;
    let parsed = SignatureFile::parse(&bytes);
    let etag = tarn_core::sigv4::sha256_hex(&bytes)[..32].to_string();
    drop(bytes);
    drop(share);
    let sig = parsed.map_err(|e| {
        refused(
            app,
            "InvalidSignatureFile",
            format!("not a tarn signature object: {e}"),
        )
    })?;
    let m = &sig.manifest;
    let revision_key = key.strip_suffix(SIGNATURE_SUFFIX).unwrap_or(key);
    let _one_at_a_time = app.revision_locks.lock(revision_key).await;
    if m.scope != scope || m.revision != rev {
        return Err(refused(
            app,
            "InvalidSignatureFile",
            format!(
                "the signature is for scope {:?} revision {:?}, not this key's scope {scope:?} revision {rev:?}",
                m.scope, m.revision
            ),
        ));
    }
    if let Some(keys) = app.cfg.signature_keys(scope) {
        sig.verify_signer(&keys, now_unix()).map_err(|e| {
            forbidden(
                app,
                "SignatureRefused",
                format!("scope {scope:?} accepts signatures by its trusted keys only: {e}"),
            )
        })?;
        if let Some(old) = stored(app, key).await? {
            if old.manifest.timestamp > m.timestamp {
                let e = TrustError::Replayed {
                    timestamp: m.timestamp,
                    newest_seen: old.manifest.timestamp,
                };
                return Err(forbidden(app, "SignatureReplayed", e.to_string()));
            }
        }
    }
    store_replacing(app, key, spooled).await?;
    Ok(ok_put(&etag))
}

/// Before a revision file is stored at `key` (called under the revision's lock): the
/// signature stored at `key.sig`, if it covers this revision file (`digest`) and exactly its
/// artifacts (`distinct`, sorted). In a `[[signed]]` scope it must exist, be made by a
/// trusted key, and cover them, or the upload is refused (403). In another scope a stored
/// signature that does not cover the new revision file is deleted first, so the revision
/// is never visible beside a signature of other bytes. With `uploaded_with` (the SHA-256 of
/// the signature its uploader stored), the stored signature must still be exactly that one:
/// if another upload of the revision replaced it in between, nothing is stored (409), so
/// two uploads racing never leave one's revision beside the other's signature.
pub(crate) async fn check_revision(
    app: &AppRef,
    scope: &str,
    key: &str,
    digest: &StrongDigest,
    distinct: &[Hash],
    uploaded_with: Option<[u8; 32]>,
) -> Result<Option<Signed>, S3Error> {
    let sig_key = format!("{key}{SIGNATURE_SUFFIX}");
    let sig_bytes = stored_bytes(app, &sig_key).await?;
    if let Some(want) = uploaded_with {
        let have = sig_bytes.as_deref().map(|b| StrongDigest::of(b).sha256);
        if have != Some(want) {
            app.metrics.reject(Reject::BadRevision);
            return Err(S3Error::new(
                StatusCode::CONFLICT,
                "SignatureChanged",
                format!(
                    "{sig_key} is no longer the signature this revision was uploaded with (SHA-256 {}; stored now: {}): another upload of this revision replaced it; nothing was stored, upload again",
                    hex::encode(want),
                    have.map_or_else(|| "none".to_string(), hex::encode)
                ),
            ));
        }
    }
    let any_stored = sig_bytes.is_some();
    let sig = sig_bytes.and_then(|b| SignatureFile::parse(&b).ok());
    let covers = |s: &SignatureFile| {
        s.manifest.revision_file == *digest
            && s.manifest.artifacts.len() == distinct.len()
            && distinct
                .iter()
                .all(|h| s.manifest.artifacts.contains_key(h))
    };
    let Some(keys) = app.cfg.signature_keys(scope) else {
        let Some(sig) = sig.filter(covers) else {
            if any_stored {
                app.storage
                    .delete(&sig_key)
                    .await
                    .map_err(S3Error::internal)?;
            }
            return Ok(None);
        };
        return Ok(Some(Signed {
            key_id: sig.manifest.key_id,
            verified: false,
        }));
    };
    let Some(sig) = sig else {
        return Err(forbidden(
            app,
            "SignatureRequired",
            format!("scope {scope:?} accepts signed revisions only: upload {sig_key} first (tarn put --sign-key)"),
        ));
    };
    sig.verify_signer(&keys, now_unix()).map_err(|e| {
        forbidden(
            app,
            "SignatureRefused",
            format!("the stored signature {sig_key}: {e}"),
        )
    })?;
    if !covers(&sig) {
        return Err(forbidden(
            app,
            "SignatureMismatch",
            format!("the stored signature {sig_key} does not cover this revision file and its artifacts"),
        ));
    }
    Ok(Some(Signed {
        key_id: sig.manifest.key_id,
        verified: true,
    }))
}
