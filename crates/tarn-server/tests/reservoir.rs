//! The Reservoir routes Lake's `reservoir` service kind uses (`/api/v1`), served from the
//! same objects as the S3 routes: artifacts, build outputs by revision (a `packages/` scope
//! ignores platform and toolchain; a `repositories/` scope uses them), bulk URL requests,
//! JSON errors.

use tarn_test::{bytes_for, hash_hex, mapping_for};

use crate::harness::{Case, Req, Server, HOST};

const CI: &str = "ci:ci-secret";

fn server() -> Server {
    Server::start(
        "public_read = [\"*\"]\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\n",
    )
}

#[test]
fn reservoir_packages_scope_ignores_platform_and_toolchain() {
    let srv = server();
    let bodies: Vec<Vec<u8>> = (0..2).map(|i| bytes_for(30 + i, 1000)).collect();
    let hashes: Vec<String> = bodies.iter().map(|b| hash_hex(b)).collect();
    let refs: Vec<&str> = hashes.iter().map(String::as_str).collect();
    let mapping = mapping_for(&refs);
    let mut cases: Vec<Case> = bodies
        .iter()
        .zip(&hashes)
        .map(|(b, h)| {
            Case::new(
                "upload",
                Req::put(&format!("/a0/leanprover/dep/{h}.art"), b.clone()).signed(CI),
                200,
            )
        })
        .collect();
    let api = "/api/v1/packages/leanprover/dep";
    cases.extend([
        Case::new("the revision", Req::put("/r0/leanprover/dep/abc123.jsonl", mapping.clone()).signed(CI), 200),
        Case::new(
            "platform and toolchain ignored",
            Req::get(&format!("{api}/build-outputs?rev=abc123&platform=x86_64-unknown-linux-gnu&toolchain=v4.22.0")),
            200,
        ),
        Case::new("an unknown revision", Req::get(&format!("{api}/build-outputs?rev=nope")), 404)
            .contains("\"status\":404"),
        Case::new("no rev parameter", Req::get(&format!("{api}/build-outputs")), 400),
        Case::new("an artifact", Req::get(&format!("{api}/artifacts/{}.art", hashes[0])), 200),
        Case::new("artifacts are read-only", Req::put(&format!("{api}/artifacts/{}.art", hashes[0]), bodies[0].clone()).signed(CI), 405),
        Case::new("an unknown API path", Req::get("/api/v1/nothing/a/b"), 404),
    ]);
    srv.check(cases);
    let r = srv.send(Req::get(&format!(
        "{api}/build-outputs?rev=abc123&platform=x&toolchain=y"
    )));
    assert_eq!(r.text(), mapping);
    let r = srv.send(Req::get(&format!("{api}/artifacts/{}.art", hashes[1])));
    assert_eq!(r.body, bodies[1]);
    let r = srv.send(Req::get(&format!("{api}/build-outputs?rev=nope")));
    assert_eq!(r.json()["error"]["status"], 404);

    // Bulk: a URL per hash, under the artifact prefix, built from the Host header.
    let r = srv.send(Req::post(
        &format!("{api}/artifacts"),
        serde_json::to_string(&hashes).unwrap(),
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["data"][0],
        format!("http://{HOST}/a0/leanprover/dep/{}.art", hashes[0])
    );
    assert_eq!(
        v["data"][1],
        format!("http://{HOST}/a0/leanprover/dep/{}.art", hashes[1])
    );
    assert_eq!(
        srv.metric("tarn_requests_total", "route=\"reservoir_bulk\""),
        1
    );
    assert_eq!(
        srv.metric(
            "tarn_requests_total",
            "route=\"reservoir_revision\",method=\"GET\",status=\"404\""
        ),
        2
    );
}

#[test]
fn reservoir_repository_scope_uses_platform_and_toolchain() {
    let srv = server();
    let body = bytes_for(40, 700);
    let h = hash_hex(&body);
    let mapping = mapping_for(&[&h]);
    let api = "/api/v1/repositories/org/pkg";
    srv.check(vec![
        Case::new(
            "upload",
            Req::put(&format!("/a0/org/pkg/{h}.art"), body.clone()).signed(CI),
            200,
        ),
        Case::new(
            "a revision for one platform",
            Req::put("/r0/org/pkg/pt/x86_64-unknown-linux-gnu/abc.jsonl", mapping).signed(CI),
            200,
        )
        .stores(&["r0/org/pkg/pt/x86_64-unknown-linux-gnu/abc.jsonl"]),
        Case::new(
            "that platform",
            Req::get(&format!(
                "{api}/build-outputs?rev=abc&platform=x86_64-unknown-linux-gnu"
            )),
            200,
        ),
        Case::new(
            "another platform",
            Req::get(&format!(
                "{api}/build-outputs?rev=abc&platform=aarch64-apple-darwin"
            )),
            404,
        ),
        Case::new(
            "no platform",
            Req::get(&format!("{api}/build-outputs?rev=abc")),
            404,
        ),
        Case::new(
            "a bulk body that is not a list of hashes",
            Req::post(&format!("{api}/artifacts"), "{"),
            400,
        ),
    ]);
}

#[test]
fn a_bulk_reply_is_built_only_from_a_host_header_that_is_a_host_and_port() {
    // Issue 18, item 1: every URL of the reply repeats the Host, so it is bounded and checked
    // (a 900 kB one was accepted; with 100,000 hashes a 10 kB one killed the server).
    let srv = server();
    let bulk = |host: &str| {
        Req::post(
            "/api/v1/repositories/o/r/artifacts",
            r#"["0000000000000001"]"#,
        )
        .host(host)
    };
    let longest = format!("{}:7070", "h".repeat(255));
    srv.check(vec![
        Case::new("a 10 kB Host", bulk(&"h".repeat(10_000)), 400).contains("host[:port]"),
        Case::new(
            "one byte over the longest",
            bulk(&format!("{longest}0")),
            400,
        ),
        Case::new("a path in the Host", bulk("evil.example/x?"), 400),
        Case::new("markup in the Host", bulk("\"><script>"), 400).lacks("<script>"),
        Case::new("a port out of range", bulk("h:65536"), 400),
        Case::new("the longest valid Host", bulk(&longest), 200)
            .contains(format!("\"http://{longest}/a0/o/r/0000000000000001.art\"")),
        Case::new("an IPv6 literal", bulk("[::1]:7070"), 200)
            .contains("{\"data\":[\"http://[::1]:7070/a0/o/r/0000000000000001.art\"]}"),
    ]);
    // The streamed reply announces its exact length.
    let hashes: Vec<String> = (0..5000u64).map(|i| format!("{:016x}", i * 7919)).collect();
    let r = srv.send(Req::post(
        "/api/v1/repositories/o/r/artifacts",
        serde_json::to_string(&hashes).unwrap(),
    ));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 5000);
    // An error answer repeats at most 1 KiB of the request's path (escaped: 5 KiB).
    let r = srv.send(Req::get(&format!("/a0/{}", "&".repeat(60_000))));
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 8 << 10, "{} bytes", r.body.len());
}
