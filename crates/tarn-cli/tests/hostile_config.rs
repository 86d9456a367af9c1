//! Configuration files are outside input too (issue 9): the server's `--config` and Lake's
//! system configuration (`LAKE_CONFIG`) are read only when they are regular files of at
//! most 1 MiB. An oversized file, `/dev/zero` or a FIFO nobody
//! writes to ends in a clear error naming the file, at once, without growing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tarn_test::Sandbox;

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file of `# xxx…` comment lines just over 1 MiB, a FIFO nobody writes to, and
/// `/dev/zero`, each with the words its error must contain.
fn hostile_files(dir: &Path) -> Vec<(std::path::PathBuf, &'static str)> {
    let big = dir.join("big.toml");
    let line = format!("# {}\n", "x".repeat(1021));
    std::fs::write(&big, line.repeat(1025)).unwrap();
    let fifo = dir.join("fifo.toml");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    vec![
        (big, "larger than the limit of 1 MiB"),
        (fifo, "not a regular file"),
        ("/dev/zero".into(), "not a regular file"),
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
