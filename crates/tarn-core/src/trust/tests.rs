//! The signature object: round trip, and each way a signature is refused.

use std::collections::BTreeMap;

use super::*;
use crate::Hash;
use signature::MAX_CLOCK_SKEW_SECS;

const REV: &str = "0123456789abcdef0123456789abcdef01234567";
const NOW: u64 = 1_800_000_000;
const MAPPINGS: &[u8] = b"{\"schemaVersion\":\"2025-09-10\"}\n";

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32], "")
}

fn trusted(k: &SecretKey, expires: Option<u64>) -> TrustedKey {
    TrustedKey {
        key: k.public().clone(),
        comment: String::new(),
        expires,
        scopes: Vec::new(),
    }
}

fn manifest(k: &SecretKey, timestamp: u64) -> Manifest {
    let mut artifacts = BTreeMap::new();
    artifacts.insert(Hash(2), StrongDigest::of(b"two"));
    artifacts.insert(Hash(1), StrongDigest::of(b"one"));
    Manifest {
        key_id: k.public().key_id(),
        scope: "owner/repo".into(),
        revision: REV.into(),
        platform: Some("x86_64-unknown-linux-gnu".into()),
        toolchain: Some("leanprover--lean4--v4.22.0".into()),
        timestamp,
        revision_file: StrongDigest::of_revision_file(MAPPINGS),
        artifacts,
    }
}

fn expected(now: u64, newest_seen: Option<u64>) -> Expected<'static> {
    Expected {
        scope: "owner/repo",
        revision: REV,
        platform: Some("x86_64-unknown-linux-gnu"),
        toolchain: Some("leanprover--lean4--v4.22.0"),
        revision_file: MAPPINGS,
        now,
        newest_seen,
    }
}

fn check(bytes: &[u8], keys: &[TrustedKey], e: &Expected<'_>) -> Result<String, TrustError> {
    let parsed = SignatureFile::parse(bytes)?;
    parsed.verify(keys, e).map(|k| k.key.key_id())
}

#[test]
fn signs_and_verifies_in_canonical_form() {
    let k = key(1);
    let bytes = manifest(&k, NOW).sign(&k).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("tarn-signature 1\nkey SHA256:"));
    assert!(text.contains("\nartifact 0000000000000001 "));
    let one = text.find("artifact 0000000000000001").unwrap();
    let two = text.find("artifact 0000000000000002").unwrap();
    assert!(one < two, "artifacts ascending");
    let parsed = SignatureFile::parse(&bytes).unwrap();
    assert_eq!(parsed.manifest, manifest(&k, NOW));
    let id = check(&bytes, &[trusted(&k, None)], &expected(NOW, None)).unwrap();
    assert_eq!(id, k.public().key_id());
}

#[test]
fn untrusted_and_expired_keys_are_refused() {
    let (k, other) = (key(1), key(2));
    let bytes = manifest(&k, NOW).sign(&k).unwrap();
    let e = check(&bytes, &[trusted(&other, None)], &expected(NOW, None)).unwrap_err();
    assert!(matches!(e, TrustError::UntrustedKey { .. }), "{e}");
    let e = check(&bytes, &[trusted(&k, Some(NOW))], &expected(NOW, None)).unwrap_err();
    assert!(
        matches!(e, TrustError::ExpiredKey { expired: NOW, .. }),
        "{e}"
    );
    // Rotation: an expired line and a live line for one key; the live one counts.
    let keys = [trusted(&k, Some(NOW)), trusted(&k, Some(NOW + 10))];
    assert!(check(&bytes, &keys, &expected(NOW, None)).is_ok());
}

#[test]
fn a_key_trusted_for_other_scopes_is_refused() {
    let k = key(1);
    let bytes = manifest(&k, NOW).sign(&k).unwrap();
    let scoped = |patterns: &[&str]| TrustedKey {
        scopes: patterns.iter().map(|p| p.to_string()).collect(),
        ..trusted(&k, None)
    };
    let e = check(&bytes, &[scoped(&["dep/*", "other"])], &expected(NOW, None)).unwrap_err();
    assert!(
        matches!(&e, TrustError::KeyNotForScope { scope, .. } if scope == "owner/repo"),
        "{e}"
    );
    assert!(check(&bytes, &[scoped(&["owner/*"])], &expected(NOW, None)).is_ok());
    // The same key on two lines: one for another scope, one for this scope.
    let keys = [scoped(&["dep/*"]), scoped(&["owner/repo"])];
    assert!(check(&bytes, &keys, &expected(NOW, None)).is_ok());
}

#[test]
fn a_signature_for_another_revision_or_place_is_refused() {
    let k = key(1);
    let keys = [trusted(&k, None)];
    let mut m = manifest(&k, NOW);
    m.revision = "1111111111111111111111111111111111111111".into();
    let e = check(&m.sign(&k).unwrap(), &keys, &expected(NOW, None)).unwrap_err();
    assert!(
        matches!(
            e,
            TrustError::WrongField {
                field: "revision",
                ..
            }
        ),
        "{e}"
    );
    let mut m = manifest(&k, NOW);
    m.scope = "attacker/repo".into();
    let e = check(&m.sign(&k).unwrap(), &keys, &expected(NOW, None)).unwrap_err();
    assert!(
        matches!(e, TrustError::WrongField { field: "scope", .. }),
        "{e}"
    );
    let mut m = manifest(&k, NOW);
    m.toolchain = None;
    let e = check(&m.sign(&k).unwrap(), &keys, &expected(NOW, None)).unwrap_err();
    assert!(
        matches!(
            e,
            TrustError::WrongField {
                field: "toolchain",
                ..
            }
        ),
        "{e}"
    );
    let mut m = manifest(&k, NOW);
    m.revision_file = StrongDigest::of(b"another revision file");
    let e = check(&m.sign(&k).unwrap(), &keys, &expected(NOW, None)).unwrap_err();
    assert!(matches!(e, TrustError::RevisionFileMismatch { .. }), "{e}");
}

#[test]
fn truncated_or_altered_objects_are_refused() {
    let k = key(1);
    let keys = [trusted(&k, None)];
    let bytes = manifest(&k, NOW).sign(&k).unwrap();
    for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
        let e = check(&bytes[..cut], &keys, &expected(NOW, None)).unwrap_err();
        assert!(matches!(e, TrustError::Malformed { .. }), "cut {cut}: {e}");
    }
    // An artifact line removed: well-formed, but the signature no longer matches.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("artifact 0000000000000002"))
        .unwrap();
    let dropped = text.replace(&format!("{line}\n"), "");
    let e = check(dropped.as_bytes(), &keys, &expected(NOW, None)).unwrap_err();
    assert!(matches!(e, TrustError::BadSignature { .. }), "{e}");
    // A size changed.
    let altered = text.replacen(" 3\n", " 4\n", 1);
    assert_ne!(altered, text);
    let e = check(altered.as_bytes(), &keys, &expected(NOW, None)).unwrap_err();
    assert!(matches!(e, TrustError::BadSignature { .. }), "{e}");
    // Non-canonical spellings are refused before any key is consulted.
    for (from, to) in [(" 3\n", " 03\n"), ("tarn-signature 1", "tarn-signature 2")] {
        let odd = text.replacen(from, to, 1);
        let e = check(odd.as_bytes(), &keys, &expected(NOW, None)).unwrap_err();
        assert!(matches!(e, TrustError::Malformed { .. }), "{to}: {e}");
    }
    let e = check(
        format!("{text}extra\n").as_bytes(),
        &keys,
        &expected(NOW, None),
    )
    .unwrap_err();
    assert!(matches!(e, TrustError::Malformed { .. }), "{e}");
}

#[test]
fn replayed_and_future_signatures_are_refused() {
    let k = key(1);
    let keys = [trusted(&k, None)];
    let old = manifest(&k, NOW - 100).sign(&k).unwrap();
    let e = check(&old, &keys, &expected(NOW, Some(NOW - 50))).unwrap_err();
    assert!(matches!(e, TrustError::Replayed { .. }), "{e}");
    assert!(check(&old, &keys, &expected(NOW, Some(NOW - 100))).is_ok());
    let future = manifest(&k, NOW + MAX_CLOCK_SKEW_SECS + 1)
        .sign(&k)
        .unwrap();
    let e = check(&future, &keys, &expected(NOW, None)).unwrap_err();
    assert!(matches!(e, TrustError::FromTheFuture { .. }), "{e}");
}

#[test]
fn fields_that_cannot_be_one_word_are_refused_at_signing() {
    let k = key(1);
    let mut m = manifest(&k, NOW);
    m.platform = Some("two words".into());
    assert!(m.sign(&k).is_err());
}
