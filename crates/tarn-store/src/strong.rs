//! `tarn verify --strong` (docs/trust.md): every artifact of the cache re-checked against the
//! SHA-256 the revision signatures give. The record of what was verified is the signatures a
//! verified `tarn get` saved beside the revision files (`revisions/<pkg>/<rev>.jsonl.sig`):
//! an artifact one of them names was checked against it when it was fetched; one that none
//! names has no verified origin. An artifact whose content no longer matches is moved to the
//! quarantine.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use tarn_core::trust::{SignatureFile, StrongDigest, SIGNATURE_SUFFIX};
use tarn_core::Hash;

use crate::cache::Cache;
use crate::hashing::strong_digest_file;
use crate::local_file::{read_local_file, Links};
use crate::parallel::{default_threads, par_map};
use crate::verify::{list_artifacts, Problem, VerifyReport};

/// What `verify --strong` found.
#[derive(Debug, Default)]
pub struct StrongReport {
    /// Saved signatures read.
    pub signatures: u64,
    /// Artifacts checked against a signed SHA-256.
    pub checked: u64,
    /// Artifacts no saved signature names (no verified origin).
    pub unverified: u64,
    /// Mismatches (each moved to the quarantine) and unreadable signatures.
    pub problems: Vec<Problem>,
}

/// The saved signatures' digests, by artifact hash, with the signature that gave each.
fn signed_digests(
    cache: &Cache,
    report: &mut StrongReport,
) -> HashMap<Hash, Vec<(StrongDigest, PathBuf)>> {
    let mut map: HashMap<Hash, Vec<(StrongDigest, PathBuf)>> = HashMap::new();
    let suffix = format!(".jsonl{SIGNATURE_SUFFIX}");
    let limit = crate::mapfile::mappings_limit();
    let Ok(scopes) = fs::read_dir(cache.root().join("revisions")) else {
        return map;
    };
    for scope in scopes.flatten() {
        let Ok(files) = fs::read_dir(scope.path()) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            if !f.file_name().to_string_lossy().ends_with(&suffix) {
                continue;
            }
            let parsed = read_local_file(&path, Links::Refuse, &limit)
                .map_err(|e| e.to_string())
                .and_then(|b| SignatureFile::parse(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(sig) => {
                    report.signatures += 1;
                    for (h, d) in sig.manifest.artifacts {
                        map.entry(h).or_default().push((d, path.clone()));
                    }
                }
                Err(message) => report.problems.push(Problem { path, message }),
            }
        }
    }
    map
}

/// Re-checks every artifact a saved signature names against its signed SHA-256 and size;
/// a mismatch is moved to `.tarn/quarantine/` and reported.
pub fn verify_strong(cache: &Cache) -> StrongReport {
    let mut report = StrongReport::default();
    let signed = signed_digests(cache, &mut report);
    let mut listing = VerifyReport::default();
    let names = list_artifacts(cache, &mut listing);
    let (covered, uncovered): (Vec<_>, Vec<_>) = names
        .into_iter()
        .partition(|n| signed.contains_key(&n.hash));
    report.unverified = uncovered.len() as u64;
    let results = par_map(&covered, default_threads(), |name| {
        let path = cache.artifact_path(name);
        let digest = strong_digest_file(&path).map_err(|e| e.to_string())?;
        let wants = &signed[&name.hash];
        if wants.iter().any(|(d, _)| *d == digest) {
            return Ok(());
        }
        let (want, by) = &wants[0];
        let moved = cache
            .quarantine_artifact(name)
            .map(|p| format!("moved to {}", p.display()))
            .unwrap_or_else(|e| format!("could not be moved aside: {e}"));
        Err(format!(
            "SHA-256 {} ({} bytes) is not the {} ({} bytes) signed in {}; {moved}",
            hex::encode(digest.sha256),
            digest.size,
            hex::encode(want.sha256),
            want.size,
            by.display()
        ))
    });
    for (name, r) in covered.iter().zip(results) {
        report.checked += 1;
        if let Err(message) = r {
            report.problems.push(Problem {
                path: cache.artifact_path(name),
                message,
            });
        }
    }
    report
}
