//! Process-level tests of `tarn verify`, `add`, `clean`, `services`, `hash` and `demo`, and
//! of mapping-file warnings, on generated fixtures.

use std::fs;

use tarn_fixture::{FixtureSpec, Style};
use tarn_test::{make_writable, stderr, stdout, Sandbox};

#[test]
fn verify_finds_corrupt_and_truncated_artifacts_and_ignores_temp_files() {
    let env = Sandbox::new();
    let fx = env.fixture(FixtureSpec::small(30).with_style(Style::Modules));
    let args = ["--cache-dir", "fx/cache", "verify"];
    let out = env.tarn(&args);
    assert!(out.status.success(), "{}", stderr(&out));

    // A stray temp file from an interrupted write is not a problem.
    fs::write(env.path("fx/cache/artifacts/.tarn-tmp.1.2.3"), b"partial").unwrap();
    let out = env.tarn(&["--cache-dir", "fx/cache", "--json", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["artifacts"], 90);
    assert_eq!(v["temp_files_skipped"], 1);
    assert_eq!(v["bytes"], fx.total_bytes);

    // Corrupt one (chmod +w, flip a byte in place) and truncate another.
    let corrupt = env
        .path("fx/cache/artifacts")
        .join(fx.artifacts[0].0.file_name());
    make_writable(&corrupt);
    let mut bytes = fs::read(&corrupt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&corrupt, &bytes).unwrap();
    let truncated = env
        .path("fx/cache/artifacts")
        .join(fx.artifacts[1].0.file_name());
    make_writable(&truncated);
    let f = fs::OpenOptions::new().write(true).open(&truncated).unwrap();
    f.set_len(fx.artifacts[1].1 / 2).unwrap();
    drop(f);

    for extra in [None, Some("fx/mappings.jsonl")] {
        let mut a = args.to_vec();
        a.extend(extra);
        let out = env.tarn(&a);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = stderr(&out);
        assert!(err.contains(&fx.artifacts[0].0.file_name()), "{err}");
        assert!(err.contains(&fx.artifacts[1].0.file_name()), "{err}");
        assert_eq!(err.matches("content hash is").count(), 2, "{err}");
    }
}

#[test]
fn verify_with_mappings_reports_missing_and_scrub_checks_outputs() {
    let env = Sandbox::new();
    let fx = env.fixture(FixtureSpec::small(5));
    fs::remove_file(
        env.path("fx/cache/artifacts")
            .join(fx.artifacts[2].0.file_name()),
    )
    .unwrap();
    let out = env.tarn(&["--cache-dir", "fx/cache", "verify", "fx/mappings.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("artifact not found in cache"));

    // A broken outputs file and a stray non-artifact file are scrub problems.
    let env = Sandbox::new();
    env.fixture(FixtureSpec::small(3));
    fs::create_dir_all(env.path("fx/cache/outputs/p")).unwrap();
    fs::write(env.path("fx/cache/outputs/p/0000000000000001.json"), b"{").unwrap();
    fs::write(env.path("fx/cache/artifacts/README"), b"hi").unwrap();
    let out = env.tarn(&["--cache-dir", "fx/cache", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("0000000000000001.json: invalid JSON"), "{err}");
    assert!(err.contains("README: not an artifact file name"), "{err}");
}

#[test]
fn mapping_file_warnings_and_errors_name_file_and_line() {
    let env = Sandbox::new();
    let fx = env.fixture(FixtureSpec::small(3));
    let mut text = fs::read_to_string(&fx.mappings_path).unwrap();
    text.insert_str(
        text.find('\n').unwrap() + 1,
        "this is not json\n[\"0000000000000001\"]\n",
    );
    fs::write(env.path("bad.jsonl"), &text).unwrap();
    let out = env.tarn(&["--cache-dir", "fx/cache", "stage", "bad.jsonl", "staging"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.jsonl:2: invalid JSON"), "{err}");
    assert!(err.contains("bad.jsonl:3:"), "{err}");
    assert_eq!(
        fs::read(env.path("staging/outputs.jsonl")).unwrap(),
        text.as_bytes()
    );
    assert_eq!(fs::read_dir(env.path("staging")).unwrap().count(), 4);

    fs::write(env.path("empty.jsonl"), b"").unwrap();
    fs::write(
        env.path("noheader.jsonl"),
        b"\n[\"0000000000000001\",null]\n",
    )
    .unwrap();
    // Lake's `CacheMap.load`: only an empty file is an error; a blank first line is a
    // warning on line 1 and the entries are still read.
    for (file, msg, code) in [
        ("empty.jsonl", "empty mappings file", 1),
        (
            "noheader.jsonl",
            "noheader.jsonl:1: invalid schema version",
            0,
        ),
    ] {
        for cmd in [
            vec!["stage", file, "s2"],
            vec!["verify", file],
            vec!["add", file, "--package", "p"],
        ] {
            let mut args = vec!["--cache-dir", "fx/cache"];
            args.extend(cmd.iter().copied());
            let out = env.tarn(&args);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
        }
    }
}

#[test]
fn add_writes_outputs_and_respects_no_overwrite() {
    let env = Sandbox::new();
    let fx = env.fixture(FixtureSpec::small(4));
    fs::write(
        env.path("config.toml"),
        "[[cache.service]]\nname = \"cdn\"\ntype = \"s3\"\nartifactEndpoint = \"https://x/a0\"\nrevisionEndpoint = \"https://x/r0\"\n",
    )
    .unwrap();
    let out = env.tarn(&[
        "--cache-dir",
        "c",
        "add",
        "fx/mappings.jsonl",
        "--package",
        "p",
        "--service",
        "cdn",
        "--scope",
        "s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (input, _) = fx.mappings.entries.iter().next().unwrap();
    let file = env.path(&format!("c/outputs/p/{input}.json"));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["service"], "cdn");
    assert_eq!(v["scope"], "s");
    let out = env.tarn(&[
        "--cache-dir",
        "c",
        "--json",
        "add",
        "fx/mappings.jsonl",
        "--package",
        "p",
        "--no-overwrite",
    ]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["outputs_kept"], 4);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["service"], "cdn", "--no-overwrite kept the file");
    let out = env.tarn(&[
        "--cache-dir",
        "c",
        "add",
        "fx/mappings.jsonl",
        "--package",
        "p",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["service"], serde_json::Value::Null);
    let out = env.tarn(&[
        "--cache-dir",
        "c",
        "add",
        "fx/mappings.jsonl",
        "--package",
        "p",
        "--repo",
        "a/b",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--service <NAME>"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn add_takes_the_package_name_from_the_lakefile_lake_reads() {
    // With both files Lake reads lakefile.lean; `add` names the local scope the same way
    // `get` and `put` do (one loader).
    let env = Sandbox::new();
    env.fixture(FixtureSpec::small(2));
    fs::create_dir_all(env.path("pkg")).unwrap();
    fs::write(env.path("pkg/lakefile.toml"), "name = \"from_toml\"\n").unwrap();
    fs::write(env.path("pkg/lakefile.lean"), "package from_lean where\n").unwrap();
    let out = env.tarn(&["--cache-dir", "c", "-d", "pkg", "add", "fx/mappings.jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.path("c/outputs/from_lean").is_dir());
    assert!(!env.path("c/outputs/from_toml").exists());
}

#[test]
fn clean_removes_the_cache_then_reports_none() {
    let env = Sandbox::new();
    env.fixture(FixtureSpec::small(3));
    let cache = env.path("fx/cache");
    let out = env.tarn_env(&["clean"], &[("LAKE_CACHE_DIR", &cache)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!cache.exists());
    // Already gone: Lake exits 0 (it removes the directory only if it exists).
    let out = env.tarn_env(&["clean"], &[("LAKE_CACHE_DIR", &cache)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to delete") && stderr(&out).contains("does not exist"),
        "{}",
        stderr(&out)
    );
    // Without LAKE_CACHE_DIR and without a package: the system cache (~/.cache/lake).
    let sys = env.path("home/.cache/lake/artifacts");
    fs::create_dir_all(&sys).unwrap();
    let out = env.tarn(&["clean"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!env.path("home/.cache/lake").exists());
}

#[test]
fn services_lists_names_with_kind_or_type() {
    let env = Sandbox::new();
    // The sandbox's LAKE_CONFIG names config.toml, not written yet: an error, not "no services".
    let out = env.tarn(&["services"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    fs::write(
        env.path("config.toml"),
        concat!(
            "cache.defaultService = \"a\"\n",
            "[[cache.service]]\nname = \"a\"\nkind = \"s3\"\nartifactEndpoint = \"https://x/a0/\"\nrevisionEndpoint = \"https://x/r0\"\n",
            "[[cache.service]]\nname = \"b\"\ntype = \"reservoir\"\napiEndpoint = \"https://r/api/v1\"\n",
        ),
    )
    .unwrap();
    let out = env.tarn(&["services"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\nb\n");
    let out = env.tarn(&["--json", "services"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["defaultService"], "a");
    assert_eq!(v["services"][0]["kind"], "s3");
    assert_eq!(v["services"][0]["artifactEndpoint"], "https://x/a0");
    assert_eq!(v["services"][1]["kind"], "reservoir");
    fs::write(env.path("config.toml"), "[[cache.service]]\nname = \"a\"\n").unwrap();
    let out = env.tarn(&["services"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.toml"), "{}", stderr(&out));
}

#[test]
fn hash_matches_lake_vectors() {
    let env = Sandbox::new();
    fs::write(env.path("hello"), b"hello").unwrap();
    fs::write(env.path("crlf"), b"hello\r\nworld").unwrap();
    fs::write(env.path("lf"), b"hello\nworld").unwrap();
    let out = env.tarn(&["hash", "hello"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "884e46be8ed9fafd  hello\n");
    let out = env.tarn(&["hash", "--text", "hello"]);
    assert_eq!(stdout(&out), "693262ffc8f4b68a  hello\n");
    let out = env.tarn(&["hash", "--text", "crlf", "lf"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(|l| &l[..16]).collect();
    assert_eq!(lines[0], lines[1], "CR LF is normalised for text hashes");
    let big = vec![7u8; 600_000];
    fs::write(env.path("big"), &big).unwrap();
    let out = env.tarn(&["hash", "big"]);
    assert_eq!(
        stdout(&out),
        format!("{}  big\n", tarn_core::Hash::of_bytes(&big)),
        "memory-mapped path"
    );
    let out = env.tarn(&["hash", "hello", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("884e46be8ed9fafd  hello"));
    assert!(stderr(&out).contains("missing"));
}

#[test]
fn demo_round_trip_succeeds() {
    let env = Sandbox::new();
    let keep = env.path("demo");
    let out = env.tarn(&["demo", "--modules", "25", "--keep", keep.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));
    assert_eq!(
        fs::read_dir(keep.join("fresh-cache/artifacts"))
            .unwrap()
            .count(),
        25
    );
    let out = env.tarn(&["--json", "demo", "--modules", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["artifacts"], 10);
}
