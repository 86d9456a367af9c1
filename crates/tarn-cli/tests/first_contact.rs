//! What a new user meets first (issue 10): the server banner's configuration works as
//! printed, a closed pipe ends quietly, a `LAKE_CONFIG` naming a missing file is an error, and
//! a busy port is an error with a hint that creates nothing.

use std::process::{Command, Stdio};

use tarn_test::{Sandbox, TarnServer};

use crate::BIN;

#[test]
fn the_banner_prints_a_complete_lake_configuration_that_tarn_reads() {
    let sb = Sandbox::new();
    let data = sb.path("data");
    let mut server = TarnServer::start(&["--data", data.to_str().unwrap()]);
    let banner = server.banner.clone();
    let _ = server.child.kill();
    let _ = server.child.wait();
    // The lines between the heading and the commands are the file, as printed.
    let config: String = banner
        .lines()
        .skip_while(|l| !l.starts_with("Lake configuration"))
        .skip(1)
        .take_while(|l| !l.starts_with("Then,"))
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    assert!(config.contains("defaultService = \"tarn\""), "{banner}");
    assert!(
        config.contains("defaultUploadService = \"tarn\""),
        "{banner}"
    );
    let path = sb.path("config.toml");
    std::fs::write(&path, &config).unwrap();
    let out = Command::new(BIN)
        .args(["--json", "services"])
        .env("LAKE_CONFIG", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["defaultService"], "tarn", "{v}");
    assert_eq!(v["defaultUploadService"], "tarn", "{v}");
    let endpoint = v["services"][0]["artifactEndpoint"].as_str().unwrap_or("");
    assert!(endpoint.starts_with(&server.url), "{v}");
    // Two commands to copy: one uploads, one downloads.
    assert!(
        banner.contains("lake cache put outputs.jsonl --scope=myproj"),
        "{banner}"
    );
    assert!(banner.contains("lake cache get --scope=myproj"), "{banner}");
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_141() {
    let sb = Sandbox::new();
    let file = sb.path("f.txt");
    std::fs::write(&file, "x").unwrap();
    // Far more output than a pipe buffer holds, so a write after the reader is gone fails.
    let mut child = Command::new(BIN)
        .arg("hash")
        .args(std::iter::repeat_n(&file, 20_000))
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
