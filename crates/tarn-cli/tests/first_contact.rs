//! What a new user meets first (issue 10): the server banner's configuration works as
//! printed, a closed pipe ends quietly, a `LAKE_CONFIG` naming a missing file is an error, and
//! a busy port is an error with a hint that creates nothing.

use std::process::{Command, Stdio};

use tarn_test::{Sandbox, TarnServer};

use crate::BIN;

/// Starts `tarn serve` in `sb`, stops it, and returns its banner and the configuration file it
/// prints (the lines between the heading and the commands, as printed).
fn banner_and_config(sb: &Sandbox) -> (String, String) {
    let mut server = TarnServer::start(&["--data", sb.path("data").to_str().unwrap()]);
    let banner = server.banner.clone();
    let _ = server.child.kill();
    let _ = server.child.wait();
    let config = banner
        .lines()
        .skip_while(|l| !l.starts_with("Lake configuration"))
        .skip(1)
        .take_while(|l| !l.starts_with("Then,"))
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    (banner, config)
}

/// `tarn --json services` with `config` as the Lake configuration file.
fn services_json(sb: &Sandbox, config: &str) -> std::process::Output {
    let path = sb.path("config.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(BIN)
        .args(["--json", "services"])
        .env("LAKE_CONFIG", &path)
        .output()
        .unwrap()
}

#[test]
fn the_banner_prints_a_complete_lake_configuration_that_tarn_reads() {
    let sb = Sandbox::new();
    let (banner, config) = banner_and_config(&sb);
    assert!(config.contains("defaultService = \"tarn\""), "{banner}");
    assert!(
        config.contains("defaultUploadService = \"tarn\""),
        "{banner}"
    );
    let out = services_json(&sb, &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["defaultService"], "tarn", "{v}");
    assert_eq!(v["defaultUploadService"], "tarn", "{v}");
    let endpoint = v["services"][0]["artifactEndpoint"].as_str().unwrap_or("");
    let url = banner
        .strip_prefix("tarn serve: listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?");
    assert!(endpoint.starts_with(url), "{v}");
    // Two commands to copy: one uploads, one downloads.
    assert!(
        banner.contains("lake cache put outputs.jsonl --scope=myproj"),
        "{banner}"
    );
    assert!(banner.contains("lake cache get --scope=myproj"), "{banner}");
    // What the two commands need is said before them, not left to be discovered.
    let before = &banner[..banner.find("lake cache put").unwrap()];
    for need in [
        "saved as ~/.lake/config.toml",
        "LAKE_CACHE_KEY\nbelow exported",
        "after `lake build -o outputs.jsonl`",
    ] {
        assert!(
            before.contains(need),
            "{need:?} not before the commands:\n{banner}"
        );
    }
}

#[test]
fn the_remote_docs_service_block_composes_with_the_banner_configuration() {
    let sb = Sandbox::new();
    let (_, mut config) = banner_and_config(&sb);
    // docs/remote.md's quick start appends this block to the same file.
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/remote.md"))
            .unwrap();
    let start = docs
        .find("cat >> ~/.lake/config.toml <<'EOF'\n")
        .expect("the docs' block");
    let body = &docs[start..];
    let body = &body[body.find('\n').unwrap() + 1..body.find("\nEOF\n").unwrap() + 1];
    config.push_str(body);
    let out = services_json(&sb, &config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{config}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"tarn") && names.contains(&"team"), "{v}");
    assert_eq!(v["defaultService"], "tarn", "{v}");
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_141() {
    let sb = Sandbox::new();
    let file = sb.path("f.txt");
    std::fs::write(&file, "x").unwrap();
    // Far more output than a pipe buffer holds, so a write after the reader is gone fails.
    // The name is given relative to the sandbox: 20,000 copies of a deep absolute path (a CI
    // workspace) would pass the kernel's limit on a command line.
    let mut child = Command::new(BIN)
        .current_dir(file.parent().unwrap())
        .arg("hash")
        .args(std::iter::repeat_n("f.txt", 20_000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn lake_config_naming_a_missing_file_is_an_error() {
    let sb = Sandbox::new();
    let missing = sb.path("nowhere/config.toml");
    let out = Command::new(BIN)
        .arg("services")
        .env("LAKE_CONFIG", &missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&*missing.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn verify_of_a_file_that_is_not_a_mappings_file_is_an_error_naming_it() {
    let sb = Sandbox::new();
    let file = sb.path("lakefile.toml");
    std::fs::write(&file, "name = \"pkg\"\ndefaultTargets = [\"Pkg\"]\n").unwrap();
    let out = Command::new(BIN)
        .args(["--cache-dir", sb.path("cache").to_str().unwrap(), "verify"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("not a mappings file"), "{stderr}");
    assert!(!stderr.contains("all good"), "{stderr}");
}

#[test]
fn a_busy_port_is_an_error_with_a_hint_and_creates_nothing() {
    let sb = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = sb.path("tarn-data");
    let out = sb.tarn(&["serve", "--listen", &addr, "--data", data.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(stderr.contains("--listen 127.0.0.1:0"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no banner: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !data.exists(),
        "the data directory (and its admin key) was created"
    );
    drop(taken);
}

/// A text file of `n` lines none of which is a mapping entry (a `Cargo.lock`, a README).
fn not_mappings(path: &std::path::Path, n: usize) {
    let text: String = (0..n).map(|i| format!("name = \"crate-{i}\"\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn stage_of_a_file_that_is_not_a_mappings_file_refuses_in_a_few_lines() {
    let sb = Sandbox::new();
    let file = sb.path("README.md");
    not_mappings(&file, 2000);
    let out_dir = sb.path("out");
    let cache = sb.path("cache");
    for args in [
        vec!["stage", "README.md", "out/"],
        vec!["verify", "README.md"],
        vec!["add", "README.md", "--package", "p"],
    ] {
        let mut all = vec!["--cache-dir", cache.to_str().unwrap()];
        all.extend(&args);
        let out = sb.tarn(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("README.md: not a mappings file (none of its 2000 lines is an entry"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("hint: a mappings file is the output of `lake build -o FILE`"),
            "{stderr}"
        );
        assert!(
            stderr.lines().count() <= 3,
            "{args:?}: {} lines: {stderr}",
            stderr.lines().count()
        );
    }
    assert!(!out_dir.exists(), "stage created {}", out_dir.display());
}

#[test]
fn a_mappings_file_with_many_bad_lines_shows_the_first_few_then_a_count() {
    let sb = Sandbox::new();
    let arts = tarn_test::artifacts(1, 3);
    let mut text = tarn_test::mappings(&arts, 3);
    for i in 0..500 {
        text.extend_from_slice(format!("not an entry {i}\n").as_bytes());
    }
    std::fs::write(sb.path("m.jsonl"), text).unwrap();
    let out = sb.tarn(&[
        "--cache-dir",
        sb.path("cache").to_str().unwrap(),
        "verify",
        "m.jsonl",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains("m.jsonl:")).count(),
        5,
        "{stderr}"
    );
    assert!(
        stderr.contains("… and 495 more warnings like these (500 in all)"),
        "{stderr}"
    );
}

#[test]
fn stage_with_the_wrong_cache_shows_a_few_missing_artifacts_and_the_cache_dir_hint() {
    let sb = Sandbox::new();
    let arts = tarn_test::artifacts(300, 7);
    std::fs::write(sb.path("build.jsonl"), tarn_test::mappings(&arts, 7)).unwrap();
    let empty = sb.path("other-cache");
    std::fs::create_dir_all(&empty).unwrap();
    let out = sb.tarn(&[
        "--cache-dir",
        empty.to_str().unwrap(),
        "stage",
        "build.jsonl",
        "staging",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.matches("error: artifact not found in cache").count(),
        5,
        "{stderr}"
    );
    assert!(
        stderr.contains("… and 295 more artifacts not found (300 in all)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "hint: none of the 300 artifacts is in the cache {}; if the build used another cache, pass --cache-dir DIR or set LAKE_CACHE_DIR",
            empty.display()
        )),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 9, "{stderr}");
}

#[test]
fn unstage_of_a_directory_whose_outputs_jsonl_is_not_a_mappings_file_refuses() {
    let sb = Sandbox::new();
    let dir = sb.path("staging");
    std::fs::create_dir_all(&dir).unwrap();
    not_mappings(&dir.join("outputs.jsonl"), 40);
    let cache = sb.path("cache");
    let out = sb.tarn(&[
        "--cache-dir",
        cache.to_str().unwrap(),
        "unstage",
        "staging",
        "--package",
        "p",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("outputs.jsonl: not a mappings file (none of its 40 lines is an entry"),
        "{stderr}"
    );
    assert!(!cache.join("outputs").exists(), "unstage wrote outputs/");
}

#[test]
fn serve_gc_and_scrub_refuse_a_data_directory_that_does_not_exist() {
    let sb = Sandbox::new();
    let typo = sb.path("tarn-dat");
    for args in [vec!["serve", "gc", "--dry-run"], vec!["serve", "scrub"]] {
        let mut all = args.clone();
        all.extend(["--data", typo.to_str().unwrap()]);
        let out = sb.tarn(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no data directory at {}", typo.display())),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("hint: give the --data directory of the server"),
            "{stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("clean"),
            "{args:?}"
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
}

#[test]
fn a_malformed_key_is_a_usage_error() {
    let sb = Sandbox::new();
    let data = sb.path("data");
    let out = sb.tarn(&["serve", "--data", data.to_str().unwrap(), "--key", "badkey"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--key expects ID:SECRET[:PATTERN]"),
        "{stderr}"
    );
    assert!(!data.exists(), "the data directory was created");
}

#[test]
fn the_busy_port_hint_keeps_the_interface_the_user_asked_for() {
    let sb = Sandbox::new();
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let addr = format!("0.0.0.0:{port}");
    let out = sb.tarn(&[
        "serve",
        "--listen",
        &addr,
        "--data",
        sb.path("d").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--listen 0.0.0.0:PORT, or --listen 0.0.0.0:0 for a free one"),
        "{stderr}"
    );
    assert!(!stderr.contains("127.0.0.1"), "{stderr}");
    drop(taken);
}

#[test]
fn tarn_fixture_help_says_what_it_writes_and_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_tarn-fixture"))
        .arg("--help")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for needle in [
        "usage: tarn-fixture",
        "DIR/cache/artifacts/",
        "DIR/mappings.jsonl",
        "--preset",
        "--modules",
        "--seed",
        "--style",
        "--schema",
        "--workspace",
        "--out",
        "Example:",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in: {stdout}");
    }
}
