//! HTTPS (rustls) with curl and awscli (which sends `aws-chunked` bodies over TLS) and Range
//! requests. (GC scheduled inside the server is tested in process: tarn-server's
//! `tests/gc.rs`.)

use std::process::Command;

use tarn_test::*;

const KEY: &str = "ci:ci-secret";

fn self_signed(dir: &std::path::Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

#[test]
#[ignore = "needs `aws` and `openssl`; scripts/test.sh installs them and runs this test"]
fn https_with_curl_and_awscli() {
    require_program("aws", "python3 -m pip install awscli");
    require_program("openssl", "apt-get install openssl");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (cert, key) = self_signed(tmp.path());
    let key_arg = format!("{KEY}:*");
    let srv = TarnServer::start(&[
        "--data",
        data.to_str().unwrap(),
        "--key",
        &key_arg,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]);
    assert!(srv.url.starts_with("https://"), "{}", srv.banner);
    let arts = make_artifacts(&tmp.path().join("arts"), 2, 300_000, 4);
    // Lake's upload command line (plus the CA), then an anonymous GET.
    let out = Command::new("curl")
        .args([
            "-s",
            "--cacert",
            &cert,
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-T",
        ])
        .arg(&arts[0].0)
        .args(["--aws-sigv4", "aws:amz:auto:s3", "--user", KEY])
        .arg(format!("{}/a0/tls/{}.art", srv.url, arts[0].1))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let out = Command::new("curl")
        .args(["-s", "-f", "--cacert", &cert])
        .arg(format!("{}/a0/tls/{}.art", srv.url, arts[0].1))
        .output()
        .unwrap();
    assert_eq!(out.stdout, arts[0].2);
    // A Range request.
    let out = Command::new("curl")
        .args(["-s", "-f", "--cacert", &cert, "-r", "10-19"])
        .arg(format!("{}/a0/tls/{}.art", srv.url, arts[0].1))
        .output()
        .unwrap();
    assert_eq!(out.stdout, arts[0].2[10..20]);

    // awscli over HTTPS.
    let before = srv.metric("tarn_bytes_received_total", "");
    let out = Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", "ci")
        .env("AWS_SECRET_ACCESS_KEY", "ci-secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .args(["--endpoint-url", &srv.url, "--ca-bundle", &cert, "s3", "cp"])
        .arg(&arts[1].0)
        .arg(format!("s3://a0/tls/{}.art", arts[1].1))
        .output()
        .expect("awscli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(data.join(format!("a0/tls/{}.art", arts[1].1))).unwrap(),
        arts[1].2
    );
    let received = srv.metric("tarn_bytes_received_total", "") - before;
    eprintln!(
        "awscli sent {received} bytes for a {}-byte object{}",
        arts[1].2.len(),
        if received > arts[1].2.len() as u64 {
            " (aws-chunked)"
        } else {
            ""
        }
    );
}
