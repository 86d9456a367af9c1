//! rclone (Debian's package; an S3 remote, path style) against `tarn serve`: upload, list,
//! list buckets, download, delete — and the server's validation still applies.

use std::path::Path;
use std::process::Command;

use tarn_test::*;

fn rclone(url: &str, id: &str, secret: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("rclone")
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_T_TYPE", "s3")
        .env("RCLONE_CONFIG_T_PROVIDER", "Other")
        .env("RCLONE_CONFIG_T_ENDPOINT", url)
        .env("RCLONE_CONFIG_T_ACCESS_KEY_ID", id)
        .env("RCLONE_CONFIG_T_SECRET_ACCESS_KEY", secret)
        .env("RCLONE_CONFIG_T_REGION", "auto")
        .env("RCLONE_CONFIG_T_FORCE_PATH_STYLE", "true")
        // rclone's S3 backend refuses to start when a CA bundle is configured for plain HTTP.
        .env_remove("AWS_CA_BUNDLE")
        .args(["--low-level-retries", "1", "--retries", "1"])
        .args(args)
        .output()
        .expect("rclone must be installed: apt-get install rclone");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
#[ignore = "needs `rclone`; scripts/test.sh installs it and runs this test"]
fn rclone_copy_ls_and_delete() {
    require_program("rclone", "apt-get install rclone");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let srv = TarnServer::with_key(&data, "rk:rclone-secret:*");

    // Upload: artifacts named <hash>.art, as Lake lays them out.
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let arts = make_artifacts(&tmp.path().join("made"), 3, 30_000, 11);
    for (_, h, bytes) in &arts {
        std::fs::write(src.join(format!("{h}.art")), bytes).unwrap();
    }
    let (ok, out) = rclone(
        &srv.url,
        "rk",
        "rclone-secret",
        &["copy", src.to_str().unwrap(), "t:a0/proj"],
    );
    assert!(ok, "rclone copy up failed:\n{out}");
    for (_, h, bytes) in &arts {
        assert_eq!(
            &std::fs::read(data.join(format!("a0/proj/{h}.art"))).unwrap(),
            bytes
        );
    }

    // List objects and buckets.
    let (ok, out) = rclone(&srv.url, "rk", "rclone-secret", &["ls", "t:a0"]);
    assert!(ok, "{out}");
    for (_, h, bytes) in &arts {
        assert!(
            out.contains(&format!("{} proj/{h}.art", bytes.len())),
            "{h} not listed:\n{out}"
        );
    }
    let (ok, out) = rclone(&srv.url, "rk", "rclone-secret", &["lsd", "t:"]);
    assert!(ok && out.contains(" a0") && out.contains(" r0"), "{out}");

    // Download into an empty directory: byte-identical.
    let back = tmp.path().join("back");
    let (ok, out) = rclone(
        &srv.url,
        "rk",
        "rclone-secret",
        &["copy", "t:a0/proj", back.to_str().unwrap()],
    );
    assert!(ok, "rclone copy down failed:\n{out}");
    assert_eq!(files_in(&back).len(), 3);
    for (_, h, bytes) in &arts {
        assert_eq!(
            &std::fs::read(back.join(format!("{h}.art"))).unwrap(),
            bytes
        );
    }

    // A file whose content does not hash to its name is refused and not stored.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("0123456789abcdef.art"), b"not the right bytes").unwrap();
    let (ok, out) = rclone(
        &srv.url,
        "rk",
        "rclone-secret",
        &["copy", bad.to_str().unwrap(), "t:a0/proj"],
    );
    assert!(!ok, "a mismatching upload was accepted:\n{out}");
    assert!(!data.join("a0/proj/0123456789abcdef.art").exists());

    // Delete one object (admin key).
    let (ok, out) = rclone(
        &srv.url,
        "rk",
        "rclone-secret",
        &["deletefile", &format!("t:a0/proj/{}.art", arts[0].1)],
    );
    assert!(ok, "{out}");
    assert!(!data.join(format!("a0/proj/{}.art", arts[0].1)).exists());
    assert_eq!(files_in(&data.join("a0/proj")).len(), 2);
}
