//! Garbage collection on the server's storage (what `tarn serve gc` runs): keep the newest
//! K revisions per revision directory and recent ones, delete unreferenced artifacts past
//! the grace period; a dry run deletes nothing; reruns are idempotent; scheduled GC runs
//! inside a serving server. (A GC killed half way is tested through the binary.)

use std::path::Path;
use std::time::{Duration, SystemTime};

use tarn_server::gc::{GcPolicy, GcReport};
use tarn_test::{make_artifacts, mapping_for, wait_until};

use crate::harness::Server;
use crate::listening::Listening;

/// Writes `bytes` at `p` (creating its directory) with its modification time `days_ago`.
fn write_aged(p: &Path, bytes: &[u8], days_ago: u64) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
    let when = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn policy(keep_revs: usize, keep_days: u64, grace_hours: u64, dry_run: bool) -> GcPolicy {
    GcPolicy {
        keep_revs,
        keep_days,
        grace_hours,
        dry_run,
    }
}

fn json(r: &GcReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

#[test]
fn gc_keeps_what_it_must_and_deletes_the_rest() {
    let srv = Server::start("");
    let data = srv.data().to_path_buf();
    let a = |s: &str, h: &str| data.join(format!("a0/{s}/{h}.art"));
    let r = |s: &str, rev: &str| data.join(format!("r0/{s}/{rev}.jsonl"));
    let arts = make_artifacts(&srv.scratch().join("arts"), 5, 100, 21);
    let h: Vec<&str> = arts.iter().map(|x| x.1.as_str()).collect();
    for (i, x) in arts.iter().enumerate() {
        write_aged(&a("s", &x.1), &x.2, if i == 3 { 0 } else { 3 });
    }
    // h[0]: referenced by the newest revisions; h[1]: only by the oldest; h[2]: by nothing
    // (old); h[3]: by nothing but new (grace); h[4]: referenced by a revision of another
    // platform directory (its own series, kept).
    write_aged(&r("s", "rev1"), mapping_for(&[h[1]]).as_bytes(), 40);
    write_aged(&r("s", "rev2"), mapping_for(&[h[0]]).as_bytes(), 39);
    write_aged(&r("s", "rev3"), mapping_for(&[h[0]]).as_bytes(), 38);
    write_aged(&r("s", "rev4"), mapping_for(&[h[0]]).as_bytes(), 37);
    write_aged(
        &r("s/pt/linux", "rev1"),
        mapping_for(&[h[4]]).as_bytes(),
        50,
    );
    let before = srv.stored();

    let v = json(&srv.gc(policy(2, 30, 24, true)));
    assert_eq!(v["revisions_deleted"], 2, "{v}");
    assert_eq!(v["artifacts_deleted"], 2, "{v}");
    assert_eq!(v["artifacts_in_grace"], 1, "{v}");
    assert_eq!(
        v["artifact_bytes_deleted"].as_u64().unwrap(),
        (arts[1].2.len() + arts[2].2.len()) as u64
    );
    assert_eq!(srv.stored(), before, "a dry run deletes nothing");

    let v = json(&srv.gc(policy(2, 30, 24, false)));
    assert_eq!(v["revisions_deleted"], 2, "{v}");
    assert_eq!(v["artifacts_deleted"], 2, "{v}");
    assert!(!r("s", "rev1").exists() && !r("s", "rev2").exists());
    assert!(r("s", "rev3").exists() && r("s", "rev4").exists() && r("s/pt/linux", "rev1").exists());
    assert!(a("s", h[0]).exists() && a("s", h[3]).exists() && a("s", h[4]).exists());
    assert!(!a("s", h[1]).exists() && !a("s", h[2]).exists());

    // Idempotent: a rerun finds nothing more.
    let v = json(&srv.gc(policy(2, 30, 24, false)));
    assert_eq!(v["revisions_deleted"], 0, "{v}");
    assert_eq!(v["artifacts_deleted"], 0, "{v}");
    // keep-days keeps everything recent.
    let v = json(&srv.gc(policy(0, 100, 0, true)));
    assert_eq!(v["revisions_deleted"], 0, "{v}");
}

/// A signature object goes with its revision (docs/trust.md): GC deletes the `.sig` of each
/// revision it deletes, keeps the `.sig` of each revision it keeps, deletes a `.sig` left
/// without a revision once it is past the grace period, and keeps a fresh one (an upload in
/// progress stores the signature before the revision file).
#[test]
fn gc_deletes_the_signature_of_each_revision_it_deletes() {
    let srv = Server::start("");
    let data = srv.data().to_path_buf();
    let r = |rev: &str| data.join(format!("r0/s/{rev}.jsonl"));
    let sig = |rev: &str| data.join(format!("r0/s/{rev}.jsonl.sig"));
    let arts = make_artifacts(&srv.scratch().join("arts"), 1, 100, 22);
    write_aged(&data.join(format!("a0/s/{}.art", arts[0].1)), &arts[0].2, 3);
    let m = mapping_for(&[arts[0].1.as_str()]);
    for (rev, days) in [("rev1", 40), ("rev2", 39), ("rev3", 38)] {
        write_aged(&r(rev), m.as_bytes(), days);
        write_aged(&sig(rev), b"tarn-signature 1\n", days);
    }
    write_aged(&sig("orphan-old"), b"tarn-signature 1\n", 3);
    write_aged(&sig("orphan-new"), b"tarn-signature 1\n", 0);

    let v = json(&srv.gc(policy(1, 30, 24, true)));
    assert_eq!(v["revisions_deleted"], 2, "{v}");
    assert_eq!(v["signatures_deleted"], 3, "{v}");
    assert!(sig("rev1").exists(), "a dry run deletes nothing");

    let v = json(&srv.gc(policy(1, 30, 24, false)));
    assert_eq!(v["signatures_deleted"], 3, "{v}");
    for rev in ["rev1", "rev2"] {
        assert!(!r(rev).exists() && !sig(rev).exists(), "{rev}");
    }
    assert!(r("rev3").exists() && sig("rev3").exists());
    assert!(!sig("orphan-old").exists());
    assert!(sig("orphan-new").exists(), "within the grace period");
    let v = json(&srv.gc(policy(1, 30, 24, false)));
    assert_eq!(v["signatures_deleted"], 0, "{v}");
}

/// `tarn serve --gc-interval 1s`: GC runs inside the running server on the `[gc]` policy
/// (an unreferenced artifact past the grace period goes, a new one stays), and the server's
/// own counts follow (`tarn_gc_deleted_total`, `tarn_stored_objects`, a 404 for the
/// deleted artifact). Served in process on a free port ([`Listening`]).
#[test]
fn scheduled_gc_runs_inside_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let arts = make_artifacts(&tmp.path().join("arts"), 2, 100, 8);
    let old = data.join(format!("a0/s/{}.art", arts[0].1));
    let new = data.join(format!("a0/s/{}.art", arts[1].1));
    write_aged(&old, &arts[0].2, 2);
    write_aged(&new, &arts[1].2, 0);
    let a_day_ago = SystemTime::now() - Duration::from_secs(86_400);
    assert!(std::fs::metadata(&old).unwrap().modified().unwrap() < a_day_ago);
    let srv = Listening::start_in(
        tmp,
        "[gc]\nkeep_revs = 0\nkeep_days = 0\ngrace_hours = 1\n",
        tarn_server::ServeOptions {
            gc_interval: Some(Duration::from_secs(1)),
        },
    );
    let url = &srv.url;
    let metric = |name: &str| {
        tarn_test::metric_sample(
            &tarn_test::http_get_text(&format!("{url}/metrics")),
            name,
            "",
        )
    };
    wait_until(20, || !old.exists());
    assert!(new.exists(), "within the grace period");
    wait_until(5, || metric("tarn_gc_deleted_total") == 1);
    assert_eq!(metric("tarn_stored_objects"), 1);
    let (code, _) = tarn_test::curl(&[&format!("{url}/a0/s/{}.art", arts[0].1)]);
    assert_eq!(code, 404);
}
