//! Signature checks on download (docs/trust.md): the revision's signature object fetched
//! and verified against the trusted keys, the revision file's SHA-256 checked, and the
//! artifacts already in the local cache re-checked against the signed SHA-256 (a mismatch is
//! quarantined and downloaded again). Downloads themselves are checked as they stream
//! ([`Transport::download_artifact_checked`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use tarn_core::trust::{signed_place, Expected, Manifest, SignatureFile, TrustError, TrustedKey};
use tarn_core::trust::{StrongDigest, SIGNATURE_SUFFIX};
use tarn_core::{ArtifactName, Hash, Scope, Service};
use tarn_store::{write_atomic, Cache, StoreError};

use crate::transport::{Failed, Transport};

/// The keys a `get` trusts. With a policy, every revision must carry a valid signature by
/// one of them.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// The trusted keys (several for rotation, each optionally expiring, each optionally
    /// only for some scopes).
    pub keys: Vec<TrustedKey>,
}

impl TrustPolicy {
    /// Whether any key is trusted for `scope`: only then are its revisions checked (a
    /// policy whose keys all name other scopes leaves this scope as Lake has it).
    pub(crate) fn applies_to(&self, scope: &str) -> bool {
        self.keys.iter().any(|k| k.covers_scope(scope))
    }
}

/// How a revision's origin was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No trusted keys: nothing was signature-checked (Lake's behaviour).
    NotChecked,
    /// Verified: signed by this key, every artifact checked against its signed SHA-256.
    Verified {
        /// The signer's key id (`SHA256:…`).
        key_id: String,
        /// The trusted key's comment.
        comment: String,
    },
}

/// Why a revision's signature was refused or could not be checked. Each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustFailure {
    /// Signatures are checked for S3-kind services only.
    #[error("trusted keys are configured, but {what} cannot be signature-checked (only revisions found on an S3-kind service can)")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// The service has no signature object for the revision.
    #[error("revision {rev} is not signed: no signature at {url}")]
    Unsigned {
        /// The revision.
        rev: String,
        /// The signature URL.
        url: String,
    },
    /// The signature was refused.
    #[error("revision {rev}: signature {url} refused: {source}")]
    Refused {
        /// The revision.
        rev: String,
        /// The signature URL (or local file).
        url: String,
        /// Why.
        #[source]
        source: TrustError,
    },
    /// The signature does not cover exactly the artifacts the revision file names.
    #[error("revision {rev}: the signature does not cover the revision's artifacts ({missing} not signed, {extra} signed but not named)")]
    Coverage {
        /// The revision.
        rev: String,
        /// Artifacts named but not signed.
        missing: usize,
        /// Artifacts signed but not named.
        extra: usize,
    },
    /// The signature could not be fetched.
    #[error("fetching the signature failed: {0}")]
    Fetch(#[source] Box<Failed>),
    /// A local file could not be written or read.
    #[error("{0}")]
    Local(#[source] StoreError),
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where one revision was found, for verifying its signature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RevisionPlace<'a> {
    pub(crate) service: &'a Service,
    pub(crate) scope: &'a Scope,
    pub(crate) local_scope: &'a str,
    pub(crate) rev: &'a str,
    pub(crate) platform: Option<&'a str>,
    pub(crate) toolchain: Option<&'a str>,
}

/// Reads the signature saved beside a revision file, if any (bounded like a mapping file).
fn saved_signature(cache: &Cache, place: &RevisionPlace<'_>) -> Option<(PathBuf, Vec<u8>)> {
    let path = cache.signature_path(place.local_scope, place.rev);
    let limit = tarn_store::mappings_limit();
    let bytes = tarn_store::read_local_file(&path, tarn_store::Links::Refuse, &limit).ok()?;
    Some((path, bytes))
}

/// Whether a saved revision file has a saved signature beside it (so the local copy can be
/// checked offline).
pub(crate) fn has_saved_signature(cache: &Cache, local_scope: &str, rev: &str) -> bool {
    cache.signature_path(local_scope, rev).is_file()
}

/// Verifies the signature of a revision whose file is `revision_file`: the saved signature
/// when the revision file is the saved copy, else the service's `<revision url>.sig` (which
/// must not be older than a saved one: a replay). A verified downloaded signature is saved.
pub(crate) async fn verify_revision(
    transport: &Transport,
    cache: &Cache,
    policy: &TrustPolicy,
    place: &RevisionPlace<'_>,
    revision_file: &[u8],
    local: bool,
) -> Result<(Manifest, SignatureCheck), TrustFailure> {
    let rev = place.rev.to_string();
    if place.service.is_reservoir() {
        return Err(TrustFailure::Unsupported {
            what: format!("revision {rev} from a Reservoir service"),
        });
    }
    let (platform, toolchain) = signed_place(place.scope, place.platform, place.toolchain);
    let saved = saved_signature(cache, place);
    let now = now_unix();
    let expected = |newest_seen| Expected {
        scope: place.scope.as_str(),
        revision: place.rev,
        platform: platform.as_deref(),
        toolchain: toolchain.as_deref(),
        revision_file,
        now,
        newest_seen,
    };
    let check = |bytes: &[u8], newest_seen, url: &str| {
        let refused = |source| TrustFailure::Refused {
            rev: rev.clone(),
            url: url.to_string(),
            source,
        };
        let parsed = SignatureFile::parse(bytes).map_err(refused)?;
        let key = parsed
            .verify(&policy.keys, &expected(newest_seen))
            .map_err(refused)?;
        let outcome = SignatureCheck::Verified {
            key_id: key.key.key_id(),
            comment: key.comment.clone(),
        };
        Ok::<_, TrustFailure>((parsed.manifest, outcome))
    };
    if local {
        if let Some((path, bytes)) = &saved {
            return check(bytes, None, &path.display().to_string());
        }
    }
    let url = format!(
        "{}{SIGNATURE_SUFFIX}",
        place
            .service
            .revision_url(place.scope, place.rev, place.platform, place.toolchain)
    );
    let bytes = transport
        .get_optional(&url, &[])
        .await
        .map_err(|e| TrustFailure::Fetch(Box::new(e)))?
        .ok_or_else(|| TrustFailure::Unsigned {
            rev: rev.clone(),
            url: url.clone(),
        })?;
    let newest_seen = saved
        .as_ref()
        .and_then(|(_, b)| SignatureFile::parse(b).ok())
        .map(|s| s.manifest.timestamp);
    let verified = check(&bytes, newest_seen, &url)?;
    let path = cache.signature_path(place.local_scope, place.rev);
    write_atomic(&path, &bytes).map_err(TrustFailure::Local)?;
    Ok(verified)
}

/// Checks that the signature covers exactly the artifacts the revision file names.
pub(crate) fn check_coverage(
    manifest: &Manifest,
    names: &[ArtifactName],
) -> Result<(), TrustFailure> {
    let named: BTreeSet<Hash> = names.iter().map(|n| n.hash).collect();
    let missing = named
        .iter()
        .filter(|h| !manifest.artifacts.contains_key(h))
        .count();
    let extra = manifest
        .artifacts
        .keys()
        .filter(|h| !named.contains(h))
        .count();
    if missing + extra > 0 {
        return Err(TrustFailure::Coverage {
            rev: manifest.revision.clone(),
            missing,
            extra,
        });
    }
    Ok(())
}

/// One artifact found in the local cache that did not match its signed SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    /// The artifact's file name.
    pub artifact: String,
    /// Where it was moved.
    pub moved_to: PathBuf,
}

/// Re-checks the artifacts of `present` (already in the cache) against their signed
/// SHA-256, in parallel; each mismatch is moved to the quarantine. Returns the quarantined
/// artifacts (the caller downloads them again) and the errors reading or moving any.
pub(crate) async fn recheck_present(
    cache: &Cache,
    signed: &BTreeMap<Hash, StrongDigest>,
    present: Vec<ArtifactName>,
    jobs: usize,
) -> (
    Vec<(ArtifactName, Quarantined)>,
    Vec<(ArtifactName, StoreError)>,
) {
    let signed = Arc::new(signed.clone());
    let mut checks = futures_util::stream::iter(present)
        .map(|name| {
            let cache = cache.clone();
            let signed = signed.clone();
            async move {
                let path = cache.artifact_path(&name);
                let job_name = name.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let path = cache.artifact_path(&job_name);
                    let want = signed.get(&job_name.hash).copied();
                    let d = tarn_store::strong_digest_file(&path)
                        .map_err(|e| StoreError::io(&path, e))?;
                    if Some(d) == want {
                        Ok(None)
                    } else {
                        cache.quarantine_artifact(&job_name).map(Some)
                    }
                })
                .await
                .unwrap_or_else(|e| Err(StoreError::io(&path, std::io::Error::other(e))));
                (name, r)
            }
        })
        .buffer_unordered(jobs.max(1));
    let mut quarantined = Vec::new();
    let mut errors = Vec::new();
    while let Some((name, r)) = checks.next().await {
        match r {
            Ok(None) => {}
            Ok(Some(moved_to)) => {
                tracing::warn!(
                    "{}: does not match the SHA-256 its revision's signature gives; moved to {}",
                    cache.artifact_path(&name).display(),
                    moved_to.display()
                );
                let q = Quarantined {
                    artifact: name.file_name(),
                    moved_to,
                };
                quarantined.push((name, q));
            }
            Err(e) => errors.push((name, e)),
        }
    }
    (quarantined, errors)
}
