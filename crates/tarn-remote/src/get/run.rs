//! The whole `get` flow for one package, as one engine call: find the mappings (a file, or a
//! revision search in the package's git repository), write the `outputs/` entries, download
//! the artifacts. The CLI builds a [`GetPlan`] from flags and prints the [`GetOutcome`].

use std::path::PathBuf;
use std::sync::Arc;

use tarn_core::trust::Manifest;
use tarn_core::CacheOutput;
use tarn_core::{EntryError, MappingError};
use tarn_core::{MappingFile, Scope, Service};
use tarn_store::{Cache, StoreError};

use super::trust::{check_coverage, verify_revision, RevisionPlace};
use super::{
    download_artifacts, find_revision, DownloadError, GetReport, RevisionQuery, SearchError,
    SignatureCheck, TrustFailure, TrustPolicy,
};
use crate::git::{self, GitError};
use crate::transport::Transport;

/// Where the mappings of a `get` come from.
#[derive(Debug, Clone)]
pub enum MappingsSource {
    /// A mappings file given on the command line (no revision search).
    File(PathBuf),
    /// A revision search on the service, starting at the package's HEAD or pinned to a
    /// revision.
    Search(RevisionSearch),
}

/// A revision search in one package's git repository.
#[derive(Debug, Clone)]
pub struct RevisionSearch {
    /// The package's git repository (its checkout; the workspace root for the root package).
    pub repo: PathBuf,
    /// A pinned revision (`--rev`): 40 hex digits are used verbatim, anything else is
    /// resolved with `git rev-parse` in `repo`.
    pub rev: Option<String>,
    /// How many revisions from HEAD to try (0: the whole history).
    pub max_revs: u64,
    /// Platform part of the revision URL (`None`: platform-independent).
    pub platform: Option<String>,
    /// Toolchain part of the revision URL (`None`: none).
    pub toolchain: Option<String>,
}

/// One package's download, fully decided.
#[derive(Debug, Clone)]
pub struct GetPlan {
    /// The service to download from.
    pub service: Service,
    /// The service name recorded in `outputs/` entries (on-demand fetches look it up);
    /// `None` for the unnamed environment-variable service.
    pub recorded_name: Option<String>,
    /// Remote scope.
    pub scope: Scope,
    /// The package's local scope (its name: `outputs/<name>/`, `revisions/<name>/`).
    pub local_scope: String,
    /// Where the mappings come from.
    pub mappings: MappingsSource,
    /// Only write the `outputs/` entries; no artifacts.
    pub mappings_only: bool,
    /// Ignore what the cache already holds (mappings and artifacts).
    pub force_download: bool,
    /// Trusted keys: the revision must be signed by one trusted for the scope, and every
    /// artifact must match its signed SHA-256 (docs/trust.md). `None`, or keys all trusted
    /// only for other scopes: no signature checks (Lake's behaviour).
    pub trust: Option<Arc<TrustPolicy>>,
}

impl GetPlan {
    /// The trust policy that applies to this plan's scope: `None` without keys, or when
    /// every key is trusted only for other scopes (`scope=` options in a trusted-keys file).
    pub(crate) fn trust_for_scope(&self) -> Option<&TrustPolicy> {
        self.trust
            .as_deref()
            .filter(|p| p.applies_to(self.scope.as_str()))
    }
}

/// What one package's `get` did.
#[derive(Debug, Clone)]
pub struct GetOutcome {
    /// Remote scope.
    pub scope: Scope,
    /// The revision whose mappings were used (`None` for a mappings file).
    pub rev: Option<String>,
    /// Whether the mappings came from the local `revisions/` copy.
    pub local_mappings: bool,
    /// Number of mapping entries written to `outputs/`.
    pub mappings: usize,
    /// Number of distinct artifacts the mappings name.
    pub artifacts: usize,
    /// The download (`None` with `mappings_only`).
    pub report: Option<GetReport>,
    /// Whether and by which key the revision's signature was checked.
    pub signature: SignatureCheck,
}

impl GetOutcome {
    /// Whether everything asked for was done.
    pub fn ok(&self) -> bool {
        self.report.as_ref().is_none_or(|r| r.failed.is_empty())
    }
}

/// Why one package's `get` could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// `--rev` could not be resolved in the package's repository.
    #[error("{0}")]
    ResolveRev(#[source] GitError),
    /// The revision list could not be read (not a git repository, no commits).
    #[error("{0}")]
    RevList(#[source] GitError),
    /// No usable revision (or the lookup failed).
    #[error("{0}")]
    Search(#[from] SearchError),
    /// A mappings file could not be read.
    #[error("reading {}: {source}", path.display())]
    ReadMappings {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The mappings do not parse.
    #[error("{scope}: invalid mappings: {source}")]
    InvalidMappings {
        /// Remote scope.
        scope: Scope,
        /// What is wrong.
        source: MappingError,
    },
    /// A mapping entry does not name artifacts.
    #[error("{scope}: invalid mappings: {source}")]
    InvalidEntry {
        /// Remote scope.
        scope: Scope,
        /// The entry and what is wrong with it.
        source: EntryError,
    },
    /// The artifact URLs could not be obtained (Reservoir's bulk API).
    #[error("{scope}: {source}")]
    Urls {
        /// Remote scope.
        scope: Scope,
        /// What went wrong.
        #[source]
        source: DownloadError,
    },
    /// The revision's signature is missing, refused, or cannot be checked.
    #[error("{scope}: {source}")]
    Trust {
        /// Remote scope.
        scope: Scope,
        /// What failed.
        #[source]
        source: TrustFailure,
    },
    /// Writing an `outputs/` entry to the local cache failed.
    #[error("{0}")]
    Local(#[source] StoreError),
    /// The thread writing the `outputs/` entries did not finish (it panicked or was
    /// cancelled).
    #[error("outputs writer: {0}")]
    Writer(#[source] tokio::task::JoinError),
}

impl GetError {
    /// Whether the service has no outputs for the package at all (nothing was published for
    /// the revisions searched): running again cannot help, publishing can.
    pub fn is_not_published(&self) -> bool {
        matches!(
            self,
            GetError::Search(SearchError::NoneFound { .. } | SearchError::PinnedNotFound { .. })
        )
    }

    /// Whether the service refused the credentials (HTTP 401 or 403).
    pub fn is_auth_failure(&self) -> bool {
        match self {
            GetError::Search(e) => e.is_auth_failure(),
            GetError::Urls {
                source: DownloadError::Urls(e),
                ..
            } => e.is_auth_failure(),
            _ => false,
        }
    }
}

/// Runs one package's download: mappings, `outputs/` entries, artifacts. A failed artifact
/// does not stop the others; it is listed in the outcome's report.
pub async fn run(
    transport: &Transport,
    cache: &Cache,
    plan: &GetPlan,
) -> Result<GetOutcome, GetError> {
    let scope = &plan.scope;
    let trust_error = |source| GetError::Trust {
        scope: scope.clone(),
        source,
    };
    // 1. The mappings: a file, or a revision found on the service (or locally), with its
    //    signature verified when keys are trusted.
    let mut signed: Option<Manifest> = None;
    let mut signature = SignatureCheck::NotChecked;
    let trust = plan.trust_for_scope();
    let (bytes, rev, local_mappings) = match &plan.mappings {
        MappingsSource::File(path) if trust.is_some() => {
            return Err(trust_error(TrustFailure::Unsupported {
                what: format!("the mappings file {}", path.display()),
            }));
        }
        MappingsSource::File(path) => {
            // A path the user gave: bounded, and a FIFO or device is refused unread.
            let limit = tarn_store::mappings_limit();
            let bytes = tarn_store::read_local_file(path, tarn_store::Links::Follow, &limit)
                .map_err(|source| GetError::ReadMappings {
                    path: path.clone(),
                    source,
                })?;
            (bytes, None, false)
        }
        MappingsSource::Search(search) => {
            let found = search_revision(transport, cache, plan, search).await?;
            tracing::info!(
                "{scope}: mappings for {} ({})",
                found.rev,
                if found.local {
                    "local copy"
                } else {
                    "downloaded"
                }
            );
            if let Some(policy) = trust {
                let place = RevisionPlace {
                    service: &plan.service,
                    scope,
                    local_scope: &plan.local_scope,
                    rev: &found.rev,
                    platform: search.platform.as_deref(),
                    toolchain: search.toolchain.as_deref(),
                };
                let (manifest, check) =
                    verify_revision(transport, cache, policy, &place, &found.bytes, found.local)
                        .await
                        .map_err(trust_error)?;
                signed = Some(manifest);
                signature = check;
            }
            (found.bytes, Some(found.rev), found.local)
        }
    };
    let parsed = MappingFile::parse(&bytes).map_err(|source| GetError::InvalidMappings {
        scope: scope.clone(),
        source,
    })?;
    for w in &parsed.warnings {
        tracing::warn!("mappings line {}: {}", w.line, w.message);
    }
    let mappings = parsed.file;
    let names = mappings
        .artifacts()
        .map_err(|source| GetError::InvalidEntry {
            scope: scope.clone(),
            source,
        })?;
    if let Some(m) = &signed {
        check_coverage(m, &names).map_err(trust_error)?;
    }

    // 2. The outputs/ entries, recording where artifacts can be fetched on demand. They are
    //    written on a blocking thread while the artifacts download (2,000 small atomic
    //    writes take a noticeable fraction of a second).
    let entries = mappings.entries.len();
    let writer = {
        let cache = cache.clone();
        let local_scope = plan.local_scope.clone();
        let service = plan.recorded_name.clone();
        let scope = scope.clone();
        move || -> Result<(), StoreError> {
            for (input, data) in &mappings.entries {
                let out = CacheOutput {
                    data: data.clone(),
                    service: service.clone(),
                    scope: Some(scope.clone()),
                };
                cache.write_outputs(&local_scope, *input, &out, true)?;
            }
            Ok(())
        }
    };
    let mut outcome = GetOutcome {
        scope: scope.clone(),
        rev,
        local_mappings,
        mappings: entries,
        artifacts: names.len(),
        report: None,
        signature,
    };
    if plan.mappings_only {
        writer().map_err(GetError::Local)?;
        return Ok(outcome);
    }

    // 3. The artifacts.
    if names.is_empty() {
        tracing::warn!("{scope}: no artifacts to download");
    }
    transport.progress().emit(crate::progress::Event::Mappings {
        rev: outcome.rev.clone(),
    });
    let writing = tokio::task::spawn_blocking(writer);
    let report = download_artifacts(
        transport,
        &plan.service,
        scope,
        cache,
        &names,
        plan.force_download,
        signed.as_ref().map(|m| &m.artifacts),
    )
    .await;
    writing
        .await
        .map_err(GetError::Writer)?
        .map_err(GetError::Local)?;
    let report = report.map_err(|source| GetError::Urls {
        scope: scope.clone(),
        source,
    })?;
    // Downloaded or already there, these artifacts were just used (prune's LRU order).
    tarn_store::note_use(cache, &names);
    outcome.report = Some(report);
    Ok(outcome)
}

async fn search_revision(
    transport: &Transport,
    cache: &Cache,
    plan: &GetPlan,
    search: &RevisionSearch,
) -> Result<super::FoundRevision, GetError> {
    let (revs, pinned) = match &search.rev {
        Some(r) => (
            vec![git::resolve_rev(&search.repo, r).map_err(GetError::ResolveRev)?],
            true,
        ),
        None => {
            if git::is_dirty(&search.repo).unwrap_or(false) {
                tracing::warn!(
                    "{}: package has changes; only artifacts for committed code will be downloaded",
                    plan.local_scope
                );
            }
            let revs = git::rev_list(&search.repo, search.max_revs).map_err(GetError::RevList)?;
            (revs, false)
        }
    };
    let q = RevisionQuery {
        service: &plan.service,
        scope: &plan.scope,
        platform: search.platform.as_deref(),
        toolchain: search.toolchain.as_deref(),
        local_scope: &plan.local_scope,
        force_download: plan.force_download,
        local_needs_signature: plan.trust_for_scope().is_some(),
    };
    Ok(find_revision(transport, cache, &q, &revs, pinned, search.max_revs).await?)
}
