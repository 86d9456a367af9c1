//! The real `curl`, driven the way Lake drives it: single and parallel SigV4 PUTs with Lake's
//! command lines, plus plain requests that report the HTTP status.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The curl under test: `$TARN_TEST_CURL` (scripts/test.sh runs the curl interop tests a
/// second time with curl 8.14.1 from scripts/curl8.sh), else `curl` from `PATH` (Debian 12:
/// 7.88).
pub fn curl_bin() -> String {
    std::env::var("TARN_TEST_CURL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "curl".to_string())
}

/// Runs curl; returns (http status from `-w %{http_code}`, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new(curl_bin())
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// GET as text (panics on failure).
pub fn http_get_text(url: &str) -> String {
    let out = Command::new(curl_bin())
        .args(["-s", "-f", "-k", url])
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {url}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lake's parallel upload: `curl -Z -X PUT … --config FILE` with `-T`/`url` pairs;
/// returns the `http_code` of every transfer, by URL.
pub fn lake_parallel_put(
    key: &str,
    pairs: &[(PathBuf, String)],
    cfg_path: &Path,
    unsigned_header: bool,
) -> Vec<(String, u16)> {
    let mut cfg = String::new();
    for (p, url) in pairs {
        cfg.push_str(&format!("-T \"{}\"\nurl = \"{url}\"\n", p.display()));
    }
    std::fs::write(cfg_path, cfg).unwrap();
    let mut c = Command::new(curl_bin());
    c.args([
        "-Z",
        "-X",
        "PUT",
        "-L",
        "-H",
        "Content-Type: application/vnd.reservoir.artifact",
        "--retry",
        "3",
        "--aws-sigv4",
        "aws:amz:auto:s3",
        "--user",
        key,
        "-s",
        "-w",
        "%{stderr}%{json}\n",
    ]);
    if unsigned_header {
        c.args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
    }
    let out = c.arg("--config").arg(cfg_path).output().expect("curl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .filter_map(|l| {
            let start = l.find('{')?;
            let v: serde_json::Value = serde_json::from_str(&l[start..]).ok()?;
            Some((
                v["url"].as_str()?.to_string(),
                v["http_code"].as_u64()? as u16,
            ))
        })
        .collect()
}

/// Lake's single PUT (revision files): returns the status.
pub fn lake_put(key: &str, file: &Path, url: &str, content_type: &str) -> (u16, String) {
    let out = Command::new(curl_bin())
        .args([
            "-s",
            "-w",
            "%{stderr}%{json}\n",
            "--aws-sigv4",
            "aws:amz:auto:s3",
            "--user",
            key,
            "-X",
            "PUT",
            "-T",
        ])
        .arg(file)
        .arg(url)
        .args(["-H", &format!("Content-Type: {content_type}")])
        .output()
        .expect("curl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = stderr
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l[l.find('{')?..]).ok()?;
            v["http_code"].as_u64()
        })
        .unwrap_or(0) as u16;
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}
