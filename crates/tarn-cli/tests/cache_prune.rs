//! `tarn cache prune` and `tarn cache stats` (issue 24) end to end, on caches laid out the way Lake writes them:
//! the size and age it prunes to, the grace period under a reading build, the lock against
//! writers, bad input, and kills at random points. Every cache is checked afterwards by
//! `tarn verify` and by the test kit's [`tarn_test::cache_problems`], an independent reader
//! written for the tests.

use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tarn_test::*;

const DAY: u64 = 86_400;

/// Sets a file's access and modification times to `age` seconds ago.
pub(crate) fn set_age(path: &Path, age: u64) {
    let t = SystemTime::now() - Duration::from_secs(age);
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap();
}

/// One Lake-shaped entry: `outputs/<scope>/<input>.json` naming its artifacts.
pub(crate) struct Entry {
    pub path: PathBuf,
    pub artifacts: Vec<PathBuf>,
}

/// Writes `n` entries in scope `pkg`, each naming two artifacts (an `.olean` and an
/// `.ilean`), all last used `age(i)` seconds ago. Written as Lake does: the `CacheOutput`
/// wrapper, read-only artifacts.
pub(crate) fn lake_cache(
    root: &Path,
    n: usize,
    seed: u64,
    age: impl Fn(usize) -> u64,
) -> Vec<Entry> {
    let arts = tarn_test::artifacts(2 * n, seed);
    fs::create_dir_all(root.join("artifacts")).unwrap();
    fs::create_dir_all(root.join("outputs/pkg")).unwrap();
    (0..n)
        .map(|i| {
            let pair = &arts[2 * i..2 * i + 2];
            let (o, il) = (&pair[0], &pair[1]);
            let mut artifacts = Vec::new();
            for (a, ext) in [(o, "olean"), (il, "ilean")] {
                let p = root.join("artifacts").join(format!("{}.{ext}", a.hash));
                if !p.exists() {
                    fs::write(&p, &a.content).unwrap();
                    let mut perm = fs::metadata(&p).unwrap().permissions();
                    perm.set_readonly(true);
                    fs::set_permissions(&p, perm).unwrap();
                }
                set_age(&p, age(i));
                artifacts.push(p);
            }
            let input = hash_hex(format!("input {seed} {i}").as_bytes());
            let path = root.join("outputs/pkg").join(format!("{input}.json"));
            let data = format!(
                "{{\"data\": {{\"o\": [\"{}.olean\"], \"i\": \"{}.ilean\"}},\n \"schemaVersion\": \"2026-02-25\",\n \"service\": null}}",
                o.hash, il.hash
            );
            fs::write(&path, data).unwrap();
            set_age(&path, age(i));
            Entry { path, artifacts }
        })
        .collect()
}

/// Copies the cache of `entries` from `from` to `to` (much faster than generating it again),
/// with the same ages.
pub(crate) fn copy_cache(entries: &[Entry], from: &Path, to: &Path, age: impl Fn(usize) -> u64) {
    for (i, e) in entries.iter().enumerate() {
        for src in std::iter::once(&e.path).chain(&e.artifacts) {
            let dst = to.join(src.strip_prefix(from).unwrap());
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if !dst.exists() {
                fs::copy(src, &dst).unwrap();
            }
            set_age(&dst, age(i));
        }
    }
}

/// `tarn --cache-dir ROOT args…`, sealed.
fn tarn(sb: &Sandbox, root: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--cache-dir", root.to_str().unwrap()];
    all.extend_from_slice(args);
    sb.tarn(&all)
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `out` is a failure (exit code 1) whose message contains `needle`.
fn fails_with(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "{err}");
}

/// `tarn --json cache prune --max-size 0B --grace 0s`: everything not kept goes (also what
/// the checks of a test just read).
fn prune_everything(sb: &Sandbox, root: &Path) -> std::process::Output {
    tarn(
        sb,
        root,
        &[
            "--json",
            "cache",
            "prune",
            "--max-size",
            "0B",
            "--grace",
            "0s",
        ],
    )
}

/// `tarn verify` and the second reader both accept the cache.
pub(crate) fn assert_sound(sb: &Sandbox, root: &Path) {
    let out = tarn(sb, root, &["verify"]);
    assert!(
        out.status.success(),
        "tarn verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let problems = cache_problems(root);
    assert!(problems.is_empty(), "second reader: {problems:#?}");
}

#[test]
fn sizes_and_durations_need_units_and_a_foreign_directory_is_refused() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    lake_cache(&root, 3, 1, |_| 10 * DAY);
    for (args, needle) in [
        (vec!["--max-size", "20"], "has no unit"),
        (vec!["--max-size", "20 parsecs"], "unknown unit"),
        (vec!["--max-age", "30"], "has no unit"),
        (vec!["--max-size", "1GB", "--grace", "soon"], "--grace"),
        (vec![], "--max-size"),
    ] {
        let mut all = vec!["cache", "prune"];
        all.extend(args.iter().copied());
        let out = tarn(&sb, &root, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
        assert!(err.contains(needle), "{all:?}: {err}");
    }
    assert_eq!(cache_problems(&root), Vec::<String>::new());
    assert_eq!(fs::read_dir(root.join("artifacts")).unwrap().count(), 6);

    let home = sb.path("documents");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join("thesis.tex"), "precious").unwrap();
    let out = tarn(&sb, &home, &["cache", "prune", "--max-size", "0B"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a Lake cache") && err.contains("thesis.tex"),
        "{err}"
    );
    assert!(home.join("thesis.tex").exists());
    let out = tarn(
        &sb,
        &sb.path("nowhere"),
        &["cache", "prune", "--max-age", "1d"],
    );
    fails_with(&out, "no cache to prune");
}

#[test]
fn pruned_to_a_size_the_newest_stay_and_the_cache_stays_sound() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    // Entry i was last used 20 - i days ago: the highest indices are the newest.
    let entries = lake_cache(&root, 20, 2, |i| (20 - i as u64) * DAY);
    let size_of = |e: &Entry| -> u64 {
        fs::metadata(&e.path).unwrap().len()
            + e.artifacts
                .iter()
                .map(|a| fs::metadata(a).unwrap().len())
                .sum::<u64>()
    };
    let newest_8: u64 = entries[12..].iter().map(size_of).sum();
    let total: u64 = entries.iter().map(size_of).sum();
    fs::write(root.join("NOTES.md"), "not Lake's").unwrap();
    let max = newest_8.to_string() + "B";

    let dry = tarn(
        &sb,
        &root,
        &["--json", "cache", "prune", "--max-size", &max, "--dry-run"],
    );
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry = json_of(&dry);
    assert_eq!(dry["dry_run"], true);
    assert!(entries.iter().all(|e| e.path.exists()));

    let out = tarn(
        &sb,
        &root,
        &["--json", "cache", "prune", "--max-size", &max],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(r["removed"], dry["removed"]);
    assert_eq!(r["removed"]["entries"], 12);
    assert_eq!(r["removed"]["artifacts"], 24);
    assert_eq!(r["remaining"]["bytes"], newest_8);
    assert_eq!(r["removed"]["bytes"], total - newest_8);
    assert_eq!(r["size_reached"], true);
    let oldest = r["oldest_kept"].as_u64().unwrap();
    let eight_days_ago = tarn_store::unix_seconds(SystemTime::now()) - 8 * DAY;
    assert!(oldest.abs_diff(eight_days_ago) < 60, "{r}");
    assert_eq!(
        r["unknown"][0]["path"],
        root.join("NOTES.md").to_str().unwrap()
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.path.exists(), i >= 12, "entry {i}");
        assert!(
            e.artifacts.iter().all(|a| a.exists() == (i >= 12)),
            "artifacts of {i}"
        );
    }
    assert!(root.join("NOTES.md").exists());

    // People get a summary in words.
    let out = tarn(&sb, &root, &["cache", "prune", "--max-age", "9d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("removed 0 entries, 0 artifacts"), "{err}");
    assert!(err.contains("least recently used 8 days ago"), "{err}");
    assert!(
        err.contains("NOTES.md: not a Lake cache file; left alone"),
        "{err}"
    );
    // tarn's own reads (prune, verify) are not uses: the order is unchanged afterwards.
    assert!(tarn(&sb, &root, &["verify"]).status.success());
    let out = tarn(&sb, &root, &["cache", "prune", "--max-age", "9d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("least recently used 8 days ago"), "{err}");
    assert_sound(&sb, &root);
}

/// Reads one entry and its artifacts the way Lake's build does: `None` if the entry is gone
/// (a miss: Lake rebuilds), `Some(false)` if an artifact it names is missing.
fn lake_read(entry: &Entry) -> Option<bool> {
    fs::read(&entry.path).ok()?;
    Some(entry.artifacts.iter().all(|a| fs::read(a).is_ok()))
}

#[test]
fn a_build_reading_the_cache_during_a_prune_never_misses_what_it_used_recently() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    // 800 entries from last month, and 100 a build read ten minutes ago.
    let mut entries = lake_cache(&root, 800, 3, |_| 30 * DAY);
    let recent = lake_cache(&root, 100, 4, |_| 600);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads) = (stop.clone(), reads.clone());
        std::thread::spawn(move || {
            let mut misses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for e in &recent {
                    reads.fetch_add(1, Ordering::Relaxed);
                    if lake_read(e) != Some(true) {
                        misses.push(e.path.clone());
                    }
                }
            }
            (recent, misses)
        })
    };
    let out = tarn(
        &sb,
        &root,
        &["--json", "cache", "prune", "--max-size", "0B"],
    );
    stop.store(true, Ordering::Relaxed);
    let (recent, misses) = reader.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        misses.is_empty(),
        "{} reads missed: {misses:?}",
        misses.len()
    );
    assert!(reads.load(Ordering::Relaxed) >= 100);
    let r = json_of(&out);
    assert_eq!(r["removed"]["entries"], 800);
    assert_eq!(r["remaining"]["entries"], 100);
    assert_eq!(r["size_reached"], false);
    assert!(entries.drain(..).all(|e| !e.path.exists()));
    assert!(recent.iter().all(|e| lake_read(e) == Some(true)));
    assert_sound(&sb, &root);
}

/// The cache lock held shared, as `tarn get` or `unstage` hold it while they write.
fn hold_as_a_writer(root: &Path) -> tarn_store::CacheLock {
    tarn_store::CacheLock::acquire(&tarn_store::Cache::new(root), tarn_store::LockMode::Shared)
        .unwrap()
}

/// `tarn --cache-dir ROOT -v args…` started, its stderr captured.
fn start_tarn(sb: &Sandbox, root: &Path, args: &[&str]) -> std::process::Child {
    sb.command()
        .args(["--cache-dir", root.to_str().unwrap(), "-v"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_prune_waits_for_a_writer_and_a_second_prune() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    lake_cache(&root, 50, 5, |_| 30 * DAY);
    let writer = hold_as_a_writer(&root);
    let mut child = start_tarn(&sb, &root, &["cache", "prune", "--max-size", "0B"]);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "prune ran while a writer held the cache"
    );
    assert_eq!(fs::read_dir(root.join("outputs/pkg")).unwrap().count(), 50);
    let start = Instant::now();
    drop(writer);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting for another tarn command"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(fs::read_dir(root.join("outputs/pkg")).unwrap().count(), 0);
    assert_sound(&sb, &root);
}

#[test]
fn clean_waits_for_a_writer_like_a_prune() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    lake_cache(&root, 5, 11, |_| DAY);
    let writer = hold_as_a_writer(&root);
    let child = start_tarn(&sb, &root, &["clean"]);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        fs::read_dir(root.join("artifacts")).unwrap().count(),
        10,
        "clean removed the cache while a writer held it"
    );
    drop(writer);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting for another tarn command"), "{err}");
    assert!(!root.exists());
}

/// Kill -9 at random points of prunes, with the kill delay drawn below a clean prune's
/// measured time (the crash campaign's method); after each kill the cache must be sound,
/// and the next prune must finish the job.
#[test]
fn a_prune_killed_at_random_points_leaves_a_sound_cache() {
    let sb = Sandbox::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // How long a clean prune of this cache takes.
    let age = |i: usize| (1 + i as u64 % 50) * DAY;
    let template = sb.path("template");
    let timed_entries = lake_cache(&template, 400, 6, age);
    let timed = sb.path("timed");
    copy_cache(&timed_entries, &template, &timed, age);
    let t = Instant::now();
    let out = tarn(&sb, &timed, &["cache", "prune", "--max-size", "0B"]);
    assert!(out.status.success());
    let mut typical = t.elapsed().as_micros() as u64;
    let mut kills = 0;
    // At least 8 rounds and 4 kills that landed mid-prune: on a machine whose load changes,
    // a prune may run faster than the one timed, so a round whose prune finished before the
    // kill shortens the delays, and more rounds are run (at most 24).
    let mut round = 0u64;
    while round < 8 || (kills < 4 && round < 24) {
        round += 1;
        let root = sb.path(&format!("c{round}"));
        copy_cache(&timed_entries, &template, &root, age);
        let mut child = sb
            .command()
            .args([
                "--cache-dir",
                root.to_str().unwrap(),
                "cache",
                "prune",
                "--max-size",
                "0B",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(next() % (typical * 9 / 10).max(1)));
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            kills += 1;
        } else {
            typical = typical * 3 / 4;
        }
        let _ = child.wait();
        let problems = cache_problems(&root);
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
        assert_sound(&sb, &root);
        // The second reader's reads were uses: no grace period for them.
        let out = prune_everything(&sb, &root);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json_of(&out)["remaining"]["bytes"], 0, "round {round}");
    }
    assert!(
        kills >= 4,
        "only {kills} kills in {round} rounds landed mid-prune"
    );
    eprintln!("prune crash campaign: {kills} kills mid-prune in {round} rounds, 0 unsound caches");
}

/// A workspace's current revision: its mapping file in `revisions/pkg/`, naming the first
/// `n` entries of `entries`.
fn save_revision(root: &Path, rev: &str, entries: &[Entry], n: usize) {
    let mut text = "\"2026-03-17\"\n".to_string();
    for e in &entries[..n] {
        let input = e.path.file_stem().unwrap().to_str().unwrap();
        let names: Vec<String> = e
            .artifacts
            .iter()
            .map(|a| a.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        text.push_str(&format!(
            "[\"{input}\",{{\"o\":[\"{}\"],\"i\":\"{}\"}}]\n",
            names[0], names[1]
        ));
    }
    let dir = root.join("revisions/pkg");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("{rev}.jsonl")), text).unwrap();
    set_age(&dir.join(format!("{rev}.jsonl")), 60 * DAY);
}

#[test]
fn a_kept_workspace_keeps_what_its_current_revision_needs() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    let ws = sb.path("ws");
    let revs = git_package(&ws, "pkg", 3);
    let entries = lake_cache(&root, 12, 7, |_| 40 * DAY);
    // HEAD has no mappings (a local commit): the revision before it is what `get` used.
    save_revision(&root, &revs[1], &entries, 4);
    save_revision(&root, &revs[0], &entries[4..], 2);
    let out = tarn(
        &sb,
        &root,
        &[
            "--json",
            "cache",
            "prune",
            "--max-size",
            "1kB",
            "--keep-workspace",
            ws.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(r["kept"]["entries"], 4, "{r}");
    assert_eq!(r["kept"]["artifacts"], 8, "{r}");
    assert_eq!(r["kept"]["revisions"], 1, "{r}");
    assert_eq!(r["kept_exceeds_max_size"], true);
    for (i, e) in entries.iter().enumerate() {
        let kept = i < 4;
        assert_eq!(e.path.exists(), kept, "entry {i}");
        assert!(
            e.artifacts.iter().all(|a| a.exists() == kept),
            "artifacts of {i}"
        );
    }
    assert!(root
        .join(format!("revisions/pkg/{}.jsonl", revs[1]))
        .exists());
    assert!(!root
        .join(format!("revisions/pkg/{}.jsonl", revs[0]))
        .exists());
    let out = tarn(
        &sb,
        &root,
        &[
            "cache",
            "prune",
            "--max-size",
            "1kB",
            "--keep-workspace",
            ws.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the kept workspaces alone need"));
    assert_sound(&sb, &root);

    // A workspace `tarn get` recorded is kept without the flag, until it is gone. (The
    // checks above read every file: no grace period for those reads.)
    tarn_store::record_workspace(&tarn_store::Cache::new(&root), &ws).unwrap();
    let out = prune_everything(&sb, &root);
    assert_eq!(json_of(&out)["remaining"]["entries"], 4);
    fs::remove_dir_all(&ws).unwrap();
    let out = prune_everything(&sb, &root);
    assert_eq!(json_of(&out)["remaining"]["bytes"], 0);
    assert!(tarn_store::recorded_workspaces(&tarn_store::Cache::new(&root)).is_empty());

    let out = tarn(
        &sb,
        &root,
        &[
            "cache",
            "prune",
            "--max-size",
            "0B",
            "--keep-workspace",
            sb.path("nope").to_str().unwrap(),
        ],
    );
    fails_with(&out, "no lakefile");
}

#[test]
fn stats_count_by_scope_age_and_extension() {
    let sb = Sandbox::new();
    let root = sb.path("cache");
    let entries = lake_cache(&root, 10, 8, |i| if i < 4 { 2 * DAY } else { 100 * DAY });
    fs::write(root.join("stray.txt"), "x").unwrap();
    let out = tarn(&sb, &root, &["--json", "cache", "stats"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = json_of(&out);
    let artifact_bytes: u64 = entries
        .iter()
        .flat_map(|e| &e.artifacts)
        .map(|a| fs::metadata(a).unwrap().len())
        .sum();
    assert_eq!(s["total"]["entries"], 10);
    assert_eq!(s["total"]["artifacts"], 20);
    assert_eq!(s["by_scope"]["pkg"]["entries"]["count"], 10);
    assert_eq!(s["by_scope"]["pkg"]["artifacts"]["bytes"], artifact_bytes);
    assert_eq!(s["by_age"]["1d to 7d"]["count"], 8);
    assert_eq!(s["by_age"]["over 90d"]["count"], 12);
    assert_eq!(s["by_extension"]["olean"]["count"], 10);
    assert_eq!(s["by_extension"]["ilean"]["count"], 10);
    assert_eq!(
        s["unknown"][0]["path"],
        root.join("stray.txt").to_str().unwrap()
    );
    let out = tarn(&sb, &root, &["cache", "stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("over 90d") && text.contains("olean") && text.contains("pkg"),
        "{text}"
    );
    // Counting is not a use: nothing moved to a younger band.
    let again = json_of(&tarn(&sb, &root, &["--json", "cache", "stats"]));
    assert_eq!(again["by_age"], s["by_age"]);
}

/// A package (a git repository with one commit) whose revision is served (`put-staged` to
/// a local `tarn serve`): (server, home with the configuration, package directory, revision,
/// artifacts).
fn served_revision(tmp: &Path) -> (TarnServer, PathBuf, PathBuf, String, Vec<Art>) {
    let pkg = tmp.join("fetched");
    let rev = git_package(&pkg, "fetched", 1).remove(0);
    const KEY: &str = "ci:ci-secret";
    let srv = TarnServer::with_key(&tmp.join("data"), &format!("{KEY}:*"));
    let home = tmp.join("home");
    srv.client_home(&home);
    let arts = tarn_test::artifacts(40, 41);
    let staging = tmp.join("staging");
    write_staging(&staging, &arts, 41);
    let (code, out, err) = run(tarn_cmd(&tarn_bin(), &home)
        .env("LAKE_CACHE_KEY", KEY)
        .args(["put-staged", staging.to_str().unwrap(), "--rev", &rev])
        .args(["--repo", "org/fetched", "--service", "tarn"])
        .args(["--platform", "x86_64-unknown-linux-gnu"]));
    assert_eq!(code, 0, "{out}{err}");
    (srv, home, pkg, rev, arts)
}

fn get_cmd(home: &Path, pkg: &Path, cache: &Path, rev: &str) -> Command {
    let mut c = tarn_cmd(&tarn_bin(), home);
    c.current_dir(pkg).args([
        "-v",
        "get",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--service",
        "tarn",
        "--repo",
        "org/fetched",
        "--rev",
        rev,
        "--platform",
        "x86_64-unknown-linux-gnu",
    ]);
    c
}

#[test]
fn with_tarn_max_size_set_get_prunes_after_it_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_srv, home, pkg, rev, arts) = served_revision(tmp.path());
    let rev = rev.as_str();
    let cache = tmp.path().join("cache");
    let old = lake_cache(&cache, 30, 9, |_| 60 * DAY);

    // Off by default: nothing old goes.
    let (code, out, err) = run(&mut get_cmd(&home, &pkg, &cache, rev));
    assert_eq!(code, 0, "{out}{err}");
    assert!(old.iter().all(|e| e.path.exists()));

    let config = fs::read_to_string(home.join("config.toml")).unwrap();
    // `tarn get` with `tarn.maxSize = value` added to the configuration.
    let get_with = |value: &str| {
        let setting = format!("{config}\n[tarn]\nmaxSize = \"{value}\"\n");
        fs::write(home.join("config.toml"), setting).unwrap();
        run(&mut get_cmd(&home, &pkg, &cache, rev))
    };
    let (code, out, err) = get_with("1kB");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("tarn.maxSize 1.0 kB: pruned 30 entries, 60 artifacts"),
        "{err}"
    );
    assert!(err.contains("the cache still holds"), "{err}");
    assert!(old.iter().all(|e| !e.path.exists()));
    assert!(
        check_cache(&cache, &arts).is_empty(),
        "what get fetched stays"
    );
    let sb = Sandbox::new();
    assert_sound(&sb, &cache);
    // get recorded the workspace: its revision is kept even outside the grace period.
    let recorded = tarn_store::recorded_workspaces(&tarn_store::Cache::new(&cache));
    assert_eq!(recorded.len(), 1);
    let out = prune_everything(&sb, &cache);
    let r = json_of(&out);
    assert_eq!(r["kept"]["artifacts"], 40, "{r}");

    // A bad setting is an error naming the key.
    let (code, out, err) = get_with("20");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("tarn.maxSize: \"20\" has no unit"), "{err}");
}

#[test]
fn a_prune_and_a_get_at_once_leave_a_sound_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let (_srv, home, pkg, rev, arts) = served_revision(tmp.path());
    let rev = rev.as_str();
    let sb = Sandbox::new();
    for round in 0..4 {
        let cache = tmp.path().join(format!("cache{round}"));
        lake_cache(&cache, 200, 10 + round, |_| 60 * DAY);
        let mut get = get_cmd(&home, &pkg, &cache, rev);
        let get = get
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut prune = sb.command();
        prune.args([
            "--cache-dir",
            cache.to_str().unwrap(),
            "cache",
            "prune",
            "--max-size",
            "0B",
        ]);
        let prune = prune
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let got = get.wait_with_output().unwrap();
        let pruned = prune.wait_with_output().unwrap();
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert!(
            pruned.status.success(),
            "{}",
            String::from_utf8_lossy(&pruned.stderr)
        );
        // What get fetched is within the grace period: all of it stays, the old is gone.
        assert!(check_cache(&cache, &arts).is_empty(), "round {round}");
        assert_eq!(fs::read_dir(cache.join("outputs/pkg")).unwrap().count(), 0);
        assert_sound(&sb, &cache);
    }
}
