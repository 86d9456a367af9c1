//! Which packages a `get` fetches, and how, decided from the workspace the way Lake's
//! `cache get` decides it (`Lake/CLI/Main.lean`): the root (or `--package`'s package) for a
//! mappings file or a `--scope`/`--repo`; every Reservoir dependency when neither is given on
//! the Reservoir service; and, beyond Lake, every dependency from an S3 service with
//! `--deps`. Pure: the workspace is already loaded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use tarn_core::{Scope, Service};
use tarn_store::Cache;
use tarn_store::{Package, Workspace};

use super::{run, GetError, GetOutcome, GetPlan, MappingsSource, RevisionSearch, TrustPolicy};
use crate::transport::Transport;

/// What the user asked `get` for, with the service already resolved.
#[derive(Debug, Clone)]
pub struct GetRequest {
    /// The service.
    pub service: Service,
    /// The service name recorded in `outputs/` entries (`None`: the environment service).
    pub recorded_name: Option<String>,
    /// `--scope` / `--repo`.
    pub scope: Option<Scope>,
    /// `--package`.
    pub package: Option<String>,
    /// A mappings file (instead of a revision search).
    pub mappings_file: Option<PathBuf>,
    /// `--rev`.
    pub rev: Option<String>,
    /// `--max-revs`.
    pub max_revs: u64,
    /// `--platform`, else the host's.
    pub platform: Option<String>,
    /// `--toolchain`, else the workspace's default toolchain.
    pub toolchain: Option<String>,
    /// `--mappings-only`.
    pub mappings_only: bool,
    /// `--force-download`.
    pub force_download: bool,
    /// `--deps`: every dependency, by repository scope, from an S3 service.
    pub deps: bool,
    /// `--dep-scope NAME=OWNER/REPO` overrides for `--deps`.
    pub dep_scopes: BTreeMap<String, String>,
    /// Trusted keys per package name: that package's revisions must be signed by one of
    /// them (docs/trust.md); a package not listed is not signature-checked.
    pub trust: BTreeMap<String, Arc<TrustPolicy>>,
}

/// One step of a `get`: fetch a package, or say why it is skipped.
#[derive(Debug, Clone)]
pub enum Step {
    /// Download this package's outputs.
    Fetch {
        /// The package name.
        package: String,
        /// The plan.
        plan: Box<GetPlan>,
    },
    /// Skip this dependency (Lake: `<name>: skipping non-Reservoir dependency`).
    Skip {
        /// The package name.
        package: String,
        /// Why, as printed after `<name>: `.
        reason: String,
    },
}

/// How the steps' failures are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One package: its own errors are the command's.
    Single,
    /// Several packages (Lake's multi-package Reservoir get, tarn's `--deps`): every package
    /// is tried, and any failure ends with `failed to download artifacts for some
    /// dependencies`.
    Each,
}

/// A request that cannot be carried out, in Lake's words where Lake has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `--package` names no package of the workspace.
    #[error("unknown package `{0}`")]
    UnknownPackage(String),
    /// `--package` names a package without a Reservoir scope, on Reservoir.
    #[error("{0}: not a Reservoir dependency")]
    NotReservoir(String),
    /// `--rev` with the multi-package Reservoir get.
    #[error("the `--rev` option is not supported for a multi-package Reservoir `cache get`")]
    RevWithEach,
    /// Neither `--scope` nor `--repo` on a custom endpoint.
    #[error(
        "to use `cache get` with a custom endpoint, the `--scope` or `--repo` option must be set"
    )]
    NeedScope,
    /// `--deps` on the Reservoir service (Reservoir only has Reservoir packages).
    #[error("`--deps` needs an S3 service (kind = \"s3\"), not Reservoir")]
    DepsOnReservoir,
    /// `--deps` with a single-package option.
    #[error("`--deps` fetches every dependency; it cannot be combined with `{0}`")]
    DepsWith(&'static str),
}

impl GetRequest {
    fn plan_for(&self, pkg: &Package, scope: Scope, mappings: MappingsSource) -> GetPlan {
        GetPlan {
            service: self.service.clone(),
            recorded_name: self.recorded_name.clone(),
            scope,
            local_scope: pkg.name.clone(),
            mappings,
            mappings_only: self.mappings_only,
            force_download: self.force_download,
            trust: self.trust.get(&pkg.name).cloned(),
        }
    }

    fn search_for(&self, pkg: &Package, rev: Option<String>) -> MappingsSource {
        MappingsSource::Search(RevisionSearch {
            repo: pkg.repo_dir.clone(),
            rev,
            max_revs: self.max_revs,
            platform: pkg.cache_platform(self.platform.clone()),
            toolchain: pkg.cache_toolchain(self.toolchain.clone()),
        })
    }
}

/// The repository scope `owner/repo` of a git URL (`https://host/owner/repo(.git)`,
/// `git@host:owner/repo(.git)`, `ssh://…/owner/repo`): its last two path components.
pub(crate) fn repo_scope_of_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/')?.1,
        None => url.rsplit_once(':')?.1,
    };
    let mut parts = path.rsplit('/');
    let repo = parts.next()?;
    let owner = parts.next()?;
    Scope::repo(&format!("{owner}/{repo}"))
        .ok()
        .map(|s| s.as_str().to_string())
}

/// Decides the steps of a `get` on `ws`.
pub fn select(ws: &Workspace, req: &GetRequest) -> Result<(Mode, Vec<Step>), SelectError> {
    let chosen = match &req.package {
        Some(name) => Some(
            ws.package(name)
                .ok_or_else(|| SelectError::UnknownPackage(name.clone()))?,
        ),
        None => None,
    };
    if req.deps {
        if req.service.is_reservoir() {
            return Err(SelectError::DepsOnReservoir);
        }
        for (set, flag) in [
            (req.scope.is_some(), "--scope/--repo"),
            (req.package.is_some(), "--package"),
            (req.rev.is_some(), "--rev"),
            (req.mappings_file.is_some(), "a mappings file"),
        ] {
            if set {
                return Err(SelectError::DepsWith(flag));
            }
        }
        let steps = ws
            .dependencies()
            .iter()
            .map(|pkg| {
                let scope = req
                    .dep_scopes
                    .get(&pkg.name)
                    .cloned()
                    .or_else(|| pkg.url.as_deref().and_then(repo_scope_of_url))
                    .and_then(|s| Scope::repo(&s).ok());
                match scope {
                    Some(scope) => Step::Fetch {
                        package: pkg.name.clone(),
                        plan: Box::new(req.plan_for(pkg, scope, req.search_for(pkg, None))),
                    },
                    None => Step::Skip {
                        package: pkg.name.clone(),
                        reason: "no repository scope (no git URL of the form …/owner/repo; pass --dep-scope NAME=OWNER/REPO)".into(),
                    },
                }
            })
            .collect();
        return Ok((Mode::Each, steps));
    }
    let pkg = chosen.unwrap_or_else(|| ws.root());
    if let Some(path) = &req.mappings_file {
        // Lake: a mappings file needs --scope/--repo (checked by the caller) and loads into
        // the root's or --package's local scope.
        let scope = req.scope.clone().ok_or(SelectError::NeedScope)?;
        let plan = req.plan_for(pkg, scope, MappingsSource::File(path.clone()));
        return Ok((
            Mode::Single,
            vec![Step::Fetch {
                package: pkg.name.clone(),
                plan: Box::new(plan),
            }],
        ));
    }
    if let Some(scope) = &req.scope {
        let plan = req.plan_for(pkg, scope.clone(), req.search_for(pkg, req.rev.clone()));
        return Ok((
            Mode::Single,
            vec![Step::Fetch {
                package: pkg.name.clone(),
                plan: Box::new(plan),
            }],
        ));
    }
    if !req.service.is_reservoir() {
        return Err(SelectError::NeedScope);
    }
    if let Some(pkg) = chosen {
        let scope = pkg
            .reservoir_scope()
            .ok_or_else(|| SelectError::NotReservoir(pkg.name.clone()))?;
        let scope = Scope::verbatim(&scope).expect("non-empty");
        let plan = req.plan_for(pkg, scope, req.search_for(pkg, req.rev.clone()));
        return Ok((
            Mode::Single,
            vec![Step::Fetch {
                package: pkg.name.clone(),
                plan: Box::new(plan),
            }],
        ));
    }
    if req.rev.is_some() {
        return Err(SelectError::RevWithEach);
    }
    let steps = ws
        .dependencies()
        .iter()
        .map(|pkg| match pkg.reservoir_scope() {
            Some(scope) => Step::Fetch {
                package: pkg.name.clone(),
                plan: Box::new(req.plan_for(
                    pkg,
                    Scope::verbatim(&scope).expect("non-empty"),
                    req.search_for(pkg, None),
                )),
            },
            None => Step::Skip {
                package: pkg.name.clone(),
                reason: "skipping non-Reservoir dependency".into(),
            },
        })
        .collect();
    Ok((Mode::Each, steps))
}

/// What one step did.
#[derive(Debug)]
pub struct StepOutcome {
    /// The package name.
    pub package: String,
    /// `Err(reason)` for a skipped package; `Ok(result)` for one that was fetched.
    pub result: Result<Result<GetOutcome, GetError>, String>,
}

impl StepOutcome {
    /// Whether the package was fetched completely (a skip is not a failure).
    pub fn ok(&self) -> bool {
        match &self.result {
            Err(_) => true,
            Ok(Ok(o)) => o.ok(),
            Ok(Err(_)) => false,
        }
    }
}

/// Runs the steps over one shared transport, up to `packages_at_once` packages at a time
/// (their artifact transfers share the transport's job limit); outcomes come back in step
/// order. One package's failure never stops the others.
pub async fn run_steps(
    transport: &Transport,
    cache: &Cache,
    steps: &[Step],
    packages_at_once: usize,
) -> Vec<StepOutcome> {
    futures_util::stream::iter(steps.iter())
        .map(|step| async move {
            match step {
                Step::Skip { package, reason } => StepOutcome {
                    package: package.clone(),
                    result: Err(reason.clone()),
                },
                Step::Fetch { package, plan } => StepOutcome {
                    package: package.clone(),
                    result: Ok(run(transport, cache, plan).await),
                },
            }
        })
        .buffered(packages_at_once.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_scopes_from_git_urls() {
        for (url, want) in [
            (
                "https://github.com/leanprover-community/batteries",
                Some("leanprover-community/batteries"),
            ),
            (
                "https://github.com/leanprover-community/aesop.git",
                Some("leanprover-community/aesop"),
            ),
            ("git@github.com:owner/repo.git", Some("owner/repo")),
            ("ssh://git@host:22/a/b/c/", Some("b/c")),
            ("https://example.com/justone", None),
            ("../local/path", None),
            ("https://github.com/o/bad name", None),
        ] {
            assert_eq!(repo_scope_of_url(url).as_deref(), want, "{url}");
        }
    }
}
