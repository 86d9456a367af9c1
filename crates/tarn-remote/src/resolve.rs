//! Which service to talk to, decided exactly as Lake decides it (spec §4.1, §4.2):
//! `--service`, the legacy `LAKE_CACHE_*_ENDPOINT` variables, `cache.defaultService` /
//! `cache.defaultUploadService`, and Reservoir. Every error says what to set.

use tarn_core::sigv4::Credentials;
use tarn_core::SystemConfig;
use tarn_core::{normalize_endpoint, Service, DEFAULT_RESERVOIR_API, RESERVOIR_NAME};

/// The environment variables that matter here (read once by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteEnv {
    /// `LAKE_CACHE_ARTIFACT_ENDPOINT`.
    pub artifact_endpoint: Option<String>,
    /// `LAKE_CACHE_REVISION_ENDPOINT`.
    pub revision_endpoint: Option<String>,
    /// `LAKE_CACHE_KEY`.
    pub cache_key: Option<String>,
    /// `RESERVOIR_API_URL`.
    pub reservoir_api_url: Option<String>,
    /// `RESERVOIR_API_BASE_URL`.
    pub reservoir_api_base_url: Option<String>,
    /// `LAKE_CACHE_SERVICE`: the name of the service the endpoint variables configure (Lake's
    /// `Env.cacheService?`), recorded in `outputs/` entries.
    pub cache_service: Option<String>,
}

impl RemoteEnv {
    /// Reads the variables from the process environment.
    pub fn from_process() -> RemoteEnv {
        let var = |k: &str| std::env::var(k).ok();
        RemoteEnv {
            artifact_endpoint: var("LAKE_CACHE_ARTIFACT_ENDPOINT"),
            revision_endpoint: var("LAKE_CACHE_REVISION_ENDPOINT"),
            cache_key: var("LAKE_CACHE_KEY"),
            reservoir_api_url: var("RESERVOIR_API_URL"),
            reservoir_api_base_url: var("RESERVOIR_API_BASE_URL"),
            cache_service: var("LAKE_CACHE_SERVICE"),
        }
    }

    /// Lake's `Env.reservoirApiUrl` (`Lake/Config/Env.lean`, `getUrlD`): `RESERVOIR_API_URL`
    /// whenever it is set, even empty; else `RESERVOIR_API_BASE_URL` (when set, even empty;
    /// default `https://reservoir.lean-lang.org/api`) followed by `/v1`. A set value loses
    /// one trailing `/` before use.
    pub fn reservoir_api(&self) -> String {
        match (&self.reservoir_api_url, &self.reservoir_api_base_url) {
            (Some(u), _) => normalize_endpoint(u),
            (None, Some(b)) => format!("{}/v1", normalize_endpoint(b)),
            (None, None) => DEFAULT_RESERVOIR_API.to_string(),
        }
    }

    fn key(&self) -> Option<&str> {
        self.cache_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// The name recorded for the environment-configured service (`None`: `"service": null`).
    fn env_service_name(&self) -> Option<String> {
        self.cache_service
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }

    fn endpoints(&self) -> (Option<&str>, Option<&str>) {
        fn ne(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        (ne(&self.artifact_endpoint), ne(&self.revision_endpoint))
    }
}

/// A service chosen for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The service.
    pub service: Service,
    /// `Some(name)` for a named service (recorded in `outputs/` entries); for the legacy
    /// environment-variable service, `LAKE_CACHE_SERVICE` when set, else `None`.
    pub recorded_name: Option<String>,
}

/// A configuration that cannot be used, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}\n  hint: {hint}")]
pub struct ResolveError {
    /// What is wrong (Lake's wording where Lake has one).
    pub message: String,
    /// What to set.
    pub hint: String,
}

fn err(message: impl Into<String>, hint: impl Into<String>) -> ResolveError {
    ResolveError {
        message: message.into(),
        hint: hint.into(),
    }
}

fn lookup(config: &SystemConfig, env: &RemoteEnv, name: &str) -> Result<Service, ResolveError> {
    config.lookup(name, &env.reservoir_api()).ok_or_else(|| {
        err(
            format!("service `{name}` not found in system configuration"),
            format!(
                "add a [[cache.service]] entry with name = \"{name}\" to LAKE_CONFIG (default ~/.lake/config.toml); `tarn services` lists the configured ones"
            ),
        )
    })
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// The service for a download (`get`).
pub fn resolve_download(
    service_flag: Option<&str>,
    config: &SystemConfig,
    env: &RemoteEnv,
) -> Result<Resolved, ResolveError> {
    if let Some(name) = service_flag {
        return Ok(Resolved {
            service: lookup(config, env, name)?,
            recorded_name: Some(name.to_string()),
        });
    }
    match env.endpoints() {
        (Some(a), Some(r)) => {
            tracing::warn!("LAKE_CACHE_ARTIFACT_ENDPOINT / LAKE_CACHE_REVISION_ENDPOINT are deprecated for downloads; configure a service in the system configuration instead");
            return Ok(Resolved {
                service: Service::s3("", a, r),
                recorded_name: env.env_service_name(),
            });
        }
        (None, None) => {}
        _ => {
            return Err(err(
                format!(
                    "invalid endpoint configuration:\n  LAKE_CACHE_ARTIFACT_ENDPOINT={}\n  LAKE_CACHE_REVISION_ENDPOINT={}\nTo use `cache get` with a custom endpoint, both environment variables must be set to non-empty strings. To use Reservoir, neither should be set.",
                    show(&env.artifact_endpoint),
                    show(&env.revision_endpoint)
                ),
                "set both LAKE_CACHE_ARTIFACT_ENDPOINT and LAKE_CACHE_REVISION_ENDPOINT, or unset both (or pass --service NAME)",
            ))
        }
    }
    match config.default_service.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => Ok(Resolved {
            service: lookup(config, env, name).map_err(|e| ResolveError {
                message: format!("cache.defaultService: {}", e.message),
                hint: e.hint,
            })?,
            recorded_name: Some(name.to_string()),
        }),
        None => Ok(Resolved {
            service: Service::reservoir(RESERVOIR_NAME, &env.reservoir_api()),
            recorded_name: Some(RESERVOIR_NAME.to_string()),
        }),
    }
}

const KEY_HINT: &str = "set LAKE_CACHE_KEY=<access-key-id>:<secret-access-key>";

fn credentials(env: &RemoteEnv) -> Result<Credentials, ResolveError> {
    let key = env.key().ok_or_else(|| {
        err(
            "uploads require an authentication key configured through `LAKE_CACHE_KEY`",
            KEY_HINT,
        )
    })?;
    Credentials::parse(key).ok_or_else(|| {
        err(
            "LAKE_CACHE_KEY is not of the form `<access-key-id>:<secret>`",
            KEY_HINT,
        )
    })
}

/// The service and key for an upload (`put`, `put-staged`).
pub fn resolve_upload(
    service_flag: Option<&str>,
    config: &SystemConfig,
    env: &RemoteEnv,
) -> Result<(Resolved, Credentials), ResolveError> {
    let check_s3 = |s: Service, name: &str| {
        if s.is_reservoir() {
            Err(err(
                format!("service `{name}` is a Reservoir service, which is download-only"),
                "upload to an S3-compatible service (kind = \"s3\")",
            ))
        } else {
            Ok(s)
        }
    };
    if let Some(name) = service_flag {
        let service = check_s3(lookup(config, env, name)?, name)?;
        return Ok((
            Resolved {
                service,
                recorded_name: Some(name.to_string()),
            },
            credentials(env)?,
        ));
    }
    match (env.endpoints(), env.key()) {
        ((Some(a), Some(r)), Some(_)) => {
            return Ok((
                Resolved {
                    service: Service::s3("", a, r),
                    recorded_name: env.env_service_name(),
                },
                credentials(env)?,
            ))
        }
        ((None, None), _) => {}
        _ => {
            return Err(err(
                format!(
                    "invalid endpoint configuration:\n  LAKE_CACHE_KEY is {}\n  LAKE_CACHE_ARTIFACT_ENDPOINT={}\n  LAKE_CACHE_REVISION_ENDPOINT={}\nTo use `cache put`, these environment variables must be set to non-empty strings.",
                    if env.key().is_some() { "set" } else { "unset" },
                    show(&env.artifact_endpoint),
                    show(&env.revision_endpoint)
                ),
                "set LAKE_CACHE_KEY, LAKE_CACHE_ARTIFACT_ENDPOINT and LAKE_CACHE_REVISION_ENDPOINT, or unset both endpoints and pass --service NAME",
            ))
        }
    }
    match config
        .default_upload_service
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(name) => {
            let service = check_s3(lookup(config, env, name)?, name)?;
            Ok((
                Resolved {
                    service,
                    recorded_name: Some(name.to_string()),
                },
                credentials(env)?,
            ))
        }
        None => Err(err(
            "no default upload service configured; the `--service` option must be set",
            "pass --service NAME, or set cache.defaultUploadService in LAKE_CONFIG (default ~/.lake/config.toml)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_core::ServiceKind;

    fn config() -> SystemConfig {
        SystemConfig::parse(
            r#"
cache.defaultUploadService = "up"
[[cache.service]]
name = "up"
kind = "s3"
artifactEndpoint = "http://h/a0/"
revisionEndpoint = "http://h/r0"
[[cache.service]]
name = "mirror"
type = "reservoir"
apiEndpoint = "http://m/api/v1"
"#,
        )
        .unwrap()
    }

    fn env() -> RemoteEnv {
        RemoteEnv::default()
    }

    #[test]
    fn reservoir_api_precedence() {
        let mut e = env();
        assert_eq!(e.reservoir_api(), DEFAULT_RESERVOIR_API);
        e.reservoir_api_base_url = Some("http://b/api".into());
        assert_eq!(e.reservoir_api(), "http://b/api/v1");
        e.reservoir_api_url = Some("http://x/v9/".into());
        assert_eq!(e.reservoir_api(), "http://x/v9");
        // Lake: the base loses one trailing `/` BEFORE `/v1` is appended (not `…/api//v1`).
        let mut e = env();
        e.reservoir_api_base_url = Some("http://b/api/".into());
        assert_eq!(e.reservoir_api(), "http://b/api/v1");
        e.reservoir_api_base_url = Some(String::new());
        assert_eq!(
            e.reservoir_api(),
            "/v1",
            "set but empty is used, as Lake does"
        );
        // RESERVOIR_API_URL set but empty is used too (and wins over the base).
        e.reservoir_api_url = Some(String::new());
        assert_eq!(e.reservoir_api(), "");
    }

    #[test]
    fn download_precedence() {
        let c = config();
        let r = resolve_download(None, &c, &env()).unwrap();
        assert_eq!(r.recorded_name.as_deref(), Some("reservoir"));
        let r = resolve_download(Some("up"), &c, &env()).unwrap();
        assert_eq!(
            r.service.kind,
            ServiceKind::S3 {
                artifact_endpoint: "http://h/a0".into(),
                revision_endpoint: "http://h/r0".into()
            }
        );
        let e = resolve_download(Some("bogus"), &c, &env()).unwrap_err();
        assert!(e
            .to_string()
            .contains("service `bogus` not found in system configuration"));
        assert!(e.to_string().contains("hint:"));
        let mut half = env();
        half.artifact_endpoint = Some("http://e/a".into());
        let e = resolve_download(None, &c, &half).unwrap_err();
        assert!(e.message.contains("both environment variables must be set"));
        half.revision_endpoint = Some("http://e/r/".into());
        let r = resolve_download(None, &c, &half).unwrap();
        assert_eq!(r.recorded_name, None);
        // LAKE_CACHE_SERVICE names the environment-configured service (blank: no name).
        half.cache_service = Some("ci".into());
        assert_eq!(
            resolve_download(None, &c, &half)
                .unwrap()
                .recorded_name
                .as_deref(),
            Some("ci")
        );
        half.cache_service = Some(" ".into());
        assert_eq!(
            resolve_download(None, &c, &half).unwrap().recorded_name,
            None
        );
        half.cache_service = None;
        assert!(
            matches!(r.service.kind, ServiceKind::S3 { ref revision_endpoint, .. } if revision_endpoint == "http://e/r")
        );
        // defaultService wins over Reservoir; --service wins over the env service.
        let mut c2 = config();
        c2.default_service = Some("mirror".into());
        assert_eq!(
            resolve_download(None, &c2, &env()).unwrap().service.name,
            "mirror"
        );
        assert_eq!(
            resolve_download(Some("up"), &c2, &half)
                .unwrap()
                .service
                .name,
            "up"
        );
    }

    #[test]
    fn upload_precedence() {
        let c = config();
        let e = resolve_upload(None, &c, &env()).unwrap_err();
        assert!(e.message.contains("LAKE_CACHE_KEY"), "{e}");
        let mut k = env();
        k.cache_key = Some(" id:secret\n".into());
        let (r, creds) = resolve_upload(None, &c, &k).unwrap();
        assert_eq!(r.service.name, "up");
        assert_eq!(creds.secret_access_key, "secret");
        let e = resolve_upload(Some("mirror"), &c, &k).unwrap_err();
        assert!(e.message.contains("download-only"));
        let e = resolve_upload(None, &SystemConfig::default(), &k).unwrap_err();
        assert!(e.message.contains("the `--service` option must be set"));
        let mut partial = k.clone();
        partial.revision_endpoint = Some("http://e/r".into());
        let e = resolve_upload(None, &c, &partial).unwrap_err();
        assert!(e
            .message
            .contains("these environment variables must be set"));
        assert!(e.message.contains("LAKE_CACHE_KEY is set"));
        partial.artifact_endpoint = Some("http://e/a".into());
        let (r, _) = resolve_upload(None, &c, &partial).unwrap();
        assert_eq!(r.recorded_name, None);
        partial.cache_service = Some("ci".into());
        let (r, _) = resolve_upload(None, &c, &partial).unwrap();
        assert_eq!(r.recorded_name.as_deref(), Some("ci"));
        assert_eq!(r.service.name, "", "still the environment's service");
        partial.cache_service = None;
        let mut nokey = partial.clone();
        nokey.cache_key = None;
        let e = resolve_upload(None, &c, &nokey).unwrap_err();
        assert!(e.message.contains("LAKE_CACHE_KEY is unset"));
        let mut bad = k.clone();
        bad.cache_key = Some("nocolon".into());
        assert!(resolve_upload(Some("up"), &c, &bad)
            .unwrap_err()
            .message
            .contains("form"));
    }
}
