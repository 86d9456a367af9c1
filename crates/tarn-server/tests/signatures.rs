//! Signed revisions on the server (docs/trust.md): in a `[[signed]]` scope a revision file is
//! stored only beside a signature from one of the scope's trusted keys that covers exactly
//! it and its artifacts; an unsigned revision, a signature by an untrusted key, one whose
//! signature bytes were made by another key, one for another revision and a truncated one
//! are each refused with nothing stored; the status API says who signed what was stored.

use std::collections::BTreeMap;

use tarn_core::trust::{Manifest, SecretKey, StrongDigest};
use tarn_core::Hash;
use tarn_server::config::ServerConfig;
use tarn_test::{bytes_for, hash_hex, mapping_for};

use crate::harness::{Case, Req, Server};

const CI: &str = "ci:ci-secret";
const REV: &str = "5555555555555555555555555555555555555555";
const OTHER_REV: &str = "6666666666666666666666666666666666666666";

/// A server whose scopes `main/*` accept revisions signed by `trusted` only (its
/// trusted-keys file read as `tarn serve` reads it at start).
fn server(trusted: &SecretKey) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("trusted-keys");
    std::fs::write(&keys, trusted.public().to_line("scope key") + "\n").unwrap();
    let text = format!(
        r#"data = {:?}
public_read = ["*"]

[[key]]
id = "ci"
secret = "ci-secret"
write = ["main/*"]
admin = ["*"]

[[signed]]
scopes = ["main/*"]
trusted_keys = {:?}
"#,
        tmp.path().join("data").display().to_string(),
        keys.display().to_string()
    );
    let mut cfg = ServerConfig::parse(&text).unwrap();
    cfg.load_signature_keys().unwrap();
    Server::with_config(cfg, tmp)
}

/// The signature object for `revision_file` of `rev` in `main/x`, naming `arts`, by `key`.
fn signature(
    key: &SecretKey,
    rev: &str,
    revision_file: &[u8],
    arts: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let artifacts: BTreeMap<Hash, StrongDigest> = arts
        .iter()
        .map(|(h, b)| (Hash::from_hex(h).unwrap(), StrongDigest::of(b)))
        .collect();
    Manifest {
        key_id: key.public().key_id(),
        scope: "main/x".into(),
        revision: rev.into(),
        platform: None,
        toolchain: None,
        timestamp: 1_700_000_000,
        revision_file: StrongDigest::of_revision_file(revision_file),
        artifacts,
    }
    .sign(key)
    .unwrap()
}

#[test]
fn a_signed_scope_stores_a_revision_only_beside_a_trusted_signature_that_covers_it() {
    let trusted = SecretKey::from_seed([11; 32], "scope key");
    let stranger = SecretKey::from_seed([12; 32], "stranger");
    let srv = server(&trusted);
    let arts: Vec<(String, Vec<u8>)> = (0..2)
        .map(|i| {
            let b = bytes_for(300 + i, 700);
            (hash_hex(&b), b)
        })
        .collect();
    let names: Vec<&str> = arts.iter().map(|(h, _)| h.as_str()).collect();
    let revision = mapping_for(&names);
    let other_revision = mapping_for(&names[..1]);
    let rev_url = format!("/r0/main/x/{REV}.jsonl");
    let sig_url = format!("{rev_url}.sig");
    let good = signature(&trusted, REV, revision.as_bytes(), &arts);
    // The trusted key's id over bytes the stranger signed: the signature does not verify.
    let forged_id = String::from_utf8(signature(&stranger, REV, revision.as_bytes(), &arts))
        .unwrap()
        .replace(&stranger.public().key_id(), &trusted.public().key_id())
        .into_bytes();
    let mut cases: Vec<Case> = arts
        .iter()
        .map(|(h, b)| {
            Case::new(
                format!("artifact {h}"),
                Req::put(&format!("/a0/main/x/{h}.art"), b.clone()).signed(CI),
                200,
            )
            .stores(&[format!("a0/main/x/{h}.art")])
        })
        .collect();
    cases.extend([
        Case::new(
            "an unsigned revision",
            Req::put(&rev_url, revision.clone()).signed(CI),
            403,
        )
        .code("SignatureRequired"),
        Case::new(
            "a signature by an untrusted key",
            Req::put(
                &sig_url,
                signature(&stranger, REV, revision.as_bytes(), &arts),
            )
            .signed(CI),
            403,
        )
        .code("SignatureRefused")
        .contains("not a trusted key"),
        Case::new(
            "a signature made by another key than it names",
            Req::put(&sig_url, forged_id).signed(CI),
            403,
        )
        .code("SignatureRefused"),
        Case::new(
            "a signature for another revision",
            Req::put(
                &sig_url,
                signature(&trusted, OTHER_REV, revision.as_bytes(), &arts),
            )
            .signed(CI),
            400,
        )
        .code("InvalidSignatureFile")
        .contains(OTHER_REV),
        Case::new(
            "a truncated signature",
            Req::put(&sig_url, good[..good.len() - 20].to_vec()).signed(CI),
            400,
        )
        .code("InvalidSignatureFile"),
        Case::new(
            "still no revision without a signature",
            Req::get(&rev_url),
            404,
        ),
        Case::new(
            "the trusted signature",
            Req::put(&sig_url, good.clone()).signed(CI),
            200,
        )
        .stores(&[format!("r0/main/x/{REV}.jsonl.sig")]),
        Case::new(
            "a revision file the signature does not cover",
            Req::put(&rev_url, other_revision.clone()).signed(CI),
            403,
        )
        .code("SignatureMismatch"),
        Case::new(
            "the revision file it covers",
            Req::put(&rev_url, revision.clone()).signed(CI),
            200,
        )
        .stores(&[format!("r0/main/x/{REV}.jsonl")]),
    ]);
    srv.check(cases);

    let r = srv.send(Req::get("/api/status").signed(CI));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let upload = &v["recent_uploads"][0];
    assert_eq!(
        upload["signed_by"],
        trusted.public().key_id().as_str(),
        "{v}"
    );
    assert_eq!(upload["signature_verified"], true, "{v}");
}
