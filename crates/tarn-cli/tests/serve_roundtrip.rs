//! `tarn put-staged` → `tarn serve` → `tarn get`, with the batch existence API in use; on
//! local disk and with the S3 storage backend (the s3s-fs server of scripts/test.sh), where
//! two stateless replicas share one bucket. (Batch requests sharing one listing of a bucket
//! are tested in process: `crates/tarn-server/tests/batch.rs`.)

use std::path::Path;

use tarn_test::{
    artifacts, check_cache, lake_put, run, tarn_cmd, unique, write_staging, TarnServer, S3,
};

const BIN: &str = env!("CARGO_BIN_EXE_tarn");
pub(crate) const KEY: &str = "ci:ci-secret";

pub(crate) fn put_staged(home: &Path, staging: &Path, rev: &str) -> (i32, String) {
    let (code, out, err) = run(tarn_cmd(Path::new(BIN), home)
        .env("LAKE_CACHE_KEY", KEY)
        .args([
            "put-staged",
            staging.to_str().unwrap(),
            "--rev",
            rev,
            "--repo",
            "org/pkg",
        ])
        .args([
            "--platform",
            "x86_64-unknown-linux-gnu",
            "--service",
            "tarn",
        ]));
    (code, format!("{out}{err}"))
}

pub(crate) fn get(home: &Path, cache: &Path, rev: &str) -> (i32, String) {
    std::fs::create_dir_all(home.join("pkg")).unwrap();
    std::fs::write(home.join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let (code, out, err) = run(tarn_cmd(Path::new(BIN), home)
        .current_dir(home.join("pkg"))
        .args([
            "get",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--service",
            "tarn",
        ])
        .args([
            "--repo",
            "org/pkg",
            "--platform",
            "x86_64-unknown-linux-gnu",
            "--rev",
            rev,
        ]));
    (code, format!("{out}{err}"))
}

fn round_trip(srv: &TarnServer, other: &TarnServer, tmp: &Path) {
    let home = tmp.join("home");
    srv.client_home(&home);
    let arts = artifacts(25, 31);
    let staging = tmp.join("staging");
    write_staging(&staging, &arts, 31);
    let rev = "1111111111111111111111111111111111111111";
    let (code, out) = put_staged(&home, &staging, rev);
    assert_eq!(code, 0, "{out}");
    assert_eq!(srv.metric("tarn_batch_requests_total", ""), 1);
    assert_eq!(srv.metric("tarn_batch_hashes_total", ""), arts.len() as u64);
    assert_eq!(
        srv.metric("tarn_requests_total", "route=\"artifact\",method=\"HEAD\""),
        0,
        "presence is checked with the batch API, not HEADs"
    );
    assert_eq!(
        srv.metric("tarn_uploads_created_total", ""),
        arts.len() as u64 + 1
    );
    // Again: the batch API says nothing is missing, so no artifact is sent.
    let (code, out) = put_staged(&home, &staging, rev);
    assert_eq!(code, 0, "{out}");
    assert_eq!(srv.metric("tarn_batch_requests_total", ""), 2);
    assert_eq!(
        srv.metric("tarn_requests_total", "route=\"artifact\",method=\"PUT\""),
        arts.len() as u64
    );
    // Download through the other server (a replica, or the same one).
    other.client_home(&home);
    let cache = tmp.join("cache");
    let (code, out) = get(&home, &cache, rev);
    assert_eq!(code, 0, "{out}");
    assert!(check_cache(&cache, &arts).is_empty());
    // A tampered upload is refused and not stored (HEAD through the server stays 404).
    let bad = tmp.join("bad");
    std::fs::write(&bad, b"not the content").unwrap();
    let url = format!("{}/a0/org/pkg/0123456789abcdef.art", srv.url);
    let (code, body) = lake_put(KEY, &bad, &url, "application/vnd.reservoir.artifact");
    assert_eq!(code, 400, "{body}");
    let (code, _) = tarn_test::curl(&["-I", &url]);
    assert_eq!(code, 404);
}

#[test]
fn put_staged_serve_get_on_local_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let srv = TarnServer::with_key(&data, &format!("{KEY}:*"));
    round_trip(&srv, &srv, tmp.path());
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn s3_backend_with_two_stateless_replicas() {
    let s3 = S3::from_env();
    let tmp = tempfile::tempdir().unwrap();
    let prefix = unique("serve");
    // Every file the servers and the maintenance command write stays in their data
    // directories: their TMPDIR is an empty directory, checked at the end (issue 10, item 11).
    let tarn_tmp = tmp.path().join("tmpdir");
    std::fs::create_dir(&tarn_tmp).unwrap();
    let env = [
        ("TARN_S3_ACCESS_KEY", s3.access_key.as_str()),
        ("TARN_S3_SECRET_KEY", s3.secret_key.as_str()),
        ("TMPDIR", tarn_tmp.to_str().unwrap()),
    ];
    // A spool file of a killed server (a pid above the kernel's maximum: certainly dead)
    // goes on start-up.
    let stale = tmp
        .path()
        .join("spool-a/.tarn-spool/.tarn-tmp.4194305.7.123");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"half an upload").unwrap();
    let key_arg = format!("{KEY}:*");
    let start = |spool: &str| {
        let spool = tmp.path().join(spool);
        TarnServer::start_with(
            &[
                "--s3-endpoint",
                &s3.endpoint,
                "--s3-bucket",
                &s3.bucket,
                "--s3-region",
                &s3.region,
                "--s3-prefix",
                &prefix,
                "--data",
                spool.to_str().unwrap(),
                "--key",
                &key_arg,
            ],
            &env,
        )
    };
    let a = start("spool-a");
    let b = start("spool-b");
    assert!(a.banner.contains("storage: s3"), "{}", a.banner);
    assert!(!stale.exists(), "a dead server's spool file was kept");
    round_trip(&a, &b, tmp.path());
    // The objects really are in the bucket, under the prefix, in Lake's layout.
    if let Some(d) = &s3.data_dir {
        let rev = d.join(&s3.bucket).join(&prefix).join(
            "r0/org/pkg/pt/x86_64-unknown-linux-gnu/1111111111111111111111111111111111111111.jsonl",
        );
        assert!(rev.is_file(), "{}", rev.display());
    }
    // Ranged GETs pass through to the bucket.
    let arts = artifacts(25, 31);
    let out = std::process::Command::new("curl")
        .args(["-s", "-f", "-r", "5-14"])
        .arg(format!("{}/a0/org/pkg/{}.art", b.url, arts[3].hash))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, arts[3].content[5..15]);
    // GC and scrub work on the bucket too.
    let out = std::process::Command::new(BIN)
        .envs(env)
        .args([
            "--json",
            "serve",
            "scrub",
            "--s3-endpoint",
            &s3.endpoint,
            "--s3-bucket",
            &s3.bucket,
        ])
        .args(["--s3-region", &s3.region, "--s3-prefix", &prefix])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["artifacts"], 25, "{v}");
    assert_eq!(v["corrupt"], serde_json::json!([]));
    drop((a, b));
    let left: Vec<_> = std::fs::read_dir(&tarn_tmp).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn s3_storage_without_a_spool_directory_is_refused_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(tmp.path())
        .env("TMPDIR", tmp.path())
        .env("TARN_S3_ACCESS_KEY", "k")
        .env("TARN_S3_SECRET_KEY", "s")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--s3-endpoint", "http://127.0.0.1:9", "--s3-bucket", "b"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("spool"), "{stderr}");
    assert!(stderr.contains("--data"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "created: {left:?}");
}
