//! Hostile requests at the handler (RELIABILITY.md rows 9c, 9d, 9e, 9i, 9k): path tricks,
//! `Range` abuse, odd request forms and methods, huge queries and header sets. What the
//! listener refuses before the handler sees a request (hyper's head limits, chunked
//! framing, HTTP/2 floods) is tested on raw sockets against the binary
//! (`crates/tarn-cli/tests/hostile_framing.rs`).
//!
//! Each test prints what it measured (`hostile-requests …`), the figure RELIABILITY.md quotes.

use std::time::{Duration, Instant};

use axum::http::Method;

use crate::harness::{key, Case, Req, Server};

const CI: &str = "ci:ci-secret";

/// A server where anyone reads and `ci` writes `main/*`, holding one 10,000-byte artifact
/// under `main/x`; returns the server, the artifact's URL and its bytes.
fn server_with_artifact() -> (Server, String, Vec<u8>) {
    let srv = Server::start(&format!(
        "public_read = [\"*\"]\n{}",
        key("ci", &["main/*"], &[])
    ));
    let body = tarn_test::bytes_for(9, 10_000);
    let url = format!("/a0/main/x/{}.art", tarn_test::hash_hex(&body));
    let r = srv.send(Req::put(&url, body.clone()).signed(CI));
    assert_eq!(r.status, 200, "{}", r.text());
    (srv, url, body)
}

#[test]
fn path_tricks_never_leave_the_scope_or_the_data_directory() {
    // Row 9d. A file beside the data directory and one named like the server's key inside
    // it: no request may read either.
    let (srv, url, body) = server_with_artifact();
    let secret = b"SECRET-OUTSIDE-THE-DATA-DIRECTORY";
    std::fs::write(srv.scratch().join("outside.art"), secret).unwrap();
    std::fs::write(srv.data().join(".tarn-serve-key"), secret).unwrap();
    let h = url.rsplit('/').next().unwrap().trim_end_matches(".art");
    let stored = srv.stored();
    let cases = vec![
        Case::new(
            "%2e%2e components",
            Req::get("/a0/main/%2e%2e/%2e%2e/outside.art"),
            400,
        )
        .code("InvalidURI"),
        Case::new(
            "..%2f inside one component",
            Req::get("/a0/..%2f..%2foutside.art"),
            400,
        )
        .code("InvalidURI"),
        Case::new(
            "%2f inside a scope",
            Req::get(&format!("/a0/main%2fx/{h}.art")),
            400,
        )
        .code("InvalidURI"),
        Case::new(
            "%00 in a scope",
            Req::get(&format!("/a0/main/x%00/{h}.art")),
            400,
        )
        .code("InvalidURI"),
        Case::new(
            "a . component",
            Req::get(&format!("/a0/main/./x/{h}.art")),
            400,
        )
        .code("InvalidURI"),
        Case::new("the server's key file", Req::get("/.tarn-serve-key"), 404),
        Case::new(
            "the key file as a scope",
            Req::get("/a0/.tarn-serve-key"),
            400,
        ),
        Case::new(
            "over-long UTF-8 for .",
            Req::get("/a0/main/%c0%ae%c0%ae/outside.art"),
            400,
        )
        .code("InvalidURI"),
        Case::new(
            "a full-width look-alike scope",
            Req::get(&format!(
                "/a0/%EF%BD%8D%EF%BD%81%EF%BD%89%EF%BD%8E/x/{h}.art"
            )),
            404,
        ),
        Case::new(
            "an upload to the look-alike scope",
            Req::put(
                &format!("/a0/%EF%BD%8D%EF%BD%81%EF%BD%89%EF%BD%8E/x/{h}.art"),
                body.clone(),
            )
            .signed(CI),
            403,
        ),
        Case::new(
            "// before the scope",
            Req::get(&format!("/a0//main/x/{h}.art")),
            200,
        ),
        Case::new(
            "// inside the scope",
            Req::get(&format!("/a0/main//x//{h}.art")),
            200,
        ),
        Case::new(
            "an upload through //",
            Req::put(&format!("/a0/main//x/{h}.art"), body.clone()).signed(CI),
            200,
        )
        .stores::<&str>(&[]),
    ];
    srv.check(cases);
    for target in [
        "/a0/main/%2e%2e/%2e%2e/outside.art",
        "/a0/..%2f..%2foutside.art",
        "/a0/main/%c0%ae%c0%ae/outside.art",
        "/.tarn-serve-key",
        "/a0/.tarn-serve-key",
        "/a0/%2e%2e/%2e%2e/outside.art",
        "/a0/main/..%5c..%5coutside.art",
    ] {
        let r = srv.send(Req::get(target));
        assert!(
            r.status >= 400 && !r.body.windows(secret.len()).any(|w| w == secret),
            "{target}: {} {}",
            r.status,
            r.text()
        );
    }
    // `//` named the one stored object, nothing else was created.
    assert_eq!(srv.stored(), stored);
    let r = srv.send(Req::get(&format!("/a0//main//x/{h}.art")));
    assert_eq!(r.body, body);
}

#[test]
fn range_abuse_never_amplifies_and_head_matches_get() {
    // Row 9e.
    let (srv, url, body) = server_with_artifact();
    let len = body.len();
    let ranges = |n: usize, one: &dyn Fn(usize) -> String| {
        format!("bytes={}", (0..n).map(one).collect::<Vec<_>>().join(","))
    };
    let one_byte = ranges(20_000, &|i| format!("{i}-{i}"));
    let overlapping = ranges(2_000, &|_| "0-".to_string());
    let start = Instant::now();
    srv.check(vec![
        Case::new(
            "20,000 one-byte ranges",
            Req::get(&url).header("range", &one_byte),
            200,
        ),
        Case::new(
            "2,000 overlapping 0-",
            Req::get(&url).header("range", &overlapping),
            200,
        ),
        Case::new(
            "an end of 2^64-1",
            Req::get(&url).header("range", "bytes=0-18446744073709551615"),
            206,
        ),
        Case::new(
            "a start past the end",
            Req::get(&url).header("range", "bytes=10000-"),
            416,
        )
        .code("InvalidRange"),
        Case::new(
            "a number beyond u64",
            Req::get(&url).header("range", "bytes=0-99999999999999999999999"),
            200,
        ),
    ]);
    let took = start.elapsed();
    // No reply is ever larger than the object.
    for range in [&one_byte, &overlapping] {
        let r = srv.send(Req::get(&url).header("range", range));
        assert_eq!(
            r.body, body,
            "a multi-range request gets the whole object once"
        );
    }
    let r = srv.send(Req::get(&url).header("range", "bytes=0-18446744073709551615"));
    assert_eq!(r.body.len(), len);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-{}/{len}", len - 1).as_str())
    );
    // Ten Range headers: the first is used.
    let mut req = Req::get(&url);
    for i in 0..10 {
        req = req.header("range", &format!("bytes={i}-{}", i + 9));
    }
    let r = srv.send(req);
    assert_eq!((r.status, &r.body[..]), (206, &body[0..10]));
    // HEAD sends GET's headers and no body.
    let get = srv.send(Req::get(&url).header("range", "bytes=5-14"));
    let head = srv.send(Req::head(&url).header("range", "bytes=5-14"));
    assert_eq!(head.status, get.status);
    assert!(head.body.is_empty());
    for name in ["content-length", "content-range", "content-type", "etag"] {
        assert_eq!(head.header(name), get.header(name), "header {name}");
    }
    eprintln!("hostile-requests range-abuse {:.3}s", took.as_secs_f64());
}

#[test]
fn odd_request_forms_and_methods_are_refused_or_served_as_their_path() {
    // Row 9k. The absolute form names a path here (never a host to proxy to).
    let (srv, url, body) = server_with_artifact();
    let absolute = format!("http://evil.example{url}");
    srv.check(vec![
        Case::new("an absolute-form target", Req::get(&absolute), 200),
        Case::new(
            "CONNECT",
            Req::new(Method::CONNECT, "evil.example:443"),
            405,
        ),
        Case::new("OPTIONS *", Req::new(Method::OPTIONS, "*"), 404),
        Case::new("TRACE", Req::new(Method::TRACE, &url), 405),
        Case::new("PATCH", Req::new(Method::PATCH, &url).body("x"), 405),
        Case::new("anonymous DELETE", Req::delete(&url), 403).code("AccessDenied"),
        Case::new(
            "a multipart upload",
            Req::post(&format!("{url}?uploads"), Vec::new()).signed(CI),
            501,
        ),
        Case::new(
            "a batch delete",
            Req::post("/a0?delete", "<Delete></Delete>").signed(CI),
            405,
        )
        .code("MethodNotAllowed"),
        Case::new(
            "an anonymous listing of 100,000,000 keys",
            Req::get("/a0?list-type=2&max-keys=100000000"),
            403,
        )
        .code("AccessDenied"),
        Case::new(
            "Upgrade: h2c",
            Req::get(&url)
                .header("connection", "Upgrade, HTTP2-Settings")
                .header("upgrade", "h2c")
                .header("http2-settings", "AAMAAABkAAQAAP__"),
            200,
        ),
        Case::new(
            "Upgrade: websocket",
            Req::get(&url)
                .header("connection", "Upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-version", "13"),
            200,
        ),
    ]);
    let r = srv.send(Req::get(&absolute));
    assert_eq!(r.body, body);
    assert!(srv.stored().iter().all(|p| !p.contains("evil")));
}

#[test]
fn a_reservoir_reply_names_the_host_the_client_asked_for_unless_public_url_is_set() {
    // Row 9i (a decision): without `public_url` a bulk reply's URLs follow the `Host`
    // header, so they point where the asking client said; with it, they never do.
    let body = tarn_test::bytes_for(9, 1_000);
    let h = tarn_test::hash_hex(&body);
    let bulk = format!("[\"{h}\"]");
    let path = "/api/v1/packages/leanprover/dep/artifacts";
    for (cfg, want) in [
        ("", "http://evil.example/"),
        (
            "public_url = \"https://cache.example.org\"\n",
            "https://cache.example.org/",
        ),
    ] {
        let srv = Server::start(&format!("{cfg}public_read = [\"*\"]\n"));
        let r = srv.send(Req::post(path, bulk.clone()).host("evil.example"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains(want), "want {want} in {}", r.text());
        if !cfg.is_empty() {
            assert!(!r.text().contains("evil.example"), "{}", r.text());
        }
    }
}

#[test]
fn huge_queries_and_header_sets_are_answered_quickly_on_every_route() {
    // Row 9c, the part the handler sees (the listener refuses a head over
    // `max_request_head_bytes` before this; tested on a socket).
    let (srv, url, _) = server_with_artifact();
    // A request target holds at most 65,534 bytes (the `http` crate's bound, so hyper
    // answers a longer one `414` before any handler runs): the largest queries it can carry.
    let big_query = format!("x={}", "a".repeat(64_000));
    let many_params = (0..8_000)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    let routes = [
        "/",
        "/api/status",
        "/healthz",
        "/metrics",
        "/api/v1/packages/leanprover/dep/build-outputs",
        url.as_str(),
    ];
    let mut slowest = Duration::ZERO;
    for route in routes {
        for (what, query) in [
            ("a 64 kB query", &big_query),
            ("8,000 parameters", &many_params),
        ] {
            let start = Instant::now();
            let r = srv.send(Req::get(&format!("{route}?{query}")));
            let took = start.elapsed();
            slowest = slowest.max(took);
            assert!(r.status < 500, "{route} with {what}: {}", r.status);
            assert!(
                r.body.len() < 1 << 20,
                "{route} with {what}: a {} B reply",
                r.body.len()
            );
            assert!(
                took < Duration::from_secs(2),
                "{route} with {what}: {took:?}"
            );
        }
        let mut req = Req::get(route).header("x-big", &"b".repeat(1 << 20));
        for i in 0..10_000 {
            req = req.header(&format!("x-h{i}"), "v");
        }
        let start = Instant::now();
        let r = srv.send(req);
        let took = start.elapsed();
        slowest = slowest.max(took);
        assert!(r.status < 500, "{route} with 10,000 headers: {}", r.status);
        assert!(
            took < Duration::from_secs(2),
            "{route} with 10,000 headers: {took:?}"
        );
    }
    eprintln!(
        "hostile-requests huge-heads slowest {:.3}s",
        slowest.as_secs_f64()
    );
}
