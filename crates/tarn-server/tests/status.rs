//! The status page (`GET /`) and its JSON (`GET /api/status`): a server holding uploads in
//! a public and a private scope, refusals, reads, a GC run and a scrub; what an anonymous
//! and a signed viewer see; ListBuckets still answered at `/` for S3 clients; the listing
//! cached; the journal kept across a restart; the same on the S3 backend; and the page in a
//! real headless Chromium (over a socket), at desktop and phone width, with screenshots
//! kept as test artifacts in `target/tarn-test/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tarn_server::gc::GcPolicy;
use tarn_test::{make_artifacts, mapping_for, require_program, S3};

use crate::harness::{key, s3_storage_with_ci_key, Req, Server};

const CI: &str = "ci:ci-secret";
const READER: &str = "reader:reader-secret";
const MAPPINGS: &str = "application/vnd.reservoir.outputs+json-lines";
const ART: &str = "application/vnd.reservoir.artifact";
/// Revisions uploaded to the public scope (more than the 20 listed per scope).
const PUBLIC_REVS: usize = 23;

struct Fixture {
    srv: Server,
    /// The public scope's revisions, oldest first (the one with a platform part last).
    revs: Vec<String>,
}

fn rev_name(i: usize) -> String {
    // Git-shaped: 40 hex digits, so the page has to cope with long names.
    let mixed = (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    format!("{mixed:032x}{:08x}", i + 1)
}

/// A server with: public scope `pub/demo` (artifacts, 23 revisions plus one under a
/// platform directory), private scope `team/secret` (one revision), two refused uploads,
/// a hit and a miss, a GC run (deleting one orphan artifact) and a scrub.
fn fixture() -> Fixture {
    let srv = Server::start(&format!(
        r#"public_read = ["pub/*"]

{}
[[key]]
id = "reader"
secret = "reader-secret"
read = ["team/*"]
"#,
        key("ci", &["*"], &["*"])
    ));
    let arts = make_artifacts(&srv.scratch().join("arts"), 4, 3000, 77);
    let put_art = |scope: &str, i: usize| {
        let url = format!("/a0/{scope}/{}.art", arts[i].1);
        let r = srv.send(
            Req::put(&url, arts[i].2.clone())
                .header("content-type", ART)
                .signed(CI),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    put_art("pub/demo", 0);
    put_art("pub/demo", 1);
    put_art("pub/demo", 3); // referenced by nothing: GC deletes it
    put_art("team/secret", 2);
    let put_rev = |path: &str, hashes: &[&str]| {
        let req = Req::put(&format!("/r0/{path}.jsonl"), mapping_for(hashes))
            .header("content-type", MAPPINGS)
            .signed(CI);
        let r = srv.send(req);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    };
    let mut revs = Vec::new();
    for i in 0..PUBLIC_REVS {
        let rev = rev_name(i);
        // Even revisions reference one artifact, odd ones two.
        let hashes: Vec<&str> = if i % 2 == 0 {
            vec![&arts[0].1]
        } else {
            vec![&arts[0].1, &arts[1].1]
        };
        put_rev(&format!("pub/demo/{rev}"), &hashes);
        revs.push(rev);
    }
    let platform_rev = rev_name(100);
    put_rev(
        &format!("pub/demo/pt/x86_64-unknown-linux-gnu/{platform_rev}"),
        &[&arts[1].1],
    );
    revs.push(platform_rev);
    put_rev("team/secret/cafe0123", &[&arts[2].1]);
    // Refusals: a body that does not hash to its name (public scope), an anonymous upload
    // (private scope).
    let r = srv.send(
        Req::put(
            &format!("/a0/pub/demo/{}.art", arts[2].1),
            arts[1].2.clone(),
        )
        .signed(CI),
    );
    assert_eq!(r.status, 400);
    let r = srv.send(Req::put(
        &format!("/a0/team/secret/{}.art", arts[2].1),
        arts[2].2.clone(),
    ));
    assert_eq!(r.status, 403);
    // A hit and a miss in the public scope.
    assert_eq!(
        srv.send(Req::get(&format!("/a0/pub/demo/{}.art", arts[0].1)))
            .status,
        200
    );
    assert_eq!(
        srv.send(Req::get(&format!("/a0/pub/demo/{}.art", arts[2].1)))
            .status,
        404
    );
    // GC and scrub, run as maintenance commands beside the server (as an operator's cron).
    srv.gc(GcPolicy {
        keep_revs: 50,
        keep_days: 0,
        grace_hours: 0,
        dry_run: false,
    });
    srv.scrub();
    Fixture { srv, revs }
}

/// `GET /api/status` as JSON, signed with `key` if given.
fn status_json(srv: &Server, key: Option<&str>) -> serde_json::Value {
    let mut req = Req::get("/api/status");
    if let Some(k) = key {
        req = req.signed(k);
    }
    let r = srv.send(req);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    r.json()
}

fn scope<'a>(v: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    v["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == name)
}

#[test]
fn status_json_is_scoped_versioned_and_complete() {
    let fx = fixture();
    let v = status_json(&fx.srv, None);
    let text = v.to_string();
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["viewer"]["key_id"], serde_json::Value::Null);
    let bad = tarn_test::json_keys_not_snake_case(&v, "/api/status");
    assert!(bad.is_empty(), "keys that are not snake_case: {bad:?}");

    // The private scope is nowhere in the anonymous view: not listed, not in uploads or
    // refusals, not in the totals.
    assert!(!text.contains("team/secret"), "{text}");
    assert!(!text.contains("cafe0123"), "{text}");
    assert_eq!(v["scopes"].as_array().unwrap().len(), 1, "{v}");
    let s = scope(&v, "pub/demo").expect("the public scope is listed");
    assert_eq!(s["public"], true);
    assert_eq!(s["revisions"], PUBLIC_REVS + 1, "every revision is counted");
    assert_eq!(s["artifacts"], 2, "the orphan was collected: {s}");
    let revs = s["newest_revisions"].as_array().unwrap();
    assert_eq!(revs.len(), 20, "the listing is bounded");
    // Newest first: the platform revision, then the public revisions from the last one.
    let shown: Vec<&str> = revs.iter().map(|r| r["rev"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = fx.revs.iter().rev().map(String::as_str).collect();
    want.truncate(20);
    assert_eq!(shown, want);
    assert_eq!(revs[0]["platform"], "x86_64-unknown-linux-gnu");
    assert_eq!(revs[1]["platform"], serde_json::Value::Null);
    // Key ids are shown to key holders only (issue 18, item 5).
    for r in revs {
        assert_eq!(r["uploader"], serde_json::Value::Null, "{r}");
    }
    // Revision 22 (even) references artifact 0; revision 21 (odd) artifacts 0 and 1.
    assert_eq!(revs[1]["artifacts"], 1);
    assert_eq!(revs[1]["bytes"], 3000);
    assert_eq!(revs[2]["artifacts"], 2);
    assert_eq!(revs[2]["bytes"], 3000 + 3001);
    assert_eq!(s["hits"], 1, "{s}");
    assert_eq!(s["misses"], 1, "{s}");
    assert_eq!(s["bytes_served"], 3000, "{s}");
    assert_eq!(v["totals"]["scopes"], 1);
    assert_eq!(v["totals"]["revisions"], PUBLIC_REVS + 1);
    assert_eq!(v["totals"]["artifacts"], 2);
    assert_eq!(v["totals"]["artifact_bytes"], 3000 + 3001);

    let uploads = v["recent_uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 20);
    assert_eq!(uploads[0]["rev"], fx.revs[PUBLIC_REVS].as_str());
    assert_eq!(uploads[0]["key_id"], serde_json::Value::Null);
    assert_eq!(uploads[0]["artifacts"], 1);
    let rejections = v["recent_rejections"].as_array().unwrap();
    assert_eq!(rejections.len(), 1, "{v}");
    assert_eq!(rejections[0]["code"], "BadDigest");
    assert_eq!(rejections[0]["status"], 400);
    assert_eq!(rejections[0]["key_id"], serde_json::Value::Null);
    assert_eq!(rejections[0]["scope"], "pub/demo");

    let gc = &v["last_gc"];
    assert_eq!(gc["trigger"], "command", "{gc}");
    assert_eq!(gc["report"]["artifacts_deleted"], 1, "{gc}");
    assert_eq!(gc["report"]["revisions_deleted"], 0, "{gc}");
    assert_eq!(gc["error"], serde_json::Value::Null);
    let scrub = &v["last_scrub"];
    assert_eq!(scrub["report"]["artifacts"], 3, "{scrub}");
    assert_eq!(scrub["report"]["corrupt"], 0, "{scrub}");

    let hour = &v["traffic"]["last_hour"];
    assert_eq!(hour["period_secs"], 60);
    assert_eq!(hour["requests"].as_array().unwrap().len(), 60);
    let requests: u64 = hour["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    // 4 artifact and 25 revision uploads, 2 refusals, 2 reads (this request is counted
    // once it is answered).
    assert!(requests >= 33, "{hour}");
    assert_eq!(
        v["traffic"]["last_day"]["requests"]
            .as_array()
            .unwrap()
            .len(),
        24
    );
    assert_eq!(v["scan"]["storage"], "local");

    // A key that may read the private scope sees it, with its refusal.
    let v = status_json(&fx.srv, Some(READER));
    assert_eq!(v["viewer"]["key_id"], "reader");
    let s = scope(&v, "team/secret").expect("the private scope is listed for its reader");
    assert_eq!(s["public"], false);
    assert_eq!(s["revisions"], 1);
    assert_eq!(s["newest_revisions"][0]["rev"], "cafe0123");
    assert_eq!(s["hits"], 0);
    assert!(scope(&v, "pub/demo").is_some());
    assert_eq!(v["totals"]["scopes"], 2);
    let codes: Vec<&str> = v["recent_rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    // The anonymous upload refused in the private scope is not journaled (issue 18, item 5:
    // anyone could fill "Recent rejections" and push the real ones out); the signed one is,
    // with its key id for this key holder.
    assert_eq!(codes, ["BadDigest"], "{v}");
    assert_eq!(v["recent_rejections"][0]["key_id"], "ci");
    assert_eq!(v["recent_uploads"][0]["key_id"], "ci");
    let s = scope(&v, "pub/demo").unwrap();
    assert_eq!(s["newest_revisions"][0]["uploader"], "ci");
    // A bad signature is refused, not shown the public view.
    let r = fx.srv.send(Req::get("/api/status").signed("reader:wrong"));
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn status_page_is_html_for_browsers_and_list_buckets_for_s3_clients() {
    let fx = fixture();
    let srv = &fx.srv;
    let t = Instant::now();
    let r = srv.send(Req::get("/").header("accept", "text/html"));
    let first = t.elapsed();
    let html = r.text();
    assert_eq!(r.status, 200, "{html}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP: {:?}", r.headers));
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "no script on the page"
    );
    for want in [
        "pub/demo",
        "Recent uploads",
        "Recent rejections",
        "BadDigest",
        "Last GC (command)",
        "deleted 0 revisions and 1 artifacts",
        "Last scrub (command)",
        "0 corrupt",
        "newest 20 of 24 revisions shown",
        "x86_64-unknown-linux-gnu",
        "Public view",
        "<svg",
    ] {
        assert!(
            html.contains(want),
            "{want:?} missing from the page:\n{html}"
        );
    }
    assert!(
        !html.contains("team/secret"),
        "private scope shown anonymously"
    );
    // Without an Accept header too (an unsigned request is never an S3 client's).
    let r = srv.send(Req::get("/"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("pub/demo"));
    // HEAD: headers only.
    let r = srv.send(Req::head("/"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().contains("text/html"));
    assert!(!r.text().contains("<html"));

    // S3 clients sign `GET /`: that is still ListBuckets (awscli and rclone send no Accept
    // with text/html).
    let r = srv.send(Req::get("/").signed(CI));
    let xml = r.text();
    assert_eq!(r.status, 200, "{xml}");
    assert!(r
        .header("content-type")
        .unwrap()
        .contains("application/xml"));
    assert!(xml.contains("<ListAllMyBucketsResult"), "{xml}");
    assert!(xml.contains("<Name>a0</Name>") && xml.contains("<Name>r0</Name>"));
    // A signed request that asks for HTML gets the page with that key's view.
    let r = srv.send(Req::get("/").header("accept", "text/html").signed(CI));
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(
        page.contains("team/secret") && page.contains("Signed view for key"),
        "{page}"
    );
    // Other methods on `/` are still refused as before.
    assert_eq!(srv.send(Req::post("/", "x")).status, 405);

    // The listing is cached: a revision written behind the server's back does not appear
    // until the cache expires (10 s), however often the page is loaded.
    std::fs::write(
        srv.data().join("r0/pub/demo/sneaky.jsonl"),
        mapping_for(&[]),
    )
    .unwrap();
    let t = Instant::now();
    for _ in 0..20 {
        let r = srv.send(Req::get("/"));
        assert_eq!(r.status, 200);
        assert!(!r.text().contains("sneaky") || t.elapsed().as_secs() >= 9);
    }
    let twenty = t.elapsed();
    eprintln!(
        "status page: {} bytes of HTML; first load {:?} (a storage scan), 20 cached loads {:?}",
        html.len(),
        first,
        twenty
    );
    let m = srv.metric("tarn_requests_total", "route=\"status\"");
    assert!(
        m >= 24,
        "status requests are counted under their own route: {m}"
    );
}

#[test]
fn status_journal_survives_a_restart() {
    let fx = fixture();
    let before = status_json(&fx.srv, None);
    let srv = fx.srv.restart();
    let v = status_json(&srv, None);
    assert_eq!(v["recent_uploads"], before["recent_uploads"]);
    assert_eq!(v["last_gc"]["report"], before["last_gc"]["report"]);
    assert_eq!(
        v["last_scrub"]["finished_unix"],
        before["last_scrub"]["finished_unix"]
    );
    let signed = status_json(&srv, Some(CI));
    let s = scope(&signed, "pub/demo").unwrap();
    assert_eq!(s["newest_revisions"][0]["uploader"], "ci");
    let s = scope(&v, "pub/demo").unwrap();
    // Reads and refusals are counted from the start of this process.
    assert_eq!(s["hits"], 0);
    assert_eq!(v["recent_rejections"], serde_json::json!([]));
    // The files are tarn's versioned format, written whole.
    let dir = srv.data().join(".tarn-status");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["gc.json", "scrub.json", "uploads.json"]);
    for n in &names {
        let f: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(n)).unwrap()).unwrap();
        assert_eq!(f["version"], 1, "{n}");
    }
    // A damaged file is ignored with a warning, never a failed start.
    std::fs::write(dir.join("gc.json"), b"{\"version\":1,").unwrap();
    let srv = srv.restart();
    let v = status_json(&srv, None);
    assert_eq!(v["last_gc"], serde_json::Value::Null);
    assert_eq!(v["recent_uploads"].as_array().unwrap().len(), 20);
}

/// `target/tarn-test/screenshots/` (or under `CARGO_TARGET_DIR`).
fn screenshot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root.join(d),
        None => root.join("target"),
    };
    let dir = target.join("tarn-test/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    // Chromium puts its singleton socket under TMPDIR, and a Unix socket path holds at most
    // 107 bytes: the suite's TMPDIR inside a deep checkout (a CI workspace, act's) is too long.
    let short_tmp = tempfile::Builder::new()
        .prefix("tarn-chromium")
        .tempdir_in("/tmp")
        .unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(["--disable-dev-shm-usage", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .env("HOME", profile)
        .env("TMPDIR", short_tmp.path())
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
#[ignore = "needs `chromium`; scripts/test.sh installs it and runs this test"]
fn status_page_in_headless_chromium() {
    require_program("chromium", "apt-get install -y chromium (Debian's package)");
    let fx = fixture();
    let url = format!("{}/", fx.srv.listen());
    let profile = fx.srv.scratch().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    // The DOM Chromium built (no script runs: the page has none and its CSP forbids any).
    let out = chromium(&profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    for want in [
        "tarn serve",
        "pub/demo",
        &fx.revs[PUBLIC_REVS - 1],
        "Recent rejections",
        "BadDigest",
        "Last GC (command)",
        "requests per minute",
    ] {
        assert!(
            dom.contains(want),
            "{want:?} is not on the page Chromium shows:\n{dom}"
        );
    }
    assert!(!dom.contains("team/secret"));
    let dir = screenshot_dir();
    // The two views asked for, and the whole page at phone width (a tall window) for
    // review: nothing may scroll sideways there.
    for (name, size) in [
        ("desktop", "1280,900"),
        ("phone", "390,844"),
        ("phone-full", "390,5200"),
        ("desktop-full", "1280,2600"),
    ] {
        let png = dir.join(format!("status-{name}.png"));
        let _ = std::fs::remove_file(&png);
        chromium(
            &profile,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
                &url,
            ],
        );
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            png.display()
        );
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        assert_eq!(width.to_string(), size.split(',').next().unwrap());
        eprintln!("screenshot: {} ({} bytes)", png.display(), bytes.len());
    }
}

#[test]
#[ignore = "needs the real S3 server (s3s-fs); scripts/test.sh starts it and runs this test"]
fn status_page_on_the_s3_backend() {
    let s3 = S3::from_env();
    let prefix = tarn_test::unique("status");
    let srv = Server::start(&s3_storage_with_ci_key("", &s3.endpoint, &s3, &prefix));
    let arts = make_artifacts(&srv.scratch().join("arts"), 2, 500, 5);
    for (_, h, data) in &arts {
        let url = format!("/a0/org/pkg/{h}.art");
        let r = srv.send(
            Req::put(&url, data.clone())
                .header("content-type", ART)
                .signed(CI),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = srv.send(
        Req::put(
            "/r0/org/pkg/pt/x86_64-unknown-linux-gnu/abc123.jsonl",
            mapping_for(&[&arts[0].1, &arts[1].1]),
        )
        .header("content-type", MAPPINGS)
        .signed(CI),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Signed: the uploader's key id is shown only to authenticated viewers (row 10d).
    let v = status_json(&srv, Some(CI));
    assert_eq!(v["scan"]["storage"], "s3", "{v}");
    assert_eq!(v["scan"]["error"], serde_json::Value::Null, "{v}");
    let s = scope(&v, "org/pkg").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(s["artifacts"], 2);
    assert_eq!(s["revisions"], 1);
    let r = &s["newest_revisions"][0];
    assert_eq!(r["rev"], "abc123");
    assert_eq!(r["platform"], "x86_64-unknown-linux-gnu");
    assert_eq!(r["artifacts"], 2);
    assert_eq!(r["bytes"], 500 + 501);
    assert_eq!(r["uploader"], "ci");
    // The journal lives in the replica's data directory and survives a restart.
    let srv = srv.restart();
    let r = srv.send(Req::get("/"));
    let html = r.text();
    assert_eq!(r.status, 200);
    assert!(
        html.contains("org/pkg") && html.contains("abc123"),
        "{html}"
    );
    assert!(html.contains("storage: s3"), "{html}");
    let v = status_json(&srv, Some(CI));
    assert_eq!(
        scope(&v, "org/pkg").unwrap()["newest_revisions"][0]["uploader"],
        "ci"
    );
}
