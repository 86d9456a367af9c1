//! Configuration files Lake reads and tarn shares with it: the system configuration
//! (`LAKE_CONFIG` or `~/.lake/config.toml`) and the cache-related options of `lakefile.toml`.
//!
//! Only parsing lives here; callers read the files and the environment.

use serde::Deserialize;

use crate::service::{Service, ServiceKind, RESERVOIR_NAME};

/// The `cache` table of Lake's system configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemConfig {
    /// `cache.defaultService`: the download default (absent → Reservoir).
    pub default_service: Option<String>,
    /// `cache.defaultUploadService`: the upload default (absent → `--service` required).
    pub default_upload_service: Option<String>,
    /// `[[cache.service]]` entries, in file order.
    pub services: Vec<Service>,
    /// `tarn.maxSize` (tarn's own key; Lake reads only the `cache` table): when set,
    /// `tarn get` prunes the local cache to this many bytes after it finishes.
    pub max_size: Option<u64>,
}

/// A system configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not valid TOML, or a key has the wrong type.
    #[error("invalid TOML: {0}")]
    Toml(String),
    /// A `[[cache.service]]` entry is incomplete or contradictory.
    #[error("cache service #{index} ({name}): {problem}")]
    Service {
        /// 1-based position in the file.
        index: usize,
        /// The entry's name, or `<unnamed>`.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// One of tarn's own settings (the `tarn` table) is unusable.
    #[error("{key}: {problem}")]
    Setting {
        /// The key (`tarn.maxSize`).
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// A TOML error as `line L, column C (key `K`): what`, without the source line the parser
/// would quote (only the key of a `key = value` line, when it is a plain key): the file may
/// be a link to something secret (`/proc/self/environ`), and its lines must not reach a
/// log.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            let line_text = text[before.len() - (column - 1)..]
                .lines()
                .next()
                .unwrap_or("");
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| {
                    !k.is_empty()
                        && k.len() <= 64
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                })
                .map(|k| format!(" (key `{k}`)"))
                .unwrap_or_default();
            format!(
                "line {line}, column {column}{key}: {}",
                one_line(e.message())
            )
        }
        None => one_line(e.message()),
    }
}

/// A parser message on one line (`; ` between its lines).
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize, Default)]
struct RawRoot {
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    tarn: RawTarn,
}

/// The `tarn` table: tarn's settings, which Lake does not read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawTarn {
    max_size: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawCache {
    default_service: Option<String>,
    default_upload_service: Option<String>,
    #[serde(default)]
    service: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawService {
    name: Option<String>,
    kind: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    artifact_endpoint: Option<String>,
    revision_endpoint: Option<String>,
    api_endpoint: Option<String>,
    rev_discovery: Option<String>,
}

impl SystemConfig {
    /// Parses the text of a system configuration file.
    pub fn parse(text: &str) -> Result<SystemConfig, ConfigError> {
        let raw: RawRoot =
            toml::from_str(text).map_err(|e| ConfigError::Toml(toml_error(text, &e)))?;
        let mut services: Vec<Service> = Vec::new();
        // Names seen so far: a set, so that many services cost linear time, not quadratic.
        let mut names = std::collections::HashSet::new();
        for (i, s) in raw.cache.service.into_iter().enumerate() {
            let index = i + 1;
            let label = s.name.clone().unwrap_or_else(|| "<unnamed>".to_string());
            let err = |problem: String| ConfigError::Service {
                index,
                name: label.clone(),
                problem,
            };
            let name = s.name.clone().ok_or_else(|| err("missing `name`".into()))?;
            if !names.insert(name.clone()) {
                return Err(err("another service has the same name".into()));
            }
            let kind = match (&s.kind, &s.type_) {
                (Some(k), Some(t)) if k != t => {
                    return Err(err(format!("`kind` = {k:?} and `type` = {t:?} disagree")))
                }
                (Some(k), _) | (None, Some(k)) => k.clone(),
                (None, None) => return Err(err("missing `kind` (\"s3\" or \"reservoir\")".into())),
            };
            let kind = match kind.as_str() {
                "s3" => ServiceKind::S3 {
                    artifact_endpoint: crate::service::normalize_endpoint(
                        s.artifact_endpoint
                            .as_deref()
                            .ok_or_else(|| err("an s3 service needs `artifactEndpoint`".into()))?,
                    ),
                    revision_endpoint: crate::service::normalize_endpoint(
                        s.revision_endpoint
                            .as_deref()
                            .ok_or_else(|| err("an s3 service needs `revisionEndpoint`".into()))?,
                    ),
                },
                "reservoir" => ServiceKind::Reservoir {
                    api_endpoint: crate::service::normalize_endpoint(
                        s.api_endpoint
                            .as_deref()
                            .ok_or_else(|| err("a reservoir service needs `apiEndpoint`".into()))?,
                    ),
                },
                other => {
                    return Err(err(format!(
                        "unknown kind {other:?} (expected \"s3\" or \"reservoir\")"
                    )))
                }
            };
            if let Some(policy) = &s.rev_discovery {
                if policy != "head" {
                    return Err(err(format!(
                        "unknown `revDiscovery` policy {policy:?} (expected \"head\")"
                    )));
                }
            }
            services.push(Service {
                name,
                kind,
                rev_discovery: s.rev_discovery,
            });
        }
        let max_size =
            match &raw.tarn.max_size {
                Some(text) => Some(crate::units::parse_human_size(text).map_err(|e| {
                    ConfigError::Setting {
                        key: "tarn.maxSize",
                        problem: e.to_string(),
                    }
                })?),
                None => None,
            };
        Ok(SystemConfig {
            default_service: raw.cache.default_service,
            default_upload_service: raw.cache.default_upload_service,
            services,
            max_size,
        })
    }

    /// A configured service by name. `reservoir` is not built in here: callers add it.
    pub(crate) fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// A service by name, with the built-in `reservoir` (at `reservoir_api`) when it is not
    /// configured explicitly.
    pub fn lookup(&self, name: &str, reservoir_api: &str) -> Option<Service> {
        self.service(name).cloned().or_else(|| {
            (name == RESERVOIR_NAME).then(|| Service::reservoir(RESERVOIR_NAME, reservoir_api))
        })
    }
}

/// A package's options that matter to its cache, from `lakefile.toml` or (as far as they are
/// literals) `lakefile.lean`. `None` means "not set": Lake's default applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageConfig {
    /// Package name: the local cache scope (`outputs/<name>/`).
    pub name: String,
    /// `enableArtifactCache`.
    pub enable_artifact_cache: Option<bool>,
    /// `restoreAllArtifacts`.
    pub restore_all_artifacts: Option<bool>,
    /// `platformIndependent`: no platform part in repository scopes.
    pub platform_independent: Option<bool>,
    /// `fixedToolchain`: no toolchain part in repository scopes (newer Lake).
    pub fixed_toolchain: Option<bool>,
    /// `bootstrap`: the package is built by Lean's own toolchain; no toolchain part.
    pub bootstrap: Option<bool>,
    /// `buildDir` (Lake's default `.lake/build`).
    pub build_dir: Option<String>,
    /// `leanLibDir`, relative to the build directory (Lake's default `lib/lean`).
    pub lean_lib_dir: Option<String>,
    /// `irDir`, relative to the build directory (Lake's default `ir`).
    pub ir_dir: Option<String>,
    /// `packagesDir` (Lake's default `.lake/packages`); only the root package's counts.
    pub packages_dir: Option<String>,
}

impl PackageConfig {
    /// Parses `lakefile.toml` text; only the keys above are read, the rest is ignored.
    pub fn parse_toml(text: &str) -> Result<PackageConfig, ConfigError> {
        let cfg: PackageConfig =
            toml::from_str(text).map_err(|e| ConfigError::Toml(toml_error(text, &e)))?;
        if cfg.name.is_empty() {
            return Err(ConfigError::Toml("`name` must not be empty".into()));
        }
        if crate::workspace::has_control(&cfg.name) {
            return Err(ConfigError::Toml(format!(
                "`name` {:?} holds a control character",
                cfg.name
            )));
        }
        Ok(cfg)
    }

    /// Lake's `cachePlatform`: no platform part (`None`) for a platform-independent
    /// package, else `platform` unchanged.
    pub fn cache_platform(&self, platform: Option<String>) -> Option<String> {
        if self.platform_independent == Some(true) {
            None
        } else {
            platform
        }
    }

    /// Lake's `cacheToolchain`: no toolchain part (`None`) for a `bootstrap` or
    /// `fixedToolchain` package, else `toolchain` unchanged.
    pub fn cache_toolchain(&self, toolchain: Option<String>) -> Option<String> {
        if self.bootstrap == Some(true) || self.fixed_toolchain == Some(true) {
            None
        } else {
            toolchain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lakes_fixtures_with_kind_or_type() {
        let cfg = SystemConfig::parse(
            r#"
cache.defaultService = "cdn"
[[cache.service]]
name = "cdn"
type = "s3"
artifactEndpoint = "https://reservoir.lean-cache.cloud/a0"
revisionEndpoint = "https://reservoir.lean-cache.cloud/r0/"
revDiscovery = "head"
[[cache.service]]
name = "mirror"
kind = "reservoir"
apiEndpoint = "https://example.com/api/v1"
"#,
        )
        .unwrap();
        assert_eq!(cfg.default_service.as_deref(), Some("cdn"));
        assert_eq!(cfg.services.len(), 2);
        assert!(matches!(&cfg.service("cdn").unwrap().kind,
            ServiceKind::S3 { revision_endpoint, .. } if revision_endpoint == "https://reservoir.lean-cache.cloud/r0"));
        assert!(cfg.service("mirror").unwrap().is_reservoir());
        assert!(cfg
            .lookup("reservoir", "http://r/api")
            .unwrap()
            .is_reservoir());
        assert!(cfg.lookup("nope", "http://r/api").is_none());
    }

    #[test]
    fn reads_tarns_max_size_and_refuses_it_without_a_unit() {
        let c = SystemConfig::parse("[tarn]\nmaxSize = \"20GiB\"\n").unwrap();
        assert_eq!(c.max_size, Some(20 << 30));
        assert_eq!(SystemConfig::parse("").unwrap().max_size, None);
        let e = SystemConfig::parse("tarn.maxSize = \"20\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tarn.maxSize: \"20\" has no unit; write it with one, e.g. 20GiB or 500MB"
        );
        assert!(SystemConfig::parse("tarn.maxSize = 20").is_err());
    }

    #[test]
    fn refuses_bad_services_with_a_reason() {
        for (text, needle) in [
            ("[[cache.service]]\nname='b'\ntype='s3'\nartifactEndpoint='x'\nrevisionEndpoint='y'\nrevDiscovery='bogus'", "revDiscovery"),
            ("[[cache.service]]\nname='b'\ntype='ftp'", "unknown kind"),
            ("[[cache.service]]\nname='b'\nkind='s3'\nartifactEndpoint='x'", "revisionEndpoint"),
            ("[[cache.service]]\ntype='s3'", "name"),
            ("[[cache.service]]\nname='a'\nkind='reservoir'\napiEndpoint='x'\n[[cache.service]]\nname='a'\nkind='reservoir'\napiEndpoint='x'", "same name"),
            ("cache = 3", "invalid TOML"),
        ] {
            let e = SystemConfig::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
    }

    #[test]
    fn reads_package_options() {
        let p = PackageConfig::parse_toml(
            "name = \"test\"\nenableArtifactCache = true\nplatformIndependent = true\n[[lean_lib]]\nname = \"Test\"\n",
        )
        .unwrap();
        assert_eq!(p.name, "test");
        assert_eq!(p.platform_independent, Some(true));
        assert_eq!(p.fixed_toolchain, None);
        let p = PackageConfig::parse_toml(
            "name = \"b\"\nbootstrap = true\nbuildDir = \"out\"\nleanLibDir = \"l\"\nirDir = \"c\"\npackagesDir = \"deps\"\nfixedToolchain = false\n",
        )
        .unwrap();
        assert_eq!(p.bootstrap, Some(true));
        assert_eq!(p.fixed_toolchain, Some(false));
        assert_eq!(
            (
                p.build_dir.as_deref(),
                p.lean_lib_dir.as_deref(),
                p.ir_dir.as_deref(),
                p.packages_dir.as_deref()
            ),
            (Some("out"), Some("l"), Some("c"), Some("deps"))
        );
        let e =
            PackageConfig::parse_toml("name = \"b\"\nplatformIndependent = \"yes\"\n").unwrap_err();
        assert!(e.to_string().contains("platformIndependent"), "{e}");
    }

    #[test]
    fn cache_platform_and_toolchain_follow_the_package_options() {
        let p = |pi, ft, bs| PackageConfig {
            name: "p".into(),
            platform_independent: pi,
            fixed_toolchain: ft,
            bootstrap: bs,
            ..PackageConfig::default()
        };
        let host = || Some("x86_64-unknown-linux-gnu".to_string());
        let tc = || Some("leanprover/lean4:v4.22.0".to_string());
        assert_eq!(p(None, None, None).cache_platform(host()), host());
        assert_eq!(p(Some(false), None, None).cache_platform(host()), host());
        assert_eq!(p(Some(true), None, None).cache_platform(host()), None);
        assert_eq!(p(None, None, None).cache_toolchain(tc()), tc());
        assert_eq!(p(None, Some(true), None).cache_toolchain(tc()), None);
        assert_eq!(p(None, None, Some(true)).cache_toolchain(tc()), None);
        assert_eq!(
            p(None, Some(false), Some(false)).cache_toolchain(tc()),
            tc()
        );
        assert_eq!(p(Some(true), None, None).cache_toolchain(tc()), tc());
    }
}
