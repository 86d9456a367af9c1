//! `tarn serve` against Lake's exact curl command lines (spec §6.5) and its Reservoir
//! requests, then `tarn get` + `tarn verify` from the server into an empty cache.

use std::path::Path;
use std::process::Command;

use tarn_test::*;

use crate::BIN;

const KEY: &str = "ci:ci-secret";

fn server(data: &Path) -> TarnServer {
    TarnServer::with_key(data, &format!("{KEY}:*"))
}

#[test]
fn lakes_parallel_curl_uploads_with_and_without_the_payload_header() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"));
    for (unsigned, scope) in [(false, "no-header"), (true, "with-header")] {
        let arts = make_artifacts(&tmp.path().join(scope), 12, 3000, unsigned as u64);
        let pairs: Vec<_> = arts
            .iter()
            .map(|(p, h, _)| (p.clone(), format!("{}/a0/{scope}/{h}.art", srv.url)))
            .collect();
        let codes = lake_parallel_put(KEY, &pairs, &tmp.path().join("curl.cfg"), unsigned);
        assert_eq!(codes.len(), arts.len(), "{codes:?}");
        assert!(codes.iter().all(|(_, c)| *c == 200), "{codes:?}");
        // Lake's anonymous GET.
        for (_, h, data) in &arts {
            let out = tmp.path().join("out");
            let st = Command::new(curl_bin())
                .args(["-s", "-f", "-o"])
                .arg(&out)
                .arg(format!("{}/a0/{scope}/{h}.art", srv.url))
                .status()
                .unwrap();
            assert!(st.success());
            assert_eq!(&std::fs::read(&out).unwrap(), data);
            assert_eq!(
                std::fs::read(tmp.path().join(format!("data/a0/{scope}/{h}.art"))).unwrap(),
                *data
            );
        }
    }
    assert_eq!(srv.metric("tarn_uploads_created_total", ""), 24);
    // Uploading the same bytes again: 200, nothing changes.
    let arts = make_artifacts(&tmp.path().join("again"), 3, 3000, 0);
    let pairs: Vec<_> = arts
        .iter()
        .map(|(p, h, _)| (p.clone(), format!("{}/a0/no-header/{h}.art", srv.url)))
        .collect();
    let codes = lake_parallel_put(KEY, &pairs, &tmp.path().join("curl.cfg"), false);
    assert!(codes.iter().all(|(_, c)| *c == 200), "{codes:?}");
    assert_eq!(srv.metric("tarn_uploads_created_total", ""), 24);
    assert_eq!(srv.metric("tarn_uploads_existing_total", ""), 3);
}

#[test]
fn lake_s3_and_reservoir_round_trip_then_tarn_get_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"));
    let arts = make_artifacts(&tmp.path().join("staging"), 8, 44_000, 7);
    let repo = "my-org/my.pkg";
    let plat = "x86_64-unknown-linux-gnu";
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let pairs: Vec<_> = arts
        .iter()
        .map(|(p, h, _)| (p.clone(), format!("{}/a0/{repo}/{h}.art", srv.url)))
        .collect();
    let codes = lake_parallel_put(KEY, &pairs, &tmp.path().join("curl.cfg"), false);
    assert!(codes.iter().all(|(_, c)| *c == 200), "{codes:?}");
    let hashes: Vec<&str> = arts.iter().map(|(_, h, _)| h.as_str()).collect();
    let map = mapping_for(&hashes);
    std::fs::write(tmp.path().join("outputs.jsonl"), &map).unwrap();
    let rev_path = format!("r0/{repo}/pt/{plat}/tc/leanprover--lean4---v4.22.0/{rev}.jsonl");
    let (code, body) = lake_put(
        KEY,
        &tmp.path().join("outputs.jsonl"),
        &format!("{}/{rev_path}", srv.url),
        "application/vnd.reservoir.outputs+json-lines",
    );
    assert_eq!(code, 200, "{body}");

    // Lake's S3 revision GET and parallel artifact GET.
    assert_eq!(http_get_text(&format!("{}/{rev_path}", srv.url)), map);
    let mut cfg = String::new();
    for (_, h, _) in &arts {
        cfg.push_str(&format!(
            "url = \"{}/a0/{repo}/{h}.art\"\n-o \"{}\"\n",
            srv.url,
            tmp.path().join(format!("dl-{h}")).display()
        ));
    }
    std::fs::write(tmp.path().join("get.cfg"), cfg).unwrap();
    let st = Command::new(curl_bin())
        .args([
            "-Z",
            "-X",
            "GET",
            "-L",
            "--retry",
            "3",
            "-s",
            "-w",
            "%{stderr}%{json}\n",
            "--config",
        ])
        .arg(tmp.path().join("get.cfg"))
        .output()
        .unwrap();
    assert!(st.status.success());
    for (_, h, data) in &arts {
        assert_eq!(
            &std::fs::read(tmp.path().join(format!("dl-{h}"))).unwrap(),
            data
        );
    }

    // Lake's Reservoir requests against the same storage.
    let api = format!("{}/api/v1/repositories/{repo}", srv.url);
    let (code, body) = curl(&[
        "-L",
        "-H",
        "X-Reservoir-Api-Version:1.0.0",
        "-H",
        "X-Lake-Registry-Api-Version:0.1.0",
        &format!(
            "{api}/build-outputs?rev={rev}&platform={plat}&toolchain=leanprover%2Flean4%3Av4.22.0"
        ),
    ]);
    assert_eq!(code, 200);
    assert_eq!(body, map);
    let (code, _) = curl(&[&format!("{api}/build-outputs?rev={rev}")]);
    assert_eq!(
        code, 404,
        "no platform/toolchain: a different revision path"
    );
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &serde_json::to_string(&hashes).unwrap(),
        &format!("{api}/artifacts"),
    ]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let urls = v["data"].as_array().unwrap();
    assert_eq!(urls.len(), arts.len());
    for (u, (_, _, data)) in urls.iter().zip(&arts) {
        let out = Command::new(curl_bin())
            .args(["-s", "-f", u.as_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(&out.stdout, data);
    }
    let out = Command::new(curl_bin())
        .args(["-s", "-f", &format!("{api}/artifacts/{}.art", hashes[0])])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, arts[0].2);

    // tarn get from the server into an empty cache, then tarn verify.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("pkg")).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[[cache.service]]\nname = \"tarn\"\nkind = \"s3\"\nartifactEndpoint = \"{0}/a0\"\nrevisionEndpoint = \"{0}/r0\"\n",
            srv.url
        ),
    )
    .unwrap();
    std::fs::write(home.join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let cache = tmp.path().join("cache");
    let tarn = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(home.join("pkg"))
            .env("HOME", &home)
            .env("LAKE_CONFIG", home.join("config.toml"))
            .env_remove("LAKE_CACHE_DIR")
            .env_remove("LAKE_CACHE_KEY")
            .env("ELAN_TOOLCHAIN", "leanprover/lean4:v4.22.0")
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = tarn(&[
        "get",
        "--service",
        "tarn",
        "--repo",
        repo,
        "--platform",
        plat,
        "--rev",
        rev,
    ]);
    assert_eq!(code, Some(0), "{err}");
    for (_, h, data) in &arts {
        assert_eq!(
            &std::fs::read(cache.join(format!("artifacts/{h}.olean"))).unwrap(),
            data
        );
    }
    let (code, err) = tarn(&["verify"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn zero_config_prints_lake_lines_and_a_persistent_upload_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key_of = |banner: &str| {
        banner
            .lines()
            .find_map(|l| l.strip_prefix("Uploads: export LAKE_CACHE_KEY="))
            .map(|r| r.split_whitespace().next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no key in banner:\n{banner}"))
    };
    let srv = TarnServer::start(&["--data", data.to_str().unwrap()]);
    assert!(
        srv.banner
            .contains(&format!("artifactEndpoint = \"{}/a0\"", srv.url)),
        "{}",
        srv.banner
    );
    assert!(srv
        .banner
        .contains(&format!("revisionEndpoint = \"{}/r0\"", srv.url)));
    assert!(srv
        .banner
        .contains(&format!("apiEndpoint = \"{}/api/v1\"", srv.url)));
    let key = key_of(&srv.banner);
    let arts = make_artifacts(&tmp.path().join("a"), 1, 100, 1);
    let url = format!("{}/a0/zero/{}.art", srv.url, arts[0].1);
    let (code, body) = lake_put(&key, &arts[0].0, &url, "application/vnd.reservoir.artifact");
    assert_eq!(code, 200, "{body}");
    drop(srv);
    let srv = TarnServer::start(&["--data", data.to_str().unwrap()]);
    assert_eq!(key_of(&srv.banner), key, "the generated key is kept");
    // The startup scan counts what is stored.
    wait_until(10, || srv.metric("tarn_stored_objects", "") == 1);
}
