//! Helpers for the `tarn serve` tests: start the real binary on a free port, run curl,
//! read metrics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tarn binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tarn");

/// A running `tarn serve`.
pub struct TarnServer {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Everything printed before and including the Lake config banner.
    pub banner: String,
}

impl TarnServer {
    /// Starts `tarn serve --listen 127.0.0.1:0 <args>` and waits for its banner.
    pub fn start(args: &[&str]) -> TarnServer {
        Self::start_with(args, &[])
    }

    /// Like [`TarnServer::start`] with extra environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> TarnServer {
        let mut c = Command::new(BIN);
        c.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn tarn serve");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut banner = String::new();
        let mut url = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("tarn serve exited before printing its banner:\n{banner}");
            }
            banner.push_str(&line);
            if let Some(rest) = line.strip_prefix("tarn serve: listening on ") {
                url = Some(rest.split_whitespace().next().unwrap().to_string());
            }
            if line.starts_with("Uploads:") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        TarnServer {
            child,
            url: url.expect("listening line"),
            banner,
        }
    }

    /// Kills the server with SIGKILL.
    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// One Prometheus sample (the sum over all label sets that contain `labels`).
    pub fn metric(&self, name: &str, labels: &str) -> u64 {
        let text = http_get_text(&format!("{}/metrics", self.url));
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                let (n, _) = l.split_once([' ', '{']).unwrap_or((l, ""));
                n == name && l.contains(labels)
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }
}

impl Drop for TarnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl; returns (http status from `-w %{http_code}`, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// GET as text (panics on failure).
pub fn http_get_text(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-f", "-k", url])
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {url}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lake's hash of `b` in hex.
pub fn hash_hex(b: &[u8]) -> String {
    tarn_core::Hash::of_bytes(b).hex()
}

/// Writes `n` artifacts (size `len + i`) into `dir`; returns (path, hash, bytes).
pub fn make_artifacts(
    dir: &Path,
    n: usize,
    len: usize,
    seed: u64,
) -> Vec<(PathBuf, String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let mut x = (seed * 7919 + i as u64) | 1;
            let data: Vec<u8> = (0..len + i)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let h = hash_hex(&data);
            let p = dir.join(format!("{h}.olean"));
            std::fs::write(&p, &data).unwrap();
            (p, h, data)
        })
        .collect()
}

/// A G3 mapping file whose entries reference `hashes` (as `.olean` files).
pub fn mapping_for(hashes: &[&str]) -> String {
    let mut s = "\"2026-03-17\"\n".to_string();
    for (i, h) in hashes.iter().enumerate() {
        s.push_str(&format!("[\"{:016x}\",\"{h}.olean\"]\n", i + 1));
    }
    s
}

/// Lake's parallel upload: `curl -Z -X PUT … --config FILE` with `-T`/`url` pairs;
/// returns the `http_code` of every transfer, by URL.
pub fn lake_parallel_put(
    key: &str,
    pairs: &[(PathBuf, String)],
    cfg_path: &Path,
    unsigned_header: bool,
) -> Vec<(String, u16)> {
    let mut cfg = String::new();
    for (p, url) in pairs {
        cfg.push_str(&format!("-T \"{}\"\nurl = \"{url}\"\n", p.display()));
    }
    std::fs::write(cfg_path, cfg).unwrap();
    let mut c = Command::new("curl");
    c.args([
        "-Z",
        "-X",
        "PUT",
        "-L",
        "-H",
        "Content-Type: application/vnd.reservoir.artifact",
        "--retry",
        "3",
        "--aws-sigv4",
        "aws:amz:auto:s3",
        "--user",
        key,
        "-s",
        "-w",
        "%{stderr}%{json}\n",
    ]);
    if unsigned_header {
        c.args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
    }
    let out = c.arg("--config").arg(cfg_path).output().expect("curl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .filter_map(|l| {
            let start = l.find('{')?;
            let v: serde_json::Value = serde_json::from_str(&l[start..]).ok()?;
            Some((
                v["url"].as_str()?.to_string(),
                v["http_code"].as_u64()? as u16,
            ))
        })
        .collect()
}

/// Lake's single PUT (revision files): returns the status.
pub fn lake_put(key: &str, file: &Path, url: &str, content_type: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "%{stderr}%{json}\n",
            "--aws-sigv4",
            "aws:amz:auto:s3",
            "--user",
            key,
            "-X",
            "PUT",
            "-T",
        ])
        .arg(file)
        .arg(url)
        .args(["-H", &format!("Content-Type: {content_type}")])
        .output()
        .expect("curl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = stderr
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l[l.find('{')?..]).ok()?;
            v["http_code"].as_u64()
        })
        .unwrap_or(0) as u16;
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every regular file below `dir` (relative paths), sorted; skips the spool and key files.
pub fn stored_files(dir: &Path) -> Vec<String> {
    fn rec(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                rec(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !rel.starts_with(".tarn-serve-key") && !rel.starts_with(".tarn-spool") {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    rec(dir, dir, &mut out);
    out.sort();
    out
}

/// Waits until `f` is true (or panics after `secs`).
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}
