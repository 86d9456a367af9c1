//! The download engine: revision search and parallel artifact downloads into the cache;
//! [`run`] is the whole flow for one package.

mod run;
mod select;
mod trust;

pub use run::{run, GetError, GetOutcome, GetPlan, MappingsSource, RevisionSearch};
pub use select::{
    repo_scope_of_url, run_steps, select, GetRequest, Mode, SelectError, Step, StepOutcome,
};
pub use trust::{Quarantined, SignatureCheck, TrustFailure, TrustPolicy};

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use tarn_core::trust::StrongDigest;
use tarn_core::{reservoir, ArtifactName, Hash, MappingFile, Scope, Service};
use tarn_core::{EntryError, MappingError};
use tarn_core::{ServiceKind, RESERVOIR_HEADERS};
use tarn_store::{write_atomic, Cache, Inserted, StoreError};

use crate::progress::Event;
use crate::transport::{error_detail, Failed, TransferError, Transport};

/// Headers Lake sends for a service's revision and API requests (Reservoir only).
pub fn api_headers(service: &Service) -> &'static [(&'static str, &'static str)] {
    if service.is_reservoir() {
        &RESERVOIR_HEADERS
    } else {
        &[]
    }
}

/// Where a revision's mappings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRevision {
    /// The revision.
    pub rev: String,
    /// The mapping file's bytes (as saved locally: trimmed).
    pub bytes: Vec<u8>,
    /// Whether the local `revisions/` copy was used.
    pub local: bool,
    /// Revisions looked at, including this one.
    pub tried: usize,
}

/// Why no revision's mappings could be used.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A pinned `--rev` has no mappings.
    #[error("{scope}: outputs not found for revision {rev}")]
    PinnedNotFound {
        /// Remote scope.
        scope: String,
        /// The revision.
        rev: String,
    },
    /// No revision in the search window has mappings.
    #[error("{scope}: no outputs found {window}")]
    NoneFound {
        /// Remote scope.
        scope: String,
        /// `in N revisions from HEAD` or `for any revision`.
        window: String,
    },
    /// A request failed with something other than 404.
    #[error("{scope}: output lookup failed: {error}")]
    Lookup {
        /// Remote scope.
        scope: String,
        /// The failure.
        error: Failed,
    },
    /// The service's reply is not a usable mapping file (it was not saved).
    #[error("{url}: not a usable Lake mapping file ({source}); not saved")]
    InvalidReply {
        /// The revision URL.
        url: String,
        /// What is wrong with the reply.
        source: UnusableMappings,
    },
    /// The revision file could not be saved.
    #[error("{0}")]
    Local(#[source] StoreError),
}

impl SearchError {
    /// Whether the service refused the credentials (HTTP 401 or 403).
    pub fn is_auth_failure(&self) -> bool {
        match self {
            SearchError::Lookup { error, .. } => error.is_auth_failure(),
            _ => false,
        }
    }
}

/// Why mapping-file bytes cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnusableMappings {
    /// They are not a mapping file.
    #[error(transparent)]
    Parse(#[from] MappingError),
    /// An entry's outputs do not name artifacts.
    #[error(transparent)]
    Entry(#[from] EntryError),
}

/// What to search.
#[derive(Debug, Clone)]
pub struct RevisionQuery<'a> {
    /// The service.
    pub service: &'a Service,
    /// Remote scope.
    pub scope: &'a Scope,
    /// Platform part (repository scopes and Reservoir only).
    pub platform: Option<&'a str>,
    /// Toolchain part (repository scopes and Reservoir only).
    pub toolchain: Option<&'a str>,
    /// The package's local scope (directory under `revisions/`).
    pub local_scope: &'a str,
    /// Ignore local `revisions/` copies.
    pub force_download: bool,
    /// Use a local `revisions/` copy only when its signature was saved beside it (signature
    /// checks are on).
    pub local_needs_signature: bool,
}

/// Whether revision-file bytes are a mapping file whose entries all name artifacts.
fn usable_revision(bytes: &[u8]) -> Result<(), UnusableMappings> {
    MappingFile::parse(bytes)?.file.artifacts()?;
    Ok(())
}

/// Finds the first revision (in the order given: newest first) that has mappings, locally
/// or on the service. A 404 moves on to the next revision; any other failure stops.
/// `pinned` selects the `--rev` error wording; `max_revs` the "N revisions" wording.
pub async fn find_revision(
    transport: &Transport,
    cache: &Cache,
    q: &RevisionQuery<'_>,
    revs: &[String],
    pinned: bool,
    max_revs: u64,
) -> Result<FoundRevision, SearchError> {
    for (i, rev) in revs.iter().enumerate() {
        let path = cache.revision_path(q.local_scope, rev);
        let local_ok = !q.force_download
            && (!q.local_needs_signature || trust::has_saved_signature(cache, q.local_scope, rev));
        if local_ok {
            if let Ok(bytes) = std::fs::read(&path) {
                match usable_revision(&bytes) {
                    Ok(()) => {
                        tracing::info!("{}: using local mappings {}", q.scope, path.display());
                        return Ok(FoundRevision {
                            rev: rev.clone(),
                            bytes,
                            local: true,
                            tried: i + 1,
                        });
                    }
                    Err(e) => tracing::warn!(
                        "{}: saved mappings are not usable ({e}); downloading them again",
                        path.display()
                    ),
                }
            }
        }
        let url = q
            .service
            .revision_url(q.scope, rev, q.platform, q.toolchain);
        tracing::debug!("looking for mappings at {url}");
        match transport.get_optional(&url, api_headers(q.service)).await {
            Ok(Some(body)) => {
                let trimmed = body.trim_ascii().to_vec();
                // A reply that is not a usable mapping file is refused, and never saved
                // (a saved revision is reused offline).
                if let Err(source) = usable_revision(&trimmed) {
                    return Err(SearchError::InvalidReply { url, source });
                }
                write_atomic(&path, &trimmed).map_err(SearchError::Local)?;
                return Ok(FoundRevision {
                    rev: rev.clone(),
                    bytes: trimmed,
                    local: false,
                    tried: i + 1,
                });
            }
            Ok(None) => continue,
            Err(error) => {
                return Err(SearchError::Lookup {
                    scope: q.scope.to_string(),
                    error,
                })
            }
        }
    }
    let scope = q.scope.to_string();
    if pinned {
        return Err(SearchError::PinnedNotFound {
            scope,
            rev: revs.first().cloned().unwrap_or_default(),
        });
    }
    let window = if max_revs == 0 || (revs.len() as u64) < max_revs {
        "for any revision".to_string()
    } else {
        format!("in {max_revs} revisions from HEAD")
    };
    Err(SearchError::NoneFound { scope, window })
}

/// One artifact that could not be transferred.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactFailure {
    /// The artifact's local file name.
    pub artifact: String,
    /// The URL.
    pub url: String,
    /// What went wrong, after every retry.
    pub error: String,
    /// The HTTP status of the last attempt, when the failure was one (not in `--json`).
    #[serde(skip)]
    pub status: Option<u16>,
}

impl ArtifactFailure {
    /// The failure of a transfer, after every retry.
    pub fn new(artifact: impl Into<String>, url: String, failed: &Failed) -> ArtifactFailure {
        ArtifactFailure {
            artifact: artifact.into(),
            url,
            error: failed.to_string(),
            status: failed.error.status(),
        }
    }

    /// Whether the service refused the credentials (HTTP 401 or 403).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }
}

/// The outcome of a download run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GetReport {
    /// Artifacts downloaded and verified.
    pub downloaded: u64,
    /// Artifacts sharing a downloaded artifact's content hash under another extension,
    /// made as local copies of it (Lake copies rather than links, to keep cache
    /// permissions and pruning working).
    pub copied: u64,
    /// Artifacts already in the cache (not downloaded).
    pub already_present: u64,
    /// Artifacts that failed, each named.
    pub failed: Vec<ArtifactFailure>,
    /// Artifacts found in the local cache that did not match their signed SHA-256: moved
    /// to the quarantine and downloaded again.
    pub quarantined: Vec<Quarantined>,
    /// Bytes received (all attempts).
    pub bytes: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why the artifact URLs could not be obtained from Reservoir's bulk API.
#[derive(Debug, thiserror::Error)]
pub enum UrlsError {
    /// The request failed (after every retry).
    #[error("failed to fetch artifact URLs\n  POST {url}\n{source}")]
    Request {
        /// The bulk endpoint.
        url: String,
        /// The failure.
        #[source]
        source: Failed,
    },
    /// The service answered with a non-2xx status.
    #[error("failed to fetch artifact URLs (status code: {status})\n  POST {url}{detail}")]
    Status {
        /// The bulk endpoint.
        url: String,
        /// The status.
        status: u16,
        /// `: <the service's message>`, or empty.
        detail: String,
    },
    /// The reply is not the expected list of URLs.
    #[error("failed to fetch artifact URLs\n  POST {url}\n{source}")]
    Reply {
        /// The bulk endpoint.
        url: String,
        /// What is wrong with it.
        #[source]
        source: reservoir::BulkReplyError,
    },
}

impl UrlsError {
    /// Whether the service refused the credentials (HTTP 401 or 403).
    pub fn is_auth_failure(&self) -> bool {
        match self {
            UrlsError::Request { source, .. } => source.is_auth_failure(),
            UrlsError::Status { status, .. } => matches!(status, 401 | 403),
            UrlsError::Reply { .. } => false,
        }
    }
}

/// Why a download run could not start.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The artifact URLs could not be obtained.
    #[error(transparent)]
    Urls(#[from] UrlsError),
    /// An artifact to download again (`force`) could not be removed.
    #[error(transparent)]
    Local(#[from] StoreError),
}

/// The URL of each artifact: computed for S3, asked from the API in one POST for Reservoir.
pub async fn artifact_urls(
    transport: &Transport,
    service: &Service,
    scope: &Scope,
    names: &[ArtifactName],
) -> Result<Vec<String>, UrlsError> {
    match (&service.kind, service.bulk_artifacts_url(scope)) {
        (ServiceKind::Reservoir { .. }, Some(bulk)) if !names.is_empty() => {
            let hashes: Vec<Hash> = names.iter().map(|n| n.hash).collect();
            let body = Bytes::from(reservoir::encode_bulk_request(&hashes));
            let mut headers = vec![("content-type", "application/json")];
            headers.extend_from_slice(&RESERVOIR_HEADERS);
            let resp = match transport
                .request(Method::POST, &bulk, &headers, Some(body), false)
                .await
            {
                Ok(resp) => resp,
                Err(source) => return Err(UrlsError::Request { url: bulk, source }),
            };
            if !(200..300).contains(&resp.status) {
                return Err(UrlsError::Status {
                    status: resp.status,
                    detail: error_detail(&resp.body),
                    url: bulk,
                });
            }
            reservoir::parse_bulk_reply(&resp.body, names.len())
                .map_err(|source| UrlsError::Reply { url: bulk, source })
        }
        _ => Ok(names
            .iter()
            .map(|n| service.artifact_url(scope, n.hash))
            .collect()),
    }
}

/// One artifact's download as its own runtime task, so the bodies of parallel downloads are
/// hashed (Lake's hash, and the SHA-256 of a signed revision) and written on every worker
/// thread at once, not all on the thread that awaits them. Dropping the returned future
/// aborts the task.
fn spawn_download(
    transport: &Transport,
    cache: &Cache,
    name: &ArtifactName,
    url: &str,
    signed: Option<StrongDigest>,
) -> impl std::future::Future<Output = Result<(u64, Inserted), Failed>> + use<> {
    let (transport, cache, name, url) = (
        transport.clone(),
        cache.clone(),
        name.clone(),
        url.to_string(),
    );
    let shown = url.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        transport
            .download_artifact_checked(&url, &[], &cache, &name, signed)
            .await
    }));
    async move {
        task.await.unwrap_or_else(|e| {
            Err(Failed {
                method: "GET".to_string(),
                url: shown,
                error: TransferError::Network {
                    message: format!("the download task failed: {e}"),
                    source: None,
                },
                attempts: 1,
            })
        })
    }
}

/// A spawned task that is aborted when its handle is dropped (a `get` that stops waiting
/// leaves no download running behind it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Downloads every artifact in `names` that the cache lacks (all of them with `force`),
/// in parallel; one failure never stops the others. With `signed` (a verified revision
/// signature's digests), artifacts already in the cache are re-checked against their signed
/// SHA-256 first (a mismatch is quarantined and downloaded again) and every download is
/// checked as it streams. `Err` only when the URLs themselves cannot be obtained (Reservoir
/// bulk resolution).
pub async fn download_artifacts(
    transport: &Transport,
    service: &Service,
    scope: &Scope,
    cache: &Cache,
    names: &[ArtifactName],
    force: bool,
    signed: Option<&BTreeMap<Hash, StrongDigest>>,
) -> Result<GetReport, DownloadError> {
    let start = Instant::now();
    let retries0 = transport
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut report = GetReport::default();
    let mut missing: Vec<ArtifactName> = Vec::new();
    let mut present: Vec<ArtifactName> = Vec::new();
    for n in names {
        if cache.has_artifact(n) {
            if force {
                let p = cache.artifact_path(n);
                std::fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
            } else {
                present.push(n.clone());
                continue;
            }
        }
        missing.push(n.clone());
    }
    if let Some(signed) = signed {
        let jobs = transport.options().jobs.max(1);
        let (quarantined, errors) =
            trust::recheck_present(cache, signed, present.clone(), jobs).await;
        for (name, q) in quarantined {
            present.retain(|p| p != &name);
            missing.push(name);
            report.quarantined.push(q);
        }
        for (name, e) in errors {
            present.retain(|p| p != &name);
            report.failed.push(ArtifactFailure {
                artifact: name.file_name(),
                url: cache.artifact_path(&name).display().to_string(),
                error: format!("checking it against the signed SHA-256: {e}"),
                status: None,
            });
        }
    }
    report.already_present += present.len() as u64;
    let progress = transport.progress().clone();
    for n in present {
        progress.emit(Event::Cached(n));
    }
    // One content hash under several extensions is downloaded once; the other names become
    // local copies of it afterwards.
    let mut first_of: HashMap<Hash, usize> = HashMap::new();
    let mut unique: Vec<ArtifactName> = Vec::new();
    let mut copies: Vec<(usize, ArtifactName)> = Vec::new();
    for n in missing {
        match first_of.get(&n.hash) {
            Some(&i) => copies.push((i, n)),
            None => {
                first_of.insert(n.hash, unique.len());
                unique.push(n);
            }
        }
    }
    let urls = artifact_urls(transport, service, scope, &unique).await?;
    progress.emit(Event::Start {
        phase: "download",
        files: (unique.len() + copies.len()) as u64,
        bytes: None,
    });
    let jobs = transport.options().jobs.max(1);
    let mut failed_first: HashMap<usize, Failed> = HashMap::new();
    let mut results = futures_util::stream::iter(unique.iter().zip(urls.iter()).enumerate())
        .map(|(i, (name, url))| {
            let want = signed.and_then(|s| s.get(&name.hash).copied());
            let download = spawn_download(transport, cache, name, url, want);
            async move { (i, name, url, download.await) }
        })
        .buffer_unordered(jobs * 2);
    while let Some((i, name, url, r)) = results.next().await {
        progress.emit(Event::FileDone);
        match r {
            Ok((bytes, inserted)) => {
                progress.emit(Event::Cached(name.clone()));
                report.bytes += bytes;
                match inserted {
                    Inserted::New => report.downloaded += 1,
                    Inserted::AlreadyPresent => report.already_present += 1,
                }
            }
            Err(e) => {
                report
                    .failed
                    .push(ArtifactFailure::new(name.file_name(), url.clone(), &e));
                failed_first.insert(i, e);
            }
        }
    }
    drop(results);
    for (i, name) in copies {
        progress.emit(Event::FileDone);
        let source = &unique[i];
        if let Some(e) = failed_first.get(&i) {
            report.failed.push(ArtifactFailure {
                artifact: name.file_name(),
                url: urls[i].clone(),
                error: format!("same content as {}, which failed: {e}", source.file_name()),
                status: e.error.status(),
            });
            continue;
        }
        let source_path = cache.artifact_path(source);
        let size = std::fs::metadata(&source_path).map_or(0, |m| m.len());
        if let Err(e) = transport.reserve_disk(size) {
            report.failed.push(ArtifactFailure {
                artifact: name.file_name(),
                url: urls[i].clone(),
                error: e.to_string(),
                status: None,
            });
            continue;
        }
        match cache.import_artifact(&source_path, &name) {
            Ok(inserted) => {
                progress.emit(Event::Cached(name));
                match inserted {
                    Inserted::New => report.copied += 1,
                    Inserted::AlreadyPresent => report.already_present += 1,
                }
            }
            Err(e) => report.failed.push(ArtifactFailure {
                artifact: name.file_name(),
                url: urls[i].clone(),
                error: format!("copying {}: {e}", source.file_name()),
                status: None,
            }),
        }
    }
    progress.emit(Event::Finish);
    report.failed.sort_by(|a, b| a.artifact.cmp(&b.artifact));
    report.retries = transport
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed)
        - retries0;
    report.elapsed = start.elapsed();
    Ok(report)
}
