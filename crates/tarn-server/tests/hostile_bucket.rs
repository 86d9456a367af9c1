//! The S3 storage backend against a hostile bucket (issue 9): a scripted server on
//! 127.0.0.1 answers the backend's requests with listings that repeat their token, silence,
//! stalled or trickling bodies, a PUT it never answers, and redirects. GC and scrub fail with
//! an error naming the bucket (and take no decision), and `tarn serve` answers its own
//! clients within bounded time. (How much memory `tarn serve gc`/`scrub` take on endless
//! listings and objects is measured on the binary: `crates/tarn-cli/tests/hostile_server.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tarn_test::{
    artifacts, endless_listing_page, hostile_server, one_artifact_bucket, respond, respond_ok,
    EMPTY_LISTING,
};

use crate::harness::{Req, Server};

/// A server whose storage is the bucket `evil` at `url` (access key `k`, secret `s`, as
/// `--s3-endpoint URL --s3-bucket evil` with `TARN_S3_ACCESS_KEY`/`TARN_S3_SECRET_KEY`),
/// `storage` more lines of its `[storage]` table, and `rest` the tables after it.
fn on_bucket(url: &str, storage: &str, rest: &str) -> Server {
    Server::start(&format!(
        "[storage]\nkind = \"s3\"\nendpoint = \"{url}\"\nbucket = \"evil\"\n\
         access_key = \"k\"\nsecret_key = \"s\"\n{storage}\n{rest}"
    ))
}

#[test]
fn a_bucket_listing_that_repeats_its_token_is_refused() {
    let url = hostile_server(Arc::new(|_path, conn| {
        let body = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <NextContinuationToken>again</NextContinuationToken></ListBucketResult>";
        respond_ok(conn, body);
    }));
    let gc = on_bucket(&url, "", "").try_gc();
    assert!(gc.is_err(), "{gc:?}");
    let err = gc.unwrap_err();
    assert!(err.contains("repeats its continuation token"), "{err}");
}

#[test]
fn a_stalled_or_trickling_bucket_is_cut_off_with_an_error_naming_it() {
    // The backend had a connect timeout only: a bucket that took the request and then sent
    // nothing, or sent an object's body a few bytes at a time, held gc/scrub (and a server
    // task) forever.
    let storage = "request_timeout_secs = 2\nstall_timeout_secs = 2\n";

    // No answer at all to the listing.
    let url = hostile_server(Arc::new(|_path, _conn| {
        std::thread::sleep(Duration::from_secs(600));
    }));
    let srv = on_bucket(&url, storage, "");
    let t = Instant::now();
    let gc = srv.try_gc();
    let secs = t.elapsed().as_secs_f64();
    assert!(gc.is_err(), "{gc:?}");
    let err = gc.unwrap_err();
    assert!(
        err.contains("S3 bucket evil") && err.contains("listing \"r0/\""),
        "{err}"
    );
    assert!(err.contains("storage.request_timeout_secs"), "{err}");
    assert!(secs < 15.0, "took {secs:.1} s");

    // An artifact whose body stops after 100 bytes, and one that trickles.
    let key = "a0/sc/0000000000000001.art";
    for (stall, expect) in [
        (true, "storage.stall_timeout_secs"),
        (false, "storage.min_rate_bytes"),
    ] {
        let url = one_artifact_bucket(key, 1 << 20, move |conn| {
            use std::io::Write;
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1048576\r\n\r\n",
            );
            let _ = conn.write_all(&[b'x'; 100]);
            loop {
                std::thread::sleep(Duration::from_millis(if stall { 600_000 } else { 200 }));
                if conn.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let srv = on_bucket(&url, storage, "");
        let t = Instant::now();
        let scrub = srv.try_scrub();
        let secs = t.elapsed().as_secs_f64();
        assert!(scrub.is_err(), "{scrub:?}");
        let err = scrub.unwrap_err();
        assert!(
            err.contains("S3 bucket evil") && err.contains(key) && err.contains(expect),
            "{err}"
        );
        assert!(secs < 20.0, "took {secs:.1} s");
    }
}

#[test]
fn tarn_serve_on_a_hostile_bucket_stays_bounded_for_its_clients() {
    // `tarn serve` itself on a bucket whose listing never ends and whose objects stall after
    // 100 bytes: the status page answers with the listing's error (the scan was unbounded),
    // and an artifact streamed to a client is cut off after the stall timeout (the server
    // task and the client's connection were held forever).
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let url = hostile_server(Arc::new(move |path, conn| {
        use std::io::Write;
        if path.contains("list-type=2") {
            let page = next.fetch_add(1, Ordering::Relaxed);
            let body = endless_listing_page(page, |n| format!("a0/sc/{n:016x}.art"));
            return respond_ok(conn, &body);
        }
        if path.starts_with("GET") {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1048576\r\n\r\n",
            );
            let _ = conn.write_all(&[b'x'; 100]);
            std::thread::sleep(Duration::from_secs(600));
        }
        respond_ok(conn, "");
    }));
    let srv = on_bucket(
        &url,
        "stall_timeout_secs = 2\nmax_listing_keys = 20000\n",
        "",
    );
    let status = srv.send(Req::get("/api/status"));
    assert_eq!(status.status, 200, "GET /api/status: {}", status.text());
    let status = status.json();
    let error = status["scan"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("S3 bucket evil") && error.contains("past 20000 keys"),
        "{status}"
    );

    let start = Instant::now();
    let (code, received, ended) = srv.send_streamed(Req::get("/a0/sc/0000000000000001.art"));
    let secs = start.elapsed().as_secs_f64();
    // The body ends before its Content-Length, with an error (a client sees the connection
    // cut: curl's exit code 18).
    assert!(
        code == 200 && received < 1 << 20 && ended.is_err(),
        "{code}, {received} bytes, {ended:?} after {secs:.1} s"
    );
    assert!(secs < 15.0, "took {secs:.1} s");
}

#[test]
fn an_upload_to_a_bucket_that_never_answers_its_put_fails_in_bounded_time() {
    // The bucket takes the PUT's headers and then neither reads the body nor answers: the
    // upload (and its spool file and upload slot) was held forever.
    let url = hostile_server(Arc::new(|path, conn| {
        if path.starts_with("PUT") {
            std::thread::sleep(Duration::from_secs(600));
        }
        respond(conn, "404 Not Found", &[], b"");
    }));
    let srv = on_bucket(
        &url,
        "request_timeout_secs = 2\n",
        "[[key]]\nid = \"ci\"\nsecret = \"s3cret\"\nwrite = [\"*\"]\n",
    );
    let art = artifacts(1, 7).remove(0);
    let start = Instant::now();
    let reply = srv.send(
        Req::put(&format!("/a0/sc/{}.art", art.hash), art.content.clone()).signed("ci:s3cret"),
    );
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(reply.status, 500, "{} after {secs:.1} s", reply.text());
    assert!(secs < 15.0, "took {secs:.1} s");
}

#[test]
fn a_bucket_redirect_is_an_error_and_never_followed() {
    // The storage backend's HTTP client followed redirects (reqwest's default of 10): a
    // hostile bucket could send the server's requests, with their x-amz-* headers, to
    // another host. S3 answers a wrong region with an error, never a redirect to follow.
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let elsewhere = hostile_server(Arc::new(move |_path, conn| {
        counted.fetch_add(1, Ordering::Relaxed);
        respond_ok(conn, EMPTY_LISTING);
    }));
    let bucket = hostile_server(Arc::new(move |path, conn| {
        let target = path.split_whitespace().nth(1).unwrap_or("/");
        let location = format!("{elsewhere}{target}");
        respond(
            conn,
            "307 Temporary Redirect",
            &[("Location", &location)],
            b"",
        );
    }));
    let srv = on_bucket(&bucket, "", "");
    for (action, result) in [
        ("gc", srv.try_gc().map(|_| ())),
        ("scrub", srv.try_scrub().map(|_| ())),
    ] {
        assert!(result.is_err(), "{action}: {result:?}");
        let err = result.unwrap_err();
        assert!(err.contains("S3 bucket evil"), "{action}: {err}");
        assert!(err.contains("307"), "{action}: {err}");
    }
    let hits = hits.load(Ordering::Relaxed);
    assert_eq!(hits, 0, "the other host received {hits} request(s)");
}
