//! awscli (`aws s3 cp`, `aws s3 ls`, `aws s3 rm`) against `tarn serve`: bucket `a0` is the
//! artifact prefix, so `s3://a0/<scope>/<hash>.art` is Lake's layout.

use std::process::Command;

use tarn_test::*;

fn aws(url: &str, id: &str, secret: &str, args: &[&str]) -> (bool, String, String) {
    aws_with_config(url, id, secret, "/dev/null", args)
}

fn aws_with_config(
    url: &str,
    id: &str,
    secret: &str,
    config: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .args(["--endpoint-url", url])
        .args(args)
        .output()
        .expect("awscli (`aws`) must be installed: pip install awscli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs `aws`; scripts/test.sh installs it and runs this test"]
fn aws_s3_cp_ls_rm() {
    require_program("aws", "python3 -m pip install awscli");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let srv = TarnServer::with_key(&data, "admin:admin-secret:*");
    let cfg = tmp.path().join("writer.toml");
    let arts = make_artifacts(&tmp.path().join("arts"), 3, 2000, 5);
    let (ok, out, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &[
            "s3",
            "cp",
            arts[0].0.to_str().unwrap(),
            &format!("s3://a0/proj/main/{}.art", arts[0].1),
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        std::fs::read(data.join(format!("a0/proj/main/{}.art", arts[0].1))).unwrap(),
        arts[0].2
    );
    // A body that does not hash to its name is refused (awscli reports the S3 error).
    let (ok, _, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &[
            "s3",
            "cp",
            arts[1].0.to_str().unwrap(),
            &format!("s3://a0/proj/main/{}.art", arts[2].1),
        ],
    );
    assert!(!ok);
    assert!(err.contains("BadDigest"), "{err}");
    for a in &arts[1..] {
        let (ok, _, err) = aws(
            &srv.url,
            "admin",
            "admin-secret",
            &[
                "s3",
                "cp",
                a.0.to_str().unwrap(),
                &format!("s3://a0/proj/dev/{}.art", a.1),
            ],
        );
        assert!(ok, "{err}");
    }
    let (ok, out, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &["s3", "ls", "s3://a0/proj/", "--recursive"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.contains(&format!("proj/main/{}.art", arts[0].1)),
        "{out}"
    );
    let (ok, out, _) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &["s3", "ls", "s3://a0/proj/"],
    );
    assert!(ok);
    assert!(
        out.contains("PRE dev/") && out.contains("PRE main/"),
        "{out}"
    );
    let (ok, out, _) = aws(&srv.url, "admin", "admin-secret", &["s3", "ls"]);
    assert!(ok);
    assert!(out.contains("a0") && out.contains("r0"), "{out}");
    // Download.
    let back = tmp.path().join("back");
    let (ok, _, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &[
            "s3",
            "cp",
            &format!("s3://a0/proj/dev/{}.art", arts[1].1),
            back.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&back).unwrap(), arts[1].2);
    // Delete (admin).
    let (ok, _, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &["s3", "rm", &format!("s3://a0/proj/dev/{}.art", arts[1].1)],
    );
    assert!(ok, "{err}");
    assert!(!data.join(format!("a0/proj/dev/{}.art", arts[1].1)).exists());
    // A wrong secret is refused.
    let (ok, _, err) = aws(&srv.url, "admin", "nope", &["s3", "ls", "s3://a0/"]);
    assert!(!ok);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    let _ = cfg;
}

#[test]
#[ignore = "needs `aws`; scripts/test.sh installs it and runs this test"]
fn write_keys_cannot_list_or_delete() {
    require_program("aws", "python3 -m pip install awscli");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "data = \"{}\"\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let srv = TarnServer::start(&["--config", cfg.to_str().unwrap()]);
    let arts = make_artifacts(&tmp.path().join("arts"), 1, 100, 9);
    let url = format!("s3://a0/s/{}.art", arts[0].1);
    let (ok, _, err) = aws(
        &srv.url,
        "ci",
        "ci-secret",
        &["s3", "cp", arts[0].0.to_str().unwrap(), &url],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = aws(&srv.url, "ci", "ci-secret", &["s3", "ls", "s3://a0/"]);
    assert!(!ok);
    assert!(err.contains("AccessDenied"), "{err}");
    let (ok, _, err) = aws(&srv.url, "ci", "ci-secret", &["s3", "rm", &url]);
    assert!(!ok, "{err}");
    assert!(tmp
        .path()
        .join(format!("data/a0/s/{}.art", arts[0].1))
        .exists());
}

#[test]
#[ignore = "needs `aws`; scripts/test.sh installs it and runs this test"]
fn multipart_is_refused_clearly_and_a_single_put_works() {
    require_program("aws", "python3 -m pip install awscli");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let srv = TarnServer::with_key(&data, "admin:admin-secret:*");
    let arts = make_artifacts(&tmp.path().join("arts"), 1, 9 << 20, 12);
    let dest = format!("s3://a0/big/{}.art", arts[0].1);
    let (ok, _, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &["s3", "cp", arts[0].0.to_str().unwrap(), &dest],
    );
    assert!(!ok);
    assert!(
        err.contains("NotImplemented") || err.contains("multipart"),
        "{err}"
    );
    let cfg = tmp.path().join("aws.cfg");
    std::fs::write(&cfg, "[default]\ns3 =\n  multipart_threshold = 5GB\n").unwrap();
    let (ok, _, err) = aws_with_config(
        &srv.url,
        "admin",
        "admin-secret",
        cfg.to_str().unwrap(),
        &["s3", "cp", arts[0].0.to_str().unwrap(), &dest],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(data.join(format!("a0/big/{}.art", arts[0].1))).unwrap(),
        arts[0].2
    );
    // A ranged download (awscli splits big downloads into ranged GETs).
    let back = tmp.path().join("back");
    let (ok, _, err) = aws(
        &srv.url,
        "admin",
        "admin-secret",
        &["s3", "cp", &dest, back.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&back).unwrap(), arts[0].2);
}
