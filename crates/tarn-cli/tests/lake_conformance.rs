//! Conformance with Lake's own cache test script (`tests/lake/tests/cache*/test.sh` in
//! leanprover/lean4), scenario by scenario, against a logging HTTP server on 127.0.0.1: each
//! test asserts the exact request paths tarn sends and its exit code. Where tarn deliberately
//! differs from Lake, docs/lake-differences.md says so.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tarn_test::*;

use crate::BIN;

/// A test world: a package git repository `pkg/` (name `test`), a remote directory served by
/// a logging server, a system configuration naming it `ok`, a cache directory.
struct World {
    tmp: tempfile::TempDir,
    server: Server,
    revs: Vec<String>,
}

impl World {
    fn new(plan: Plan) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let revs = git_package(&tmp.path().join("pkg"), "test", 2);
        let server = service_over_dir(tmp.path(), "ok", plan);
        World { tmp, server, revs }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// `tarn ARGS` in the package, with this world's cache and configuration.
    fn tarn(&self, args: &[&str]) -> (i32, String, String) {
        tarn_in_workspace(
            self.tmp.path(),
            &self.path("pkg"),
            &self.cache(),
            &self.server.url(),
            args,
        )
    }

    fn take_log(&self) -> Vec<String> {
        self.server.take_log()
    }

    /// Publishes `arts` under `a0/<scope>` and the revision file under `r0/<scope>/<rev>.jsonl`.
    fn publish(&self, scope: &str, rev: &str, arts: &[Art], seed: u64) {
        let remote = self.path("remote");
        write_remote_artifacts(&remote, &format!("a0/{scope}"), arts);
        std::fs::create_dir_all(remote.join(format!("r0/{scope}"))).unwrap();
        std::fs::write(
            remote.join(format!("r0/{scope}/{rev}.jsonl")),
            mappings(arts, seed),
        )
        .unwrap();
    }

    /// Puts `arts` into the local cache (as a build would) and writes `outputs.jsonl`.
    fn build(&self, arts: &[Art], seed: u64) -> PathBuf {
        let dir = self.cache().join("artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        for a in arts {
            std::fs::write(dir.join(&a.file_name), &a.content).unwrap();
        }
        let out = self.path("outputs.jsonl");
        std::fs::write(&out, mappings(arts, seed)).unwrap();
        out
    }
}

fn gets_of(log: &[String], needle: &str) -> usize {
    log.iter()
        .filter(|l| l.starts_with("GET ") && l.contains(needle))
        .count()
}

#[test]
fn a_shared_hash_is_downloaded_once_and_copied_for_each_extension() {
    let w = World::new(no_faults());
    let arts = artifacts(1, 31);
    w.publish("test", &w.revs[1], &arts, 31);
    let hash = &arts[0].hash;
    let dup = w.path("dup-outputs.jsonl");
    std::fs::write(
        &dup,
        format!("\"2026-03-17\"\n[\"aaaaaaaaaaaaaaaa\",\"{hash}.o\"]\n[\"bbbbbbbbbbbbbbbb\",\"{hash}.dup\"]\n"),
    )
    .unwrap();
    let (code, _, err) = w.tarn(&[
        "get",
        dup.to_str().unwrap(),
        "--scope",
        "test",
        "--service",
        "ok",
    ]);
    assert_eq!(code, 0, "{err}");
    let o = w.cache().join(format!("artifacts/{hash}.o"));
    let d = w.cache().join(format!("artifacts/{hash}.dup"));
    assert_eq!(std::fs::read(&o).unwrap(), arts[0].content);
    assert_eq!(std::fs::read(&d).unwrap(), arts[0].content);
    // Copies, not hard links (Lake: links would break cache permissions and pruning).
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&d).unwrap().nlink(), 1);
    assert_eq!(std::fs::metadata(&o).unwrap().nlink(), 1);
    let log = w.take_log();
    assert_eq!(
        log,
        vec![format!("GET /a0/test/{hash}.art")],
        "downloaded exactly once"
    );
}

#[test]
fn each_kind_of_broken_artifact_fails_the_get_but_the_others_land() {
    // (fault for the first artifact, text the error output must contain)
    type Case = (&'static str, Fault, &'static str);
    let cases: Vec<Case> = vec![
        ("missing", Fault::Status(404), "HTTP 404"),
        (
            "empty body",
            Fault::Reply(200, "application/octet-stream".into(), Vec::new()),
            "hash mismatch",
        ),
        ("corrupt", Fault::Corrupt, "hash mismatch"),
        ("truncated with 200", Fault::Truncate, "body truncated"),
        (
            "connection reset",
            Fault::Reset,
            "failed to download artifact",
        ),
        (
            "error response with a body",
            Fault::Reply(
                403,
                "application/xml".into(),
                b"<Error><Code>AccessDenied</Code></Error>".to_vec(),
            ),
            "AccessDenied",
        ),
    ];
    for (what, fault, expect) in cases {
        let arts = artifacts(4, 41);
        let broken = format!("/a0/test/{}.art", arts[0].hash);
        let b2 = broken.clone();
        let f2 = fault.clone();
        let plan: Plan = Arc::new(move |req: &Request, _| {
            if req.target == b2 {
                f2.clone()
            } else {
                Fault::None
            }
        });
        let w = World::new(plan);
        w.publish("test", &w.revs[1], &arts, 41);
        let (code, _, err) = w.tarn(&["get", "--scope", "test", "--service", "ok"]);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(
            err.contains("failed to download some artifacts"),
            "{what}: {err}"
        );
        assert!(err.contains(expect), "{what}: expected {expect:?} in {err}");
        assert!(
            err.contains(&arts[0].file_name),
            "{what}: names the artifact: {err}"
        );
        let missing = check_cache(&w.cache(), &arts);
        assert_eq!(missing, vec![arts[0].file_name.clone()], "{what}");
        let log = w.take_log();
        assert_eq!(
            log[0],
            format!("GET /r0/test/{}.jsonl", w.revs[1]),
            "{what}"
        );
        assert!(gets_of(&log, &broken) >= 1, "{what}");
        // Nothing half-written is left behind under a final name, and a rerun against a
        // healthy server completes.
        let entries: Vec<String> = std::fs::read_dir(w.cache().join("artifacts"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries.len(), 3, "{what}: {entries:?}");
    }
}

#[test]
fn a_revision_without_outputs_and_max_revs_1_then_the_search_finds_the_earlier_one() {
    let w = World::new(no_faults());
    let arts = artifacts(3, 51);
    // Outputs exist only for the older commit.
    w.publish("test", &w.revs[0], &arts, 51);
    let (code, _, err) = w.tarn(&[
        "get",
        "--scope",
        "test",
        "--service",
        "ok",
        "--max-revs",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("test: no outputs found in 1 revisions from HEAD"),
        "{err}"
    );
    assert_eq!(
        w.take_log(),
        vec![format!("GET /r0/test/{}.jsonl", w.revs[1])]
    );
    let (code, _, err) = w.tarn(&["get", "--scope", "test", "--service", "ok"]);
    assert_eq!(code, 0, "{err}");
    let log = w.take_log();
    assert_eq!(log[0], format!("GET /r0/test/{}.jsonl", w.revs[1]));
    assert_eq!(log[1], format!("GET /r0/test/{}.jsonl", w.revs[0]));
    assert_eq!(gets_of(&log, "/a0/test/"), 3);
    assert!(check_cache(&w.cache(), &arts).is_empty());
    assert!(w
        .cache()
        .join(format!("revisions/test/{}.jsonl", w.revs[0]))
        .is_file());
}

#[test]
fn mappings_only_fetches_the_revision_and_no_artifact() {
    let w = World::new(no_faults());
    let arts = artifacts(3, 61);
    w.publish("test", &w.revs[1], &arts, 61);
    let (code, _, err) = w.tarn(&[
        "get",
        "--scope",
        "test",
        "--service",
        "ok",
        "--mappings-only",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        w.take_log(),
        vec![format!("GET /r0/test/{}.jsonl", w.revs[1])]
    );
    assert_eq!(
        std::fs::read_dir(w.cache().join("outputs/test"))
            .unwrap()
            .count(),
        3
    );
    assert!(!w.cache().join("artifacts").exists());
}

#[test]
fn put_with_a_repository_scope_uploads_under_its_platform_and_toolchain() {
    let w = World::new(no_faults());
    let arts = artifacts(2, 71);
    let out = w.build(&arts, 71);
    let (code, _, err) = w.tarn(&[
        "put",
        out.to_str().unwrap(),
        "--service",
        "ok",
        "--repo",
        "leanprover/test",
        "--platform",
        "foo",
        "--toolchain",
        "bar",
    ]);
    assert_eq!(code, 0, "{err}");
    let log = w.take_log();
    let puts: Vec<&String> = log.iter().filter(|l| l.starts_with("PUT ")).collect();
    assert_eq!(puts.len(), 3, "{log:?}");
    assert_eq!(
        puts[2],
        &format!("PUT /r0/leanprover/test/pt/foo/tc/bar/{}.jsonl", w.revs[1]),
        "the revision file goes last"
    );
    for a in &arts {
        assert!(log.contains(&format!("PUT /a0/leanprover/test/{}.art", a.hash)));
    }
}

#[test]
fn staged_outputs_for_another_rev_are_what_get_rev_fetches() {
    let w = World::new(no_faults());
    let arts = artifacts(3, 81);
    let staging = w.path("staging");
    write_staging(&staging, &arts, 81);
    let old = &w.revs[0];
    let (code, _, err) = w.tarn(&[
        "put-staged",
        staging.to_str().unwrap(),
        "--service",
        "ok",
        "--scope",
        "staged",
        "--rev",
        old,
    ]);
    assert_eq!(code, 0, "{err}");
    let log = w.take_log();
    assert_eq!(
        log.last().unwrap(),
        &format!("PUT /r0/staged/{old}.jsonl"),
        "{log:?}"
    );
    let (code, _, err) = w.tarn(&["get", "--scope", "staged", "--service", "ok", "--rev", old]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("staged @ {old}")), "{err}");
    let log = w.take_log();
    assert_eq!(log[0], format!("GET /r0/staged/{old}.jsonl"));
    assert!(check_cache(&w.cache(), &arts).is_empty());
}

#[test]
fn rev_resolves_in_the_package_repository_like_lake() {
    let w = World::new(no_faults());
    let pkg = w.path("pkg");
    // An annotated tag: Lake's `rev-parse --verify --end-of-options v1` names the tag object
    // (no `^{commit}`), so that is the revision in the URL.
    git(&pkg, &["tag", "-a", "v1", "-m", "release", &w.revs[0]]);
    let tag_object = git(&pkg, &["rev-parse", "--verify", "v1"]);
    assert_ne!(tag_object, w.revs[0]);
    // The staging directory is inside ANOTHER repository; git must not run there.
    let other = w.path("other");
    git_package(&other, "other", 1);
    let staging = other.join("staging");
    let arts = artifacts(1, 91);
    write_staging(&staging, &arts, 91);
    for (rev, expected) in [
        ("v1", tag_object.clone()),
        ("HEAD~1", w.revs[0].clone()),
        ("HEAD", w.revs[1].clone()),
    ] {
        let (code, _, err) = w.tarn(&[
            "put-staged",
            staging.to_str().unwrap(),
            "--service",
            "ok",
            "--scope",
            "staged",
            "--rev",
            rev,
            "-d",
            pkg.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{rev}: {err}");
        let log = w.take_log();
        assert_eq!(
            log.last().unwrap(),
            &format!("PUT /r0/staged/{expected}.jsonl"),
            "{rev}"
        );
    }
    // A full object name is used verbatim, even one git does not know.
    let unknown = "ABCDEF0123456789abcdef0123456789abcdef01";
    let (code, _, err) = w.tarn(&[
        "get",
        "--scope",
        "staged",
        "--service",
        "ok",
        "--rev",
        unknown,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("outputs not found for revision {unknown}")),
        "{err}"
    );
    assert_eq!(
        w.take_log(),
        vec![format!("GET /r0/staged/{unknown}.jsonl")]
    );
    // Anything else git cannot resolve: Lake's "revision not found", no request.
    let (code, _, err) = w.tarn(&[
        "get",
        "--scope",
        "staged",
        "--service",
        "ok",
        "--rev",
        "bogus",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("revision not found 'bogus'"), "{err}");
    assert!(w.take_log().is_empty());
}

#[test]
fn reservoir_repository_scope_and_bulk_api_errors() {
    let arts = artifacts(2, 101);
    let maps = mappings(&arts, 101);
    // (reply to the bulk POST, expected text); None = the emulated API.
    type Case = (Option<Vec<u8>>, &'static str);
    let cases: Vec<Case> = vec![
        (None, ""),
        (
            Some(br#"{"data":["http://127.0.0.1:9/x.art"]}"#.to_vec()),
            "Incorrect number of results",
        ),
        (
            Some(br#"{"error":{"status":503,"message":"down for maintenance"}}"#.to_vec()),
            "Reservoir error: down for maintenance",
        ),
    ];
    for (reply, expect) in cases {
        let plan: Plan = match reply.clone() {
            None => no_faults(),
            Some(body) => Arc::new(move |req: &Request, _| {
                if req.method == "POST" {
                    Fault::Reply(200, "application/json".into(), body.clone())
                } else {
                    Fault::None
                }
            }),
        };
        let w = World::new(plan);
        let api = w.path("remote/api/v1/repositories/leanprover/test");
        write_remote_artifacts(&api, "artifacts", &arts);
        std::fs::create_dir_all(api.join("build-outputs")).unwrap();
        std::fs::write(
            api.join(format!("build-outputs/{}.jsonl", w.revs[1])),
            &maps,
        )
        .unwrap();
        std::fs::write(w.path("config.toml"), "").unwrap();
        let (code, _, err) = w.tarn(&[
            "get",
            "--repo",
            "leanprover/test",
            "--platform",
            "x86_64-unknown-linux-gnu",
            "--toolchain",
            "leanprover/lean4:v4.22.0",
        ]);
        let log = w.take_log();
        assert_eq!(
            log[0],
            format!("GET /api/v1/repositories/leanprover/test/build-outputs?rev={}&platform=x86_64-unknown-linux-gnu&toolchain=leanprover%2Flean4%3Av4.22.0", w.revs[1])
        );
        assert_eq!(
            log[1],
            "POST /api/v1/repositories/leanprover/test/artifacts"
        );
        if reply.is_none() {
            assert_eq!(code, 0, "{err}");
            assert_eq!(log.len(), 4, "{log:?}");
            assert_eq!(
                gets_of(&log, "/api/v1/repositories/leanprover/test/artifacts/"),
                2
            );
            assert!(check_cache(&w.cache(), &arts).is_empty());
        } else {
            assert_eq!(code, 1, "{err}");
            assert!(err.contains(expect), "{expect}: {err}");
            assert_eq!(log.len(), 2, "no artifact requested: {log:?}");
        }
    }
}

#[test]
fn option_validations_that_apply_to_tarn() {
    let w = World::new(no_faults());
    std::fs::write(w.path("config.toml"), "").unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let endpoints = vec![
        ("LAKE_CACHE_ARTIFACT_ENDPOINT", "http://127.0.0.1:9/a0"),
        ("LAKE_CACHE_REVISION_ENDPOINT", "http://127.0.0.1:9/r0"),
    ];
    let cases: Vec<Case> = vec![
        (
            vec!["get", "--repo", "invalid"],
            vec![],
            "invalid repository",
        ),
        (
            vec!["get", "--mappings-only", "bogus.jsonl"],
            vec![],
            "`--mappings-only` is not supported",
        ),
        (
            vec!["get", "--mappings-only", "--scope", "x"],
            endpoints.clone(),
            "`--mappings-only` requires services",
        ),
        (
            vec!["get", "--service", "bogus"],
            vec![],
            "service `bogus` not found in system configuration",
        ),
        (
            vec!["get", "--scope", "bogus"],
            vec![],
            "a custom endpoint must be set (not Reservoir)",
        ),
        (
            vec!["get"],
            endpoints.clone(),
            "the `--scope` or `--repo` option must be set",
        ),
        (
            vec!["get"],
            vec![("LAKE_CACHE_ARTIFACT_ENDPOINT", "bogus")],
            "both environment variables must be set",
        ),
        (
            vec!["put", "bogus.jsonl", "--scope", "bogus"],
            vec![],
            "the `--service` option must be set",
        ),
        (
            vec!["put", "bogus.jsonl", "--scope", "bogus"],
            vec![("LAKE_CACHE_ARTIFACT_ENDPOINT", "bogus")],
            "these environment variables must be set",
        ),
        (
            vec!["put-staged", "bogus", "--rev", "HEAD", "--scope", "bogus"],
            vec![],
            "the `--service` option must be set",
        ),
        (
            vec!["get", "--repo", "leanprover/bogus", "--rev", "bogus"],
            vec![],
            "revision not found",
        ),
    ];
    for (args, env, expect) in cases {
        let mut c = tarn_cmd(Path::new(BIN), w.tmp.path());
        c.current_dir(w.path("pkg"))
            .env("LAKE_CACHE_DIR", w.cache())
            .env("LAKE_CACHE_KEY", "mock:key")
            .env("RESERVOIR_API_URL", format!("{}/api/v1", w.server.url()))
            .args(&args);
        for (k, v) in &env {
            c.env(k, v);
        }
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains(expect),
            "{args:?}: expected {expect:?} in {err}"
        );
    }
    assert!(w.take_log().is_empty(), "validation sends nothing");
}

#[cfg(unix)]
#[test]
fn put_staged_ignores_files_outputs_jsonl_does_not_name() {
    let w = World::new(no_faults());
    let arts = artifacts(2, 111);
    let staging = w.path("staging");
    write_staging(&staging, &arts, 111);
    std::fs::write(staging.join("notes.txt"), b"x").unwrap();
    std::fs::write(staging.join("00000000000000ab.olean"), b"not named").unwrap();
    // A FIFO would block whoever opens it: it must never be read.
    let fifo = staging.join("00000000000000ac.olean");
    mkfifo(&fifo).unwrap();
    let (code, _, err) = w.tarn(&[
        "put-staged",
        staging.to_str().unwrap(),
        "--service",
        "ok",
        "--scope",
        "staged",
        "--rev",
        &w.revs[1],
    ]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "notes.txt",
        "00000000000000ab.olean",
        "00000000000000ac.olean",
    ] {
        assert!(
            err.contains(name) && err.contains("not named by outputs.jsonl"),
            "{name}: {err}"
        );
    }
    let log = w.take_log();
    assert!(
        !log.iter().any(|l| l.contains("00000000000000a")),
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("PUT /a0/staged/"))
            .count(),
        2
    );
}

#[test]
fn put_staged_without_rev_uploads_for_head_of_the_package_and_says_so() {
    // Lake's newest test: `cache put-staged staging --scope=staged` (no `--rev`) uploads to
    // `r0/staged/<HEAD>.jsonl`, HEAD of the package in `-d` (here the working directory).
    let w = World::new(no_faults());
    let arts = artifacts(2, 95);
    let staging = w.path("staging");
    write_staging(&staging, &arts, 95);
    let head = &w.revs[1];
    let (code, _, err) = w.tarn(&[
        "put-staged",
        staging.to_str().unwrap(),
        "--service",
        "ok",
        "--scope",
        "staged",
    ]);
    assert_eq!(code, 0, "{err}");
    let log = w.take_log();
    assert_eq!(
        log.last().unwrap(),
        &format!("PUT /r0/staged/{head}.jsonl"),
        "{log:?}"
    );
    assert!(
        err.contains(&format!("staged @ {head}")),
        "the revision used is named: {err}"
    );
    // A package with uncommitted changes: Lake's `put` warning, then the upload for HEAD.
    std::fs::write(w.path("pkg/file.txt"), "changed\n").unwrap();
    let (code, _, err) = w.tarn(&[
        "put-staged",
        staging.to_str().unwrap(),
        "--service",
        "ok",
        "--scope",
        "staged",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("package has changes"), "{err}");
    assert_eq!(
        w.take_log().last().unwrap(),
        &format!("PUT /r0/staged/{head}.jsonl")
    );
    // Outside a git repository there is no HEAD: an error naming the directory, nothing sent.
    let (code, _, err) = w.tarn(&[
        "put-staged",
        staging.to_str().unwrap(),
        "--service",
        "ok",
        "--scope",
        "staged",
        "-d",
        staging.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(w.take_log().iter().all(|l| !l.starts_with("PUT /r0/")));
}

#[test]
fn get_file_with_a_generic_scope_on_reservoir_asks_the_packages_collection() {
    // Lake refuses `--scope` on Reservoir only without a mappings file; with one, the artifact
    // service is Reservoir's and the scope names `packages/<scope>`.
    let w = World::new(no_faults());
    std::fs::write(w.path("config.toml"), "").unwrap();
    let arts = artifacts(2, 97);
    let api = w.path("remote/api/v1/packages/leanprover/test");
    write_remote_artifacts(&api, "artifacts", &arts);
    let file = w.path("outputs.jsonl");
    std::fs::write(&file, mappings(&arts, 97)).unwrap();
    let (code, _, err) = w.tarn(&["get", file.to_str().unwrap(), "--scope", "leanprover/test"]);
    assert_eq!(code, 0, "{err}");
    let log = w.take_log();
    assert_eq!(
        log[0], "POST /api/v1/packages/leanprover/test/artifacts",
        "{log:?}"
    );
    assert_eq!(
        gets_of(&log, "/api/v1/packages/leanprover/test/artifacts/"),
        2
    );
    assert!(check_cache(&w.cache(), &arts).is_empty());
}

#[test]
fn a_rev_discovery_policy_is_refused_where_it_would_apply_never_ignored() {
    // Lake's test fixtures set `revDiscovery = "head"`; its rule is not in the Lake source
    // tarn could read, so a revision search under it is refused, naming the service.
    let w = World::new(no_faults());
    std::fs::write(
        w.path("config.toml"),
        format!(
            "[[cache.service]]\nname = \"s3-head\"\ntype = \"s3\"\nartifactEndpoint = \"{0}/a0\"\nrevisionEndpoint = \"{0}/r0\"\nrevDiscovery = \"head\"\n",
            w.server.url()
        ),
    )
    .unwrap();
    let (code, _, err) = w.tarn(&["get", "--service", "s3-head", "--scope", "s"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("service `s3-head` sets `revDiscovery = \"head\"`") && err.contains("--rev"),
        "{err}"
    );
    assert!(w.take_log().is_empty(), "nothing is searched");
    // With --rev there is nothing to discover: the request goes out.
    let (code, _, err) = w.tarn(&[
        "get",
        "--service",
        "s3-head",
        "--scope",
        "s",
        "--rev",
        &w.revs[1],
    ]);
    assert_eq!(code, 1, "nothing published: {err}");
    assert_eq!(w.take_log(), vec![format!("GET /r0/s/{}.jsonl", w.revs[1])]);
}

#[test]
fn put_skips_what_the_service_has_unless_forced_which_overwrites_a_bad_object() {
    // Lake re-uploads every artifact; tarn asks first and skips what is there, so a bad object
    // already in a plain bucket stays until `--force` (docs/lake-differences.md).
    let w = World::new(no_faults());
    let arts = artifacts(2, 73);
    let out = w.build(&arts, 73);
    let bad = w.path(&format!("remote/a0/s/{}.art", arts[0].hash));
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"not the artifact").unwrap();
    let put = |force: bool| {
        let mut args = vec![
            "put",
            out.to_str().unwrap(),
            "--service",
            "ok",
            "--scope",
            "s",
        ];
        if force {
            args.push("--force");
        }
        let (code, _, err) = w.tarn(&args);
        assert_eq!(code, 0, "{err}");
        w.take_log()
    };
    let log = put(false);
    assert!(
        !log.contains(&format!("PUT /a0/s/{}.art", arts[0].hash)),
        "{log:?}"
    );
    assert_eq!(std::fs::read(&bad).unwrap(), b"not the artifact");
    let log = put(true);
    for a in &arts {
        assert!(
            log.contains(&format!("PUT /a0/s/{}.art", a.hash)),
            "{log:?}"
        );
    }
    assert_eq!(std::fs::read(&bad).unwrap(), arts[0].content);
}

#[test]
fn given_both_scope_and_repo_the_last_one_wins_as_in_lake() {
    // Lake's option parser sets `scope?` (and whether it is a repository) at each of the two
    // options, so the later one decides.
    let w = World::new(no_faults());
    let arts = artifacts(1, 75);
    let out = w.build(&arts, 75);
    let out = out.to_str().unwrap();
    let last_put = |args: &[&str]| -> String {
        let mut all = vec![
            "put",
            out,
            "--service",
            "ok",
            "--platform",
            "p",
            "--toolchain",
            "",
        ];
        all.extend_from_slice(args);
        let (code, _, err) = w.tarn(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        w.take_log()
            .into_iter()
            .rfind(|l| l.starts_with("PUT "))
            .unwrap()
    };
    assert_eq!(
        last_put(&["--scope", "x", "--repo", "leanprover/test"]),
        format!("PUT /r0/leanprover/test/pt/p/{}.jsonl", w.revs[1])
    );
    assert_eq!(
        last_put(&["--repo", "leanprover/test", "--scope", "x"]),
        format!("PUT /r0/x/{}.jsonl", w.revs[1])
    );
}
