//! `tarn serve gc` as a command: killed with SIGKILL half way, a rerun finishes the job.
//! What GC keeps and deletes is tested in process (`crates/tarn-server/tests/gc.rs`).

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
