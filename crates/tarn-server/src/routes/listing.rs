//! S3 listing: ListBuckets, HeadBucket and ListObjects(V2) (admin keys only; the answer is
//! limited to the scopes the key administers).

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use tarn_core::object_key::scope_of_key;
use tarn_core::uri_encode;

use tarn_core::s3_listing::ListQuery;

use super::{text, Req};
use crate::auth::authenticate;
use crate::config::{Access, KeyConfig};
use crate::error::{xml_escape, S3Error};
use crate::AppRef;

fn admin_key<'a>(app: &'a AppRef, req: &Req) -> Result<&'a KeyConfig, S3Error> {
    let auth = authenticate(&app.cfg, req.method(), req.uri(), req.headers(), false)?;
    match auth.key {
        Some(k) if !k.admin.is_empty() => Ok(k),
        Some(_) => Err(S3Error::denied("listing needs a key with admin permission")),
        None => Err(S3Error::denied(
            "listing needs a signed request with an admin key",
        )),
    }
}

const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// `t` as S3 writes it in XML: `2026-12-02T00:01:00.000Z`.
fn iso(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    tarn_core::sigv4::iso8601_s3(secs)
}

/// `GET /` (ListBuckets): the artifact and revision prefixes.
pub(crate) async fn list_buckets(app: &AppRef, req: Req) -> Result<Response<Body>, S3Error> {
    if req.method() != Method::GET {
        return Err(S3Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "only GET is allowed here",
        ));
    }
    admin_key(app, &req)?;
    let now = iso(std::time::SystemTime::now());
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"{XMLNS}\"><Owner><ID>tarn</ID><DisplayName>tarn</DisplayName></Owner><Buckets>"
    );
    for b in [&app.cfg.artifact_prefix, &app.cfg.revision_prefix] {
        x.push_str(&format!(
            "<Bucket><Name>{}</Name><CreationDate>{now}</CreationDate></Bucket>",
            xml_escape(b)
        ));
    }
    x.push_str("</Buckets></ListAllMyBucketsResult>\n");
    Ok(text(StatusCode::OK, "application/xml", x))
}

enum Item {
    Obj(String, crate::storage::ObjectMeta),
    Prefix(String),
}

impl Item {
    fn key(&self) -> &str {
        match self {
            Item::Obj(k, _) | Item::Prefix(k) => k,
        }
    }
}

/// Bucket-level requests (`/a0`, `/r0`): HEAD (HeadBucket), GET (ListObjects / V2).
pub(crate) async fn bucket(
    app: &AppRef,
    req: Req,
    bucket: &str,
) -> Result<Response<Body>, S3Error> {
    let q = ListQuery::parse(req.uri().query());
    match *req.method() {
        Method::HEAD => {
            admin_key(app, &req)?;
            return Ok(text(StatusCode::OK, "application/xml", ""));
        }
        Method::GET => {}
        _ => {
            return Err(S3Error::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "only GET and HEAD are allowed on a bucket",
            ))
        }
    }
    if q.location {
        admin_key(app, &req)?;
        return Ok(text(
            StatusCode::OK,
            "application/xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{XMLNS}\"></LocationConstraint>\n"),
        ));
    }
    let key = admin_key(app, &req)?;
    let ListQuery {
        v2,
        prefix,
        delimiter,
        max_keys,
        url_encode,
        start_after: start,
        continuation_token,
        location: _,
    } = q;
    let listed = app
        .storage
        .list(&format!("{bucket}/{prefix}"))
        .await
        .map_err(S3Error::internal)?;
    let mut items: Vec<Item> = Vec::new();
    for l in listed {
        let Some(scope) = scope_of_key(&l.key, &app.cfg.revision_prefix) else {
            continue;
        };
        if !key.allows(Access::Admin, &scope) {
            continue;
        }
        let rel = l.key[bucket.len() + 1..].to_string();
        if let Some(d) = &delimiter {
            if let Some(i) = rel[prefix.len()..].find(d.as_str()) {
                let p = rel[..prefix.len() + i + d.len()].to_string();
                if !matches!(items.last(), Some(Item::Prefix(last)) if *last == p) {
                    items.push(Item::Prefix(p));
                }
                continue;
            }
        }
        items.push(Item::Obj(rel, l.meta));
    }
    if let Some(s) = &start {
        items.retain(|i| i.key() > s.as_str());
    }
    let truncated = items.len() > max_keys;
    items.truncate(max_keys);
    let enc = |s: &str| -> String {
        if url_encode {
            s.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
        } else {
            xml_escape(s)
        }
    };
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"{XMLNS}\"><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(bucket),
        enc(&prefix)
    );
    if let Some(d) = &delimiter {
        x.push_str(&format!("<Delimiter>{}</Delimiter>", enc(d)));
    }
    if url_encode {
        x.push_str("<EncodingType>url</EncodingType>");
    }
    if v2 {
        x.push_str(&format!("<KeyCount>{}</KeyCount>", items.len()));
        if let Some(t) = continuation_token {
            x.push_str(&format!(
                "<ContinuationToken>{}</ContinuationToken>",
                xml_escape(&t)
            ));
        }
        if truncated {
            if let Some(last) = items.last() {
                x.push_str(&format!(
                    "<NextContinuationToken>{}</NextContinuationToken>",
                    xml_escape(last.key())
                ));
            }
        }
    } else if truncated {
        if let Some(last) = items.last() {
            x.push_str(&format!("<NextMarker>{}</NextMarker>", enc(last.key())));
        }
    }
    for i in &items {
        match i {
            Item::Obj(k, m) => x.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{:x}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                enc(k),
                iso(m.modified),
                m.len,
                m.len
            )),
            Item::Prefix(p) => {
                x.push_str(&format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", enc(p)))
            }
        }
    }
    x.push_str("</ListBucketResult>\n");
    Ok(text(StatusCode::OK, "application/xml", x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// awscli and rclone read these times: the milliseconds must be there.
    #[test]
    fn times_have_the_s3_millisecond_form() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(iso(t), "2024-02-29T12:00:00.000Z");
        assert_eq!(
            iso(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
