//! Temp files left by killed runs (issue 9, item 8): `verify` reports them instead of "all
//! good", and a later run removes those older than the grace period whose owner is dead,
//! never those of a live process.

use std::path::Path;

use tarn_test::*;

use crate::BIN;

#[test]
fn verify_reports_a_killed_runs_temp_file_and_a_later_run_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let arts = artifacts(3, 5);
    std::fs::create_dir_all(cache.join("artifacts")).unwrap();
    for a in &arts {
        std::fs::write(cache.join("artifacts").join(&a.file_name), &a.content).unwrap();
    }
    // A pid above the kernel's maximum: certainly dead. And one of a live process (us).
    let dead = cache.join("artifacts/.tarn-tmp.4194305.7.123");
    let live = cache
        .join("artifacts")
        .join(format!(".tarn-tmp.{}.7.123", std::process::id()));
    std::fs::write(&dead, b"half an artifact").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    let verify = |grace: &str| {
        run(tarn_cmd(Path::new(BIN), tmp.path())
            .env("TARN_TEMP_GRACE_SECS", grace)
            .args(["--cache-dir", cache.to_str().unwrap(), "verify"]))
    };
    // Young: kept, but reported.
    let (code, out, err) = verify("3600");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(".tarn-tmp.4194305") && err.contains("no longer running"),
        "{err}"
    );
    assert!(
        !out.contains("all good") && !err.contains("all good"),
        "{err}"
    );
    assert!(dead.exists());
    // Past the grace period: removed by the next run, which is then clean.
    let (code, out, err) = verify("0");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("removed 1 stale temp file"), "{err}");
    assert!(
        err.contains("all good") || out.contains("all good"),
        "{err}"
    );
    assert!(!dead.exists());
    assert!(live.exists(), "a live process's temp file was removed");
}
