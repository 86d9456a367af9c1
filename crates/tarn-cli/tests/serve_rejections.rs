//! Every upload `tarn serve` refuses: the status code, the S3 error code, nothing stored,
//! and the rejection counters.

use tarn_test::*;

const CI: &str = "ci:ci-secret";
const FORK: &str = "fork:fork-secret";

fn start(tmp: &std::path::Path) -> TarnServer {
    let cfg = tmp.join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data = "{}"
public_read = ["*"]
max_artifact_bytes = 10000
max_revision_bytes = 2000

[[key]]
id = "ci"
secret = "ci-secret"
write = ["main/*"]

[[key]]
id = "fork"
secret = "fork-secret"
write = ["forks/*"]
"#,
            tmp.join("data").display()
        ),
    )
    .unwrap();
    TarnServer::start(&["--config", cfg.to_str().unwrap()])
}

fn put(key: &str, file: &std::path::Path, url: &str) -> (u16, String) {
    lake_put(key, file, url, "application/vnd.reservoir.artifact")
}

#[test]
fn every_rejection_has_its_status_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path());
    let data = tmp.path().join("data");
    let arts = make_artifacts(&tmp.path().join("arts"), 3, 500, 1);
    let (p0, h0, _) = &arts[0];
    let (p1, h1, _) = &arts[1];

    // Hash mismatch: the body of artifact 1 under the name of artifact 0.
    let (code, body) = put(CI, p1, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("<Code>BadDigest</Code>"), "{body}");
    assert!(stored_files(&data).is_empty());
    assert_eq!(
        srv.metric("tarn_uploads_rejected_total", "hash_mismatch"),
        1
    );

    // Unknown key, bad signature.
    let (code, body) = put("nobody:x", p0, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("InvalidAccessKeyId"), "{body}");
    let (code, body) = put("ci:wrong", p0, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    // A scope the key may not write (a fork key writing main).
    let (code, body) = put(FORK, p0, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("AccessDenied"), "{body}");
    // Anonymous upload.
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "-T",
        p0.to_str().unwrap(),
        &format!("{}/a0/main/x/{h0}.art", srv.url),
    ]);
    assert_eq!(code, 403);
    assert!(stored_files(&data).is_empty());
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "auth"), 4);

    // Too large (limit 10000 bytes).
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let big_path = tmp.path().join("big");
    std::fs::write(&big_path, &big).unwrap();
    let (code, body) = put(
        CI,
        &big_path,
        &format!("{}/a0/main/x/{}.art", srv.url, hash_hex(&big)),
    );
    assert_eq!(code, 413, "{body}");
    assert!(stored_files(&data).is_empty());

    // The fork key writes its own scope; ci writes main.
    let (code, body) = put(FORK, p0, &format!("{}/a0/forks/f1/{h0}.art", srv.url));
    assert_eq!(code, 200, "{body}");
    let (code, body) = put(CI, p0, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(code, 200, "{body}");
    let before = std::fs::metadata(data.join(format!("a0/main/x/{h0}.art"))).unwrap();
    // Same bytes again: 200, the stored file is untouched.
    let (code, _) = put(CI, p0, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(code, 200);
    let after = std::fs::metadata(data.join(format!("a0/main/x/{h0}.art"))).unwrap();
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    // Other bytes under an existing name: still refused... or answered 200 without
    // replacing? The name is the hash, so it can never overwrite: the file keeps its bytes.
    let _ = put(CI, p1, &format!("{}/a0/main/x/{h0}.art", srv.url));
    assert_eq!(
        hash_hex(&std::fs::read(data.join(format!("a0/main/x/{h0}.art"))).unwrap()),
        *h0
    );

    // Revisions.
    let rev = |name: &str| format!("{}/r0/main/x/{name}.jsonl", srv.url);
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "this is not a mapping file\n").unwrap();
    let (code, body) = lake_put(
        CI,
        &bad,
        &rev("r1"),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("InvalidRevisionFile"), "{body}");
    std::fs::write(&bad, "\"2026-03-17\"\n[\"0000000000000001\", oops]\n").unwrap();
    let (code, _) = lake_put(
        CI,
        &bad,
        &rev("r1"),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 400);
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "bad_revision"), 2);

    // References h0 (present) and h1 (absent) → 409 naming h1.
    let m = tmp.path().join("m.jsonl");
    std::fs::write(&m, mapping_for(&[h0, h1])).unwrap();
    let (code, body) = lake_put(
        CI,
        &m,
        &rev("r2"),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains(&format!("<Missing>{h1}</Missing>")), "{body}");
    assert!(
        !body.contains(&format!("<Missing>{h0}</Missing>")),
        "{body}"
    );
    // The artifact is present in another scope only: still missing in this one.
    let (code, _) = put(FORK, p1, &format!("{}/a0/forks/f1/{h1}.art", srv.url));
    assert_eq!(code, 200);
    let (code, _) = lake_put(
        CI,
        &m,
        &rev("r2"),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 409);
    assert_eq!(
        srv.metric("tarn_uploads_rejected_total", "missing_artifacts"),
        2
    );
    // A revision with pt/tc parts checks the scope without them.
    let (code, _) = put(CI, p1, &format!("{}/a0/main/x/{h1}.art", srv.url));
    assert_eq!(code, 200);
    let (code, body) = lake_put(
        CI,
        &m,
        &format!("{}/r0/main/x/pt/linux/tc/v4/r2.jsonl", srv.url),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 200, "{body}");
    // Too large revision (limit 2000).
    let many: Vec<String> = (0..100).map(|i| format!("{:016x}", i + 1000)).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    std::fs::write(&m, mapping_for(&refs)).unwrap();
    let (code, _) = lake_put(
        CI,
        &m,
        &rev("r3"),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 413);
    assert_eq!(srv.metric("tarn_uploads_rejected_total", "too_large"), 2);

    let mut want = vec![
        format!("a0/forks/f1/{h0}.art"),
        format!("a0/forks/f1/{h1}.art"),
        format!("a0/main/x/{h0}.art"),
        format!("a0/main/x/{h1}.art"),
        "r0/main/x/pt/linux/tc/v4/r2.jsonl".to_string(),
    ];
    want.sort();
    assert_eq!(stored_files(&data), want);
    assert_eq!(srv.metric("tarn_stored_objects", ""), 5);
    assert_eq!(
        srv.metric(
            "tarn_requests_total",
            "route=\"revision\",method=\"PUT\",status=\"409\""
        ),
        2
    );
}

#[test]
fn private_scopes_need_a_signed_read_and_the_batch_api_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "data = \"{}\"\npublic_read = [\"pub/*\"]\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let srv = TarnServer::start(&["--config", cfg.to_str().unwrap()]);
    let arts = make_artifacts(&tmp.path().join("arts"), 2, 100, 3);
    for scope in ["pub/a", "priv/a"] {
        let (code, _) = put(
            CI,
            &arts[0].0,
            &format!("{}/a0/{scope}/{}.art", srv.url, arts[0].1),
        );
        assert_eq!(code, 200);
    }
    let (code, _) = curl(&[&format!("{}/a0/pub/a/{}.art", srv.url, arts[0].1)]);
    assert_eq!(code, 200);
    let (code, body) = curl(&[&format!("{}/a0/priv/a/{}.art", srv.url, arts[0].1)]);
    assert_eq!(code, 403, "{body}");
    let (code, _) = curl(&[
        "--aws-sigv4",
        "aws:amz:auto:s3",
        "--user",
        CI,
        &format!("{}/a0/priv/a/{}.art", srv.url, arts[0].1),
    ]);
    assert_eq!(code, 200);
    // HEAD of a missing object: 404 without a body.
    let (code, _) = curl(&["-I", &format!("{}/a0/pub/a/{}.art", srv.url, arts[1].1)]);
    assert_eq!(code, 404);

    // Batch existence: public scope anonymously, both body forms.
    let body = format!("[\"{}\",\"{}\"]", arts[0].1, arts[1].1);
    let (code, out) = curl(&[
        "-X",
        "POST",
        "-d",
        &body,
        &format!("{}/a0/pub/a/?tarn-missing", srv.url),
    ]);
    assert_eq!(code, 200, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["missing"], serde_json::json!([arts[1].1]));
    let body = format!("{{\"hashes\":[\"{}\"]}}", arts[1].1);
    let (code, out) = curl(&[
        "-X",
        "POST",
        "-d",
        &body,
        &format!("{}/a0/pub/a/?tarn-missing", srv.url),
    ]);
    assert_eq!(code, 200);
    assert!(out.contains(&arts[1].1));
    // Private scope: anonymous refused, signed allowed.
    let (code, _) = curl(&[
        "-X",
        "POST",
        "-d",
        "[]",
        &format!("{}/a0/priv/a/?tarn-missing", srv.url),
    ]);
    assert_eq!(code, 403);
    let (code, out) = curl(&[
        "--aws-sigv4",
        "aws:amz:auto:s3",
        "--user",
        CI,
        "-X",
        "POST",
        "-d",
        &format!("[\"{}\"]", arts[0].1),
        &format!("{}/a0/priv/a/?tarn-missing", srv.url),
    ]);
    assert_eq!(code, 200, "{out}");
    assert!(out.contains("\"missing\":[]"), "{out}");
    let (code, _) = curl(&[
        "-X",
        "POST",
        "-d",
        "[\"zz\"]",
        &format!("{}/a0/pub/a/?tarn-missing", srv.url),
    ]);
    assert_eq!(code, 400);
    assert_eq!(srv.metric("tarn_batch_requests_total", ""), 3);
    assert_eq!(srv.metric("tarn_batch_hashes_total", ""), 4);
    // Health.
    assert_eq!(http_get_text(&format!("{}/healthz", srv.url)), "ok\n");
}
