//! kill -9 of `tarn serve` during a burst of uploads: after a restart, a scrub finds no
//! partial or corrupt object, and the spool files of the dead process are gone.

use std::process::Command;

use tarn_test::*;

use crate::BIN;

const KEY: &str = "ci:ci-secret";

fn scrub(data: &std::path::Path) -> (i32, serde_json::Value) {
    let out = Command::new(BIN)
        .args(["--json", "serve", "scrub", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scrub --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

#[test]
fn kill_9_mid_burst_leaves_no_partial_object() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key_arg = format!("{KEY}:*");
    let mut srv = TarnServer::start(&["--data", data.to_str().unwrap(), "--key", &key_arg]);
    let arts = make_artifacts(&tmp.path().join("arts"), 60, 3 << 20, 11);
    let pairs: Vec<_> = arts
        .iter()
        .map(|(p, h, _)| (p.clone(), format!("{}/a0/burst/{h}.art", srv.url)))
        .collect();
    // The burst: Lake's parallel curl, rate-limited so the kill lands mid-transfer.
    let cfg = tmp.path().join("curl.cfg");
    let mut s = String::new();
    for (p, url) in &pairs {
        s.push_str(&format!("-T \"{}\"\nurl = \"{url}\"\n", p.display()));
    }
    std::fs::write(&cfg, s).unwrap();
    let mut burst = Command::new("curl")
        .args([
            "-Z",
            "--parallel-max",
            "8",
            "-X",
            "PUT",
            "--limit-rate",
            "20M",
            "-s",
            "-o",
            "/dev/null",
        ])
        .args(["--aws-sigv4", "aws:amz:auto:s3", "--user", KEY, "--config"])
        .arg(&cfg)
        .spawn()
        .unwrap();
    // Kill once some uploads are stored and others are surely being received.
    wait_until(60, || srv.metric("tarn_uploads_created_total", "") >= 5);
    srv.kill9();
    let _ = burst.kill();
    let _ = burst.wait();
    let stored_before = stored_files(&data);
    assert!(!stored_before.is_empty());
    assert!(
        stored_before.len() < arts.len(),
        "the kill came too late to test anything"
    );
    // Before a restart: the objects are fine; the dead process's spool files are reported.
    let (_, v) = scrub(&data);
    assert_eq!(v["corrupt"], serde_json::json!([]), "{v}");
    assert_eq!(v["misnamed"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["artifacts"].as_u64().unwrap() as usize,
        stored_before.len()
    );
    assert!(
        !v["temp_leftovers"].as_array().unwrap().is_empty(),
        "the kill should have interrupted uploads: {v}"
    );
    // Restart on the same data: the spool is cleaned; uploads resume and complete.
    let srv = TarnServer::start(&["--data", data.to_str().unwrap(), "--key", &key_arg]);
    let pairs: Vec<_> = arts
        .iter()
        .map(|(p, h, _)| (p.clone(), format!("{}/a0/burst/{h}.art", srv.url)))
        .collect();
    let codes = lake_parallel_put(KEY, &pairs, &cfg, false);
    assert!(codes.iter().all(|(_, c)| *c == 200), "{codes:?}");
    let (code, v) = scrub(&data);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["temp_leftovers"], serde_json::json!([]), "{v}");
    assert_eq!(v["corrupt"], serde_json::json!([]), "{v}");
    assert_eq!(v["artifacts"].as_u64().unwrap() as usize, arts.len());
    // The scrub is able to fail: corrupt one object.
    let victim = data.join(format!("a0/burst/{}.art", arts[0].1));
    let mut perms = std::fs::metadata(&victim).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&victim, perms).unwrap();
    std::fs::write(&victim, b"truncated").unwrap();
    let (code, v) = scrub(&data);
    assert_eq!(code, 1);
    assert_eq!(v["corrupt"].as_array().unwrap().len(), 1, "{v}");
}
