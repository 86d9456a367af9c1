//! `tarn serve` under test: the real binary started on a free port, its metrics, and what it
//! stored on disk.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

    /// `tarn serve --data DATA --key KEY`: local storage in `data` and one key
    /// (`id:secret[:scopes]`, as `--key` takes it).
    pub fn with_key(data: &Path, key: &str) -> TarnServer {
        Self::start(&["--data", data.to_str().unwrap(), "--key", key])
    }

    /// Like [`TarnServer::start`] with extra environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> TarnServer {
        let mut c = Command::new(crate::tarn_bin());
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

    /// Makes `home` a configuration home whose service `tarn` is this server (`home` created,
    /// `config.toml` written); returns `home`.
    pub fn client_home(&self, home: &Path) -> std::path::PathBuf {
        std::fs::create_dir_all(home).unwrap();
        crate::write_s3_config(
            &home.join("config.toml"),
            "tarn",
            &format!("{}/a0", self.url),
            &format!("{}/r0", self.url),
        );
        home.to_path_buf()
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
        metric_sample(
            &crate::http_get_text(&format!("{}/metrics", self.url)),
            name,
            labels,
        )
    }
}

impl Drop for TarnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample of a Prometheus text exposition `text`: the sum of `name`'s values over all
/// label sets that contain `labels` (`""` sums them all).
pub fn metric_sample(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let (n, _) = l.split_once([' ', '{']).unwrap_or((l, ""));
            n == name && l.contains(labels)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Every regular file below `dir` (relative paths), sorted; skips the spool, key and status
/// files.
pub fn stored_files(dir: &Path) -> Vec<String> {
    fn rec(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                rec(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !rel.starts_with(".tarn-serve-key")
                    && !rel.starts_with(".tarn-spool")
                    && !rel.starts_with(".tarn-status")
                {
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
