//! The signature object `<rev>.jsonl.sig`, version 1 (docs/trust.md): a line-based manifest
//! of strong hashes for one revision file, signed with Ed25519.
//!
//! ```text
//! tarn-signature 1
//! key SHA256:<fingerprint>
//! scope <scope>
//! revision <40 hex>
//! platform <platform>            (only when the revision URL has one)
//! toolchain <toolchain>          (only when the revision URL has one)
//! timestamp <unix seconds>
//! revision-file <sha256 hex> <size>
//! artifact <lake hash hex> <sha256 hex> <size>      (one a line, ascending, unique)
//! signature <base64 of the 64-byte Ed25519 signature>
//! ```
//!
//! The signed message is every byte before the `signature` line, exactly as stored: there
//! is one encoding ([`Manifest::encode`]), and [`SignatureFile::parse`] accepts only that
//! encoding (re-encoding the parsed manifest must give the same bytes).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::keys::{SecretKey, TrustedKey};
use crate::Hash;

/// The first line of a version-1 signature object.
pub(crate) const SIGNATURE_HEADER: &str = "tarn-signature 1";
/// The suffix of a signature object's key: `<revision key>.sig`.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// The HTTP header of a revision upload that names the SHA-256 (64 hex digits) of the
/// signature object its uploader stored just before; `tarn serve` stores the revision file
/// only while exactly that signature is stored beside it (docs/trust.md, "On the server").
pub const SIGNATURE_SHA256_HEADER: &str = "x-tarn-signature-sha256";
/// How far in the future a signature's timestamp may be (clock skew), in seconds.
pub(crate) const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// A SHA-256 digest and the size of the bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrongDigest {
    /// SHA-256.
    pub sha256: [u8; 32],
    /// Length in bytes.
    pub size: u64,
}

impl StrongDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> StrongDigest {
        let mut h = StrongHasher::new();
        h.update(bytes);
        h.finish()
    }

    /// The digest of a revision file as tarn stores it: ASCII whitespace trimmed at both
    /// ends (what `tarn get` saves under `revisions/`).
    pub fn of_revision_file(bytes: &[u8]) -> StrongDigest {
        StrongDigest::of(bytes.trim_ascii())
    }
}

/// SHA-256 over a stream of bytes, fed in pieces as they are read, sent or received
/// (ring's implementation: SHA extensions or AVX2 where the CPU has them), counting the
/// bytes it covers. The one strong hasher of every hot path (validating, uploading,
/// downloading), so each byte is hashed in the pass that already touches it.
#[derive(Clone)]
pub struct StrongHasher {
    context: ring::digest::Context,
    size: u64,
}

impl std::fmt::Debug for StrongHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrongHasher")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Default for StrongHasher {
    fn default() -> Self {
        StrongHasher::new()
    }
}

impl StrongHasher {
    /// An empty hasher.
    pub fn new() -> StrongHasher {
        StrongHasher {
            context: ring::digest::Context::new(&ring::digest::SHA256),
            size: 0,
        }
    }

    /// Adds the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// The bytes seen so far.
    pub fn bytes_seen(&self) -> u64 {
        self.size
    }

    /// The digest of everything added.
    pub fn finish(self) -> StrongDigest {
        let digest = self.context.finish();
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.as_ref());
        StrongDigest {
            sha256,
            size: self.size,
        }
    }
}

/// What a signature says about one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The signer's key id (`SHA256:…`).
    pub key_id: String,
    /// The remote scope.
    pub scope: String,
    /// The revision (40 lowercase hex digits).
    pub revision: String,
    /// The platform part of the revision URL, if any.
    pub platform: Option<String>,
    /// The toolchain part of the revision URL, if any.
    pub toolchain: Option<String>,
    /// When it was signed (Unix seconds).
    pub timestamp: u64,
    /// The revision file ([`StrongDigest::of_revision_file`]).
    pub revision_file: StrongDigest,
    /// Every artifact the revision file names, by Lake hash.
    pub artifacts: BTreeMap<Hash, StrongDigest>,
}

/// A field value that cannot be encoded on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} cannot be signed: empty, or it has spaces or control characters")]
pub struct FieldError {
    /// The field.
    pub field: &'static str,
    /// The value.
    pub value: String,
}

fn one_word(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

impl Manifest {
    /// The canonical text that is signed (everything but the `signature` line).
    pub(crate) fn encode(&self) -> Result<String, FieldError> {
        use std::fmt::Write;
        one_word("key", &self.key_id)?;
        one_word("scope", &self.scope)?;
        one_word("revision", &self.revision)?;
        let mut s = String::with_capacity(200 + self.artifacts.len() * 100);
        let _ = writeln!(s, "{SIGNATURE_HEADER}");
        let _ = writeln!(s, "key {}", self.key_id);
        let _ = writeln!(s, "scope {}", self.scope);
        let _ = writeln!(s, "revision {}", self.revision);
        if let Some(p) = &self.platform {
            one_word("platform", p)?;
            let _ = writeln!(s, "platform {p}");
        }
        if let Some(t) = &self.toolchain {
            one_word("toolchain", t)?;
            let _ = writeln!(s, "toolchain {t}");
        }
        let _ = writeln!(s, "timestamp {}", self.timestamp);
        let r = &self.revision_file;
        let _ = writeln!(s, "revision-file {} {}", hex::encode(r.sha256), r.size);
        for (h, d) in &self.artifacts {
            let _ = writeln!(
                s,
                "artifact {} {} {}",
                h.hex(),
                hex::encode(d.sha256),
                d.size
            );
        }
        Ok(s)
    }

    /// The complete signature object: the manifest signed by `key` (whose id must be
    /// `key_id`).
    pub fn sign(&self, key: &SecretKey) -> Result<Vec<u8>, FieldError> {
        debug_assert_eq!(self.key_id, key.public().key_id());
        let mut text = self.encode()?;
        let sig = key.sign(text.as_bytes());
        text.push_str("signature ");
        text.push_str(&STANDARD.encode(sig));
        text.push('\n');
        Ok(text.into_bytes())
    }
}

/// The platform and toolchain a signature records for a revision URL: exactly the parts the
/// URL has (repository scopes only, when given and not empty; the toolchain in its URL form,
/// [`toolchain_dir`](crate::toolchain_dir)).
pub fn signed_place(
    scope: &crate::Scope,
    platform: Option<&str>,
    toolchain: Option<&str>,
) -> (Option<String>, Option<String>) {
    if !scope.is_repo() {
        return (None, None);
    }
    (
        platform.filter(|p| !p.is_empty()).map(str::to_string),
        toolchain
            .filter(|t| !t.is_empty())
            .map(crate::toolchain_dir),
    )
}

/// What the verifier expects a signature to be about.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The remote scope.
    pub scope: &'a str,
    /// The revision.
    pub revision: &'a str,
    /// The platform part of the revision URL.
    pub platform: Option<&'a str>,
    /// The toolchain part of the revision URL.
    pub toolchain: Option<&'a str>,
    /// The revision file's bytes.
    pub revision_file: &'a [u8],
    /// Now (Unix seconds).
    pub now: u64,
    /// The timestamp of a signature accepted earlier for the same revision URL: an older
    /// one is a replay.
    pub newest_seen: Option<u64>,
}

/// Why a signature object is refused. Each names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// Not a version-1 signature object, or not in canonical form.
    #[error("malformed signature object (line {line}): {message}")]
    Malformed {
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Signed by a key that is not trusted.
    #[error("signed by {key_id}, which is not a trusted key")]
    UntrustedKey {
        /// The signer's key id.
        key_id: String,
    },
    /// Signed by a key trusted only for other scopes.
    #[error("signed by {key_id}, which is not trusted for scope {scope} (its scope= options name others)")]
    KeyNotForScope {
        /// The signer's key id.
        key_id: String,
        /// The scope the signature is for.
        scope: String,
    },
    /// Signed by a trusted key that has expired.
    #[error("signed by {key_id}, whose trust expired at {expired} (Unix seconds)")]
    ExpiredKey {
        /// The signer's key id.
        key_id: String,
        /// When it expired.
        expired: u64,
    },
    /// The Ed25519 signature does not verify.
    #[error("the signature by {key_id} does not verify (the object was altered or truncated)")]
    BadSignature {
        /// The claimed signer.
        key_id: String,
    },
    /// A signed field differs from what was asked for.
    #[error("signed for {field} {signed:?}, not {expected:?}")]
    WrongField {
        /// The field.
        field: &'static str,
        /// The signed value.
        signed: String,
        /// The expected value.
        expected: String,
    },
    /// The revision file is not the one signed.
    #[error("the revision file's SHA-256 {actual} does not match the signed {signed}")]
    RevisionFileMismatch {
        /// Its SHA-256 (hex).
        actual: String,
        /// The signed SHA-256 (hex).
        signed: String,
    },
    /// The timestamp is older than a signature already accepted for this revision.
    #[error("replayed signature: signed at {timestamp}, older than the signature accepted before (signed at {newest_seen})")]
    Replayed {
        /// This signature's timestamp.
        timestamp: u64,
        /// The newest accepted before.
        newest_seen: u64,
    },
    /// The timestamp is in the future.
    #[error("signed at {timestamp}, in the future (now {now})")]
    FromTheFuture {
        /// The timestamp.
        timestamp: u64,
        /// Now.
        now: u64,
    },
}

/// A parsed signature object.
#[derive(Debug, Clone)]
pub struct SignatureFile {
    /// The manifest.
    pub manifest: Manifest,
    /// The signed bytes (everything before the `signature` line).
    message: Vec<u8>,
    signature: [u8; 64],
}

impl SignatureFile {
    /// Parses a signature object; only the canonical encoding is accepted.
    pub fn parse(bytes: &[u8]) -> Result<SignatureFile, TrustError> {
        let bad = |line: usize, message: &str| TrustError::Malformed {
            line,
            message: message.to_string(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8"))?;
        if !text.ends_with('\n') {
            return Err(bad(0, "does not end with a line break (truncated?)"));
        }
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        if lines.first() != Some(&SIGNATURE_HEADER) {
            return Err(bad(1, "not a tarn-signature 1 object"));
        }
        let mut n = 1;
        let (key_id, _) = field(&lines, &mut n, "key")?;
        let (scope, _) = field(&lines, &mut n, "scope")?;
        let (revision, _) = field(&lines, &mut n, "revision")?;
        // Optional fields: peek without failing.
        let platform = next_opt(&lines, &mut n, "platform");
        let toolchain = next_opt(&lines, &mut n, "toolchain");
        let (ts, tl) = field(&lines, &mut n, "timestamp")?;
        let timestamp = ts
            .parse::<u64>()
            .ok()
            .filter(|t| t.to_string() == ts)
            .ok_or_else(|| bad(tl, "timestamp is not a decimal number"))?;
        let (rf, rl) = field(&lines, &mut n, "revision-file")?;
        let revision_file =
            parse_digest(&rf).ok_or_else(|| bad(rl, "revision-file is not `<sha256> <size>`"))?;
        let mut artifacts = BTreeMap::new();
        while let Some(rest) = lines.get(n).and_then(|l| l.strip_prefix("artifact ")) {
            n += 1;
            let (h, d) = rest
                .split_once(' ')
                .ok_or_else(|| bad(n, "artifact is not `<hash> <sha256> <size>`"))?;
            let hash = Hash::from_hex(h)
                .filter(|x| x.hex() == h)
                .ok_or_else(|| bad(n, "artifact hash is not 16 lowercase hex digits"))?;
            let d = parse_digest(d)
                .ok_or_else(|| bad(n, "artifact is not `<hash> <sha256> <size>`"))?;
            if artifacts.last_key_value().is_some_and(|(k, _)| *k >= hash) {
                return Err(bad(n, "artifacts are not in ascending order, or repeat"));
            }
            artifacts.insert(hash, d);
        }
        let signed_len: usize = lines[..n].iter().map(|l| l.len() + 1).sum();
        let (sig, sl) = field(&lines, &mut n, "signature")?;
        if n != lines.len() {
            return Err(bad(n + 1, "unexpected line after the signature"));
        }
        let signature: [u8; 64] = STANDARD
            .decode(&sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad(sl, "signature is not 64 bytes of base64"))?;
        let manifest = Manifest {
            key_id,
            scope,
            revision,
            platform,
            toolchain,
            timestamp,
            revision_file,
            artifacts,
        };
        // One encoding only: the parsed manifest must re-encode to the signed bytes.
        match manifest.encode() {
            Ok(e) if e.as_bytes() == &bytes[..signed_len] => {}
            _ => return Err(bad(0, "not in canonical form")),
        }
        Ok(SignatureFile {
            manifest,
            message: bytes[..signed_len].to_vec(),
            signature,
        })
    }

    /// Checks the signature against `trusted` and the manifest against `expected`, in this
    /// order: the signer is trusted, the signature verifies, the key had not expired, then
    /// scope, revision, platform, toolchain, timestamp and the revision file's SHA-256.
    /// Returns the key that signed.
    pub fn verify<'k>(
        &self,
        trusted: &'k [TrustedKey],
        expected: &Expected<'_>,
    ) -> Result<&'k TrustedKey, TrustError> {
        let key = self.verify_signer(trusted, expected.now)?;
        let m = &self.manifest;
        check_field("scope", &m.scope, Some(expected.scope))?;
        check_field("revision", &m.revision, Some(expected.revision))?;
        check_opt("platform", m.platform.as_deref(), expected.platform)?;
        check_opt("toolchain", m.toolchain.as_deref(), expected.toolchain)?;
        if let Some(seen) = expected.newest_seen {
            if m.timestamp < seen {
                return Err(TrustError::Replayed {
                    timestamp: m.timestamp,
                    newest_seen: seen,
                });
            }
        }
        self.check_revision_file(expected.revision_file)?;
        Ok(key)
    }

    /// Checks only who signed: a trusted key, a valid signature, not expired at `now`, and a
    /// timestamp not in the future. Returns the key.
    pub fn verify_signer<'k>(
        &self,
        trusted: &'k [TrustedKey],
        now: u64,
    ) -> Result<&'k TrustedKey, TrustError> {
        let m = &self.manifest;
        let same_id: Vec<&TrustedKey> = trusted
            .iter()
            .filter(|k| k.key.key_id() == m.key_id)
            .collect();
        if same_id.is_empty() {
            return Err(TrustError::UntrustedKey {
                key_id: m.key_id.clone(),
            });
        }
        let candidates: Vec<&TrustedKey> = same_id
            .into_iter()
            .filter(|k| k.covers_scope(&m.scope))
            .collect();
        if candidates.is_empty() {
            return Err(TrustError::KeyNotForScope {
                key_id: m.key_id.clone(),
                scope: m.scope.clone(),
            });
        }
        let verified = candidates
            .iter()
            .find(|k| k.key.verifies(&self.message, &self.signature))
            .ok_or_else(|| TrustError::BadSignature {
                key_id: m.key_id.clone(),
            })?;
        // Several lines may hold one key with different expiries: the latest one counts.
        let alive = candidates
            .iter()
            .filter(|k| k.key == verified.key)
            .find(|k| k.valid_at(now));
        let key = match alive {
            Some(k) => *k,
            None => {
                return Err(TrustError::ExpiredKey {
                    key_id: m.key_id.clone(),
                    expired: verified.expires.unwrap_or_default(),
                })
            }
        };
        if m.timestamp > now + MAX_CLOCK_SKEW_SECS {
            return Err(TrustError::FromTheFuture {
                timestamp: m.timestamp,
                now,
            });
        }
        Ok(key)
    }

    /// Checks that `revision_file` is the revision file signed.
    pub(crate) fn check_revision_file(&self, revision_file: &[u8]) -> Result<(), TrustError> {
        let actual = StrongDigest::of_revision_file(revision_file);
        if actual != self.manifest.revision_file {
            return Err(TrustError::RevisionFileMismatch {
                actual: hex::encode(actual.sha256),
                signed: hex::encode(self.manifest.revision_file.sha256),
            });
        }
        Ok(())
    }
}

fn check_field(
    field: &'static str,
    signed: &str,
    expected: Option<&str>,
) -> Result<(), TrustError> {
    check_opt(field, Some(signed), expected)
}

fn check_opt(
    field: &'static str,
    signed: Option<&str>,
    expected: Option<&str>,
) -> Result<(), TrustError> {
    if signed == expected {
        return Ok(());
    }
    Err(TrustError::WrongField {
        field,
        signed: signed.unwrap_or("(none)").to_string(),
        expected: expected.unwrap_or("(none)").to_string(),
    })
}

fn next_opt(lines: &[&str], n: &mut usize, want: &str) -> Option<String> {
    let v = lines
        .get(*n)?
        .strip_prefix(want)?
        .strip_prefix(' ')?
        .to_string();
    *n += 1;
    Some(v)
}

fn field(lines: &[&str], n: &mut usize, want: &'static str) -> Result<(String, usize), TrustError> {
    match next_opt(lines, n, want) {
        Some(v) => Ok((v, *n)),
        None => Err(TrustError::Malformed {
            line: *n + 1,
            message: format!("expected `{want} …`"),
        }),
    }
}

fn parse_digest(s: &str) -> Option<StrongDigest> {
    let (sha, size) = s.split_once(' ')?;
    if sha.len() != 64 || sha.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let size_n = size.parse::<u64>().ok().filter(|n| n.to_string() == size)?;
    Some(StrongDigest {
        sha256: hex::decode(sha).ok()?.try_into().ok()?,
        size: size_n,
    })
}
