//! A hostile staging directory (issue 9, items 1 and 7): while `put-staged` uploads to a
//! plain S3 server (s3s-fs, which checks no artifact hash) and while `unstage` imports,
//! another thread keeps swapping staged files for a symbolic link to a secret outside the
//! directory, a hard link to it, a copy of its content, or a FIFO. Whatever the timing: no
//! byte of the secret reaches the bucket or the cache, every object stored hashes to its
//! name, and nothing hangs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tarn_test::*;

use crate::BIN;
/// Longest a single command may run before the test calls it hung.
const HANG: Duration = Duration::from_secs(120);

/// The secret: content no artifact contains, so any copy of it is easy to find.
fn secret_bytes() -> Vec<u8> {
    b"TOP-SECRET-issue9-exfiltration-marker\n".repeat(200)
}

/// Keeps swapping files of `dir` (names from `names`) until `stop`; returns how many swaps.
fn swapper(
    dir: PathBuf,
    names: Vec<String>,
    secret: PathBuf,
    seed: u64,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng(seed | 1);
        let secret_content = std::fs::read(&secret).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let name = &names[(rng.next_u64() % names.len() as u64) as usize];
            let target = dir.join(name);
            let tmp = dir.join(format!("swap-{}", rng.next_u64()));
            let made = match rng.next_u64() % 4 {
                0 => std::os::unix::fs::symlink(&secret, &tmp).is_ok(),
                1 => std::fs::hard_link(&secret, &tmp).is_ok(),
                2 => std::fs::write(&tmp, &secret_content).is_ok(),
                _ => mkfifo(&tmp).is_ok(),
            };
            if made && std::fs::rename(&tmp, &target).is_ok() {
                swaps.fetch_add(1, Ordering::Relaxed);
            }
            let _ = std::fs::remove_file(&tmp);
            std::thread::sleep(Duration::from_micros(rng.next_u64() % 3000));
        }
    })
}

/// Waits for `child` at most [`HANG`]; panics (after killing it) if it hangs.
fn wait_bounded(mut child: Child, what: &str) -> (i32, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("{what} hung for {HANG:?} under a swapping staging directory");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every regular file under `root`: none may contain the secret marker.
fn assert_no_secret(root: &Path, what: &str) -> usize {
    let marker = b"TOP-SECRET-issue9";
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                n += 1;
                let b = std::fs::read(&p).unwrap();
                assert!(
                    !b.windows(marker.len()).any(|w| w == marker),
                    "{what}: {} holds bytes of the outside secret",
                    p.display()
                );
            }
        }
    }
    n
}

/// Runs `cmd`; after `delay`, starts a swapper with `swap(stop, swaps)`; waits for the
/// command at most [`HANG`], then stops the swapper. Returns the command's exit code, its
/// stderr and how many swaps the swapper made.
fn swap_during(
    mut cmd: Command,
    what: &str,
    delay: Duration,
    swap: impl FnOnce(Arc<AtomicBool>, Arc<AtomicU64>) -> JoinHandle<()>,
) -> (i32, String, u64) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let t = swap(stop.clone(), swaps.clone());
    let (code, err) = wait_bounded(child, what);
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    (code, err, swaps.load(Ordering::Relaxed))
}

/// Points `home`'s configuration at a fresh prefix (`name` made unique) of the test bucket;
/// returns the prefix.
fn fresh_s3_prefix(home: &Path, s3: &S3, name: &str) -> String {
    let prefix = unique(name);
    let base = format!("{}/{}/{prefix}", s3.endpoint, s3.bucket);
    write_s3_config(
        &home.join("config.toml"),
        "dev",
        &format!("{base}/a0"),
        &format!("{base}/r0"),
    );
    prefix
}

/// `tarn put-staged` of `staging` to the S3 server, as scope `swap/pkg`.
fn put_staged(home: &Path, s3: &S3, staging: &Path) -> Command {
    let mut c = tarn_cmd(Path::new(BIN), home);
    c.env("LAKE_CACHE_KEY", s3.key())
        .env("TARN_S3_REGION", &s3.region)
        .args([
            "put-staged",
            staging.to_str().unwrap(),
            "--rev",
            "0123456789abcdef0123456789abcdef01234567",
            "--scope",
            "swap/pkg",
            "--service",
            "dev",
            "--jobs",
            "4",
            "--retries",
            "1",
        ]);
    c
}

/// `tarn unstage` of `staging` into the cache `cache`, as package `pkg`.
fn unstage(home: &Path, cache: &Path, staging: &Path) -> Command {
    let mut c = tarn_cmd(Path::new(BIN), home);
    c.args([
        "--cache-dir",
        cache.to_str().unwrap(),
        "unstage",
        staging.to_str().unwrap(),
        "--package",
        "pkg",
    ]);
    c
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn put_staged_to_plain_s3_never_uploads_a_swapped_in_outside_file() {
    let s3 = S3::from_env();
    let data = s3
        .data_dir
        .clone()
        .expect("S3_STATE_DIR is set by scripts/test.sh");
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, secret_bytes()).unwrap();
    let mut total_swaps = 0;
    let mut outcomes = Vec::new();
    for seed in 1..=4u64 {
        let prefix = fresh_s3_prefix(tmp.path(), &s3, &format!("swap{seed}"));
        let arts = artifacts(150, seed);
        let staging = tmp.path().join(format!("staging{seed}"));
        write_staging(&staging, &arts, seed);
        let names: Vec<String> = arts.iter().map(|a| a.file_name.clone()).collect();
        // Let validation start cleanly on some runs, and race it on others.
        let (code, err, swaps) = swap_during(
            put_staged(tmp.path(), &s3, &staging),
            "put-staged",
            Duration::from_millis(seed * 15),
            |stop, swaps| swapper(staging.clone(), names, secret.clone(), seed, stop, swaps),
        );
        total_swaps += swaps;
        outcomes.push(code);
        assert!(code == 0 || code == 1, "exit {code}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        // Nothing of the secret in the bucket, and every stored artifact hashes to its name.
        let stored = data.join(&s3.bucket).join(&prefix);
        assert_no_secret(&stored, "bucket");
        if let Ok(rd) = std::fs::read_dir(stored.join("a0/swap/pkg")) {
            for e in rd {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let Some(hex) = name.strip_suffix(".art") else {
                    continue;
                };
                let b = std::fs::read(&p).unwrap();
                assert_eq!(
                    tarn_core::Hash::of_bytes(&b).hex(),
                    hex,
                    "object {name} does not hash to its name"
                );
            }
        }
    }
    assert!(total_swaps > 20, "the swapper barely ran ({total_swaps})");
    eprintln!("put-staged swap runs: exits {outcomes:?}, {total_swaps} swaps");
}

#[test]
fn unstage_never_imports_a_swapped_in_outside_file_and_never_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, secret_bytes()).unwrap();
    let mut total_swaps = 0;
    for seed in 1..=6u64 {
        let arts = artifacts(600, seed + 10);
        let staging = tmp.path().join(format!("staging{seed}"));
        write_staging(&staging, &arts, seed);
        let cache = tmp.path().join(format!("cache{seed}"));
        let names: Vec<String> = arts.iter().map(|a| a.file_name.clone()).collect();
        let (code, err, swaps) = swap_during(
            unstage(tmp.path(), &cache, &staging),
            "unstage",
            Duration::from_millis(Rng(seed * 7919).next_u64() % 60),
            |stop, swaps| swapper(staging.clone(), names, secret.clone(), seed, stop, swaps),
        );
        total_swaps += swaps;
        assert!(code == 0 || code == 1, "exit {code}: {err}");
        assert_no_secret(&cache, "cache");
        if let Ok(rd) = std::fs::read_dir(cache.join("artifacts")) {
            for e in rd {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let b = std::fs::read(&p).unwrap();
                assert_eq!(
                    tarn_core::Hash::of_bytes(&b).hex(),
                    &name[..16],
                    "cached {name} does not hash to its name"
                );
            }
        }
    }
    assert!(total_swaps > 8, "the swapper barely ran ({total_swaps})");
}

/// A directory outside the staging directory that looks like it: the same artifact names
/// (hard links to the staged files, so every per-file identity and hash check passes), and
/// an `outputs.jsonl` with a line of secret text and, with `secret_artifact`, an entry naming
/// a secret file stored under its own hash.
fn outside_twin(staging: &Path, outside: &Path, arts: &[Art], seed: u64, secret_artifact: bool) {
    std::fs::create_dir_all(outside).unwrap();
    for a in arts {
        std::fs::hard_link(staging.join(&a.file_name), outside.join(&a.file_name)).unwrap();
    }
    let mut m = mappings(arts, seed);
    if secret_artifact {
        let mut content = secret_bytes();
        content.extend_from_slice(format!("seed {seed}\n").as_bytes());
        let name = format!("{}.olean", tarn_core::Hash::of_bytes(&content).hex());
        std::fs::write(outside.join(&name), &content).unwrap();
        let input = tarn_core::Hash::of_bytes(format!("outside {seed}").as_bytes()).hex();
        m.extend_from_slice(format!("[\"{input}\",\"{name}\"]\n").as_bytes());
    }
    m.extend_from_slice(b"TOP-SECRET-issue9 a line of the outside mapping file\n");
    std::fs::write(outside.join("outputs.jsonl"), m).unwrap();
}

/// Keeps swapping the directory `staging` itself for a symbolic link to `outside` (mostly
/// swapped, briefly real) until `stop`; leaves the real directory in place at the end.
fn dir_swapper(
    staging: PathBuf,
    outside: PathBuf,
    seed: u64,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9) | 1);
        let real = staging.with_extension("real");
        let link = staging.with_extension("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        while !stop.load(Ordering::Relaxed) {
            if std::fs::rename(&staging, &real).is_ok() {
                if std::fs::rename(&link, &staging).is_ok() {
                    swaps.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(500 + rng.next_u64() % 6000));
                    std::fs::rename(&staging, &link).unwrap();
                }
                std::fs::rename(&real, &staging).unwrap();
            }
            std::thread::sleep(Duration::from_micros(rng.next_u64() % 1500));
        }
    })
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn put_staged_never_reads_through_a_staging_directory_swapped_for_a_link() {
    let s3 = S3::from_env();
    let data = s3
        .data_dir
        .clone()
        .expect("S3_STATE_DIR is set by scripts/test.sh");
    let tmp = tempfile::tempdir().unwrap();
    let mut total_swaps = 0;
    let mut outcomes = Vec::new();
    for seed in 1..=6u64 {
        let prefix = fresh_s3_prefix(tmp.path(), &s3, &format!("dirswap{seed}"));
        let arts = artifacts(150, seed + 40);
        let staging = tmp.path().join(format!("staging{seed}"));
        write_staging(&staging, &arts, seed);
        let outside = tmp.path().join(format!("outside{seed}"));
        outside_twin(&staging, &outside, &arts, seed, seed % 2 == 1);
        // Some runs open the directory before the first swap, the others race it.
        let (code, err, swaps) = swap_during(
            put_staged(tmp.path(), &s3, &staging),
            "put-staged",
            Duration::from_millis([0, 1, 3, 8, 20, 40][seed as usize - 1]),
            |stop, swaps| dir_swapper(staging.clone(), outside.clone(), seed, stop, swaps),
        );
        total_swaps += swaps;
        outcomes.push(code);
        assert!(code == 0 || code == 1, "exit {code}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let stored = data.join(&s3.bucket).join(&prefix);
        assert_no_secret(&stored, "bucket");
        let mut stack = vec![stored.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if p.is_dir() {
                    stack.push(p);
                } else if let Some(hex) = name.strip_suffix(".art") {
                    let b = std::fs::read(&p).unwrap();
                    assert_eq!(tarn_core::Hash::of_bytes(&b).hex(), hex, "{name}");
                } else if name.ends_with(".jsonl") {
                    // The revision file is the staged outputs.jsonl, byte for byte.
                    assert!(
                        std::fs::read(&p).unwrap() == mappings(&arts, seed),
                        "the revision file {name} is not the staged outputs.jsonl"
                    );
                }
            }
        }
    }
    assert!(total_swaps > 20, "the swapper barely ran ({total_swaps})");
    eprintln!("put-staged directory swaps: exits {outcomes:?}, {total_swaps} swaps");
}

#[test]
fn unstage_never_reads_through_a_staging_directory_swapped_for_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let mut total_swaps = 0;
    let mut outcomes = Vec::new();
    for seed in 1..=8u64 {
        let arts = artifacts(600, seed + 50);
        let staging = tmp.path().join(format!("staging{seed}"));
        write_staging(&staging, &arts, seed);
        let outside = tmp.path().join(format!("outside{seed}"));
        outside_twin(&staging, &outside, &arts, seed, true);
        let cache = tmp.path().join(format!("cache{seed}"));
        let (code, err, swaps) = swap_during(
            unstage(tmp.path(), &cache, &staging),
            "unstage",
            Duration::from_millis([0, 1, 2, 4, 6, 10, 20, 40][seed as usize - 1]),
            |stop, swaps| dir_swapper(staging.clone(), outside.clone(), seed, stop, swaps),
        );
        total_swaps += swaps;
        outcomes.push(code);
        assert!(code == 0 || code == 1, "exit {code}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_no_secret(&cache, "cache");
        // Only the staged mappings' inputs get outputs/ entries.
        let outside_input = tarn_core::Hash::of_bytes(format!("outside {seed}").as_bytes()).hex();
        let mut stack = vec![cache.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !name.contains(&outside_input),
                    "cache holds {}",
                    p.display()
                );
            }
        }
    }
    assert!(total_swaps > 8, "the swapper barely ran ({total_swaps})");
    eprintln!("unstage directory swaps: exits {outcomes:?}, {total_swaps} swaps");
}
