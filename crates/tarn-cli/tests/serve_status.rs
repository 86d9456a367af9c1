//! The status page of the real `tarn serve` in a real headless Chromium, at desktop and
//! phone width, with screenshots kept as test artifacts in `target/tarn-test/screenshots/`:
//! a server holding uploads in a public and a private scope, refusals, reads, and a GC run
//! and a scrub by the `tarn serve gc|scrub` commands. What the page and `/api/status` say
//! is tested in process (`crates/tarn-server/tests/status.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use tarn_test::*;

use crate::BIN;

const CI: &str = "ci:ci-secret";
const MAPPINGS: &str = "application/vnd.reservoir.outputs+json-lines";
const ART: &str = "application/vnd.reservoir.artifact";
/// Revisions uploaded to the public scope (more than the 20 listed per scope).
const PUBLIC_REVS: usize = 23;

struct Fixture {
    tmp: tempfile::TempDir,
    srv: TarnServer,
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
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::write(
        tmp.path().join("serve.toml"),
        format!(
            r#"data = "{}"
public_read = ["pub/*"]

[[key]]
id = "ci"
secret = "ci-secret"
write = ["*"]
admin = ["*"]

[[key]]
id = "reader"
secret = "reader-secret"
read = ["team/*"]
"#,
            data.display()
        ),
    )
    .unwrap();
    let srv = TarnServer::start(&["--config", tmp.path().join("serve.toml").to_str().unwrap()]);
    let arts = make_artifacts(&tmp.path().join("arts"), 4, 3000, 77);
    let put_art = |scope: &str, i: usize| {
        let (code, body) = lake_put(
            CI,
            &arts[i].0,
            &format!("{}/a0/{scope}/{}.art", srv.url, arts[i].1),
            ART,
        );
        assert_eq!(code, 200, "{body}");
    };
    put_art("pub/demo", 0);
    put_art("pub/demo", 1);
    put_art("pub/demo", 3); // referenced by nothing: GC deletes it
    put_art("team/secret", 2);
    let maps = tmp.path().join("maps");
    std::fs::create_dir_all(&maps).unwrap();
    let put_rev = |path: &str, hashes: &[&str]| {
        let f = maps.join(path.replace('/', "_"));
        std::fs::write(&f, mapping_for(hashes)).unwrap();
        let (code, body) = lake_put(CI, &f, &format!("{}/r0/{path}.jsonl", srv.url), MAPPINGS);
        assert_eq!(code, 200, "{path}: {body}");
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
    let (code, _) = lake_put(
        CI,
        &arts[1].0,
        &format!("{}/a0/pub/demo/{}.art", srv.url, arts[2].1),
        ART,
    );
    assert_eq!(code, 400);
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "-T",
        arts[2].0.to_str().unwrap(),
        &format!("{}/a0/team/secret/{}.art", srv.url, arts[2].1),
    ]);
    assert_eq!(code, 403);
    // A hit and a miss in the public scope, a hit in the private one.
    let (code, _) = curl(&[&format!("{}/a0/pub/demo/{}.art", srv.url, arts[0].1)]);
    assert_eq!(code, 200);
    let (code, _) = curl(&[&format!("{}/a0/pub/demo/{}.art", srv.url, arts[2].1)]);
    assert_eq!(code, 404);
    // GC and scrub, run as commands by another process (as an operator's cron would).
    for args in [
        &["serve", "gc", "--keep-revs", "50", "--grace", "0", "--data"][..],
        &["serve", "scrub", "--data"][..],
    ] {
        let out = Command::new(BIN).args(args).arg(&data).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Fixture { tmp, srv, revs }
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
fn status_page_in_headless_chromium() {
    if !require_program("chromium", "apt-get install -y chromium (Debian's package)") {
        return;
    }
    let fx = fixture();
    let url = format!("{}/", fx.srv.url);
    let profile = fx.tmp.path().join("chromium-profile");
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
