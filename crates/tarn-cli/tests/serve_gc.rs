//! `tarn serve gc`: keep the newest K revisions per scope and recent ones, delete
//! unreferenced artifacts past the grace period; dry run; idempotent reruns.

use std::path::Path;
use std::process::Command;

use tarn_test::*;

use crate::BIN;

fn gc(data: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["--json", "serve", "gc", "--data"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn touch(p: &Path, ago: &str) {
    let st = Command::new("touch")
        .args(["-m", "-d", ago])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn gc_keeps_what_it_must_and_deletes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let a = |s: &str, h: &str| data.join(format!("a0/{s}/{h}.art"));
    let r = |s: &str, rev: &str| data.join(format!("r0/{s}/{rev}.jsonl"));
    let arts = make_artifacts(&tmp.path().join("arts"), 5, 100, 21);
    let h: Vec<&str> = arts.iter().map(|x| x.1.as_str()).collect();
    let write = |p: &Path, b: &[u8]| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    };
    for (i, x) in arts.iter().enumerate() {
        write(&a("s", &x.1), &x.2);
        touch(&a("s", &x.1), if i == 3 { "now" } else { "3 days ago" });
    }
    // h[0]: referenced by the newest revisions; h[1]: only by the oldest; h[2]: by nothing
    // (old); h[3]: by nothing but new (grace); h[4]: referenced by a revision of another
    // platform directory (its own series, kept).
    write(&r("s", "rev1"), mapping_for(&[h[1]]).as_bytes());
    write(&r("s", "rev2"), mapping_for(&[h[0]]).as_bytes());
    write(&r("s", "rev3"), mapping_for(&[h[0]]).as_bytes());
    write(&r("s", "rev4"), mapping_for(&[h[0]]).as_bytes());
    write(&r("s/pt/linux", "rev1"), mapping_for(&[h[4]]).as_bytes());
    touch(&r("s", "rev1"), "40 days ago");
    touch(&r("s", "rev2"), "39 days ago");
    touch(&r("s", "rev3"), "38 days ago");
    touch(&r("s", "rev4"), "37 days ago");
    touch(&r("s/pt/linux", "rev1"), "50 days ago");
    let before = stored_files(&data);

    let args = ["--keep-revs", "2", "--keep-days", "30", "--grace", "24"];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let v = gc(&data, &dry);
    assert_eq!(v["revisions_deleted"], 2, "{v}");
    assert_eq!(v["artifacts_deleted"], 2, "{v}");
    assert_eq!(v["artifacts_in_grace"], 1, "{v}");
    assert_eq!(
        v["artifact_bytes_deleted"].as_u64().unwrap(),
        (arts[1].2.len() + arts[2].2.len()) as u64
    );
    assert_eq!(stored_files(&data), before, "a dry run deletes nothing");

    let v = gc(&data, &args);
    assert_eq!(v["revisions_deleted"], 2, "{v}");
    assert_eq!(v["artifacts_deleted"], 2, "{v}");
    assert!(!r("s", "rev1").exists() && !r("s", "rev2").exists());
    assert!(r("s", "rev3").exists() && r("s", "rev4").exists() && r("s/pt/linux", "rev1").exists());
    assert!(a("s", h[0]).exists() && a("s", h[3]).exists() && a("s", h[4]).exists());
    assert!(!a("s", h[1]).exists() && !a("s", h[2]).exists());

    // Idempotent: a rerun finds nothing more.
    let v = gc(&data, &args);
    assert_eq!(v["revisions_deleted"], 0, "{v}");
    assert_eq!(v["artifacts_deleted"], 0, "{v}");
    // keep-days keeps everything recent.
    let v = gc(
        &data,
        &[
            "--keep-revs",
            "0",
            "--keep-days",
            "100",
            "--grace",
            "0",
            "--dry-run",
        ],
    );
    assert_eq!(v["revisions_deleted"], 0, "{v}");
}

#[test]
fn gc_killed_half_way_is_finished_by_a_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = data.join("a0/s");
    std::fs::create_dir_all(&dir).unwrap();
    // 8000 old unreferenced artifacts, one referenced by the kept revision.
    let keep = make_artifacts(&tmp.path().join("k"), 1, 50, 99);
    std::fs::write(dir.join(format!("{}.art", keep[0].1)), &keep[0].2).unwrap();
    let mut names = Vec::new();
    for i in 0..8000u32 {
        let body = format!("junk {i}");
        let h = hash_hex(body.as_bytes());
        std::fs::write(dir.join(format!("{h}.art")), body).unwrap();
        names.push(h);
    }
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("touch -m -d '3 days ago' {}/*.art", dir.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let rev = data.join("r0/s/rev.jsonl");
    std::fs::create_dir_all(rev.parent().unwrap()).unwrap();
    std::fs::write(&rev, mapping_for(&[keep[0].1.as_str()])).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "gc", "--data"])
        .arg(&data)
        .args(["--keep-revs", "1", "--grace", "1"])
        .spawn()
        .unwrap();
    // Kill as soon as some artifacts are gone.
    wait_until(30, || {
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) < 7990
    });
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let left = std::fs::read_dir(&dir).unwrap().count();
    assert!(left > 1, "the kill came too late ({left} left)");
    let v = gc(&data, &["--keep-revs", "1", "--grace", "1"]);
    assert_eq!(
        v["artifacts_deleted"].as_u64().unwrap() as usize,
        left - 1,
        "{v}"
    );
    assert_eq!(
        stored_files(&data),
        vec![
            format!("a0/s/{}.art", keep[0].1),
            "r0/s/rev.jsonl".to_string()
        ]
    );
}
