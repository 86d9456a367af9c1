//! `[[signed]]` scopes at the handler (docs/trust.md): a revision file is stored only after a
//! signature object by a trusted key that covers exactly it and its artifacts; a foreign
//! key's or an older signature is refused, and so are one whose bytes another key signed,
//! one stored under another revision's key and a truncated one (nothing stored for any);
//! the status API names the signer. Signature
//! objects are made here with `tarn_core::trust`, as `tarn put-staged --sign-key` makes them
//! (that client path, end to end, is `crates/tarn-cli/tests/trust.rs`).

use std::collections::BTreeMap;

use tarn_core::trust::{Manifest, SecretKey, StrongDigest};
use tarn_core::Hash;

use crate::harness::{Case, Req, Server};

const CI: &str = "ci:ci-secret";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

/// A signature object by `key` for `revision` (the bytes of the revision file) in `scope`,
/// naming `artifacts`, made at `timestamp`.
fn signature(
    key: &SecretKey,
    scope: &str,
    revision: &[u8],
    artifacts: &[&tarn_test::Art],
    timestamp: u64,
) -> Vec<u8> {
    let artifacts: BTreeMap<Hash, StrongDigest> = artifacts
        .iter()
        .map(|a| {
            (
                Hash::from_hex(&a.hash).unwrap(),
                StrongDigest::of(&a.content),
            )
        })
        .collect();
    Manifest {
        key_id: key.public().key_id(),
        scope: scope.to_string(),
        revision: REV.to_string(),
        platform: None,
        toolchain: None,
        timestamp,
        revision_file: StrongDigest::of_revision_file(revision),
        artifacts,
    }
    .sign(key)
    .unwrap()
}

/// A server whose scopes `org/*` take revisions signed by `trusted` only (the key `ci` may
/// write and administer everything), and the directory holding its trusted-keys file.
fn signed_server(trusted: &SecretKey) -> (tempfile::TempDir, Server) {
    let keys = tempfile::tempdir().unwrap();
    let keys_file = keys.path().join("trusted_keys");
    std::fs::write(&keys_file, trusted.public().to_line("trusted") + "\n").unwrap();
    let srv = Server::start(&format!(
        "[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\nadmin = [\"*\"]\n\n[[signed]]\nscopes = [\"org/*\"]\ntrusted_keys = {:?}\n",
        keys_file.display().to_string()
    ));
    (keys, srv)
}

#[test]
fn a_signed_scope_takes_only_revisions_its_trusted_keys_signed() {
    let trusted = SecretKey::from_seed([7; 32], "trusted");
    let foreign = SecretKey::from_seed([9; 32], "foreign");
    let (_keys, srv) = signed_server(&trusted);
    let art = tarn_test::artifacts(1, 11).remove(0);
    let revision = tarn_test::mappings(std::slice::from_ref(&art), 11);
    let rev_url = format!("/r0/org/pkg/{REV}.jsonl");
    let sig_url = format!("{rev_url}.sig");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let by_trusted = signature(&trusted, "org/pkg", &revision, &[&art], now);
    let older = signature(&trusted, "org/pkg", &revision, &[&art], now - 60);
    let by_foreign = signature(&foreign, "org/pkg", &revision, &[&art], now);
    let for_other_bytes = signature(&trusted, "org/pkg", b"\"2026-03-17\"\n", &[], now + 1);
    srv.check(vec![
        Case::new(
            "the artifact",
            Req::put(
                &format!("/a0/org/pkg/{}.art", art.hash),
                art.content.clone(),
            )
            .signed(CI),
            200,
        ),
        Case::new(
            "an unsigned revision",
            Req::put(&rev_url, revision.clone()).signed(CI),
            403,
        )
        .code("SignatureRequired"),
        Case::new(
            "a foreign key's signature",
            Req::put(&sig_url, by_foreign).signed(CI),
            403,
        )
        .code("SignatureRefused"),
        Case::new(
            "the revision after the refused signature",
            Req::put(&rev_url, revision.clone()).signed(CI),
            403,
        )
        .code("SignatureRequired"),
        Case::new(
            "the trusted key's signature",
            Req::put(&sig_url, by_trusted).signed(CI),
            200,
        )
        .stores(&[format!("r0/org/pkg/{REV}.jsonl.sig")]),
        Case::new(
            "an older signature",
            Req::put(&sig_url, older).signed(CI),
            403,
        )
        .code("SignatureReplayed"),
        Case::new(
            "the signed revision",
            Req::put(&rev_url, revision.clone()).signed(CI),
            200,
        )
        .stores(&[format!("r0/org/pkg/{REV}.jsonl")]),
        Case::new(
            "a newer signature of other bytes",
            Req::put(&sig_url, for_other_bytes).signed(CI),
            200,
        ),
        Case::new(
            "the old revision against it",
            Req::put(&rev_url, revision.clone()).signed(CI),
            403,
        )
        .code("SignatureMismatch"),
        Case::new(
            "the artifact in another scope",
            Req::put(&format!("/a0/other/{}.art", art.hash), art.content.clone()).signed(CI),
            200,
        ),
        Case::new(
            "another scope needs no signature",
            Req::put(&format!("/r0/other/{REV}.jsonl"), revision.clone()).signed(CI),
            200,
        ),
    ]);
    let status = srv.send(Req::get("/api/status").signed(CI)).json();
    let signed = status["recent_uploads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u.to_string().contains("org/pkg"))
        .unwrap_or_else(|| panic!("no org/pkg upload in {status}"))
        .clone();
    assert_eq!(
        signed["signed_by"],
        trusted.public().key_id().as_str(),
        "{status}"
    );
    assert_eq!(signed["signature_verified"], true, "{status}");
    let page = srv.send(Req::get("/").header("accept", "text/html").signed(CI));
    assert_eq!(page.status, 200);
    let id = trusted.public().key_id();
    assert!(
        page.text().contains(&format!("{id} (trusted key)")),
        "{}",
        page.text()
    );
}

#[test]
fn forged_misplaced_and_truncated_signatures_are_refused_and_nothing_is_stored() {
    let trusted = SecretKey::from_seed([7; 32], "trusted");
    let foreign = SecretKey::from_seed([9; 32], "foreign");
    let (_keys, srv) = signed_server(&trusted);
    let art = tarn_test::artifacts(1, 12).remove(0);
    let revision = tarn_test::mappings(std::slice::from_ref(&art), 12);
    let sig_url = format!("/r0/org/pkg/{REV}.jsonl.sig");
    let other_rev = "fedcba9876543210fedcba9876543210fedcba98";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = signature(&trusted, "org/pkg", &revision, &[&art], now);
    // The trusted key's id over bytes the foreign key signed: the signature does not verify.
    let forged_id = String::from_utf8(signature(&foreign, "org/pkg", &revision, &[&art], now))
        .unwrap()
        .replace(&foreign.public().key_id(), &trusted.public().key_id())
        .into_bytes();
    srv.check(vec![
        Case::new(
            "a signature naming the trusted key, signed by another",
            Req::put(&sig_url, forged_id).signed(CI),
            403,
        )
        .code("SignatureRefused"),
        Case::new(
            "a valid signature stored under another revision's key",
            Req::put(&format!("/r0/org/pkg/{other_rev}.jsonl.sig"), good.clone()).signed(CI),
            400,
        )
        .code("InvalidSignatureFile")
        .contains(other_rev),
        Case::new(
            "a truncated signature",
            Req::put(&sig_url, good[..good.len() - 20].to_vec()).signed(CI),
            400,
        )
        .code("InvalidSignatureFile"),
    ]);
    assert!(
        srv.stored().iter().all(|k| !k.ends_with(".sig")),
        "{:?}",
        srv.stored()
    );
}
