//! The output conventions of CONTRIBUTING.md, checked where it is cheap: byte counts in
//! decimal units, `--json` keys in snake_case (or Lake's own configuration key, verbatim).

use std::path::Path;

use tarn_test::fixture::{generate, FixtureSpec};
use tarn_test::{
    artifacts, json_keys_not_snake_case, no_faults, run, service_over_dir, tarn_cmd, write_staging,
};

use crate::BIN;

#[test]
fn json_keys_are_snake_case_or_lakes_own() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.toml"),
        "cache.defaultService = \"x\"\n[[cache.service]]\nname = \"x\"\nkind = \"s3\"\n\
         artifactEndpoint = \"http://127.0.0.1:9/a0\"\nrevisionEndpoint = \"http://127.0.0.1:9/r0\"\n",
    )
    .unwrap();
    let fx = tmp.path().join("fx");
    generate(&FixtureSpec::small(4), &fx.join("cache")).unwrap();
    let cache = fx.join("cache");
    let (cache, maps, staging) = (
        cache.to_str().unwrap(),
        fx.join("mappings.jsonl"),
        tmp.path().join("staging"),
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["services"],
        vec!["demo", "--modules", "3"],
        vec!["--cache-dir", cache, "verify"],
        vec![
            "--cache-dir",
            cache,
            "stage",
            maps.to_str().unwrap(),
            staging.to_str().unwrap(),
        ],
        vec![
            "--cache-dir",
            "fresh",
            "unstage",
            staging.to_str().unwrap(),
            "--package",
            "P",
        ],
    ];
    let mut bad = Vec::new();
    for args in &commands {
        let (code, stdout, stderr) = run(tarn_cmd(Path::new(BIN), tmp.path())
            .current_dir(tmp.path())
            .arg("--json")
            .args(args));
        assert_eq!(code, 0, "tarn --json {args:?}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("tarn --json {args:?}: {e}: {stdout}"));
        bad.extend(json_keys_not_snake_case(&v, &args.join(" ")));
    }
    assert!(bad.is_empty(), "keys that are not snake_case: {bad:?}");
}

#[test]
fn remote_json_keys_are_snake_case() {
    let tmp = tempfile::tempdir().unwrap();
    let _server = service_over_dir(tmp.path(), "dev", no_faults());
    let arts = artifacts(5, 3);
    let staging = tmp.path().join("staging");
    write_staging(&staging, &arts, 3);
    std::fs::create_dir_all(tmp.path().join("pkg")).unwrap();
    std::fs::write(tmp.path().join("pkg/lakefile.toml"), "name = \"pkg\"\n").unwrap();
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let cache = tmp.path().join("cache");
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "put-staged",
            staging.to_str().unwrap(),
            "--rev",
            rev,
            "--scope",
            "sc",
            "--service",
            "dev",
        ],
        vec![
            "get",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--service",
            "dev",
            "--scope",
            "sc",
            "--rev",
            rev,
        ],
    ];
    let mut bad = Vec::new();
    for args in &commands {
        let (code, stdout, stderr) = run(tarn_cmd(Path::new(BIN), tmp.path())
            .current_dir(tmp.path().join("pkg"))
            .env("LAKE_CACHE_KEY", "id:secret")
            .arg("--json")
            .args(args));
        assert_eq!(code, 0, "tarn --json {args:?}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("tarn --json {args:?}: {e}: {stdout}"));
        bad.extend(json_keys_not_snake_case(&v, args[0]));
    }
    assert!(bad.is_empty(), "keys that are not snake_case: {bad:?}");
}

#[test]
fn byte_counts_use_decimal_units() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut dirs = vec![src];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, line) in text.lines().enumerate() {
                if ["KiB", "MiB", "GiB", "TiB"]
                    .iter()
                    .any(|u| line.contains(u))
                {
                    found.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the CLI shows sizes in kB/MB/GB (CONTRIBUTING.md):\n{}",
        found.join("\n")
    );
}
