//! `tarn put-staged`, `put` and `get` against a real S3 server (s3s-fs, started by
//! `scripts/test.sh`). Downloads are signed (`--signed`) because s3s-fs refuses anonymous
//! reads; anonymous reads are covered by `remote_curl.rs` and `remote_faults.rs`.

use std::path::Path;
use std::sync::Arc;

use tarn_test::*;

const BIN: &str = env!("CARGO_BIN_EXE_tarn");

struct Env {
    tmp: tempfile::TempDir,
    s3: S3,
    prefix: String,
}

impl Env {
    /// A fresh directory with the `dev` service on the S3 server (the test fails when
    /// there is none, saying how to start it).
    fn new(name: &str) -> Env {
        let s3 = S3::from_env();
        let tmp = tempfile::tempdir().unwrap();
        let prefix = unique(name);
        let base = format!("{}/{}/{prefix}", s3.endpoint, s3.bucket);
        write_s3_config(
            &tmp.path().join("config.toml"),
            "dev",
            &format!("{base}/a0"),
            &format!("{base}/r0"),
        );
        Env { tmp, s3, prefix }
    }
    /// Starts a fault-injecting proxy in front of s3s-fs and points the `dev` service at it.
    fn proxied_service(&self, plan: Plan) -> Server {
        let proxy = Server::start(Backend::Proxy(self.s3.addr()), plan);
        let base = format!("{}/{}/{}", proxy.url(), self.s3.bucket, self.prefix);
        write_s3_config(
            &self.path("config.toml"),
            "dev",
            &format!("{base}/a0"),
            &format!("{base}/r0"),
        );
        proxy
    }
    fn path(&self, p: &str) -> std::path::PathBuf {
        self.tmp.path().join(p)
    }
    fn tarn(&self, key: &str) -> std::process::Command {
        let mut c = tarn_cmd(Path::new(BIN), self.tmp.path());
        c.env("LAKE_CACHE_KEY", key)
            .env("TARN_S3_REGION", &self.s3.region);
        c
    }
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn put_staged_then_get_into_an_empty_cache_then_verify() {
    let e = Env::new("roundtrip");
    let arts = artifacts(60, 1);
    write_staging(&e.path("staging"), &arts, 1);
    let rev = "89abcdef0123456789abcdef0123456789abcdef";
    // A scope that needs encoding.
    let scope = "team one/pkg!";
    let (code, out, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        scope,
        "--service",
        "dev",
        "--json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["uploaded"], 60);
    assert_eq!(j["revision_uploaded"], true);
    assert_eq!(
        j["revision_url"],
        format!(
            "{}/{}/{}/r0/team%20one/pkg%21/{rev}.jsonl",
            e.s3.endpoint, e.s3.bucket, e.prefix
        )
    );
    // A second upload skips everything the service has.
    let (code, out, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        scope,
        "--service",
        "dev",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (j["uploaded"].as_u64(), j["already_present"].as_u64()),
        (Some(0), Some(60))
    );

    // Download into an empty cache.
    std::fs::create_dir_all(e.path("pkg")).unwrap();
    std::fs::write(e.path("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let cache = e.path("cache");
    let (code, out, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "get",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        scope,
        "--rev",
        rev,
        "--signed",
        "--json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["downloaded"], 60, "{j}");
    assert!(check_cache(&cache, &arts).is_empty());
    // The revision file is saved trimmed, the outputs entries name service and scope.
    let saved = std::fs::read(cache.join(format!("revisions/pkg/{rev}.jsonl"))).unwrap();
    let original = mappings(&arts, 1);
    assert_eq!(saved, original.trim_ascii());
    let entries: Vec<_> = std::fs::read_dir(cache.join("outputs/pkg"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 60);
    let one: serde_json::Value =
        serde_json::from_slice(&std::fs::read(entries[0].as_ref().unwrap().path()).unwrap())
            .unwrap();
    assert_eq!(one["service"], "dev");
    assert_eq!(one["scope"], scope);
    // tarn's own verifier agrees.
    let (code, out, err) = run(e
        .tarn("")
        .args(["verify", "--cache-dir", cache.to_str().unwrap()]));
    assert_eq!(code, 0, "tarn verify: {out}\n{err}");
    // Nothing more to download the second time, even without the network for revisions.
    let (code, out, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "get",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        scope,
        "--rev",
        rev,
        "--signed",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (j["downloaded"].as_u64(), j["already_present"].as_u64()),
        (Some(0), Some(60))
    );
    // --force-download fetches the revision and every artifact again; signing from the env.
    let (code, out, err) = run(e
        .tarn(&e.s3.key())
        .current_dir(e.path("pkg"))
        .env("TARN_SIGN_DOWNLOADS", "1")
        .args([
            "get",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--service",
            "dev",
            "--scope",
            scope,
            "--rev",
            rev,
            "--force-download",
            "--json",
        ]));
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (j["downloaded"].as_u64(), j["already_present"].as_u64()),
        (Some(60), Some(0))
    );
    assert!(check_cache(&cache, &arts).is_empty());
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn a_wrong_secret_is_a_clear_auth_error_and_uploads_no_revision_file() {
    let e = Env::new("badkey");
    let arts = artifacts(5, 2);
    write_staging(&e.path("staging"), &arts, 2);
    let rev = "0000000000000000000000000000000000000bad";
    let bad = format!("{}:not-the-secret", e.s3.access_key);
    let (code, out, err) = run(e.tarn(&bad).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "s",
        "--service",
        "dev",
    ]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("LAKE_CACHE_KEY"),
        "{err}"
    );
    // No revision file (checked with the right key).
    std::fs::create_dir_all(e.path("pkg")).unwrap();
    std::fs::write(e.path("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let (code, _, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "get",
        "--cache-dir",
        e.path("cache").to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        "s",
        "--rev",
        rev,
        "--signed",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("outputs not found for revision {rev}")),
        "{err}"
    );
    // A missing key is refused before anything is sent.
    let (code, _, err) = run(e.tarn("").args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "s",
        "--service",
        "dev",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("LAKE_CACHE_KEY"), "{err}");
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn put_staged_refuses_a_bad_staging_directory_before_sending_anything() {
    let e = Env::new("badstage");
    let arts = artifacts(4, 3);
    write_staging(&e.path("staging"), &arts, 3);
    // Corrupt one artifact: content no longer matches its name.
    std::fs::write(e.path("staging").join(&arts[2].file_name), b"tampered").unwrap();
    let rev = "1234567890123456789012345678901234567890";
    let (code, _, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "s",
        "--service",
        "dev",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains(&arts[2].file_name) && err.contains("does not match"),
        "{err}"
    );
    assert!(err.contains("nothing was uploaded"), "{err}");
    // Indeed nothing: a get with the right key finds no artifact either.
    let url = format!(
        "{}/{}/{}/a0/s/{}.art",
        e.s3.endpoint, e.s3.bucket, e.prefix, arts[0].hash
    );
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4"])
        .arg(format!("aws:amz:{}:s3", e.s3.region))
        .args([
            "--user",
            &e.s3.key(),
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn revision_search_finds_an_older_commit_and_max_revs_cuts_it_off() {
    let e = Env::new("revsearch");
    let revs = git_package(&e.path("pkg"), "pkg", 5);
    // Only the second commit (HEAD~3) has outputs.
    let arts = artifacts(8, 4);
    write_staging(&e.path("staging"), &arts, 4);
    let (code, _, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        &revs[1],
        "--repo",
        "leanprover/pkg",
        "--service",
        "dev",
        "--platform",
        "x86_64-unknown-linux-gnu",
        "--toolchain",
        "v4.22.0",
    ]));
    assert_eq!(code, 0, "{err}");
    let get = |extra: &[&str]| {
        let mut c = e.tarn(&e.s3.key());
        c.current_dir(e.path("pkg"))
            .env("ELAN_TOOLCHAIN", "leanprover/lean4:v4.22.0")
            .args([
                "get",
                "--cache-dir",
                e.path("cache").to_str().unwrap(),
                "--service",
                "dev",
                "--repo",
                "leanprover/pkg",
                "--platform",
                "x86_64-unknown-linux-gnu",
                "--signed",
                "--json",
            ])
            .args(extra);
        run(&mut c)
    };
    let (code, _, err) = get(&["--max-revs", "3"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("leanprover/pkg: no outputs found in 3 revisions from HEAD"),
        "{err}"
    );
    let (code, out, err) = get(&[]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["rev"], revs[1].as_str());
    assert_eq!(j["downloaded"], 8);
    assert!(check_cache(&e.path("cache"), &arts).is_empty());
    // The toolchain came from ELAN_TOOLCHAIN (not normalised) and matched the normalised
    // --toolchain of the upload; with another toolchain nothing is found.
    let (code, _, err) = get(&["--toolchain", "v4.23.0", "--force-download"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no outputs found for any revision"), "{err}");
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn a_500_on_the_newest_revision_stops_the_search_but_a_404_does_not() {
    let e = Env::new("err500");
    let revs = git_package(&e.path("pkg"), "pkg", 3);
    let arts = artifacts(3, 5);
    write_staging(&e.path("staging"), &arts, 5);
    let (code, _, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        &revs[0],
        "--scope",
        "x",
        "--service",
        "dev",
    ]));
    assert_eq!(code, 0, "{err}");
    // A proxy in front of s3s-fs: the HEAD revision's file answers 500.
    let head = revs[2].clone();
    let plan: Plan = Arc::new(move |req: &Request, _| {
        if req.target.contains(&head) {
            Fault::Status(500)
        } else {
            Fault::None
        }
    });
    let proxy = e.proxied_service(plan);
    let get = || {
        let mut c = e.tarn(&e.s3.key());
        c.current_dir(e.path("pkg")).args([
            "get",
            "--cache-dir",
            e.path("cache").to_str().unwrap(),
            "--service",
            "dev",
            "--scope",
            "x",
            "--signed",
            "--retries",
            "2",
        ]);
        run(&mut c)
    };
    let (code, _, err) = get();
    assert_eq!(code, 1);
    assert!(
        err.contains("x: output lookup failed") && err.contains("HTTP 500"),
        "{err}"
    );
    assert!(
        check_cache(&e.path("cache"), &arts).len() == 3,
        "nothing downloaded"
    );
    // Once HEAD's file is a plain 404 (no fault), the search goes on to the oldest commit,
    // through the proxy (signatures survive it).
    drop(proxy);
    let proxy = e.proxied_service(no_faults());
    let (code, _, err) = get();
    assert_eq!(code, 0, "{err}");
    assert!(check_cache(&e.path("cache"), &arts).is_empty());
    assert_eq!(proxy.count("GET", &revs[2]), 1);
    assert_eq!(proxy.count("GET", &revs[1]), 1);
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn put_uploads_from_the_cache_for_head() {
    let e = Env::new("put");
    let revs = git_package(&e.path("pkg"), "pkg", 2);
    let arts = artifacts(6, 6);
    // A cache holding the artifacts, and a mappings file naming them.
    let cache = e.path("cache");
    std::fs::create_dir_all(cache.join("artifacts")).unwrap();
    for a in &arts {
        std::fs::write(cache.join("artifacts").join(&a.file_name), &a.content).unwrap();
    }
    std::fs::write(e.path("out.jsonl"), mappings(&arts, 6)).unwrap();
    let (code, out, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "put",
        e.path("out.jsonl").to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        "p",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["rev"], revs[1].as_str());
    assert_eq!(j["uploaded"], 6);
    // A missing artifact stops `put` before anything is sent.
    std::fs::remove_file(cache.join("artifacts").join(&arts[0].file_name)).unwrap();
    let (code, _, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "put",
        e.path("out.jsonl").to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        "p2",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("artifact not found in cache"), "{err}");
    // And a get of HEAD in a fresh cache finds everything that was uploaded.
    let (code, _, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "get",
        "--cache-dir",
        e.path("cache2").to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        "p",
        "--signed",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(check_cache(&e.path("cache2"), &arts).is_empty());
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn uploads_retry_through_faults_and_the_revision_file_goes_last() {
    let e = Env::new("putfaults");
    let arts = artifacts(40, 7);
    write_staging(&e.path("staging"), &arts, 7);
    let rev = "5555555555555555555555555555555555555555";
    // First PUT of a third of the artifacts fails: reset, 500 or 429; HEADs fail once too.
    let plan: Plan = Arc::new(|req: &Request, attempt| {
        if attempt > 1 || !req.target.ends_with(".art") {
            return Fault::None;
        }
        match tarn_core::Hash::of_bytes(req.target.as_bytes()).0 % 6 {
            0 => Fault::Reset,
            1 => Fault::Status(500),
            2 => Fault::TooMany(0),
            _ => Fault::None,
        }
    });
    let proxy = e.proxied_service(plan);
    let (code, out, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "f",
        "--service",
        "dev",
        "--json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["uploaded"], 40, "{j}");
    assert!(j["retries"].as_u64().unwrap() > 0, "{j}");
    let log = proxy.log.lock().unwrap().clone();
    let last = log.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.ends_with(&format!("{rev}.jsonl"))),
        ("PUT", true)
    );
    assert_eq!(
        log.iter().filter(|(_, t, _)| t.ends_with(".jsonl")).count(),
        1
    );
    // Everything landed intact.
    std::fs::create_dir_all(e.path("pkg")).unwrap();
    std::fs::write(e.path("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let (code, _, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "get",
        "--cache-dir",
        e.path("cache").to_str().unwrap(),
        "--service",
        "dev",
        "--scope",
        "f",
        "--rev",
        rev,
        "--signed",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(check_cache(&e.path("cache"), &arts).is_empty());
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn a_failed_artifact_upload_means_no_revision_file() {
    let e = Env::new("putfail");
    let arts = artifacts(10, 8);
    write_staging(&e.path("staging"), &arts, 8);
    let rev = "6666666666666666666666666666666666666666";
    let broken = format!("{}.art", arts[3].hash);
    let plan: Plan = Arc::new(move |req: &Request, _| {
        if req.method == "PUT" && req.target.ends_with(&broken) {
            Fault::Status(500)
        } else {
            Fault::None
        }
    });
    let proxy = e.proxied_service(plan);
    let (code, _, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "g",
        "--service",
        "dev",
        "--retries",
        "1",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&arts[3].file_name) && err.contains("HTTP 500"),
        "{err}"
    );
    assert!(err.contains("revision file was NOT uploaded"), "{err}");
    assert_eq!(proxy.count("PUT", ".jsonl"), 0);
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn a_key_that_may_write_but_not_read_still_uploads_everything() {
    let e = Env::new("writeonly");
    let arts = artifacts(7, 9);
    write_staging(&e.path("staging"), &arts, 9);
    let rev = "7777777777777777777777777777777777777777";
    // The proxy answers every HEAD with 403, as S3 does for a key without read permission.
    let plan: Plan = Arc::new(|req: &Request, _| {
        if req.method == "HEAD" {
            Fault::Status(403)
        } else {
            Fault::None
        }
    });
    let proxy = e.proxied_service(plan);
    let (code, out, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "w",
        "--service",
        "dev",
        "--json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("may upload but not check"), "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (j["uploaded"].as_u64(), j["already_present"].as_u64()),
        (Some(7), Some(0))
    );
    assert_eq!(j["revision_uploaded"], true);
    // With a wrong secret as well, one upload is tried, refused, and nothing else is sent.
    let bad = format!("{}:wrong", e.s3.access_key);
    let (code, _, err) = run(e.tarn(&bad).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--scope",
        "w2",
        "--service",
        "dev",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains("refused the credentials") && err.contains("SignatureDoesNotMatch"),
        "{err}"
    );
    assert_eq!(proxy.count("PUT", "/w2/"), 1);
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn fixture_cache_stage_put_staged_get_verify_pipeline() {
    use tarn_fixture::{generate, FixtureSpec, Style};
    let e = Env::new("pipeline");
    let fx = generate(
        &FixtureSpec::small(150)
            .with_style(Style::Modules)
            .with_seed(5),
        &e.path("src/cache"),
    )
    .unwrap();
    let rev = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";
    let cache = e.path("src/cache");
    let (code, _, err) = run(e.tarn("").args([
        "stage",
        fx.mappings_path.to_str().unwrap(),
        e.path("staging").to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "stage: {err}");
    let (code, out, err) = run(e.tarn(&e.s3.key()).args([
        "put-staged",
        e.path("staging").to_str().unwrap(),
        "--rev",
        rev,
        "--repo",
        "o/fixture",
        "--service",
        "dev",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        j["uploaded"].as_u64(),
        Some(fx.artifacts.len() as u64),
        "{j}"
    );
    std::fs::create_dir_all(e.path("pkg")).unwrap();
    std::fs::write(e.path("pkg/lakefile.toml"), "name = \"fixture\"\n").unwrap();
    // put-staged has no platform or toolchain by default; get must ask for none too.
    let fresh = e.path("fresh");
    let (code, out, err) = run(e.tarn(&e.s3.key()).current_dir(e.path("pkg")).args([
        "get",
        "--cache-dir",
        fresh.to_str().unwrap(),
        "--service",
        "dev",
        "--repo",
        "o/fixture",
        "--rev",
        rev,
        "--platform",
        "",
        "--toolchain",
        "",
        "--signed",
        "--json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["downloaded"].as_u64(), Some(fx.artifacts.len() as u64));
    for (name, size) in &fx.artifacts {
        let p = fresh.join("artifacts").join(name.file_name());
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            *size,
            "{}",
            p.display()
        );
    }
    let (code, out, err) = run(e
        .tarn("")
        .args(["verify", "--cache-dir", fresh.to_str().unwrap()]));
    assert_eq!(code, 0, "verify: {out}\n{err}");
}
