//! Remote cache services and the URLs Lake builds for them (S3 layout and Reservoir API).

use crate::hash::Hash;
use crate::object_key;
use crate::scope::{uri_encode, Scope};

/// The Reservoir API used when nothing else is configured.
pub const DEFAULT_RESERVOIR_API: &str = "https://reservoir.lean-lang.org/api/v1";
/// Name of the built-in Reservoir service.
pub const RESERVOIR_NAME: &str = "reservoir";
/// Content type Lake sends with artifact uploads.
pub const ARTIFACT_CONTENT_TYPE: &str = "application/vnd.reservoir.artifact";
/// Content type Lake sends with revision (mapping) file uploads.
pub const MAPPINGS_CONTENT_TYPE: &str = "application/vnd.reservoir.outputs+json-lines";
/// Headers Lake sends to the Reservoir API (`X-Reservoir-Api-Version`, `X-Lake-Registry-Api-Version`).
pub const RESERVOIR_HEADERS: [(&str, &str); 2] = [
    ("X-Reservoir-Api-Version", "1.0.0"),
    ("X-Lake-Registry-Api-Version", "0.1.0"),
];

/// What kind of service, with its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    /// An S3-compatible bucket (R2, AWS, MinIO, `tarn serve`).
    S3 {
        /// Base URL of artifact objects, e.g. `https://host/a0`.
        artifact_endpoint: String,
        /// Base URL of revision files, e.g. `https://host/r0`.
        revision_endpoint: String,
    },
    /// The Reservoir API (download only).
    Reservoir {
        /// e.g. `https://reservoir.lean-lang.org/api/v1`.
        api_endpoint: String,
    },
}

/// A named cache service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The name users pass to `--service`.
    pub name: String,
    /// Kind and endpoints.
    pub kind: ServiceKind,
    /// Lake's `revDiscovery` policy, when configured (`"head"`).
    pub rev_discovery: Option<String>,
}

/// Removes one trailing `/` (Lake's `normalizeUrl` for endpoints).
pub fn normalize_endpoint(url: &str) -> String {
    url.strip_suffix('/').unwrap_or(url).to_string()
}

impl Service {
    /// An S3 service; endpoints lose one trailing `/`.
    pub fn s3(name: &str, artifact_endpoint: &str, revision_endpoint: &str) -> Service {
        Service {
            name: name.to_string(),
            kind: ServiceKind::S3 {
                artifact_endpoint: normalize_endpoint(artifact_endpoint),
                revision_endpoint: normalize_endpoint(revision_endpoint),
            },
            rev_discovery: None,
        }
    }

    /// A Reservoir service; the endpoint loses one trailing `/`.
    pub fn reservoir(name: &str, api_endpoint: &str) -> Service {
        Service {
            name: name.to_string(),
            kind: ServiceKind::Reservoir {
                api_endpoint: normalize_endpoint(api_endpoint),
            },
            rev_discovery: None,
        }
    }

    /// Whether this is a Reservoir service.
    pub fn is_reservoir(&self) -> bool {
        matches!(self.kind, ServiceKind::Reservoir { .. })
    }

    /// URL of one artifact: `{artifactEndpoint}{scope}/{hash}.art` on S3,
    /// `{api}/{packages|repositories}{scope}/artifacts/{hash}.art` on Reservoir.
    pub fn artifact_url(&self, scope: &Scope, hash: Hash) -> String {
        match &self.kind {
            ServiceKind::S3 {
                artifact_endpoint, ..
            } => format!(
                "{artifact_endpoint}{}/{}",
                scope.url_path(),
                object_key::artifact_file(hash)
            ),
            ServiceKind::Reservoir { api_endpoint } => format!(
                "{api_endpoint}/{}{}/artifacts/{}",
                reservoir_collection(scope),
                scope.url_path(),
                object_key::artifact_file(hash)
            ),
        }
    }

    /// URL of a revision's mapping file.
    ///
    /// S3: `{revisionEndpoint}{scope}[/pt/{platform}][/tc/{toolchainDir}]/{rev}.jsonl`, where the
    /// platform and toolchain parts exist only for repository scopes.
    /// Reservoir: `{api}/{packages|repositories}{scope}/build-outputs?rev=R[&platform=P][&toolchain=T]`.
    pub fn revision_url(
        &self,
        scope: &Scope,
        rev: &str,
        platform: Option<&str>,
        toolchain: Option<&str>,
    ) -> String {
        let platform = platform.filter(|p| !p.is_empty());
        let toolchain = toolchain.filter(|t| !t.is_empty());
        match &self.kind {
            ServiceKind::S3 {
                revision_endpoint, ..
            } => {
                let mut url = format!("{revision_endpoint}{}", scope.url_path());
                if scope.is_repo() {
                    for c in object_key::revision_dir_suffix(platform, toolchain) {
                        url.push('/');
                        url.push_str(&uri_encode(&c));
                    }
                }
                url.push('/');
                url.push_str(&uri_encode(&object_key::revision_file(rev)));
                url
            }
            ServiceKind::Reservoir { api_endpoint } => {
                let mut url = format!(
                    "{api_endpoint}/{}{}/build-outputs?rev={}",
                    reservoir_collection(scope),
                    scope.url_path(),
                    uri_encode(rev)
                );
                if let Some(p) = platform {
                    url.push_str("&platform=");
                    url.push_str(&uri_encode(p));
                }
                if let Some(t) = toolchain {
                    url.push_str("&toolchain=");
                    url.push_str(&uri_encode(t));
                }
                url
            }
        }
    }

    /// Reservoir's bulk URL endpoint (`POST` a JSON array of hashes), `None` on S3.
    pub fn bulk_artifacts_url(&self, scope: &Scope) -> Option<String> {
        match &self.kind {
            ServiceKind::S3 { .. } => None,
            ServiceKind::Reservoir { api_endpoint } => Some(format!(
                "{api_endpoint}/{}{}/artifacts",
                reservoir_collection(scope),
                scope.url_path()
            )),
        }
    }
}

fn reservoir_collection(scope: &Scope) -> &'static str {
    if scope.is_repo() {
        "repositories"
    } else {
        "packages"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdn() -> Service {
        Service::s3(
            "cdn",
            "https://reservoir.lean-cache.cloud/a0/",
            "https://reservoir.lean-cache.cloud/r0",
        )
    }

    #[test]
    fn s3_urls_match_lakes_tests() {
        let scope = Scope::verbatim("!/test").unwrap();
        assert_eq!(
            cdn().artifact_url(&scope, Hash(0x0123456789abcdef)),
            "https://reservoir.lean-cache.cloud/a0/%21/test/0123456789abcdef.art"
        );
        let repo = Scope::repo("leanprover/test").unwrap();
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            cdn().revision_url(&repo, sha, Some("foo"), Some("bar")),
            format!(
                "https://reservoir.lean-cache.cloud/r0/leanprover/test/pt/foo/tc/bar/{sha}.jsonl"
            )
        );
        assert_eq!(
            cdn().revision_url(&repo, sha, None, Some("leanprover/lean4:v4.22.0")),
            format!("https://reservoir.lean-cache.cloud/r0/leanprover/test/tc/leanprover--lean4---v4.22.0/{sha}.jsonl")
        );
        assert_eq!(
            cdn().revision_url(&scope, sha, Some("foo"), Some("bar")),
            format!("https://reservoir.lean-cache.cloud/r0/%21/test/{sha}.jsonl"),
            "a verbatim scope never gets platform or toolchain parts"
        );
    }

    #[test]
    fn reservoir_urls() {
        let r = Service::reservoir(RESERVOIR_NAME, "https://example.com/api/v1/");
        let repo = Scope::repo("leanprover/lean4-cli").unwrap();
        assert_eq!(
            r.artifact_url(&repo, Hash(1)),
            "https://example.com/api/v1/repositories/leanprover/lean4-cli/artifacts/0000000000000001.art"
        );
        assert_eq!(
            r.revision_url(&repo, "abc", Some("x86_64-unknown-linux-gnu"), Some("leanprover/lean4:v4.22.0")),
            "https://example.com/api/v1/repositories/leanprover/lean4-cli/build-outputs?rev=abc&platform=x86_64-unknown-linux-gnu&toolchain=leanprover%2Flean4%3Av4.22.0"
        );
        let pkg = Scope::verbatim("leanprover/Cli").unwrap();
        assert_eq!(
            r.bulk_artifacts_url(&pkg).unwrap(),
            "https://example.com/api/v1/packages/leanprover/Cli/artifacts"
        );
        assert_eq!(cdn().bulk_artifacts_url(&pkg), None);
    }
}
