//! Local files are outside input too (issue 9): configuration files (the server's
//! `--config`, Lake's `LAKE_CONFIG`), mapping files given on the command line, a checkout's
//! lakefile, manifest and `lean-toolchain`, files given to `tarn hash`, the server's PEM and
//! admin key files. Each is read only when the open descriptor is a regular file, and no
//! further than its limit: an oversized file, `/dev/zero`, a directory or a FIFO nobody
//! writes to ends in a clear error naming the file, at once, without growing. Each test puts
//! the FIFO first, so that a reader that blocks fails the test (after 20 s) before
//! `/dev/zero` could be read without end.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tarn_test::{stderr, Sandbox};

use crate::BIN;

/// Runs `cmd` to its end, which must come within 20 seconds (a blocked open or an endless
/// read would not end).
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {:?}", start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A file of `# xxx…` comment lines just over 1 MiB, a FIFO nobody writes to, and
/// `/dev/zero`, each with the words its error must contain.
fn hostile_files(dir: &Path) -> Vec<(std::path::PathBuf, &'static str)> {
    let big = dir.join("big.toml");
    let line = format!("# {}\n", "x".repeat(1021));
    std::fs::write(&big, line.repeat(1025)).unwrap();
    let fifo = dir.join("fifo.toml");
    tarn_test::mkfifo(&fifo).unwrap();
    let subdir = dir.join("dir.toml");
    std::fs::create_dir(&subdir).unwrap();
    vec![
        (fifo, "not a regular file (a FIFO)"),
        (
            "/dev/zero".into(),
            "not a regular file (a character device)",
        ),
        (subdir, "not a regular file (a directory)"),
        (
            big,
            "larger than the limit of 1 MiB for a configuration file",
        ),
    ]
}

#[test]
fn a_hostile_server_config_file_is_refused_at_once() {
    let sb = Sandbox::new();
    for (path, why) in hostile_files(sb.root()) {
        let mut c = Command::new(BIN);
        c.current_dir(sb.root())
            .args(["serve", "gc", "--data", "data", "--config"])
            .arg(&path);
        let out = bounded(c);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        assert!(err.contains(why), "{err}");
    }
    assert!(!sb.path("data").exists());
}

#[test]
fn a_hostile_lake_config_is_refused_at_once() {
    let sb = Sandbox::new();
    for (path, why) in hostile_files(sb.root()) {
        let mut c = sb.command();
        c.env("LAKE_CONFIG", &path).arg("services");
        let out = bounded(c);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        assert!(err.contains(why), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn lake_config_dev_null_is_an_empty_configuration() {
    // Lake reads `LAKE_CONFIG=/dev/null` as empty: no services, Reservoir as the default.
    let sb = Sandbox::new();
    let mut c = sb.command();
    c.env("LAKE_CONFIG", "/dev/null").arg("services");
    let out = bounded(c);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Asserts `out` is exit 1 with an error naming `path` and saying `why`.
fn refused(out: &Output, what: &str, path: &Path, why: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} {}: {err}",
        path.display()
    );
    assert!(err.contains(&*path.to_string_lossy()), "{what}: {err}");
    assert!(err.contains(why), "{what}: {err}");
}

#[test]
fn a_hostile_mappings_file_is_refused_at_once_by_every_command() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("config.toml"),
        "[[cache.service]]\nname = \"s\"\nkind = \"s3\"\nartifactEndpoint = \"http://127.0.0.1:1/a\"\nrevisionEndpoint = \"http://127.0.0.1:1/r\"\n",
    )
    .unwrap();
    tarn_test::git_package(sb.root(), "pkg", 1);
    let fifo = sb.path("fifo.jsonl");
    tarn_test::mkfifo(&fifo).unwrap();
    let big = sb.path("big.jsonl");
    std::fs::write(&big, vec![b'x'; 2048]).unwrap();
    std::fs::create_dir(sb.path("dir.jsonl")).unwrap();
    let files = [
        (fifo, "not a regular file (a FIFO)"),
        ("/dev/zero".into(), "not a regular file (a character device)"),
        (sb.path("dir.jsonl"), "not a regular file (a directory)"),
        (
            big,
            "larger than the limit of 1 KiB for a mapping file (raise it with TARN_MAX_MAPPINGS_BYTES)",
        ),
    ];
    // Each command's arguments before and after the mapping file.
    let commands: [(&[&str], &[&str]); 5] = [
        (&["get", "--service", "s", "--scope", "sc"], &[]),
        (&["put", "--service", "s", "--scope", "sc"], &[]),
        (&["stage"], &["staged"]),
        (&["verify"], &[]),
        (&["add"], &[]),
    ];
    for (before, after) in commands {
        for (path, why) in &files {
            let mut c = sb.command();
            c.env("TARN_MAX_MAPPINGS_BYTES", "1K")
                .env("LAKE_CACHE_KEY", "id:secret")
                .args(["--cache-dir", "cache"])
                .args(before)
                .arg(path)
                .args(after);
            refused(&bounded(c), before[0], path, why);
        }
    }
    // `put` keeps refusing a symbolic link to the mapping file.
    let real = sb.path("real.jsonl");
    std::fs::write(&real, "").unwrap();
    let link = sb.path("link.jsonl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut c = sb.command();
    c.env("LAKE_CACHE_KEY", "id:secret")
        .args([
            "--cache-dir",
            "cache",
            "put",
            "--service",
            "s",
            "--scope",
            "sc",
        ])
        .arg(&link);
    refused(&bounded(c), "put", &link, "a symbolic link");
}

#[test]
fn a_hostile_file_to_hash_is_refused_at_once() {
    let sb = Sandbox::new();
    let fifo = sb.path("fifo");
    tarn_test::mkfifo(&fifo).unwrap();
    for text in [false, true] {
        for (path, why) in [
            (fifo.clone(), "not a regular file (a FIFO)"),
            (
                "/dev/zero".into(),
                "not a regular file (a character device)",
            ),
        ] {
            let mut c = sb.command();
            c.arg("hash");
            if text {
                c.arg("--text");
            }
            c.arg(&path);
            refused(&bounded(c), "hash", &path, why);
        }
    }
}

#[test]
fn a_hostile_manifest_or_toolchain_in_the_checkout_is_refused_at_once() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("config.toml"),
        "[[cache.service]]\nname = \"s\"\nkind = \"s3\"\nartifactEndpoint = \"http://127.0.0.1:1/a\"\nrevisionEndpoint = \"http://127.0.0.1:1/r\"\n",
    )
    .unwrap();
    let pkg = sb.path("pkg");
    std::fs::create_dir(&pkg).unwrap();
    tarn_test::git_package(&pkg, "pkg", 1);
    let manifest = pkg.join("lake-manifest.json");
    tarn_test::mkfifo(&manifest).unwrap();
    // `tarn get` in the package: it reads the workspace (manifest, toolchain) first.
    let get_in_pkg = || {
        let mut c = sb.command();
        c.current_dir(&pkg).args([
            "--cache-dir",
            "../cache",
            "get",
            "--service",
            "s",
            "--repo",
            "o/n",
        ]);
        c
    };
    let c = get_in_pkg();
    // (`get` reads the workspace from inside the package directory: the path shown is
    // relative to it.)
    let shown = Path::new("lake-manifest.json");
    refused(&bounded(c), "get", shown, "not a regular file (a FIFO)");
    std::fs::remove_file(&manifest).unwrap();
    let toolchain = pkg.join("lean-toolchain");
    tarn_test::mkfifo(&toolchain).unwrap();
    let c = get_in_pkg();
    let shown = Path::new("lean-toolchain");
    refused(&bounded(c), "get", shown, "not a regular file (a FIFO)");
    // A link to a device outside the checkout is refused before it is opened (issue 18).
    std::fs::remove_file(&toolchain).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &toolchain).unwrap();
    let c = get_in_pkg();
    refused(&bounded(c), "get", shown, "leads outside the workspace");
}

#[test]
fn a_hostile_pem_or_admin_key_file_is_refused_at_once_by_the_server() {
    let sb = Sandbox::new();
    let fifo = sb.path("fifo.pem");
    tarn_test::mkfifo(&fifo).unwrap();
    let big = sb.path("big.pem");
    std::fs::write(&big, vec![b'-'; (1 << 20) + 1]).unwrap();
    for (path, why) in [
        (fifo, "not a regular file (a FIFO)"),
        (
            "/dev/zero".into(),
            "not a regular file (a character device)",
        ),
        (big, "larger than the limit of 1 MiB for a PEM file"),
    ] {
        let mut c = Command::new(BIN);
        c.current_dir(sb.root())
            .args(["serve", "--data", "data", "--listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&path)
            .arg("--tls-key")
            .arg(&path);
        refused(&bounded(c), "serve", &path, why);
    }
    // A zero-configuration server keeps its admin key in the data directory.
    std::fs::create_dir(sb.path("data2")).unwrap();
    let key = sb.path("data2/.tarn-serve-key");
    tarn_test::mkfifo(&key).unwrap();
    let mut c = Command::new(BIN);
    c.current_dir(sb.root())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(sb.path("data2"));
    refused(&bounded(c), "serve", &key, "not a regular file (a FIFO)");
}
