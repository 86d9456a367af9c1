//! The crash campaign (issue 9): kill -9 at random points of `stage`, `unstage`,
//! `put-staged`, `get`, a server receiving uploads and `tarn serve gc`, over several seeds,
//! then run each operation again and check: it completes, no file under a final name is
//! partial or corrupt, and no temp file of a dead process survives. "Not corrupt" is decided
//! by a reader that is not tarn ([`tarn_test::cache_problems`]: every artifact's Lake hash
//! recomputed from its bytes by the test kit's own implementation and compared with its
//! name, every `outputs/` entry naming artifacts that exist; the same hash check on every
//! staged file and every artifact in the server's data); `tarn verify` and `tarn serve
//! scrub` must agree as well.
//! The kill delay of each attempt is drawn below the operation's measured clean run time, so
//! the kill lands mid-operation; only kills of a still-running process count. Prints
//! `crash-campaign kills <n> corrupt <k> seeds <s>` for RELIABILITY.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tarn_test::*;

use crate::BIN;

const KEY: &str = "ci:ci-secret";
const SEEDS: u64 = 3;
/// More seeds are run, up to this many, until at least `MIN_KILLS` kills landed mid-operation:
/// on a fast, idle machine fewer random delays fall inside an operation.
const MAX_SEEDS: u64 = 8;
/// Kills that must land mid-operation for the campaign to count.
const MIN_KILLS: usize = 50;
/// Kill attempts per operation and seed.
const ATTEMPTS: usize = 5;

struct Campaign {
    tmp: PathBuf,
    rng: Rng,
    kills: usize,
    corrupt: Vec<String>,
}

impl Campaign {
    fn tarn(&self) -> Command {
        let mut c = tarn_cmd(Path::new(BIN), &self.tmp);
        c.env("TARN_TEMP_GRACE_SECS", "0")
            .env("LAKE_CACHE_KEY", KEY)
            .current_dir(self.tmp.join("pkg"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `args` to completion; panics with its stderr if it fails.
    fn complete(&self, what: &str, args: &[&str]) -> Duration {
        let t = Instant::now();
        let out = self.tarn().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{what} did not complete after a kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    }

    /// Starts `args`, kills it with SIGKILL after a random delay below `typical`; counts the
    /// kill if the process was still running.
    fn kill_during(&mut self, args: &[&str], typical: Duration) {
        let max = (typical.as_micros() as u64 * 9 / 10).max(1);
        let delay = Duration::from_micros(self.rng.next_u64() % max);
        let mut child = self
            .tarn()
            .stderr(Stdio::null())
            .args(args)
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            self.kills += 1;
        }
        let _ = child.wait();
    }

    fn verify_cache(&mut self, cache: &Path) {
        if !cache.exists() {
            return;
        }
        for problem in cache_problems(cache) {
            self.corrupt.push(format!("{}: {problem}", cache.display()));
        }
        let out = self
            .tarn()
            .args(["--cache-dir", cache.to_str().unwrap(), "verify"])
            .output()
            .unwrap();
        if !out.status.success() {
            self.corrupt.push(format!(
                "{}: {}",
                cache.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }

    fn verify_staging(&mut self, dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tarn-tmp.") {
                self.corrupt
                    .push(format!("temp file left in staging: {name}"));
            } else if name != "outputs.jsonl" {
                let b = std::fs::read(e.path()).unwrap();
                if !name_matches_content(&name, &b) {
                    self.corrupt
                        .push(format!("staged {name} is partial or corrupt"));
                }
            }
        }
    }

    fn scrub(&mut self, data: &Path) {
        for f in stored_files(data) {
            if f.ends_with(".art") && !f.contains(".tarn-tmp.") {
                let name = f.rsplit('/').next().unwrap_or_default();
                let b = std::fs::read(data.join(&f)).unwrap_or_default();
                if !name_matches_content(name, &b) {
                    self.corrupt
                        .push(format!("server data: {f} is partial or corrupt"));
                }
            }
        }
        let out = Command::new(BIN)
            .args(["--json", "serve", "scrub", "--data"])
            .arg(data)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["corrupt"] != serde_json::json!([]) || v["misnamed"] != serde_json::json!([]) {
            self.corrupt.push(format!("server data: {v}"));
        }
    }
}

fn serve(data: &Path) -> TarnServer {
    TarnServer::start_with(
        &[
            "--data",
            data.to_str().unwrap(),
            "--key",
            &format!("{KEY}:*"),
        ],
        &[("TARN_TEMP_GRACE_SECS", "0")],
    )
}

fn point_config(tmp: &Path, srv: &TarnServer) {
    write_s3_config(
        &tmp.join("config.toml"),
        "srv",
        &format!("{}/a0", srv.url),
        &format!("{}/r0", srv.url),
    );
}

#[test]
fn kill_9_at_random_points_leaves_nothing_corrupt_and_every_rerun_completes() {
    let start = Instant::now();
    let mut total_kills = 0;
    let mut all_corrupt = Vec::new();
    let mut seeds_run = 0;
    for seed in 1..=MAX_SEEDS {
        if seed > SEEDS && total_kills >= MIN_KILLS {
            break;
        }
        seeds_run = seed;
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().to_path_buf();
        std::fs::create_dir_all(t.join("pkg")).unwrap();
        std::fs::write(t.join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
        let fx = fixture::generate(&fixture::FixtureSpec::small(150), &t.join("src")).unwrap();
        let mappings = fx.mappings_path.to_str().unwrap().to_string();
        let data = t.join("data");
        let mut srv = serve(&data);
        point_config(&t, &srv);
        let mut c = Campaign {
            tmp: t.clone(),
            rng: Rng(seed * 0x2545_F491_4F6C_DD1D),
            kills: 0,
            corrupt: Vec::new(),
        };
        let src = t.join("src");
        let s = |p: &Path| p.to_str().unwrap().to_string();

        // stage
        let stage_args = |dir: &str| {
            vec![
                "--cache-dir".to_string(),
                s(&src),
                "stage".to_string(),
                mappings.clone(),
                dir.to_string(),
                "--copy".to_string(),
            ]
        };
        let staging = s(&t.join("staging"));
        let a = stage_args(&staging);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let typical = c.complete("stage", &a);
        for i in 0..ATTEMPTS {
            let dir = s(&t.join(format!("staging-k{i}")));
            let a = stage_args(&dir);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            c.kill_during(&a, typical);
            c.complete("stage", &a);
            c.verify_staging(Path::new(&dir));
        }

        // unstage
        for i in 0..ATTEMPTS {
            let cache = s(&t.join(format!("unstaged-{i}")));
            let a = [
                "--cache-dir",
                &cache,
                "unstage",
                &staging,
                "--package",
                "pkg",
            ];
            let typical = if i == 0 {
                let d = c.complete("unstage", &a);
                std::fs::remove_dir_all(&cache).unwrap();
                d
            } else {
                Duration::from_millis(300)
            };
            c.kill_during(&a, typical);
            c.complete("unstage", &a);
            c.verify_cache(Path::new(&cache));
        }

        // put-staged (a fresh scope each time, so every attempt has uploads to do)
        let put = |scope: &str| {
            vec![
                "put-staged".to_string(),
                staging.clone(),
                "--rev".to_string(),
                "0123456789abcdef0123456789abcdef01234567".to_string(),
                "--scope".to_string(),
                scope.to_string(),
                "--service".to_string(),
                "srv".to_string(),
                "--retries".to_string(),
                "0".to_string(),
            ]
        };
        let a = put("clean");
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let typical = c.complete("put-staged", &a);
        for i in 0..ATTEMPTS {
            let a = put(&format!("k{i}"));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            c.kill_during(&a, typical);
            c.complete("put-staged", &a);
        }

        // get (into an empty cache each time)
        for i in 0..ATTEMPTS {
            let cache = s(&t.join(format!("got-{i}")));
            let a = [
                "get",
                "--cache-dir",
                &cache,
                "--service",
                "srv",
                "--scope",
                "clean",
                "--rev",
                "0123456789abcdef0123456789abcdef01234567",
            ];
            let typical = if i == 0 {
                let d = c.complete("get", &a);
                std::fs::remove_dir_all(&cache).unwrap();
                d
            } else {
                Duration::from_millis(400)
            };
            c.kill_during(&a, typical);
            c.complete("get", &a);
            c.verify_cache(Path::new(&cache));
        }

        // the server, killed while it receives uploads
        for i in 0..2 {
            let a = put(&format!("srvkill{i}"));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let mut client = c.tarn().stderr(Stdio::null()).args(&a).spawn().unwrap();
            let delay = Duration::from_micros(
                c.rng.next_u64() % (typical.as_micros() as u64 * 8 / 10).max(1),
            );
            std::thread::sleep(delay);
            if client.try_wait().unwrap().is_none() {
                srv.kill9();
                c.kills += 1;
            } else {
                srv.kill9();
            }
            let _ = client.wait();
            c.scrub(&data);
            srv = serve(&data);
            point_config(&t, &srv);
            c.complete("put-staged after a server kill", &a);
        }

        // server GC over junk artifacts
        drop(srv);
        for i in 0..2 {
            let dir = data.join(format!("a0/junk{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            for j in 0..3000u32 {
                let body = format!("junk {seed} {i} {j}");
                std::fs::write(dir.join(format!("{}.art", hash_hex(body.as_bytes()))), body)
                    .unwrap();
            }
            let gc = [
                "serve",
                "gc",
                "--data",
                data.to_str().unwrap(),
                "--keep-revs",
                "1",
                "--grace",
                "0",
            ];
            let typical = Duration::from_millis(600);
            c.kill_during(&gc, typical);
            c.complete("serve gc", &gc);
            c.scrub(&data);
        }

        // Final: no temp file of a dead process anywhere, every cache verifies.
        for e in std::fs::read_dir(&t).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("unstaged-") || n.starts_with("got-") {
                c.verify_cache(&e.path());
            }
        }
        let leftovers: Vec<_> = stored_files(&data)
            .into_iter()
            .filter(|f| f.contains(".tarn-tmp."))
            .collect();
        if !leftovers.is_empty() {
            c.corrupt.push(format!("server temp files: {leftovers:?}"));
        }
        total_kills += c.kills;
        all_corrupt.extend(c.corrupt);
    }
    println!(
        "crash-campaign kills {total_kills} corrupt {} seeds {seeds_run} seconds {:.0}",
        all_corrupt.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(all_corrupt.is_empty(), "{all_corrupt:#?}");
    assert!(
        total_kills >= MIN_KILLS,
        "only {total_kills} kills landed mid-operation"
    );
}
