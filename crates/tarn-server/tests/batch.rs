//! The batch existence API (`POST /a0/<scope>/?tarn-missing`, docs/server-api.md): both
//! body forms, the scope's read permission, bad hashes refused, requests and hashes counted;
//! on a bucket, concurrent requests share one listing of the scope.

use tarn_test::{artifacts, bytes_for, hash_hex, no_faults, Backend, Server as FaultServer, S3};

use crate::harness::{key, s3_storage_with_ci_key, Case, Reply, Req, Server};

const CI: &str = "ci:ci-secret";

#[test]
fn batch_answers_which_hashes_a_scope_lacks() {
    let srv = Server::start(&format!(
        "public_read = [\"pub/*\"]\n{}",
        key("ci", &["*"], &[])
    ));
    let b0 = bytes_for(3, 100);
    let (h0, h1) = (hash_hex(&b0), hash_hex(&bytes_for(4, 100)));
    let ask = |scope: &str, body: String| Req::post(&format!("/a0/{scope}/?tarn-missing"), body);
    srv.check(vec![
        Case::new(
            "upload pub",
            Req::put(&format!("/a0/pub/a/{h0}.art"), b0.clone()).signed(CI),
            200,
        ),
        Case::new(
            "upload priv",
            Req::put(&format!("/a0/priv/a/{h0}.art"), b0.clone()).signed(CI),
            200,
        ),
        Case::new(
            "array form, anonymous, public scope",
            ask("pub/a", format!("[\"{h0}\",\"{h1}\"]")),
            200,
        )
        .contains(format!("\"missing\":[\"{h1}\"]"))
        .contains("\"version\":1"),
        Case::new(
            "object form",
            ask("pub/a", format!("{{\"hashes\":[\"{h1}\"]}}")),
            200,
        )
        .contains(h1.clone()),
        Case::new("anonymous, private scope", ask("priv/a", "[]".into()), 403).code("AccessDenied"),
        Case::new(
            "signed, private scope",
            ask("priv/a", format!("[\"{h0}\"]")).signed(CI),
            200,
        )
        .contains("\"missing\":[]"),
        Case::new("not a hash", ask("pub/a", "[\"zz\"]".into()), 400),
    ]);
    assert_eq!(srv.metric("tarn_batch_requests_total", ""), 3);
    assert_eq!(srv.metric("tarn_batch_hashes_total", ""), 4);
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn concurrent_batch_requests_on_a_bucket_share_one_scope_listing() {
    // A batch request about more than 64 hashes is answered from a listing of the scope.
    // Concurrent anonymous requests (a public scope) each listed the whole scope: N
    // requests, N listings in memory and N times the list traffic. Now they share one.
    let s3 = S3::from_env();
    let prefix = tarn_test::unique("batch-listing");
    // Counts the server's requests to the bucket.
    let bucket = FaultServer::start(Backend::Proxy(s3.addr()), no_faults());
    let srv = Server::start(&s3_storage_with_ci_key(
        "public_read = [\"pub/*\"]\n",
        &bucket.url(),
        &s3,
        &prefix,
    ));
    let arts = artifacts(3, 77);
    for a in &arts {
        let r =
            srv.send(Req::put(&format!("/a0/pub/a/{}.art", a.hash), a.content.clone()).signed(CI));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // 3 stored and 97 absent hashes (over the 64 that switch to a listing).
    let absent: Vec<String> = (1..=97u64).map(|i| format!("{i:016x}")).collect();
    let mut hashes: Vec<&str> = arts.iter().map(|a| a.hash.as_str()).collect();
    hashes.extend(absent.iter().map(String::as_str));
    let body = serde_json::to_string(&hashes).unwrap();
    let ask = || Req::post("/a0/pub/a/?tarn-missing", body.clone());
    let missing = |r: &Reply| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    };
    bucket.take_log();
    const CLIENTS: usize = 16;
    for r in srv.send_concurrently((0..CLIENTS).map(|_| ask()).collect()) {
        assert_eq!(missing(&r), absent);
    }
    let listings = bucket.count("GET", "list-type=2");
    eprintln!("batch-listing: {CLIENTS} concurrent requests, {listings} bucket listings");
    // One shared listing (two if the requests straddled its reuse time on a slow machine);
    // before the fix, one listing per request.
    assert!(listings <= 2, "{listings} listings for {CLIENTS} requests");

    // A deletion is never hidden by a reused listing: a deleted artifact is reported
    // missing at once (the client must upload it again).
    let r = srv.send(Req::delete(&format!("/a0/pub/a/{}.art", arts[0].hash)).signed(CI));
    assert_eq!(r.status, 204, "{}", r.text());
    let mut want = vec![arts[0].hash.clone()];
    want.extend(absent.iter().cloned());
    assert_eq!(missing(&srv.send(ask())), want);
}
