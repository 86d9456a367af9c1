//! Process-level tests of `tarn stage` and `tarn unstage` on generated fixtures, including
//! every kind of bad staging directory.

use std::fs;
use std::process::{Command, Output};

use tarn_core::{ArtifactName, Hash};
use tarn_fixture::{Fixture, FixtureSpec};
use tarn_test::{make_writable, stderr, Sandbox};

/// Stages a fixture of `n` modules (copies, so tests can edit the staging dir freely).
fn staged(env: &Sandbox, n: usize) -> Fixture {
    let fx = env.fixture(FixtureSpec::small(n));
    let out = env.tarn(&[
        "--cache-dir",
        "fx/cache",
        "stage",
        "fx/mappings.jsonl",
        "staging",
        "--copy",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    fx
}

fn unstage(env: &Sandbox, extra: &[&str]) -> Output {
    let mut args = vec![
        "--cache-dir",
        "cache",
        "unstage",
        "staging",
        "--package",
        "pkg",
    ];
    args.extend_from_slice(extra);
    env.tarn(&args)
}

fn cache_files(env: &Sandbox, sub: &str) -> Vec<String> {
    match fs::read_dir(env.path("cache").join(sub)) {
        Ok(rd) => {
            let mut v: Vec<String> = rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

fn assert_nothing_imported(env: &Sandbox) {
    assert!(
        cache_files(env, "artifacts").is_empty(),
        "{:?}",
        cache_files(env, "artifacts")
    );
    assert!(cache_files(env, "outputs/pkg").is_empty());
}

fn first_artifact(fx: &Fixture) -> ArtifactName {
    fx.artifacts[0].0.clone()
}

#[test]
fn stage_unstage_verify_round_trip() {
    let env = Sandbox::new();
    let fx = env.fixture(FixtureSpec::small(40));
    let out = env.tarn(&[
        "--cache-dir",
        "fx/cache",
        "stage",
        "fx/mappings.jsonl",
        "staging",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(env.path("staging/outputs.jsonl")).unwrap(),
        fs::read(&fx.mappings_path).unwrap(),
        "outputs.jsonl is a byte-identical copy"
    );
    let a = first_artifact(&fx);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let staged = fs::metadata(env.path("staging").join(a.file_name())).unwrap();
        let cached = fs::metadata(env.path("fx/cache/artifacts").join(a.file_name())).unwrap();
        assert_eq!(staged.ino(), cached.ino(), "hard-linked from the cache");
    }
    assert_eq!(fs::read_dir(env.path("staging")).unwrap().count(), 41);

    let out = unstage(&env, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cache_files(&env, "artifacts").len(), 40);
    assert_eq!(cache_files(&env, "outputs/pkg").len(), 40);
    let meta = fs::metadata(env.path("cache/artifacts").join(a.file_name())).unwrap();
    assert!(
        meta.permissions().readonly(),
        "cached artifacts are read-only"
    );

    let out = env.tarn(&["--cache-dir", "cache", "verify", "fx/mappings.jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.tarn(&["--cache-dir", "cache", "--json", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["artifacts"], 40);
    assert_eq!(v["outputs_files"], 40);
    assert_eq!(v["ok"], true);
}

#[test]
fn copy_flag_and_existing_files() {
    let env = Sandbox::new();
    let fx = staged(&env, 5);
    let a = first_artifact(&fx);
    let dest = env.path("staging").join(a.file_name());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let cached = fs::metadata(env.path("fx/cache/artifacts").join(a.file_name())).unwrap();
        assert_ne!(
            fs::metadata(&dest).unwrap().ino(),
            cached.ino(),
            "--copy copies"
        );
    }
    // An existing destination is kept without --force-overwrite, replaced with it.
    fs::remove_file(&dest).unwrap();
    fs::write(&dest, b"junk").unwrap();
    let args = [
        "--cache-dir",
        "fx/cache",
        "stage",
        "fx/mappings.jsonl",
        "staging",
    ];
    assert!(env.tarn(&args).status.success());
    assert_eq!(fs::read(&dest).unwrap(), b"junk");
    let mut forced = args.to_vec();
    forced.push("--force-overwrite");
    assert!(env.tarn(&forced).status.success());
    assert_eq!(Hash::of_bytes(&fs::read(&dest).unwrap()), a.hash);
}

#[test]
fn stage_reports_every_missing_artifact() {
    let env = Sandbox::new();
    let fx = env.fixture(FixtureSpec::small(10));
    for (a, _) in &fx.artifacts[..3] {
        fs::remove_file(env.path("fx/cache/artifacts").join(a.file_name())).unwrap();
    }
    let out = env.tarn(&[
        "--cache-dir",
        "fx/cache",
        "stage",
        "fx/mappings.jsonl",
        "staging",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for (a, _) in &fx.artifacts[..3] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("error: artifact not found in cache: ")
                    && l.ends_with(&a.file_name())),
            "{err}"
        );
    }
    assert_eq!(
        err.matches("artifact not found in cache").count(),
        3,
        "{err}"
    );
    assert!(
        !env.path("staging/outputs.jsonl").exists(),
        "incomplete staging has no outputs.jsonl"
    );
}

#[test]
fn unstage_ignores_files_outputs_jsonl_does_not_name() {
    // Lake ignores whatever outputs.jsonl does not name; tarn too, with a warning.
    for bad in [
        "notes.txt",
        "0123456789abcdef.",
        "0123456789abcde.o",
        ".hidden",
        "outputs.json",
        "00000000000000ab.olean",
    ] {
        let env = Sandbox::new();
        staged(&env, 4);
        fs::write(env.path("staging").join(bad), b"x").unwrap();
        let out = unstage(&env, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{bad}: {err}");
        assert!(
            err.contains(bad) && err.contains("not named by outputs.jsonl"),
            "{bad}: {err}"
        );
        assert_eq!(cache_files(&env, "artifacts").len(), 4, "{bad}");
        assert!(!cache_files(&env, "artifacts").iter().any(|f| f == bad));
    }
}

#[test]
fn unstage_rejects_uppercase_hex() {
    let env = Sandbox::new();
    let fx = staged(&env, 4);
    let a = first_artifact(&fx);
    let upper = format!("{}.{}", a.hash.hex().to_uppercase(), a.ext);
    fs::rename(
        env.path("staging").join(a.file_name()),
        env.path("staging").join(&upper),
    )
    .unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The upper-case file is not the named artifact (ignored); the named one is missing.
    assert!(
        err.contains("output artifact not found in staging directory"),
        "{err}"
    );
    assert_nothing_imported(&env);
}

#[test]
fn unstage_rejects_traversal_and_separators_in_mappings() {
    for bad in [
        "../../etc/passwd",
        "0123456789abcdef.a/b",
        "0123456789abcdef/..",
        "0123456789abcdef..",
    ] {
        let env = Sandbox::new();
        staged(&env, 3);
        let path = env.path("staging/outputs.jsonl");
        make_writable(&path);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(&format!("[\"00000000000000ff\",{{\"o\":[\"{bad}\"]}}]\n"));
        fs::write(&path, text).unwrap();
        let out = unstage(&env, &[]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = stderr(&out);
        assert!(
            err.contains("00000000000000ff") && err.contains(bad),
            "{bad}: {err}"
        );
        assert_nothing_imported(&env);
    }
}

#[cfg(unix)]
#[test]
fn unstage_rejects_symlinks_fifos_and_directories() {
    // A symlink under an artifact's own name (pointing at the real content elsewhere).
    let env = Sandbox::new();
    let fx = staged(&env, 4);
    let a = first_artifact(&fx);
    let p = env.path("staging").join(a.file_name());
    fs::rename(&p, env.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(env.path("elsewhere"), &p).unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link") && stderr(&out).contains(&a.file_name()));
    assert_nothing_imported(&env);

    // A FIFO with the name of an artifact outputs.jsonl names.
    let env = Sandbox::new();
    let fx = staged(&env, 4);
    let a = first_artifact(&fx);
    let p = env.path("staging").join(a.file_name());
    fs::remove_file(&p).unwrap();
    tarn_test::mkfifo(&p).unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    assert_nothing_imported(&env);

    // A FIFO and a directory that outputs.jsonl does NOT name: ignored, never opened (a
    // FIFO opened for reading would block), as Lake ignores them.
    let env = Sandbox::new();
    staged(&env, 4);
    tarn_test::mkfifo(&env.path("staging/00000000000000aa.olean")).unwrap();
    fs::create_dir(env.path("staging/00000000000000bb.ilean")).unwrap();
    let out = unstage(&env, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("00000000000000aa.olean") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(
        err.contains("00000000000000bb.ilean") && err.contains("is a directory"),
        "{err}"
    );
    assert_eq!(cache_files(&env, "artifacts").len(), 4);

    // An outputs.jsonl that is a symlink.
    let env = Sandbox::new();
    staged(&env, 4);
    let m = env.path("staging/outputs.jsonl");
    fs::rename(&m, env.path("m.jsonl")).unwrap();
    std::os::unix::fs::symlink(env.path("m.jsonl"), &m).unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("outputs.jsonl: is a symbolic link"), "{err}");
    assert_nothing_imported(&env);
}

#[test]
fn unstage_hash_mismatch_publishes_nothing_for_that_file() {
    let env = Sandbox::new();
    let fx = staged(&env, 6);
    let a = first_artifact(&fx);
    let p = env.path("staging").join(a.file_name());
    let mut bytes = fs::read(&p).unwrap();
    bytes[0] ^= 1;
    fs::remove_file(&p).unwrap();
    fs::write(&p, &bytes).unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&a.file_name()) && err.contains("content hash is"),
        "{err}"
    );
    let arts = cache_files(&env, "artifacts");
    assert!(!arts.contains(&a.file_name()), "{arts:?}");
    assert!(arts.iter().all(|n| !n.starts_with(".tarn-tmp")), "{arts:?}");
    assert!(
        cache_files(&env, "outputs/pkg").is_empty(),
        "no mappings after a failure"
    );
}

#[test]
fn unstage_reports_every_missing_artifact() {
    let env = Sandbox::new();
    let fx = staged(&env, 8);
    for (a, _) in &fx.artifacts[..3] {
        fs::remove_file(env.path("staging").join(a.file_name())).unwrap();
    }
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.matches("output artifact not found in staging directory")
            .count(),
        3,
        "{err}"
    );
    assert_nothing_imported(&env);
}

#[test]
fn unstage_bad_mapping_files() {
    // Empty outputs.jsonl.
    let env = Sandbox::new();
    staged(&env, 2);
    let m = env.path("staging/outputs.jsonl");
    make_writable(&m);
    fs::write(&m, b"").unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("outputs.jsonl: empty mappings file"),
        "{}",
        stderr(&out)
    );
    assert_nothing_imported(&env);
    // A blank first line: Lake warns (line 1) and reads the entries; nothing to import.
    fs::write(&m, b"\n[\"0000000000000001\",null]\n").unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("outputs.jsonl:1: invalid schema version"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        cache_files(&env, "outputs/pkg").len(),
        1,
        "the one entry is read"
    );
    fs::remove_dir_all(env.path("cache").join("outputs")).unwrap();
    // No outputs.jsonl at all.
    fs::remove_file(&m).unwrap();
    let out = unstage(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("mappings file not found"),
        "{}",
        stderr(&out)
    );
    assert_nothing_imported(&env);
}

#[test]
fn unstage_writes_service_and_scope() {
    let env = Sandbox::new();
    fs::write(
        env.path("config.toml"),
        "[[cache.service]]\nname = \"my-s3\"\nkind = \"s3\"\nartifactEndpoint = \"https://x/a0\"\nrevisionEndpoint = \"https://x/r0\"\n",
    )
    .unwrap();
    let fx = staged(&env, 3);
    // Lake's rule (`--scope` and `--repo` require `--service`), as a usage error.
    let out = unstage(&env, &["--scope", "team/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--service <NAME>"),
        "{}",
        stderr(&out)
    );
    let out = unstage(&env, &["--service", "nope", "--scope", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("service `nope` not found in system configuration"));
    assert_nothing_imported(&env);

    let out = unstage(&env, &["--service", "my-s3", "--scope", "team/x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (input, data) = fx.mappings.entries.iter().next().unwrap();
    let text = fs::read_to_string(env.path(&format!("cache/outputs/pkg/{input}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["service"], "my-s3");
    assert_eq!(v["scope"], "team/x");
    assert_eq!(v["schemaVersion"], "2026-02-25");
    assert_eq!(&v["data"], data);

    // Existing mappings are kept unless --force-overwrite.
    let out = unstage(&env, &["--service", "reservoir", "--repo", "o/r"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.path(&format!("cache/outputs/pkg/{input}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(v["service"], "my-s3");
    let out = unstage(
        &env,
        &[
            "--service",
            "reservoir",
            "--repo",
            "o/r",
            "--force-overwrite",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.path(&format!("cache/outputs/pkg/{input}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(v["service"], "reservoir");
    assert_eq!(v["repo"], "o/r");
}

#[test]
fn concurrent_unstage_leaves_a_clean_cache() {
    let env = Sandbox::new();
    staged(&env, 200);
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_tarn"))
                .args([
                    "--cache-dir",
                    "cache",
                    "-q",
                    "unstage",
                    "staging",
                    "--package",
                    "pkg",
                ])
                .current_dir(env.root())
                .env("LAKE_CONFIG", env.path("config.toml"))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let arts = cache_files(&env, "artifacts");
    assert_eq!(
        arts.len(),
        200,
        "no duplicates, no temp files left: {:?}",
        &arts[..3]
    );
    let out = env.tarn(&["--cache-dir", "cache", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cache_files(&env, "outputs/pkg").len(), 200);
}

#[test]
fn package_name_comes_from_lakefile_toml() {
    let env = Sandbox::new();
    staged(&env, 2);
    fs::write(env.path("lakefile.toml"), "name = \"fromtoml\"\n").unwrap();
    let out = env.tarn(&["--cache-dir", "cache", "unstage", "staging"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cache_files(&env, "outputs/fromtoml").len(), 2);
}
