//! Interop with the real `curl` binary, which is what Lake runs.
//!
//! 1. What tarn uploads (to s3s-fs) is fetched by anonymous `curl -s -f` at the URL Lake
//!    computes. s3s-fs refuses anonymous reads, so the anonymous reads go to the test
//!    support's static file server over s3s-fs's data directory (s3s-fs stores each object as
//!    a plain file at `<data>/<bucket>/<key>`): the same bytes, served like a public bucket.
//! 2. Artifacts and a revision file uploaded with Lake's own curl command lines (spec §6.5)
//!    are found, downloaded and verified by `tarn get`.

use std::path::Path;
use std::process::Command;

use tarn_test::*;

const BIN: &str = env!("CARGO_BIN_EXE_tarn");

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn anonymous_curl_fetches_what_tarn_uploaded_at_lakes_urls() {
    let s3 = S3::from_env();
    let data = s3
        .data_dir
        .clone()
        .expect("S3_STATE_DIR must be set (scripts/test.sh sets it)");
    let tmp = tempfile::tempdir().unwrap();
    let prefix = unique("curl-anon");
    let base = format!("{}/{}/{prefix}", s3.endpoint, s3.bucket);
    write_s3_config(
        &tmp.path().join("config.toml"),
        "dev",
        &format!("{base}/a0"),
        &format!("{base}/r0"),
    );
    let arts = artifacts(12, 21);
    write_staging(&tmp.path().join("staging"), &arts, 21);
    let rev = "feedfacefeedfacefeedfacefeedfacefeedface";
    let (code, _, err) = run(tarn_cmd(Path::new(BIN), tmp.path())
        .env("LAKE_CACHE_KEY", s3.key())
        .args([
            "put-staged",
            tmp.path().join("staging").to_str().unwrap(),
            "--rev",
            rev,
            "--repo",
            "my-org/my.pkg",
            "--platform",
            "x86_64-unknown-linux-gnu",
            "--toolchain",
            "leanprover/lean4:v4.22.0",
            "--service",
            "dev",
        ]));
    assert_eq!(code, 0, "{err}");

    let public = Server::start(Backend::Dir(data), no_faults());
    // The URLs as Lake builds them (spec §6.3), written out by hand.
    let root = format!("{}/{}/{prefix}", public.url(), s3.bucket);
    let curl = |url: &str| {
        let out = Command::new(curl_bin())
            .args(["-s", "-f", url])
            .output()
            .unwrap();
        assert!(out.status.success(), "curl -s -f {url}: {:?}", out.status);
        out.stdout
    };
    for a in &arts {
        let url = format!("{root}/a0/my-org/my.pkg/{}.art", a.hash);
        assert_eq!(curl(&url), a.content, "{url}");
    }
    let rev_url = format!(
        "{root}/r0/my-org/my.pkg/pt/x86_64-unknown-linux-gnu/tc/leanprover--lean4---v4.22.0/{rev}.jsonl"
    );
    assert_eq!(
        curl(&rev_url),
        mappings(&arts, 21),
        "revision file is uploaded verbatim"
    );

    // tarn's own anonymous download from the public server works too.
    write_s3_config(
        &tmp.path().join("config.toml"),
        "pub",
        &format!("{root}/a0"),
        &format!("{root}/r0"),
    );
    std::fs::create_dir_all(tmp.path().join("pkg")).unwrap();
    std::fs::write(tmp.path().join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let (code, _, err) = run(tarn_cmd(Path::new(BIN), tmp.path())
        .current_dir(tmp.path().join("pkg"))
        .env("ELAN_TOOLCHAIN", "leanprover/lean4:v4.22.0")
        .args([
            "get",
            "--cache-dir",
            tmp.path().join("cache").to_str().unwrap(),
            "--service",
            "pub",
            "--repo",
            "my-org/my.pkg",
            "--platform",
            "x86_64-unknown-linux-gnu",
            "--rev",
            rev,
        ]));
    assert_eq!(code, 0, "{err}");
    assert!(check_cache(&tmp.path().join("cache"), &arts).is_empty());
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn tarn_gets_what_lakes_curl_command_lines_uploaded() {
    let s3 = S3::from_env();
    let tmp = tempfile::tempdir().unwrap();
    let prefix = unique("curl-lake");
    let base = format!("{}/{}/{prefix}", s3.endpoint, s3.bucket);
    write_s3_config(
        &tmp.path().join("config.toml"),
        "dev",
        &format!("{base}/a0"),
        &format!("{base}/r0"),
    );
    let arts = artifacts(20, 22);
    let staging = tmp.path().join("staging");
    write_staging(&staging, &arts, 22);
    let rev = "cafebabecafebabecafebabecafebabecafebabe";
    // Lake's parallel artifact upload: a --config file of -T / url pairs. curl < 8 does not
    // send the payload hash by itself; s3s-fs requires it.
    let pairs: Vec<_> = arts
        .iter()
        .map(|a| {
            (
                staging.join(&a.file_name),
                format!("{base}/a0/lake%20scope/{}.art", a.hash),
            )
        })
        .collect();
    let codes = lake_parallel_put(&s3.key(), &pairs, &tmp.path().join("curl.cfg"), true);
    let ok = codes.iter().filter(|(_, code)| *code == 200).count();
    assert_eq!(ok, arts.len(), "curl -Z upload: {codes:?}");
    // Lake's revision upload: one PUT, last.
    let out = Command::new(curl_bin())
        .args([
            "-s",
            "-w",
            "%{stderr}%{json}\n",
            "--aws-sigv4",
            "aws:amz:auto:s3",
            "--user",
            &s3.key(),
            "-X",
            "PUT",
            "-T",
        ])
        .arg(staging.join("outputs.jsonl"))
        .arg(format!("{base}/r0/lake%20scope/{rev}.jsonl"))
        .args([
            "-H",
            "Content-Type: application/vnd.reservoir.outputs+json-lines",
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"http_code\":200"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::create_dir_all(tmp.path().join("pkg")).unwrap();
    std::fs::write(tmp.path().join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let (code, out, err) = run(tarn_cmd(Path::new(BIN), tmp.path())
        .current_dir(tmp.path().join("pkg"))
        .env("LAKE_CACHE_KEY", s3.key())
        .args([
            "get",
            "--cache-dir",
            tmp.path().join("cache").to_str().unwrap(),
            "--service",
            "dev",
            "--scope",
            "lake scope",
            "--rev",
            rev,
            "--signed",
            "--json",
        ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["downloaded"], 20);
    assert!(check_cache(&tmp.path().join("cache"), &arts).is_empty());
    // And tarn's put sees Lake's uploads as present.
    let (code, out, err) = run(tarn_cmd(Path::new(BIN), tmp.path())
        .env("LAKE_CACHE_KEY", s3.key())
        .args([
            "put-staged",
            staging.to_str().unwrap(),
            "--rev",
            rev,
            "--scope",
            "lake scope",
            "--service",
            "dev",
            "--json",
        ]));
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["already_present"], 20, "{j}");
}

/// scripts/test.sh runs this module and `serve_lake_curl` twice: with the system curl and with
/// curl 8.14.1 (`TARN_TEST_CURL`, `TARN_TEST_CURL_VERSION`); this proves which one ran.
#[test]
fn the_curl_under_test_is_the_one_asked_for() {
    let out = std::process::Command::new(curl_bin())
        .arg("--version")
        .output()
        .expect("curl runs");
    assert!(out.status.success());
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let want = std::env::var("TARN_TEST_CURL_VERSION").unwrap_or_default();
    assert!(
        first.starts_with(&format!("curl {want}")),
        "expected curl {want}, got {first}"
    );
}
