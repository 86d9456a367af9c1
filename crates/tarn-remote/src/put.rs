//! The upload engine: validate everything locally, skip what the service has, upload the
//! rest, and upload the revision file last, only when every artifact is confirmed present;
//! [`run`] is the whole flow.

mod run;
#[cfg(test)]
mod tests;
mod uplink;

pub use run::{run, PutError, PutOutcome, PutPlan, PutRevision, PutSource};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use tarn_core::trust::{Manifest, SecretKey, StrongDigest, SIGNATURE_SHA256_HEADER};
use tarn_core::{batch, ArtifactName, Hash, MappingFile, Scope, Service};
use tarn_core::{ServiceKind, MAPPINGS_CONTENT_TYPE};
use tarn_store::{Cache, StagingDir};

use crate::get::ArtifactFailure;
use crate::progress::Event;
use crate::transport::{Failed, Transport};
use uplink::Uplink;

/// One artifact to upload, validated.
#[derive(Debug, Clone)]
pub struct UploadItem {
    /// Its name (the remote object is `<hash>.art`).
    pub name: ArtifactName,
    /// The file (read by this path only when `staged` is `None`).
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// The SHA-256 of the content, taken in the same read that checked Lake's hash during
    /// validation. The upload refuses to send bytes with another SHA-256, so a signature
    /// built from these digests covers exactly what was validated and sent. `None` when the
    /// upload is not signed and the staging directory was validated without it: the upload
    /// then takes it (for the request's signature) only of the artifacts it sends.
    pub sha256: Option<[u8; 32]>,
    /// The validated staging directory it belongs to: then it is read relative to the
    /// directory's descriptor, never by path.
    pub staged: Option<Arc<StagingDir>>,
}

/// Everything wrong with an upload's inputs, found before anything is sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct Invalid {
    /// One line per problem.
    pub problems: Vec<String>,
}

fn safe_name(name: &ArtifactName) -> bool {
    let f = name.file_name();
    !f.contains('/') && !f.contains('\\') && !f.contains("..") && !f.contains('\0')
}

/// Checks that an artifact file is a regular file (not a symlink); its content is hashed
/// afterwards, with the others, by [`items_for`].
fn check_kind(path: &Path, problems: &mut Vec<String>) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(format!("artifact not found: {}", path.display()));
            false
        }
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            false
        }
        Ok(m) if !m.file_type().is_file() => {
            problems.push(format!(
                "{}: not a regular file (symlinks and special files are refused)",
                path.display()
            ));
            false
        }
        Ok(_) => true,
    }
}

/// The artifacts `mappings` names, each a regular file whose content hashes to its name,
/// hashed on every core; the SHA-256 is taken in the same read of those `strong` picks
/// (all of them for a signed upload; otherwise those that will be sent, for the request's
/// signature).
fn items_for(
    mappings: &MappingFile,
    path_of: impl Fn(&ArtifactName) -> PathBuf,
    strong: impl Fn(&ArtifactName) -> bool,
    problems: &mut Vec<String>,
) -> Vec<UploadItem> {
    let names = match mappings.artifacts() {
        Ok(n) => n,
        Err(e) => {
            problems.push(format!("mappings {e}"));
            return Vec::new();
        }
    };
    let mut candidates = Vec::with_capacity(names.len());
    for name in names {
        if !safe_name(&name) {
            problems.push(format!("unsafe artifact name {:?}", name.file_name()));
            continue;
        }
        let path = path_of(&name);
        if check_kind(&path, problems) {
            candidates.push((name, path));
        }
    }
    let files: Vec<(PathBuf, bool)> = candidates
        .iter()
        .map(|(n, p)| (p.clone(), strong(n)))
        .collect();
    let hashed = tarn_store::hash_files(&files);
    let mut items = Vec::with_capacity(candidates.len());
    for ((name, path), r) in candidates.into_iter().zip(hashed) {
        match r {
            Ok((h, size, digest)) if h == name.hash => items.push(UploadItem {
                name,
                path,
                size,
                sha256: digest.map(|d| d.sha256),
                staged: None,
            }),
            Ok((h, _, _)) => problems.push(format!(
                "{}: content hash {} does not match the name",
                path.display(),
                h.hex()
            )),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    items
}

/// Loads and checks a mappings file: a regular file (a symbolic link is refused), read
/// through the one bounded, non-blocking reader (a FIFO or device is refused unread, a file
/// over `TARN_MAX_MAPPINGS_BYTES` refused); must parse; warnings are logged.
pub fn load_mappings(path: &Path) -> Result<(Vec<u8>, MappingFile), Invalid> {
    let one = |p: String| Invalid { problems: vec![p] };
    let limit = tarn_store::mappings_limit();
    let bytes = tarn_store::read_local_file(path, tarn_store::Links::Refuse, &limit)
        .map_err(|e| one(format!("{}: {e}", path.display())))?;
    let parsed = MappingFile::parse(&bytes).map_err(|e| one(format!("{}: {e}", path.display())))?;
    for w in &parsed.warnings {
        tracing::warn!("{}: line {}: {}", path.display(), w.line, w.message);
    }
    Ok((bytes, parsed.file))
}

/// Validates a staging directory for `put-staged` with the one staging validator
/// ([`tarn_store::validate_staging`], shared with `unstage`): `outputs.jsonl`
/// parses, every entry is a strict artifact name and a regular file, every artifact named is
/// present and its content (read through a descriptor opened without following links)
/// hashes to its name; with `strong` (the upload is signed) the SHA-256 of each artifact is
/// taken in the same read. Returns the mappings bytes (uploaded verbatim) and the items. The
/// upload opens each file again relative to the staging directory's descriptor (never by
/// path) and re-checks the hash as it sends (`Transport::put_staged_artifact`).
pub fn validate_staging(dir: &Path, strong: bool) -> Result<(Vec<u8>, Vec<UploadItem>), Invalid> {
    check_staging(open_staging(dir)?, |_| strong)
}

/// The first half of [`validate_staging`]: the directory's structure (`outputs.jsonl`
/// parses, every artifact it names is present as a regular file), warnings logged; no
/// artifact read yet.
pub(crate) fn open_staging(dir: &Path) -> Result<StagingDir, Invalid> {
    let staging = tarn_store::validate_staging(dir).map_err(|problems| Invalid { problems })?;
    for w in &staging.mappings.warnings {
        tracing::warn!("{w}");
    }
    for u in &staging.unreferenced {
        tracing::warn!(
            "{}: not named by outputs.jsonl; not uploaded",
            dir.join(u).display()
        );
    }
    Ok(staging)
}

/// The second half of [`validate_staging`]: every artifact's content hashed (Lake's hash;
/// the SHA-256 in the same read of those `strong` picks), the items to upload.
pub(crate) fn check_staging(
    mut staging: StagingDir,
    strong: impl Fn(&ArtifactName) -> bool + Sync,
) -> Result<(Vec<u8>, Vec<UploadItem>), Invalid> {
    let checked = staging
        .check_contents_where(strong)
        .map_err(|problems| Invalid { problems })?;
    let dir = staging.dir.clone();
    let bytes = std::mem::take(&mut staging.mappings.bytes);
    let staging = Arc::new(staging);
    let items = checked
        .into_iter()
        .map(|c| UploadItem {
            path: dir.join(c.name.file_name()),
            name: c.name,
            size: c.size,
            sha256: c.strong.map(|d| d.sha256),
            staged: Some(staging.clone()),
        })
        .collect();
    Ok((bytes, items))
}

/// Validates the artifacts a mappings file names in the cache for `put` (present, regular,
/// hash = name; a missing one is Lake's `artifact not found in cache: <path>`); the
/// SHA-256 is taken in the same read of those `strong` picks.
pub(crate) fn validate_cache(
    cache: &Cache,
    mappings: &MappingFile,
    strong: impl Fn(&ArtifactName) -> bool,
) -> Result<Vec<UploadItem>, Invalid> {
    let mut problems = Vec::new();
    let items = items_for(mappings, |n| cache.artifact_path(n), strong, &mut problems);
    let problems: Vec<String> = problems
        .into_iter()
        .map(|p| match p.strip_prefix("artifact not found: ") {
            Some(path) => format!("artifact not found in cache: {path}"),
            None => p,
        })
        .collect();
    if problems.is_empty() {
        Ok(items)
    } else {
        Err(Invalid { problems })
    }
}

/// The outcome of an upload run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PutReport {
    /// Artifacts uploaded.
    pub uploaded: u64,
    /// Artifacts the service already had (skipped).
    pub already_present: u64,
    /// Artifacts that failed, each named.
    pub failed: Vec<ArtifactFailure>,
    /// Bytes sent (all attempts).
    pub bytes: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Where the revision file goes.
    pub revision_url: String,
    /// Whether the revision file was uploaded.
    pub revision_uploaded: bool,
    /// Wall time (seconds).
    pub elapsed_secs: f64,
    /// How presence was checked: `batch`, `head`, or `none` (`--force`).
    pub presence_check: &'static str,
    /// The key id that signed the revision (`SHA256:…`), when it was signed and the
    /// signature uploaded.
    pub signed_by: Option<String>,
}

/// A revision to sign as it is uploaded: the manifest's fixed fields (scope, revision,
/// platform, toolchain) and the key. The artifacts' digests, the revision file's digest and
/// the timestamp are filled in by [`upload`].
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The manifest so far (its `artifacts` are replaced).
    pub manifest: Manifest,
    /// The signing key.
    pub key: Arc<SecretKey>,
    /// Where the signature object goes (`<revision url>.sig`).
    pub url: String,
}

/// Completes and signs the manifest and uploads the signature object. Returns the signer's
/// key id and the SHA-256 of the signature object (the revision upload names it, so the
/// server stores the revision only beside this signature). The artifacts' digests are those taken while validating (no file is read
/// again): an artifact that was sent had exactly these bytes, since the upload refuses
/// to send any other; one the service already had is covered by what was validated here.
async fn sign_and_upload(
    transport: &impl Uplink,
    sign: SignRequest,
    unique: &[&UploadItem],
    mappings: &[u8],
) -> Result<(String, [u8; 32]), ArtifactFailure> {
    let failure = |error: String, status: Option<u16>| ArtifactFailure {
        artifact: "(signature)".into(),
        url: sign.url.clone(),
        error,
        status,
    };
    let mut digests = std::collections::BTreeMap::new();
    for i in unique {
        let Some(sha256) = i.sha256 else {
            // Validation takes the SHA-256 whenever the upload is signed.
            return Err(failure(
                format!(
                    "{}: no SHA-256 was taken when validating it",
                    i.name.file_name()
                ),
                None,
            ));
        };
        let digest = StrongDigest {
            sha256,
            size: i.size,
        };
        digests.insert(i.name.hash, digest);
    }
    let mut manifest = sign.manifest;
    manifest.key_id = sign.key.public().key_id();
    manifest.artifacts = digests;
    manifest.revision_file = StrongDigest::of_revision_file(mappings);
    manifest.timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let bytes = manifest
        .sign(&sign.key)
        .map_err(|e| failure(e.to_string(), None))?;
    let sha256 = StrongDigest::of(&bytes).sha256;
    transport
        .put_bytes(&sign.url, SIGNATURE_CONTENT_TYPE, &[], Bytes::from(bytes))
        .await
        .map_err(|e| failure(e.to_string(), e.error.status()))?;
    Ok((manifest.key_id, sha256))
}

/// The content type of a signature object.
pub(crate) const SIGNATURE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// tarn's batch existence API v1 (docs/server-api.md): `POST {artifactEndpoint}{scope}/?tarn-missing`
/// with a JSON array of hex hashes (at most [`batch::MAX_HASHES`] per request), answered by the
/// hashes the server lacks as `{"version":1,"missing":[...]}` or a bare array. `None` when the
/// service does not offer it (any non-200 reply, a network error, an unparsable reply or one
/// naming a hash that was not asked about): the caller then falls back to one HEAD per
/// artifact.
async fn probe_missing(
    transport: &impl Uplink,
    service: &Service,
    scope: &Scope,
    hashes: &[Hash],
) -> Option<HashSet<Hash>> {
    let ServiceKind::S3 {
        artifact_endpoint, ..
    } = &service.kind
    else {
        return None;
    };
    let url = format!("{artifact_endpoint}{}/?{}", scope.url_path(), batch::QUERY);
    let mut missing = HashSet::new();
    for (i, chunk) in hashes.chunks(batch::MAX_HASHES).enumerate() {
        let body = Bytes::from(batch::encode_request(chunk));
        // The first request only discovers whether the API exists: no retries. Once it
        // answered, later chunks get the usual retries.
        let retries = if i == 0 { 0 } else { transport.retries() };
        let resp = transport.post_batch(&url, body, retries).await.ok()?;
        if resp.status != 200 {
            tracing::debug!(
                "batch existence API not offered ({}); using HEAD",
                resp.status
            );
            return None;
        }
        let asked: HashSet<Hash> = chunk.iter().copied().collect();
        missing.extend(batch::parse_reply(&resp.body, &asked)?);
    }
    Some(missing)
}

/// What a presence check made before validating found, so that an unsigned upload takes
/// the SHA-256 (for the request signature) only of the artifacts it will send, in the
/// read that validates them; the upload then does not ask again.
#[derive(Debug, Clone, Default)]
pub(crate) enum Presence {
    /// Not checked: the upload checks (batch API, else one `HEAD` per artifact).
    #[default]
    Unchecked,
    /// The batch API answered: the artifacts the service lacks.
    Missing(HashSet<Hash>),
    /// The service offers no batch API: the upload checks with `HEAD`.
    NoBatchApi,
}

impl Presence {
    /// Asks the service's batch API which of `hashes` it lacks.
    pub(crate) async fn check(
        transport: &impl Uplink,
        service: &Service,
        scope: &Scope,
        hashes: &[Hash],
    ) -> Presence {
        let mut seen = HashSet::new();
        let unique: Vec<Hash> = hashes.iter().copied().filter(|h| seen.insert(*h)).collect();
        match probe_missing(transport, service, scope, &unique).await {
            Some(missing) => Presence::Missing(missing),
            None => Presence::NoBatchApi,
        }
    }

    /// Whether the artifact `hash` is known to be sent (it is missing on the service).
    pub(crate) fn will_send(&self, hash: Hash) -> bool {
        matches!(self, Presence::Missing(m) if m.contains(&hash))
    }
}

/// Uploads `items` (those the service lacks, or all with `force`) and then, only if every
/// artifact is confirmed present, `mappings` verbatim to `revision_url`. With `sign`, the
/// signature object (docs/trust.md) is made from the SHA-256 of each artifact taken while
/// validating it (the bytes sent are checked against it as they stream) and uploaded before the revision file, so a revision file never appears
/// before its signature. `Err` when the service refuses the key (401/403 while checking
/// presence): then nothing is uploaded.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    transport: &Transport,
    service: &Service,
    scope: &Scope,
    items: &[UploadItem],
    mappings: Vec<u8>,
    revision_url: &str,
    force: bool,
    sign: Option<SignRequest>,
) -> Result<PutReport, Failed> {
    upload_through(
        transport,
        service,
        scope,
        items,
        mappings,
        revision_url,
        force,
        sign,
        Presence::Unchecked,
    )
    .await
}

/// [`upload`] through any [`Uplink`] (the engine's tests use a fake one), with what a
/// presence check before validating found.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upload_through(
    transport: &impl Uplink,
    service: &Service,
    scope: &Scope,
    items: &[UploadItem],
    mappings: Vec<u8>,
    revision_url: &str,
    force: bool,
    sign: Option<SignRequest>,
    presence: Presence,
) -> Result<PutReport, Failed> {
    let start = Instant::now();
    let retries0 = transport
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    let up0 = transport
        .stats()
        .bytes_up
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut report = PutReport {
        revision_url: revision_url.to_string(),
        presence_check: "none",
        ..PutReport::default()
    };
    let progress = transport.progress().clone();
    let jobs = transport.jobs().max(1);
    // Deduplicate by hash: two local names with one hash are one remote object.
    let mut seen = HashSet::new();
    let unique: Vec<&UploadItem> = items.iter().filter(|i| seen.insert(i.name.hash)).collect();
    let mut todo: Vec<&UploadItem> = unique.clone();
    if !force {
        let hashes: Vec<Hash> = unique.iter().map(|i| i.name.hash).collect();
        let missing = match presence {
            Presence::Missing(missing) => Some(missing),
            Presence::NoBatchApi => None,
            Presence::Unchecked => probe_missing(transport, service, scope, &hashes).await,
        };
        if let Some(missing) = missing {
            report.presence_check = "batch";
            todo.retain(|i| missing.contains(&i.name.hash));
        } else {
            report.presence_check = "head";
            progress.emit(Event::Start {
                phase: "check",
                files: unique.len() as u64,
                bytes: None,
            });
            let mut checks = futures_util::stream::iter(unique.iter())
                .map(|item| async move {
                    let url = service.artifact_url(scope, item.name.hash);
                    (item.name.hash, transport.exists(&url).await)
                })
                .buffer_unordered(jobs * 2);
            let mut present = HashSet::new();
            let mut refused: Option<Failed> = None;
            while let Some((h, r)) = checks.next().await {
                progress.emit(Event::FileDone);
                match r {
                    Ok(true) => {
                        present.insert(h);
                    }
                    Ok(false) => {}
                    Err(e) if e.is_auth_failure() => {
                        refused.get_or_insert(e);
                    }
                    Err(e) => tracing::debug!("{e}; uploading it anyway"),
                }
            }
            drop(checks);
            progress.emit(Event::Finish);
            todo.retain(|i| !present.contains(&i.name.hash));
            if let (Some(head_error), Some(first)) = (refused, todo.first().copied()) {
                // Either the key is wrong, or it may write but not read (a common CI policy,
                // under which S3 answers HEAD with 403). One upload tells which: if it is
                // refused too, stop before sending anything else.
                let url = service.artifact_url(scope, first.name.hash);
                match transport.put_item(first, &url).await {
                    Err(e) if e.is_auth_failure() => return Err(e),
                    Err(e) => {
                        report
                            .failed
                            .push(ArtifactFailure::new(first.name.file_name(), url, &e))
                    }
                    Ok(()) => {
                        tracing::warn!(
                            "the key may upload but not check objects ({head_error}); uploading every artifact"
                        );
                        report.uploaded += 1;
                    }
                }
                todo.remove(0);
            }
        }
    }
    report.already_present =
        (unique.len() - todo.len()) as u64 - report.uploaded - report.failed.len() as u64;
    progress.emit(Event::Start {
        phase: "upload",
        files: todo.len() as u64,
        bytes: Some(todo.iter().map(|i| i.size).sum()),
    });
    let mut puts = futures_util::stream::iter(todo.iter())
        .map(|item| async move {
            let url = service.artifact_url(scope, item.name.hash);
            let r = transport.put_item(item, &url).await;
            (item, url, r)
        })
        .buffer_unordered(jobs * 2);
    while let Some((item, url, r)) = puts.next().await {
        progress.emit(Event::FileDone);
        match r {
            Ok(()) => report.uploaded += 1,
            Err(e) => report
                .failed
                .push(ArtifactFailure::new(item.name.file_name(), url, &e)),
        }
    }
    progress.emit(Event::Finish);
    report.failed.sort_by(|a, b| a.artifact.cmp(&b.artifact));
    let mut signature_sha256 = None;
    if let (true, Some(sign)) = (report.failed.is_empty(), sign) {
        match sign_and_upload(transport, sign, &unique, &mappings).await {
            Ok((key_id, sha256)) => {
                report.signed_by = Some(key_id);
                signature_sha256 = Some(hex::encode(sha256));
            }
            Err(failure) => report.failed.push(failure),
        }
    }
    if report.failed.is_empty() {
        let uploaded_with: Vec<(&str, &str)> = signature_sha256
            .iter()
            .map(|sha| (SIGNATURE_SHA256_HEADER, sha.as_str()))
            .collect();
        match transport
            .put_bytes(
                revision_url,
                MAPPINGS_CONTENT_TYPE,
                &uploaded_with,
                Bytes::from(mappings),
            )
            .await
        {
            Ok(()) => report.revision_uploaded = true,
            Err(e) => report.failed.push(ArtifactFailure::new(
                "(revision file)",
                revision_url.to_string(),
                &e,
            )),
        }
    }
    report.retries = transport
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed)
        - retries0;
    report.bytes = transport
        .stats()
        .bytes_up
        .load(std::sync::atomic::Ordering::Relaxed)
        - up0;
    report.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(report)
}
