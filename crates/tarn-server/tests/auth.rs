//! Who may do what: SigV4 signatures checked from the headers before any body byte, keys
//! limited to their scopes, anonymous reads only of public scopes; every refused upload is
//! counted under `auth`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use futures_util::StreamExt;
use tarn_core::sigv4::{sha256_hex, UNSIGNED_PAYLOAD};
use tarn_test::{bytes_for, hash_hex};

use crate::harness::{key, Case, Req, Server, CI_AND_FORK_KEYS};

const CI: &str = "ci:ci-secret";

#[test]
fn uploads_need_a_valid_signature_from_a_key_that_may_write_the_scope() {
    let srv = Server::start(&format!(
        r#"public_read = ["*"]
{CI_AND_FORK_KEYS}"#
    ));
    let body = bytes_for(1, 500);
    let h = hash_hex(&body);
    let url = format!("/a0/main/x/{h}.art");
    let put = || Req::put(&url, body.clone());
    srv.check(vec![
        Case::new("unknown key", put().signed("nobody:x"), 403).code("InvalidAccessKeyId"),
        Case::new("wrong secret", put().signed("ci:wrong"), 403).code("SignatureDoesNotMatch"),
        Case::new(
            "a key of another scope",
            put().signed("fork:fork-secret"),
            403,
        )
        .code("AccessDenied"),
        Case::new("anonymous", put(), 403).code("AccessDenied"),
        Case::new(
            "a declared body hash that is not the body's",
            put().signed_with_payload(CI, &sha256_hex(b"other bytes")),
            400,
        )
        .code("XAmzContentSHA256Mismatch"),
        Case::new(
            "a date far in the past",
            put().signed_at(CI, 946_684_800),
            403,
        )
        .code("RequestTimeTooSkewed"),
        Case::new(
            "UNSIGNED-PAYLOAD",
            put().signed_with_payload(CI, UNSIGNED_PAYLOAD),
            200,
        )
        .stores(&[format!("a0/main/x/{h}.art")]),
    ]);
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "auth"), 5);
}

#[test]
fn private_scopes_need_a_signed_read() {
    let srv = Server::start(&format!(
        "public_read = [\"pub/*\"]\n{}",
        key("ci", &["*"], &[])
    ));
    let body = bytes_for(3, 100);
    let h = hash_hex(&body);
    let absent = hash_hex(&bytes_for(4, 100));
    srv.check(vec![
        Case::new(
            "upload pub",
            Req::put(&format!("/a0/pub/a/{h}.art"), body.clone()).signed(CI),
            200,
        ),
        Case::new(
            "upload priv",
            Req::put(&format!("/a0/priv/a/{h}.art"), body.clone()).signed(CI),
            200,
        ),
        Case::new(
            "anonymous read of pub",
            Req::get(&format!("/a0/pub/a/{h}.art")),
            200,
        ),
        Case::new(
            "anonymous read of priv",
            Req::get(&format!("/a0/priv/a/{h}.art")),
            403,
        )
        .code("AccessDenied"),
        Case::new(
            "signed read of priv",
            Req::get(&format!("/a0/priv/a/{h}.art")).signed(CI),
            200,
        ),
        Case::new(
            "signed with a wrong secret",
            Req::get(&format!("/a0/priv/a/{h}.art")).signed("ci:nope"),
            403,
        )
        .code("SignatureDoesNotMatch"),
    ]);
    // The bytes read are the bytes stored; HEAD of a missing object is a 404 without a body.
    let r = srv.send(Req::get(&format!("/a0/priv/a/{h}.art")).signed(CI));
    assert_eq!(r.body, body);
    let r = srv.send(Req::head(&format!("/a0/pub/a/{absent}.art")));
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "{}", r.text());
    assert_eq!(srv.send(Req::get("/healthz")).text(), "ok\n");
}

#[test]
fn a_bad_signature_is_refused_before_any_body_byte_is_read() {
    // The upload is decided from its headers: a 300 MiB body behind a wrong signature is
    // never read, so it costs the server neither memory nor spool space.
    let srv = Server::start(&key("ci", &["*"], &[]));
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let chunks = futures_util::stream::repeat_with(move || {
        counter.fetch_add(1 << 20, Ordering::Relaxed);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'z'; 1 << 20]))
    })
    .take(300);
    let total = (300u64 << 20).to_string();
    let req = Req::put("/a0/main/x/0123456789abcdef.art", Vec::new())
        .signed("ci:wrong-secret")
        .without_content_length()
        .header("content-length", &total);
    let r = srv.send_with_body(req, Body::from_stream(chunks));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(
        pulled.load(Ordering::Relaxed),
        0,
        "body bytes read before refusing"
    );
    assert!(srv.stored().is_empty());
    let spool: Vec<_> = std::fs::read_dir(srv.data())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tarn-spool"))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .collect();
    assert!(spool.is_empty(), "spooled: {spool:?}");
}

/// Issue 18, item 6: a captured signed request replayed within `max_clock_skew_secs` is
/// refused: a `DELETE` replayed after the artifact was uploaded again, and a curl-7.88-style
/// revision `PUT` (`UNSIGNED-PAYLOAD`: the signature does not cover the body) replayed with
/// the body `"2026-03-17"\n`. A request that failed for the server's reasons may be sent
/// again as it was (a client's retry).
#[test]
fn a_replayed_signed_delete_or_revision_put_is_refused() {
    let srv = Server::start(&key("ci", &["main/*"], &["main/*"]));
    let key = "ci:ci-secret";
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let art = bytes_for(18, 100);
    let h = hash_hex(&art);
    let art_path = format!("/a0/main/x/{h}.art");
    // The artifact is uploaded twice, signed a second apart (the same request signed in
    // the same second is the same request).
    let put_art = |t: u64| Req::put(&art_path, art.clone()).signed_at(key, t);
    let delete = || Req::delete(&art_path).signed_at(key, at);
    assert_eq!(srv.send(put_art(at)).status, 200);
    assert_eq!(srv.send(delete()).status, 204);
    assert_eq!(srv.send(put_art(at + 1)).status, 200);
    let replayed = srv.send(delete());
    assert_eq!(replayed.status, 403, "{}", replayed.text());
    assert!(replayed.text().contains("replay"), "{}", replayed.text());
    assert_eq!(
        srv.send(Req::get(&art_path)).status,
        200,
        "the replayed DELETE removed the artifact"
    );

    let rev_path = format!("/r0/main/x/{}.jsonl", "1".repeat(40));
    let mapping = tarn_test::mapping_for(&[h.as_str()]);
    let rev = |body: &str| {
        Req::put(&rev_path, body.to_string())
            .signed_at(key, at)
            .signed_with_payload(key, UNSIGNED_PAYLOAD)
    };
    assert_eq!(srv.send(rev(&mapping)).status, 200);
    let replayed = srv.send(rev("\"2026-03-17\"\n"));
    assert_eq!(replayed.status, 403, "{}", replayed.text());
    assert_eq!(
        srv.send(Req::get(&rev_path)).body,
        mapping.as_bytes(),
        "the replayed PUT replaced the revision"
    );
}
