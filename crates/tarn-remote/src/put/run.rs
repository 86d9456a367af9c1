//! The whole `put` / `put-staged` flow as one engine call: validate the outputs locally,
//! decide the revision and its URL, upload. The CLI builds a [`PutPlan`] from flags and
//! prints the [`PutReport`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tarn_core::trust::{signed_place, Manifest, SecretKey, StrongDigest, SIGNATURE_SUFFIX};
use tarn_core::{ArtifactName, Hash, Scope, Service};
use tarn_store::Cache;

use super::{
    check_staging, load_mappings, open_staging, upload_through, validate_cache, Invalid, Presence,
    PutReport, SignRequest,
};
use crate::git::{self, GitError};
use crate::transport::{Failed, Transport};

/// What to upload.
#[derive(Debug, Clone)]
pub enum PutSource {
    /// A mappings file (`lake build -o FILE`) whose artifacts are read from the cache.
    Cache {
        /// The mappings file.
        mappings: PathBuf,
        /// The cache holding the artifacts.
        cache: Cache,
    },
    /// A staging directory (`outputs.jsonl` plus the artifact files), possibly untrusted.
    Staged {
        /// The directory.
        dir: PathBuf,
    },
}

/// Which revision the outputs belong to.
#[derive(Debug, Clone)]
pub enum PutRevision {
    /// The package's HEAD (`put`).
    Head {
        /// The package's git repository.
        repo: PathBuf,
    },
    /// An explicit revision (`put-staged --rev`): 40 hex digits verbatim, anything else
    /// resolved with `git rev-parse` in the package's repository (never in the staging
    /// directory).
    Explicit {
        /// The revision as given.
        rev: String,
        /// The package's git repository.
        repo: PathBuf,
    },
}

/// One upload, fully decided.
#[derive(Debug, Clone)]
pub struct PutPlan {
    /// The (S3-kind) service.
    pub service: Service,
    /// Remote scope.
    pub scope: Scope,
    /// Which revision.
    pub revision: PutRevision,
    /// Platform part of the revision URL (repository scopes only).
    pub platform: Option<String>,
    /// Toolchain part of the revision URL (repository scopes only).
    pub toolchain: Option<String>,
    /// What to upload.
    pub source: PutSource,
    /// Upload every artifact, even those the service already has.
    pub force: bool,
    /// Sign the revision with this key (docs/trust.md).
    pub sign_key: Option<Arc<SecretKey>>,
}

/// Why an upload did not start or was stopped.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// HEAD could not be read.
    #[error("{0}")]
    Head(#[source] GitError),
    /// `--rev` could not be resolved.
    #[error("{0}")]
    ResolveRev(#[source] GitError),
    /// The mappings file or its artifacts in the cache are not valid.
    #[error("{0}")]
    InvalidCache(#[source] Invalid),
    /// The staging directory is not valid (nothing was uploaded).
    #[error("{}: invalid staging directory:\n{source}", dir.display())]
    InvalidStaging {
        /// The directory.
        dir: PathBuf,
        /// Every problem.
        source: Invalid,
    },
    /// The service refused the credentials; nothing was uploaded.
    #[error("{scope}: the service refused the credentials: {source}")]
    Refused {
        /// Remote scope.
        scope: Scope,
        /// The refused request.
        source: Box<Failed>,
    },
    /// Another failure that stopped the upload before it began.
    #[error("{scope}: {source}")]
    Other {
        /// Remote scope.
        scope: Scope,
        /// The failure.
        source: Box<Failed>,
    },
}

/// What an upload did, with the revision it was for.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The revision (full SHA-1).
    pub rev: String,
    /// Artifacts to upload (after validation).
    pub items: usize,
    /// The transfer.
    pub report: PutReport,
}

impl PutOutcome {
    /// Whether every artifact and the revision file were uploaded (or present).
    pub fn ok(&self) -> bool {
        self.report.failed.is_empty() && self.report.revision_uploaded
    }
}

/// Resolves the revision for an upload.
pub(crate) fn resolve_revision(revision: &PutRevision) -> Result<String, PutError> {
    match revision {
        PutRevision::Head { repo } => {
            let rev = git::head(repo).map_err(PutError::Head)?;
            if git::is_dirty(repo).unwrap_or(false) {
                tracing::warn!(
                    "package has changes; artifacts will be uploaded for the most recent commit"
                );
            }
            Ok(rev)
        }
        PutRevision::Explicit { rev, repo } => {
            git::resolve_rev(repo, rev).map_err(PutError::ResolveRev)
        }
    }
}

/// Runs an upload: the revision, local validation of everything, then the transfer (revision
/// file last, only when every artifact is on the service).
pub async fn run(transport: &Transport, plan: &PutPlan) -> Result<PutOutcome, PutError> {
    let rev = resolve_revision(&plan.revision)?;
    // A signed upload takes the SHA-256 of every artifact while validating it (the
    // signature covers them all). An unsigned one needs it only for the request signature
    // of the artifacts it sends: the service is asked which it lacks before anything is
    // read, so validation takes it of those, in the same read (docs/trust.md).
    let every = plan.sign_key.is_some() || plan.force;
    let presence = |hashes: Vec<Hash>| async move {
        if every {
            Presence::Unchecked
        } else {
            Presence::check(transport, &plan.service, &plan.scope, &hashes).await
        }
    };
    let (mappings, items, presence) = match &plan.source {
        PutSource::Cache { mappings, cache } => {
            let (bytes, parsed) = load_mappings(mappings).map_err(PutError::InvalidCache)?;
            let names = parsed.artifacts().unwrap_or_default();
            let presence = presence(names.iter().map(|n| n.hash).collect()).await;
            let strong = |n: &ArtifactName| every || presence.will_send(n.hash);
            let items = validate_cache(cache, &parsed, strong).map_err(PutError::InvalidCache)?;
            (bytes, items, presence)
        }
        PutSource::Staged { dir } => {
            let invalid = |source| PutError::InvalidStaging {
                dir: dir.clone(),
                source,
            };
            let staging = open_staging(dir).map_err(invalid)?;
            let presence = presence(staging.artifacts.iter().map(|n| n.hash).collect()).await;
            let strong = |n: &ArtifactName| every || presence.will_send(n.hash);
            let (bytes, items) = check_staging(staging, strong).map_err(invalid)?;
            (bytes, items, presence)
        }
    };
    let revision_url = plan.service.revision_url(
        &plan.scope,
        &rev,
        plan.platform.as_deref(),
        plan.toolchain.as_deref(),
    );
    let (signed_platform, signed_toolchain) = signed_place(
        &plan.scope,
        plan.platform.as_deref(),
        plan.toolchain.as_deref(),
    );
    let sign = plan.sign_key.as_ref().map(|key| SignRequest {
        manifest: Manifest {
            key_id: key.public().key_id(),
            scope: plan.scope.as_str().to_string(),
            revision: rev.clone(),
            platform: signed_platform,
            toolchain: signed_toolchain,
            timestamp: 0,
            revision_file: StrongDigest::of(b""),
            artifacts: BTreeMap::new(),
        },
        key: key.clone(),
        url: format!("{revision_url}{SIGNATURE_SUFFIX}"),
    });
    let report = upload_through(
        transport,
        &plan.service,
        &plan.scope,
        &items,
        mappings,
        &revision_url,
        plan.force,
        sign,
        presence,
    )
    .await
    .map_err(|source| {
        if source.is_auth_failure() {
            PutError::Refused {
                scope: plan.scope.clone(),
                source: Box::new(source),
            }
        } else {
            PutError::Other {
                scope: plan.scope.clone(),
                source: Box::new(source),
            }
        }
    })?;
    Ok(PutOutcome {
        rev,
        items: items.len(),
        report,
    })
}
