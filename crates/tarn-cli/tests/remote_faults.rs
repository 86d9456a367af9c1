//! `tarn get` through a fault-injecting HTTP server: connection resets, 500s, 429 with
//! Retry-After, truncated bodies, stalls and corrupt bodies. No S3 needed: the server serves a
//! bucket-like directory anonymously, like a public bucket.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tarn_test::*;

const BIN: &str = env!("CARGO_BIN_EXE_tarn");
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

/// A remote tree with `n` artifacts under `a0/<scope>` and the revision file under
/// `r0/<scope>/REV.jsonl`, plus a package dir and a config pointing at `server_url`.
fn setup(tmp: &Path, n: usize, seed: u64) -> Vec<Art> {
    let arts = artifacts(n, seed);
    let remote = tmp.join("remote");
    write_remote_artifacts(&remote, "a0/sc", &arts);
    std::fs::create_dir_all(remote.join("r0/sc")).unwrap();
    std::fs::write(
        remote.join(format!("r0/sc/{REV}.jsonl")),
        mappings(&arts, seed),
    )
    .unwrap();
    std::fs::create_dir_all(tmp.join("pkg")).unwrap();
    std::fs::write(tmp.join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    arts
}

fn get_cmd(tmp: &Path, server: &Server) -> std::process::Command {
    write_s3_config(
        &tmp.join("config.toml"),
        "faulty",
        &format!("{}/a0", server.url()),
        &format!("{}/r0", server.url()),
    );
    let mut c = tarn_cmd(Path::new(BIN), tmp);
    c.current_dir(tmp.join("pkg")).args([
        "get",
        "--cache-dir",
        tmp.join("cache").to_str().unwrap(),
        "--service",
        "faulty",
        "--scope",
        "sc",
        "--rev",
        REV,
        "--timeout",
        "1",
        "--retries",
        "6",
    ]);
    c
}

fn kind_of(path: &str) -> u64 {
    tarn_core::Hash::of_bytes(path.as_bytes()).0 % 20
}

#[test]
fn two_thousand_artifacts_survive_every_kind_of_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 2000, 7);
    // First attempts fail in one of six ways for ~30% of artifacts; later attempts succeed.
    let plan: Plan = Arc::new(|req: &Request, attempt: u32| {
        if attempt > 1 || !req.target.ends_with(".art") {
            return Fault::None;
        }
        match kind_of(&req.target) {
            0 => Fault::Reset,
            1 => Fault::Status(500),
            2 => Fault::TooMany(1),
            3 => Fault::Truncate,
            4 => Fault::Stall(Duration::from_secs(3)),
            5 => Fault::Corrupt,
            _ => Fault::None,
        }
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    let start = Instant::now();
    let (code, out, err) = run(get_cmd(tmp.path(), &server).arg("--json"));
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["downloaded"], 2000, "{json}");
    assert_eq!(json["failed"].as_array().unwrap().len(), 0);
    let injected = server.faults.load(std::sync::atomic::Ordering::Relaxed);
    assert!(injected > 400, "only {injected} faults injected");
    assert!(
        json["retries"].as_u64().unwrap() >= injected,
        "{json} vs {injected} faults"
    );
    assert_eq!(
        check_cache(&tmp.path().join("cache"), &arts),
        Vec::<String>::new()
    );
    // No temp file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("cache/artifacts"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tarn-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!(
        "2000 artifacts, {injected} faults injected, {} retries, {secs:.1}s",
        json["retries"]
    );
}

#[test]
fn permanently_broken_artifacts_are_named_and_the_others_land() {
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 200, 11);
    let corrupt = format!("/a0/sc/{}.art", arts[17].hash);
    let dead = format!("/a0/sc/{}.art", arts[42].hash);
    let (c2, d2) = (corrupt.clone(), dead.clone());
    let plan: Plan = Arc::new(move |req: &Request, _| {
        if req.target == c2 {
            Fault::Corrupt
        } else if req.target == d2 {
            Fault::Status(503)
        } else {
            Fault::None
        }
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    let (code, out, err) = run(&mut get_cmd(tmp.path(), &server));
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(err.contains(&arts[17].file_name), "{err}");
    assert!(err.contains("hash mismatch"), "{err}");
    assert!(err.contains(&arts[42].file_name), "{err}");
    assert!(err.contains("HTTP 503"), "{err}");
    assert!(
        err.contains("failed to download some artifacts (2 of 200)"),
        "{err}"
    );
    // 6 retries + the first attempt, for each broken one.
    assert_eq!(server.count("GET", &corrupt), 7);
    let missing = check_cache(&tmp.path().join("cache"), &arts);
    assert_eq!(
        missing,
        vec![arts[17].file_name.clone(), arts[42].file_name.clone()]
    );
    // The broken artifacts left no file, and a second run downloads only those two.
    let (code, _, err) = run(get_cmd(tmp.path(), &server).arg("-v"));
    assert_eq!(code, 1);
    assert!(err.contains("already present 198"), "{err}");
}

#[test]
fn the_hint_for_failed_downloads_depends_on_whether_the_service_refused_them() {
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 4, 13);
    let refused = format!("/a0/sc/{}.art", arts[1].hash);
    let plan: Plan = Arc::new(move |req: &Request, _| {
        if req.target == refused {
            Fault::Status(403)
        } else {
            Fault::None
        }
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    let (code, _, err) = run(&mut get_cmd(tmp.path(), &server));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(
        err.contains("hint: the service refuses some downloads"),
        "{err}"
    );
    // Not a refusal: the hint says to rerun.
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 4, 13);
    let broken = format!("/a0/sc/{}.art", arts[1].hash);
    let plan: Plan = Arc::new(move |req: &Request, _| {
        if req.target == broken {
            Fault::Status(404)
        } else {
            Fault::None
        }
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    let (code, _, err) = run(&mut get_cmd(tmp.path(), &server));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(err.contains("hint: rerun the same command"), "{err}");
}

#[test]
fn retry_after_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 3, 5);
    let plan: Plan = Arc::new(|req: &Request, attempt| {
        if req.target.ends_with(".art") && attempt == 1 {
            Fault::TooMany(2)
        } else {
            Fault::None
        }
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    let start = Instant::now();
    let (code, _, err) = run(&mut get_cmd(tmp.path(), &server));
    assert_eq!(code, 0, "{err}");
    // Backoff alone would retry after ~10 ms; Retry-After: 2 makes it wait 2 s.
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(check_cache(&tmp.path().join("cache"), &arts).is_empty());
}

#[test]
fn a_404_revision_is_an_error_naming_the_revision_and_500_is_a_lookup_failure() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path(), 3, 3);
    let plan: Plan = Arc::new(|req: &Request, _| {
        if req.target.contains("/r0/sc/bad") {
            Fault::Status(500)
        } else {
            Fault::None
        }
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    let missing_rev = "1111111111111111111111111111111111111111";
    let c = get_cmd(tmp.path(), &server);
    let args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut c = tarn_cmd(Path::new(BIN), tmp.path());
    c.current_dir(tmp.path().join("pkg"));
    let args: Vec<String> = args
        .into_iter()
        .map(|a| if a == REV { missing_rev.to_string() } else { a })
        .collect();
    c.args(&args);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("sc: outputs not found for revision {missing_rev}")),
        "{err}"
    );
    // The scope `sc/bad` answers 500: that stops the search with a lookup error.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| if a == "sc" { "sc/bad".to_string() } else { a })
        .collect();
    let mut c = tarn_cmd(Path::new(BIN), tmp.path());
    c.current_dir(tmp.path().join("pkg")).args(&args);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1);
    assert!(
        err.contains("output lookup failed") && err.contains("HTTP 500"),
        "{err}"
    );
    assert!(err.contains("after 7 attempts"), "{err}");
}

/// A Reservoir API: revision mappings via `build-outputs?rev=`, artifact URLs resolved by one
/// bulk POST (answered as `{"data":[...]}` or as a bare array), artifacts from elsewhere.
fn reservoir_get(bare_array: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 25, 9);
    let maps = mappings(&arts, 9);
    let me: Arc<std::sync::OnceLock<String>> = Arc::default();
    let me2 = me.clone();
    let plan: Plan = Arc::new(move |req: &Request, _| {
        let api = "/api/v1/repositories/leanprover/pkg";
        let headers_ok = req.header("x-reservoir-api-version") == Some("1.0.0")
            && req.header("x-lake-registry-api-version") == Some("0.1.0");
        if req
            .target
            .starts_with(&format!("{api}/build-outputs?rev={REV}&platform="))
        {
            return if headers_ok {
                Fault::Reply(
                    200,
                    "application/vnd.reservoir.outputs+json-lines".into(),
                    maps.clone(),
                )
            } else {
                Fault::Status(400)
            };
        }
        if req.method == "POST" && req.target == format!("{api}/artifacts") {
            let hashes: Vec<String> = serde_json::from_slice(&req.body).unwrap();
            let base = me2.get().unwrap();
            let urls: Vec<String> = hashes
                .iter()
                .map(|h| format!("{base}/a0/sc/{h}.art"))
                .collect();
            let body = if bare_array {
                serde_json::to_vec(&urls).unwrap()
            } else {
                serde_json::to_vec(&serde_json::json!({ "data": urls })).unwrap()
            };
            return if headers_ok {
                Fault::Reply(200, "application/json".into(), body)
            } else {
                Fault::Status(400)
            };
        }
        Fault::None
    });
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), plan);
    me.set(server.url()).unwrap();
    std::fs::write(tmp.path().join("config.toml"), "").unwrap();
    let mut c = tarn_cmd(Path::new(BIN), tmp.path());
    c.current_dir(tmp.path().join("pkg"))
        .env("RESERVOIR_API_URL", format!("{}/api/v1/", server.url()))
        .args([
            "get",
            "--cache-dir",
            tmp.path().join("cache").to_str().unwrap(),
            "--repo",
            "leanprover/pkg",
            "--rev",
            REV,
            "--json",
        ]);
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(check_cache(&tmp.path().join("cache"), &arts).is_empty());
    assert_eq!(server.count("POST", "/artifacts"), 1);
    let outputs = std::fs::read_dir(tmp.path().join("cache/outputs/pkg"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outputs.path()).unwrap()).unwrap();
    assert_eq!(v["service"], "reservoir");
    assert_eq!(v["repo"], "leanprover/pkg");
    // `--scope` makes no sense on Reservoir.
    let mut c = tarn_cmd(Path::new(BIN), tmp.path());
    c.current_dir(tmp.path().join("pkg"))
        .args(["get", "--scope", "x", "--rev", REV]);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1);
    assert!(
        err.contains("a custom endpoint must be set (not Reservoir)"),
        "{err}"
    );
}

#[test]
fn reservoir_get_with_a_data_object_reply() {
    reservoir_get(false);
}

#[test]
fn reservoir_get_with_a_bare_array_reply() {
    reservoir_get(true);
}

#[test]
fn configuration_errors_say_what_to_set() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pkg")).unwrap();
    std::fs::write(tmp.path().join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    std::fs::write(tmp.path().join("config.toml"), "").unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["get", "--service", "bogus", "--scope", "s"],
            vec![],
            "service `bogus` not found in system configuration",
        ),
        (
            vec!["get", "--scope", "s"],
            vec![("LAKE_CACHE_ARTIFACT_ENDPOINT", "http://x/a")],
            "both environment variables must be set",
        ),
        (
            vec!["put-staged", ".", "--rev", REV, "--scope", "s"],
            vec![("LAKE_CACHE_KEY", "a:b")],
            "the `--service` option must be set",
        ),
        (
            vec!["put-staged", ".", "--rev", REV, "--scope", "s"],
            vec![("LAKE_CACHE_REVISION_ENDPOINT", "http://x/r")],
            "these environment variables must be set",
        ),
        (
            vec!["put", "m.jsonl", "--scope", "s", "--service", "reservoir"],
            vec![("LAKE_CACHE_KEY", "a:b")],
            "download-only",
        ),
        (
            vec!["get", "--repo", "not-a-repo"],
            vec![],
            "invalid repository",
        ),
    ];
    for (args, envs, want) in cases {
        let mut c = tarn_cmd(Path::new(BIN), tmp.path());
        c.current_dir(tmp.path().join("pkg")).args(&args);
        for (k, v) in &envs {
            c.env(k, v);
        }
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
        assert!(err.contains("hint:"), "{args:?}: no hint in {err}");
        // The message shape (CONTRIBUTING.md): `error:` first, one `  hint:` line, last.
        let lines: Vec<&str> = err.trim_end().lines().collect();
        assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
        assert!(
            lines.last().unwrap().starts_with("  hint: "),
            "{args:?}: {err}"
        );
        assert_eq!(err.matches("hint:").count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn mappings_only_writes_outputs_with_the_service_and_downloads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let arts = setup(tmp.path(), 10, 13);
    let server = Server::start(Backend::Dir(tmp.path().join("remote")), no_faults());
    let (code, _, err) = run(get_cmd(tmp.path(), &server).arg("--mappings-only"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.count("GET", ".art"), 0);
    assert_eq!(check_cache(&tmp.path().join("cache"), &arts).len(), 10);
    let dir = tmp.path().join("cache/outputs/pkg");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 10);
    for p in entries {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(
            (v["service"].as_str(), v["scope"].as_str()),
            (Some("faulty"), Some("sc"))
        );
    }
    // The legacy env service has no name to record, so Lake (and tarn) refuse.
    let mut c = tarn_cmd(Path::new(BIN), tmp.path());
    c.current_dir(tmp.path().join("pkg"))
        .env(
            "LAKE_CACHE_ARTIFACT_ENDPOINT",
            format!("{}/a0", server.url()),
        )
        .env(
            "LAKE_CACHE_REVISION_ENDPOINT",
            format!("{}/r0", server.url()),
        )
        .args(["get", "--scope", "sc", "--rev", REV, "--mappings-only"]);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1);
    assert!(err.contains("`--mappings-only` requires services"), "{err}");
    // A full get from the env service records LAKE_CACHE_SERVICE as the service's name
    // (Lake's `Env.cacheService?`), and `null` without it.
    for (name, recorded) in [(Some("ci"), Some("ci")), (None, None)] {
        std::fs::remove_dir_all(tmp.path().join("cache")).unwrap();
        let mut c = tarn_cmd(Path::new(BIN), tmp.path());
        c.current_dir(tmp.path().join("pkg"))
            .env("LAKE_CACHE_DIR", tmp.path().join("cache"))
            .env(
                "LAKE_CACHE_ARTIFACT_ENDPOINT",
                format!("{}/a0", server.url()),
            )
            .env(
                "LAKE_CACHE_REVISION_ENDPOINT",
                format!("{}/r0", server.url()),
            )
            .args(["get", "--scope", "sc", "--rev", REV]);
        if let Some(n) = name {
            c.env("LAKE_CACHE_SERVICE", n);
        }
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 0, "{err}");
        for e in std::fs::read_dir(&dir).unwrap() {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            assert_eq!(v["service"].as_str(), recorded, "{name:?}");
        }
    }
}

/// An upload to a server offering tarn's batch existence API (docs/server-api.md) asks once
/// instead of sending one HEAD per artifact; a server without it gets HEADs.
#[test]
fn uploads_use_the_batch_existence_api_when_offered() {
    for offered in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let arts = artifacts(25, 17);
        write_staging(&tmp.path().join("staging"), &arts, 17);
        // The server already holds the first 10.
        let remote = tmp.path().join("remote");
        write_remote_artifacts(&remote, "a0/b", &arts[..10]);
        let r2 = remote.clone();
        let plan: Plan = Arc::new(move |req: &Request, _| {
            if req.method == "POST" && req.target == "/a0/b/?tarn-missing" && offered {
                let asked: Vec<String> = serde_json::from_slice(&req.body).unwrap();
                let missing: Vec<&String> = asked
                    .iter()
                    .filter(|h| !r2.join(format!("a0/b/{h}.art")).exists())
                    .collect();
                let body = serde_json::json!({"version": 1, "missing": missing});
                return Fault::Reply(
                    200,
                    "application/json".into(),
                    body.to_string().into_bytes(),
                );
            }
            Fault::None
        });
        let server = Server::start(Backend::Dir(remote.clone()), plan);
        write_s3_config(
            &tmp.path().join("config.toml"),
            "srv",
            &format!("{}/a0", server.url()),
            &format!("{}/r0", server.url()),
        );
        let mut c = tarn_cmd(Path::new(BIN), tmp.path());
        c.env("LAKE_CACHE_KEY", "id:secret").args([
            "put-staged",
            tmp.path().join("staging").to_str().unwrap(),
            "--rev",
            REV,
            "--scope",
            "b",
            "--service",
            "srv",
            "--json",
        ]);
        let (code, out, err) = run(&mut c);
        assert_eq!(code, 0, "{out}\n{err}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (j["uploaded"].as_u64(), j["already_present"].as_u64()),
            (Some(15), Some(10)),
            "{j}"
        );
        if offered {
            assert_eq!(j["presence_check"], "batch");
            assert_eq!(server.count("HEAD", ".art"), 0);
        } else {
            assert_eq!(j["presence_check"], "head");
            assert_eq!(server.count("HEAD", ".art"), 25);
            // The probe is sent once, without retries.
            assert_eq!(server.count("POST", "tarn-missing"), 1);
        }
        assert_eq!(server.count("PUT", ".art"), 15);
        assert!(remote.join(format!("r0/b/{REV}.jsonl")).exists());
    }
}
