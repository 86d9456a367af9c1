//! `tarn get` against hostile reply heads and encodings (RELIABILITY.md rows 9g, 9h, 9m):
//! gzip-encoded replies (never decoded), a revision file of many entries naming one
//! artifact, an endless header line, endless headers, endless `100 Continue` interim
//! replies and a head trickled one header per second. The scriptable server and the
//! measured `tarn get` are those of `hostile_server.rs`; figures are printed
//! (`hostile-server-rss …`) for RELIABILITY.md.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tarn_test::*;

use crate::hostile_server::{get, no_temp_files, report, setup};

/// `bytes` compressed by the real `gzip`.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-c", "-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// 256 MiB of zeros compressed by the real `gzip` (about 250 kB); the 256 MiB are never
/// held in this process, which only keeps the test cheap (`run_measured` reports the
/// child's own peak through its launcher either way).
fn gzip_bomb() -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "head -c 268435456 /dev/zero | gzip -c -1"])
        .output()
        .expect("sh, head, gzip");
    assert!(out.status.success());
    out.stdout
}

/// A service answering revision requests with `revision` and every other request with
/// `artifact`, each with its headers; returns its URL.
fn revision_and_artifact(
    revision: (Vec<u8>, &'static [(&'static str, &'static str)]),
    artifact: (Vec<u8>, &'static [(&'static str, &'static str)]),
) -> String {
    hostile_server(Arc::new(move |path, conn| {
        let (body, headers) = if path.contains("/r0/") {
            &revision
        } else {
            &artifact
        };
        respond(conn, "200 OK", headers, body);
    }))
}

#[test]
fn gzip_encoded_replies_are_never_decoded() {
    // Row 9g: a gzip-encoded revision file is its compressed bytes (not a mapping file),
    // and a gzip bomb of 256 MiB of zeros served as an artifact is never inflated.
    const GZ: &[(&str, &str)] = &[("Content-Encoding", "gzip")];
    let art = artifacts(1, 3).remove(0);
    let mapping = mappings(std::slice::from_ref(&art), 3);
    let bomb = gzip_bomb();
    let cases = [
        ("gzip-revision", (gzip(&mapping), GZ), "not UTF-8"),
        ("gzip-bomb", (mapping.clone(), &[][..]), "hash mismatch"),
    ];
    for (name, revision, error) in cases {
        let tmp = tempfile::tempdir().unwrap();
        setup(
            tmp.path(),
            &revision_and_artifact(revision, (bomb.clone(), GZ)),
        );
        let (code, err, peak, secs) = get(
            tmp.path(),
            &["--retries", "0"],
            &[],
            Duration::from_secs(60),
        );
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains(error), "{name}: {err}");
        no_temp_files(&tmp.path().join("cache"));
        report(name, peak, secs);
    }
}

/// Regular files below `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn a_revision_of_many_entries_naming_one_artifact_is_written_in_bounded_memory() {
    // Row 9h, smaller but the same shape: 10,000 entries (0.46 MB) all naming one artifact.
    const ENTRIES: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let art = artifacts(1, 3).remove(0);
    let mut mapping = b"\"2026-03-17\"\n".to_vec();
    for i in 0..ENTRIES {
        mapping
            .extend_from_slice(format!("[\"{:016x}\",\"{}\"]\n", i + 1, art.file_name).as_bytes());
    }
    let size = mapping.len();
    let url = revision_and_artifact((mapping, &[]), (art.content.clone(), &[]));
    setup(tmp.path(), &url);
    let (code, err, peak, secs) = get(
        tmp.path(),
        &["--retries", "0"],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{err}");
    let outputs = count_files(&tmp.path().join("cache/outputs"));
    assert_eq!(outputs, ENTRIES, "outputs/ files");
    eprintln!("hostile-server revision of {ENTRIES} entries ({size} B): {outputs} outputs/ files");
    report("many-entries", peak, secs);
}

/// Writes `line` to `conn` until the client goes away (or `max` times).
fn repeat(conn: &mut TcpStream, line: &[u8], max: usize) {
    for _ in 0..max {
        if conn.write_all(line).is_err() {
            return;
        }
    }
}

#[test]
fn hostile_reply_heads_end_at_once_or_at_the_timeout() {
    // Row 9m. `--timeout 3`: the first two fail at once, the last two at the timeout.
    type Head = fn(&mut TcpStream);
    let heads: [(&str, Head, f64); 4] = [
        (
            "endless-header-line",
            |c| {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nX-Long: ");
                repeat(c, &[b'x'; 4096], 1 << 20);
            },
            2.5,
        ),
        (
            "endless-headers",
            |c| {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
                repeat(c, b"X-Again: v\r\n", 1 << 24);
            },
            2.5,
        ),
        (
            "endless-100-continue",
            |c| {
                repeat(c, b"HTTP/1.1 100 Continue\r\n\r\n", 1 << 24);
            },
            15.0,
        ),
        (
            "trickled-head",
            |c| {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
                for i in 0..120 {
                    if c.write_all(format!("X-Slow-{i}: v\r\n").as_bytes())
                        .is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            },
            15.0,
        ),
    ];
    for (name, head, bound) in heads {
        let tmp = tempfile::tempdir().unwrap();
        let url = hostile_server(Arc::new(move |_path, conn| head(conn)));
        setup(tmp.path(), &url);
        let quick = ["--retries", "0", "--timeout", "3"];
        let (code, err, peak, secs) = get(tmp.path(), &quick, &[], Duration::from_secs(60));
        assert_eq!(code, 1, "{name}: {err}");
        assert!(secs < bound, "{name}: took {secs:.1}s");
        report(name, peak, secs);
    }
}
