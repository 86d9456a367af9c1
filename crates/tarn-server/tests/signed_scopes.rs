//! `[[signed]]` scopes at the handler (docs/trust.md): a revision file is stored only after a
//! signature object by a trusted key that covers exactly it and its artifacts; a foreign
//! key's or an older signature is refused, and so are one whose bytes another key signed,
//! one stored under another revision's key and a truncated one (nothing stored for any);
//! the status API names the signer. Signature
//! objects are made here with `tarn_core::trust`, as `tarn put-staged --sign-key` makes them
//! (that client path, end to end, is `crates/tarn-cli/tests/trust.rs`).

use std::collections::BTreeMap;

use tarn_core::trust::{parse_trusted_keys, Expected, Manifest, SecretKey, SignatureFile};
use tarn_core::trust::{StrongDigest, TrustedKey, SIGNATURE_SHA256_HEADER};
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
    signature_of(key, scope, REV, revision, artifacts, timestamp)
}

/// [`signature`] for revision `rev`.
fn signature_of(
    key: &SecretKey,
    scope: &str,
    rev: &str,
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
        revision: rev.to_string(),
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

/// An embedder builds a `Handler` straight from a parsed configuration (`Server::start`
/// does exactly that, with no other call): the handler reads the `[[signed]]` trusted-keys
/// file itself, so it takes the trusted key's signature and the revision file it covers.
/// (Before, the keys stayed unread: every signature was refused as not made by a trusted
/// key.)
#[test]
fn a_handler_built_from_a_parsed_configuration_reads_its_signed_scopes_keys() {
    let trusted = SecretKey::from_seed([7; 32], "trusted");
    let (_keys, srv) = signed_server(&trusted);
    let empty = b"\"2026-03-17\"\n".to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let [sig, revision] = signed_upload(
        &format!("/r0/org/pkg/{REV}.jsonl"),
        &signature(&trusted, "org/pkg", &empty, &[], now),
        &empty,
    );
    srv.check(vec![
        Case::new("the trusted key's signature", sig, 200),
        Case::new("the revision file it covers", revision, 200)
            .stores(&[format!("r0/org/pkg/{REV}.jsonl")]),
    ]);
}

/// One `tarn put-staged --sign-key` as the server sees it: the signature object, then the
/// revision file naming the SHA-256 of that signature (`x-tarn-signature-sha256`).
fn signed_upload(rev_url: &str, signature: &[u8], revision: &[u8]) -> [Req; 2] {
    let sha = hex::encode(StrongDigest::of(signature).sha256);
    [
        Req::put(&format!("{rev_url}.sig"), signature.to_vec()).signed(CI),
        Req::put(rev_url, revision.to_vec())
            .header(SIGNATURE_SHA256_HEADER, &sha)
            .signed(CI),
    ]
}

/// Whether the revision file stored for `rev` in `scope` and the signature stored beside it
/// verify together, as `tarn get --trust` checks them: `Ok` when both are there and match,
/// or when there is no revision file; `Err` says what is wrong.
fn stored_pair_verifies(
    srv: &Server,
    scope: &str,
    rev: &str,
    keys: &[TrustedKey],
) -> Result<(), String> {
    let Some(revision) = srv.object(&format!("r0/{scope}/{rev}.jsonl")) else {
        return Ok(());
    };
    let sig = srv
        .object(&format!("r0/{scope}/{rev}.jsonl.sig"))
        .ok_or("the revision file is stored without a signature")?;
    let parsed = SignatureFile::parse(&sig).map_err(|e| e.to_string())?;
    let expected = Expected {
        scope,
        revision: rev,
        platform: None,
        toolchain: None,
        revision_file: revision.trim_ascii(),
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        newest_seen: None,
    };
    parsed
        .verify(keys, &expected)
        .map(|_| ())
        .map_err(|e| format!("the stored pair does not verify: {e}"))
}

/// Two signed uploads of one revision with different contents and keys, interleaved as two
/// `put-staged` runs can be: A's signature, B's signature, B's revision, A's revision. In a
/// scope without `[[signed]]` the server used to store A's revision beside B's signature (a
/// pair no downloader accepts, left in place for good); now A's revision is refused (409
/// `SignatureChanged`, nothing stored) and B's pair stays. A later unsigned upload of other
/// bytes removes the signature it does not match instead of leaving it beside them.
#[test]
fn a_revision_is_never_stored_beside_another_uploads_signature() {
    let key_a = SecretKey::from_seed([21; 32], "a");
    let key_b = SecretKey::from_seed([22; 32], "b");
    let keys = parse_trusted_keys(&format!(
        "{}\n{}\n",
        key_a.public().to_line("a"),
        key_b.public().to_line("b")
    ))
    .unwrap();
    let srv = Server::start(
        "[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\nadmin = [\"*\"]\n",
    );
    let arts = tarn_test::artifacts(3, 31);
    for a in &arts {
        let put = Req::put(&format!("/a0/free/{}.art", a.hash), a.content.clone()).signed(CI);
        assert_eq!(srv.send(put).status, 200);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rev_url = format!("/r0/free/{REV}.jsonl");
    let revision_a = tarn_test::mappings(&arts[..1], 31);
    let revision_b = tarn_test::mappings(&arts[1..2], 32);
    let sig_a = signature(&key_a, "free", &revision_a, &[&arts[0]], now);
    let sig_b = signature(&key_b, "free", &revision_b, &[&arts[1]], now);
    let [a_sig, a_rev] = signed_upload(&rev_url, &sig_a, &revision_a);
    let [b_sig, b_rev] = signed_upload(&rev_url, &sig_b, &revision_b);
    assert_eq!(srv.send(a_sig).status, 200);
    assert_eq!(srv.send(b_sig).status, 200);
    assert_eq!(srv.send(b_rev).status, 200);
    let late = srv.send(a_rev);
    assert_eq!(
        (late.status, late.code().as_deref()),
        (409, Some("SignatureChanged")),
        "{}",
        late.text()
    );
    stored_pair_verifies(&srv, "free", REV, &keys).unwrap();
    assert_eq!(
        srv.object(&format!("r0/free/{REV}.jsonl")),
        Some(revision_b)
    );

    let unsigned = tarn_test::mappings(&arts[2..], 33);
    let put = Req::put(&rev_url, unsigned.clone()).signed(CI);
    assert_eq!(srv.send(put).status, 200);
    assert_eq!(
        srv.object(&format!("r0/free/{REV}.jsonl.sig")),
        None,
        "B's signature was left beside an unsigned revision of other bytes"
    );
}

/// Two `put-staged --sign-key` runs of the same revision, with different keys and contents,
/// racing on the server's two worker threads, 150 times per kind of scope (with and without
/// `[[signed]]`): afterwards the stored revision file and its signature always verify
/// together, and at least one run succeeded.
#[test]
fn racing_signed_uploads_of_one_revision_leave_a_pair_that_verifies() {
    let key_a = SecretKey::from_seed([7; 32], "trusted");
    let key_b = SecretKey::from_seed([8; 32], "second");
    let keys_dir = tempfile::tempdir().unwrap();
    let keys_file = keys_dir.path().join("trusted_keys");
    let lines = format!(
        "{}\n{}\n",
        key_a.public().to_line("a"),
        key_b.public().to_line("b")
    );
    std::fs::write(&keys_file, &lines).unwrap();
    let keys = parse_trusted_keys(&lines).unwrap();
    let srv = Server::start(&format!(
        "[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\nadmin = [\"*\"]\n\n[[signed]]\nscopes = [\"org/*\"]\ntrusted_keys = {:?}\n",
        keys_file.display().to_string()
    ));
    let arts = tarn_test::artifacts(2, 41);
    for scope in ["org/pkg", "free"] {
        for a in &arts {
            let put =
                Req::put(&format!("/a0/{scope}/{}.art", a.hash), a.content.clone()).signed(CI);
            assert_eq!(srv.send(put).status, 200);
        }
    }
    let revision_a = tarn_test::mappings(&arts[..1], 41);
    let revision_b = tarn_test::mappings(&arts[1..], 42);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for scope in ["org/pkg", "free"] {
        for i in 0..150u32 {
            // A revision of its own each time: the server refuses a signed request it has
            // seen before (replay), and each round starts from nothing stored.
            let rev = format!("{i:040x}");
            let rev_url = format!("/r0/{scope}/{rev}.jsonl");
            let sig_a = signature_of(&key_a, scope, &rev, &revision_a, &[&arts[0]], now);
            let sig_b = signature_of(&key_b, scope, &rev, &revision_b, &[&arts[1]], now);
            // Each request runs as its own task on the server's runtime (two worker
            // threads); a run sends its revision once its signature is stored.
            let srv = &srv;
            let run = |[sig, revision]: [Req; 2]| async move {
                let sig = srv.spawn(sig).await.unwrap();
                if sig != 200 {
                    return sig;
                }
                srv.spawn(revision).await.unwrap()
            };
            let (a, b) = srv.block_on(futures_util::future::join(
                run(signed_upload(&rev_url, &sig_a, &revision_a)),
                run(signed_upload(&rev_url, &sig_b, &revision_b)),
            ));
            assert!(
                a == 200 || b == 200,
                "{scope}, round {i}: neither upload succeeded ({a}, {b})"
            );
            for status in [a, b] {
                assert!(
                    [200, 403, 409].contains(&status),
                    "{scope}, round {i}: {status}"
                );
            }
            if let Err(e) = stored_pair_verifies(srv, scope, &rev, &keys) {
                panic!("{scope}, round {i} (statuses {a}, {b}): {e}");
            }
        }
    }
}
