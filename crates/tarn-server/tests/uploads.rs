//! Uploads are validated by their content before anything is stored: an artifact must hash
//! to its name, a revision file must parse and reference only artifacts present in its own
//! scope, sizes are capped; a stored object is never replaced; every refusal is counted.

use tarn_test::{bytes_for, hash_hex, mapping_for};

use crate::harness::{Case, Req, Server, CI_AND_FORK_KEYS};

const CI: &str = "ci:ci-secret";
const FORK: &str = "fork:fork-secret";

fn server() -> Server {
    Server::start(&format!(
        r#"public_read = ["*"]
max_artifact_bytes = 10000
max_revision_bytes = 2000

{CI_AND_FORK_KEYS}"#
    ))
}

/// Three artifacts of 500 bytes: (hash, bytes).
fn arts() -> Vec<(String, Vec<u8>)> {
    (0..3)
        .map(|i| {
            let b = bytes_for(100 + i, 500);
            (hash_hex(&b), b)
        })
        .collect()
}

#[test]
fn an_artifact_is_stored_only_under_its_own_hash_within_the_size_limit() {
    let srv = server();
    let a = arts();
    let (h0, b0) = &a[0];
    let (_, b1) = &a[1];
    let big = bytes_for(9, 20_000);
    let main = |h: &str| format!("/a0/main/x/{h}.art");
    srv.check(vec![
        Case::new(
            "body of another artifact",
            Req::put(&main(h0), b1.clone()).signed(CI),
            400,
        )
        .code("BadDigest"),
        Case::new(
            "over max_artifact_bytes",
            Req::put(&main(&hash_hex(&big)), big.clone()).signed(CI),
            413,
        ),
        Case::new(
            "not a hash name",
            Req::put("/a0/main/x/zz.art", b0.clone()).signed(CI),
            400,
        ),
        Case::new(
            "the fork key in its scope",
            Req::put(&format!("/a0/forks/f1/{h0}.art"), b0.clone()).signed(FORK),
            200,
        )
        .stores(&[format!("a0/forks/f1/{h0}.art")]),
        Case::new(
            "ci in main",
            Req::put(&main(h0), b0.clone()).signed(CI),
            200,
        )
        .stores(&[format!("a0/main/x/{h0}.art")]),
        Case::new(
            "the same bytes again",
            Req::put(&main(h0), b0.clone()).signed(CI),
            200,
        )
        .stores::<&str>(&[]),
        Case::new(
            "a body without Content-Length (chunked)",
            Req::put(&main(&a[2].0), a[2].1.clone())
                .signed(CI)
                .without_content_length(),
            200,
        )
        .stores(&[format!("a0/main/x/{}.art", a[2].0)]),
    ]);
    assert_eq!(
        srv.metric("tarn_uploads_rejected_total", "hash_mismatch"),
        1
    );
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "too_large"), 1);
}

#[test]
fn a_stored_artifact_is_never_replaced() {
    let srv = server();
    let a = arts();
    let (h0, b0) = &a[0];
    let (_, b1) = &a[1];
    let url = format!("/a0/main/x/{h0}.art");
    let rel = format!("a0/main/x/{h0}.art");
    assert_eq!(srv.send(Req::put(&url, b0.clone()).signed(CI)).status, 200);
    let before = std::fs::metadata(srv.data().join(&rel)).unwrap();
    // Same bytes: 200, the file untouched. Other bytes under that name: whatever the answer
    // (the name is the hash, so the server may answer 200 without reading them), the file
    // keeps its bytes.
    assert_eq!(srv.send(Req::put(&url, b0.clone()).signed(CI)).status, 200);
    let after = std::fs::metadata(srv.data().join(&rel)).unwrap();
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    let _ = srv.send(Req::put(&url, b1.clone()).signed(CI));
    assert_eq!(hash_hex(&srv.object(&rel).unwrap()), *h0);
}

#[test]
fn a_revision_file_must_parse_and_reference_artifacts_of_its_own_scope() {
    let srv = server();
    let a = arts();
    let (h0, b0) = &a[0];
    let (h1, b1) = &a[1];
    let rev = |name: &str| format!("/r0/main/x/{name}.jsonl");
    let both = mapping_for(&[h0, h1]);
    let many: Vec<String> = (0..100).map(|i| format!("{:016x}", i + 1000)).collect();
    let too_large = mapping_for(&many.iter().map(String::as_str).collect::<Vec<_>>());
    srv.check(vec![
        Case::new(
            "ci in main",
            Req::put(&format!("/a0/main/x/{h0}.art"), b0.clone()).signed(CI),
            200,
        ),
        Case::new(
            "not a mapping file",
            Req::put(&rev("r1"), "this is not a mapping file\n").signed(CI),
            400,
        )
        .code("InvalidRevisionFile"),
        Case::new(
            "a bad entry",
            Req::put(&rev("r1"), "\"2026-03-17\"\n[\"0000000000000001\", oops]\n").signed(CI),
            400,
        ),
        Case::new(
            "h1 missing",
            Req::put(&rev("r2"), both.clone()).signed(CI),
            409,
        )
        .code("MissingArtifacts")
        .contains(format!("<Missing>{h1}</Missing>"))
        .lacks(format!("<Missing>{h0}</Missing>")),
        Case::new(
            "h1 only in another scope",
            Req::put(&format!("/a0/forks/f1/{h1}.art"), b1.clone()).signed(FORK),
            200,
        ),
        Case::new(
            "still missing in this scope",
            // Signed a second later: the same request again would be a replay.
            Req::put(&rev("r2"), both.clone()).signed_at(CI, unix_now() + 1),
            409,
        ),
        Case::new(
            "h1 uploaded to main",
            Req::put(&format!("/a0/main/x/{h1}.art"), b1.clone()).signed(CI),
            200,
        ),
        Case::new(
            "pt/tc parts check the scope without them",
            Req::put("/r0/main/x/pt/linux/tc/v4/r2.jsonl", both.clone()).signed(CI),
            200,
        )
        .stores(&["r0/main/x/pt/linux/tc/v4/r2.jsonl"]),
        Case::new(
            "over max_revision_bytes",
            Req::put(&rev("r3"), too_large).signed(CI),
            413,
        ),
    ]);
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "bad_revision"), 2);
    assert_eq!(
        srv.metric("tarn_uploads_rejected_total", "missing_artifacts"),
        2
    );
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "too_large"), 1);
    let mut want = vec![
        format!("a0/forks/f1/{h1}.art"),
        format!("a0/main/x/{h0}.art"),
        format!("a0/main/x/{h1}.art"),
        "r0/main/x/pt/linux/tc/v4/r2.jsonl".to_string(),
    ];
    want.sort();
    assert_eq!(srv.stored(), want);
    assert_eq!(srv.metric("tarn_stored_objects", ""), 4);
    assert_eq!(
        srv.metric(
            "tarn_requests_total",
            "route=\"revision\",method=\"PUT\",status=\"409\""
        ),
        2
    );
}

/// Issue 18, item 4: a key allowed only `forks/*`, with uploads stalled mid-body on every
/// slot it may take, leaves slots for another key, whose upload is stored at once.
#[test]
fn one_key_stalling_its_uploads_cannot_hold_every_upload_slot() {
    let srv = Server::start(&format!(
        r#"public_read = ["*"]
max_concurrent_uploads = 4
body_read_timeout_secs = 600
min_body_rate_bytes = 0

{CI_AND_FORK_KEYS}"#
    ));
    // As many stalled uploads as there are slots: every one the key may take is taken.
    let stalled: Vec<_> = (0..4)
        .map(|i| {
            let b = bytes_for(200 + i, 4000);
            srv.spawn(
                Req::put(&format!("/a0/forks/x/{}.art", hash_hex(&b)), b)
                    .signed(FORK)
                    .stalled_after(100),
            )
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let b = bytes_for(300, 500);
    let h = hash_hex(&b);
    let put = srv.spawn(Req::put(&format!("/a0/main/x/{h}.art"), b).signed(CI));
    let status =
        srv.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(10), put).await });
    for s in &stalled {
        s.abort();
    }
    match status {
        Ok(Ok(s)) => assert_eq!(s, 200, "the other key's upload"),
        Ok(Err(e)) => panic!("the other key's upload: {e}"),
        Err(_) => panic!("the other key's upload waited 10 s for a slot held by the stalled key"),
    }
    assert!(srv.object(&format!("a0/main/x/{h}.art")).is_some());
}

/// Issue 18, item 6: a revision file of unparsable lines is refused, never saved.
#[test]
fn a_revision_of_unparsable_lines_is_refused() {
    let srv = server();
    let rev = "1".repeat(40);
    let target = format!("/r0/main/x/{rev}.jsonl");
    srv.check(vec![
        Case::new(
            "garbage lines",
            Req::put(&target, "garbage\nmore garbage\n").signed(CI),
            400,
        )
        .code("InvalidRevisionFile"),
        Case::new(
            "a bare header, then garbage",
            Req::put(&target, "\"2026-03-17\"\n{not json\n").signed(CI),
            400,
        )
        .code("InvalidRevisionFile"),
        Case::new(
            "whitespace only",
            Req::put(&target, " \n \n").signed(CI),
            400,
        )
        .code("InvalidRevisionFile"),
    ]);
}

/// The clock in unix seconds.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
