//! The server configuration: a TOML file, every field optional (the embedded default is a
//! zero-configuration server on local disk).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// The smallest `max_request_head_bytes` (hyper's own minimum buffer).
pub(crate) const MIN_REQUEST_HEAD_BYTES: usize = 8 << 10;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address (`host:port`).
    pub listen: String,
    /// Data directory: the objects (local backend) and upload spool files.
    pub data: Option<PathBuf>,
    /// Base URL clients reach the server under (used in Reservoir bulk replies and the startup
    /// banner); default `http(s)://<Host header>`.
    pub public_url: Option<String>,
    /// Path prefix of artifacts (Lake's `artifactEndpoint` ends with it).
    pub artifact_prefix: String,
    /// Path prefix of revision files (Lake's `revisionEndpoint` ends with it).
    pub revision_prefix: String,
    /// Path prefix of the Reservoir-compatible API.
    pub reservoir_prefix: String,
    /// Scope patterns anyone may read without a signature (default: every scope).
    pub public_read: Vec<String>,
    /// Refuse a revision file unless every artifact it references is present (409).
    pub require_artifacts: bool,
    /// Largest accepted artifact body (bytes).
    pub max_artifact_bytes: u64,
    /// Largest accepted revision file (bytes).
    pub max_revision_bytes: u64,
    /// Accepted clock skew of signed requests (seconds).
    pub max_clock_skew_secs: u64,
    /// Memory for caching small artifact bodies (bytes; 0 = off; local storage only).
    pub memory_cache_bytes: u64,
    /// Connections served at once; further ones get `503` and are closed (capped below the
    /// process's file-descriptor limit).
    pub max_connections: usize,
    /// Largest request head (request line and headers; HTTP/2: the header list) in bytes;
    /// a larger one is refused (`431`). At least 8 KiB.
    pub max_request_head_bytes: usize,
    /// Time a client has to send a request's headers (and to finish a TLS handshake); a
    /// keep-alive connection waiting for its next request is closed after it too.
    pub header_read_timeout_secs: u64,
    /// A connection that moves no byte in either direction for this long while a request or
    /// its reply is under way is closed (between requests `header_read_timeout_secs` applies).
    pub idle_timeout_secs: u64,
    /// Longest pause between request body bytes (seconds); also how long a body may arrive
    /// before its average rate is checked against `min_body_rate_bytes`. `408` otherwise.
    pub body_read_timeout_secs: u64,
    /// Slowest average rate (bytes per second) of a request body once it has been arriving
    /// for `body_read_timeout_secs` (0 = no minimum); `408` below it.
    pub min_body_rate_bytes: u64,
    /// Slowest rate (bytes per second) at which a client must take a reply waiting on it,
    /// over each `body_read_timeout_secs` (0 = no minimum); the connection is reset below it.
    pub min_send_rate_bytes: u64,
    /// Upload bodies spooled to disk at once; further uploads wait for a slot.
    pub max_concurrent_uploads: usize,
    /// Bytes of request bodies held and parsed in memory at once for requests with a
    /// verified signature (revision files, batch and Reservoir bulk requests, the replies
    /// built from them); a request waits until its share is free.
    pub parse_budget_bytes: u64,
    /// The same for requests without a signature (anonymous batch and Reservoir bulk
    /// requests), a separate pool: reserved as body bytes arrive; a request that cannot
    /// get its share within `body_read_timeout_secs` is answered `503`.
    pub anonymous_parse_budget_bytes: u64,
    /// Where the objects live.
    pub storage: StorageConfig,
    /// Access keys.
    #[serde(rename = "key")]
    pub keys: Vec<KeyConfig>,
    /// Garbage-collection policy.
    pub gc: GcConfig,
    /// TLS (PEM files); plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Scopes whose revision uploads must be signed by one of their trusted keys
    /// (docs/trust.md).
    pub signed: Vec<SignedScopes>,
}

/// Scopes that accept only signed revisions, and the keys they trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedScopes {
    /// Scope patterns (as for keys).
    pub scopes: Vec<String>,
    /// A trusted-keys file (`authorized_keys` lines with an optional `expiry-time`).
    pub trusted_keys: PathBuf,
    /// The keys read from `trusted_keys` at start.
    #[serde(skip)]
    pub keys: Vec<tarn_core::trust::TrustedKey>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.to_string(),
            data: None,
            public_url: None,
            artifact_prefix: "a0".to_string(),
            revision_prefix: "r0".to_string(),
            reservoir_prefix: "api/v1".to_string(),
            public_read: vec!["*".to_string()],
            require_artifacts: true,
            max_artifact_bytes: 4 << 30,
            max_revision_bytes: 32 << 20,
            max_clock_skew_secs: 15 * 60,
            memory_cache_bytes: 256 << 20,
            max_connections: 512,
            max_request_head_bytes: 64 << 10,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_read_timeout_secs: 30,
            min_body_rate_bytes: 1024,
            min_send_rate_bytes: 1024,
            max_concurrent_uploads: 32,
            parse_budget_bytes: 32 << 20,
            anonymous_parse_budget_bytes: 16 << 20,
            storage: StorageConfig::default(),
            keys: Vec::new(),
            gc: GcConfig::default(),
            tls: None,
            signed: Vec::new(),
        }
    }
}

/// Storage backend selection.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `local` (default) or `s3`.
    pub kind: StorageKind,
    /// S3 endpoint URL, e.g. `http://127.0.0.1:9000` (path-style requests are used).
    pub endpoint: Option<String>,
    /// S3 bucket.
    pub bucket: Option<String>,
    /// SigV4 region (default `us-east-1`).
    pub region: Option<String>,
    /// Access key id (or env `TARN_S3_ACCESS_KEY`).
    pub access_key: Option<String>,
    /// Secret (or env `TARN_S3_SECRET_KEY`).
    pub secret_key: Option<String>,
    /// Key prefix inside the bucket (e.g. `cache/`), default none.
    pub prefix: Option<String>,
    /// Where an `s3` backend spools upload bodies while it checks them (default
    /// `<data>/.tarn-spool`); local storage always spools inside its data directory, on the
    /// objects' file system.
    pub spool_dir: Option<PathBuf>,
    /// `s3`: time the bucket has to answer a request with its status and headers, and to
    /// send a whole small reply (a listing page, an error body); a PUT has this plus its
    /// body's time at `min_rate_bytes` (default 60 s).
    pub request_timeout_secs: Option<u64>,
    /// `s3`: longest pause in an object body read from the bucket (an artifact streamed to
    /// a client, or read by `gc` / `scrub`), and how long a body may arrive before its
    /// average rate is checked (default 30 s).
    pub stall_timeout_secs: Option<u64>,
    /// `s3`: slowest average rate (bytes per second) of an object body from the bucket once
    /// it has been arriving for `stall_timeout_secs`, and of a PUT body (default 1 KiB/s;
    /// at least 1).
    pub min_rate_bytes: Option<u64>,
    /// `s3`: most keys one listing of the bucket may collect, in at most one page per 100
    /// keys (default 5,000,000, about 1 GB of memory).
    pub max_listing_keys: Option<u64>,
}

/// Storage backend kind.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Files under the data directory.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3,
}

/// One access key and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Access key id (the part before `:` in `LAKE_CACHE_KEY`).
    pub id: String,
    /// Secret (the part after `:`).
    pub secret: String,
    /// Scope patterns the key may read.
    #[serde(default)]
    pub read: Vec<String>,
    /// Scope patterns the key may write (implies read).
    #[serde(default)]
    pub write: Vec<String>,
    /// Scope patterns the key administers: list, delete (implies write and read).
    #[serde(default)]
    pub admin: Vec<String>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// GET, HEAD, batch existence.
    Read,
    /// PUT.
    Write,
    /// DELETE, listing.
    Admin,
}

impl KeyConfig {
    /// An upload key from `ID:SECRET[:PATTERN]` (`tarn serve --key`): write and admin
    /// permission on the scopes matching PATTERN (default `*`).
    pub fn from_admin_arg(arg: &str) -> Result<KeyConfig, ConfigError> {
        let mut it = arg.splitn(3, ':');
        let (Some(id), Some(secret)) = (it.next(), it.next()) else {
            return Err(ConfigError::Invalid(format!(
                "--key expects ID:SECRET[:PATTERN], got {arg:?}"
            )));
        };
        Ok(KeyConfig {
            id: id.into(),
            secret: secret.into(),
            read: vec![],
            write: vec![],
            admin: vec![it.next().unwrap_or("*").to_string()],
        })
    }

    /// Whether this key grants `access` on `scope`.
    pub(crate) fn allows(&self, access: Access, scope: &str) -> bool {
        let any = |pats: &[String]| pats.iter().any(|p| scope_matches(p, scope));
        match access {
            Access::Read => any(&self.read) || any(&self.write) || any(&self.admin),
            Access::Write => any(&self.write) || any(&self.admin),
            Access::Admin => any(&self.admin),
        }
    }
}

/// Garbage-collection policy (also the defaults of `tarn serve gc`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Keep the newest K revision files of every scope.
    pub keep_revs: usize,
    /// Keep every revision file newer than this many days.
    pub keep_days: u64,
    /// Never delete an artifact younger than this many hours.
    pub grace_hours: u64,
    /// Run GC inside `tarn serve` every this many hours (0 = never).
    pub interval_hours: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            keep_revs: 50,
            keep_days: 30,
            grace_hours: 24,
            interval_hours: 0,
        }
    }
}

/// PEM certificate chain and private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The TOML is invalid.
    #[error("{0}: {1}")]
    Toml(PathBuf, toml::de::Error),
    /// A value is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Reads and checks a configuration file (a regular file of at most
    /// [`tarn_core::MAX_CONFIG_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = tarn_store::read_config_file(path)
            .map_err(|e| ConfigError::Io(path.to_path_buf(), e))?;
        let cfg: ServerConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Toml(path.to_path_buf(), e))?;
        Ok(cfg)
    }

    /// Parses a configuration from TOML text.
    pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(PathBuf::from("<config>"), e))
    }

    /// Reads the trusted-keys file of every `[[signed]]` entry whose keys are not read yet
    /// (an entry without keys is an error: it would refuse every revision). Building a
    /// serving state (`tarn serve`, [`crate::Handler::new`]) calls it; `tarn serve` also calls
    /// it first, so a bad file is reported before the address is bound.
    pub(crate) fn load_signature_keys(&mut self) -> Result<(), ConfigError> {
        for s in self.signed.iter_mut().filter(|s| s.keys.is_empty()) {
            s.keys = tarn_store::read_trusted_keys(&s.trusted_keys)
                .map_err(|e| ConfigError::Invalid(format!("[[signed]] trusted_keys: {e}")))?;
            if s.keys.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "[[signed]] trusted_keys: {}: no key",
                    s.trusted_keys.display()
                )));
            }
        }
        Ok(())
    }

    /// The keys a scope's revisions must be signed with; `None` when the scope accepts
    /// unsigned revisions.
    pub(crate) fn signature_keys(&self, scope: &str) -> Option<Vec<tarn_core::trust::TrustedKey>> {
        let mut matching = self
            .signed
            .iter()
            .filter(|s| s.scopes.iter().any(|p| scope_matches(p, scope)))
            .peekable();
        matching.peek()?;
        Some(matching.flat_map(|s| s.keys.iter().cloned()).collect())
    }

    /// Checks values that serde cannot.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        self.listen_addr()?;
        for (name, p) in [
            ("artifact_prefix", &self.artifact_prefix),
            ("revision_prefix", &self.revision_prefix),
        ] {
            if p.is_empty() || p.contains('/') || p.starts_with('.') {
                return bad(format!(
                    "{name} must be one non-empty path segment, got {p:?}"
                ));
            }
        }
        if self.artifact_prefix == self.revision_prefix {
            return bad("artifact_prefix and revision_prefix must differ".into());
        }
        if self.max_request_head_bytes < MIN_REQUEST_HEAD_BYTES {
            return bad(format!(
                "max_request_head_bytes must be at least {MIN_REQUEST_HEAD_BYTES}"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for k in &self.keys {
            if k.id.is_empty() || k.secret.is_empty() {
                return bad("every [[key]] needs a non-empty id and secret".into());
            }
            if !seen.insert(&k.id) {
                return bad(format!("key id {:?} is listed twice", k.id));
            }
        }
        for (name, v) in [
            (
                "storage.request_timeout_secs",
                self.storage.request_timeout_secs,
            ),
            (
                "storage.stall_timeout_secs",
                self.storage.stall_timeout_secs,
            ),
            ("storage.min_rate_bytes", self.storage.min_rate_bytes),
            ("storage.max_listing_keys", self.storage.max_listing_keys),
        ] {
            if v == Some(0) {
                return bad(format!("{name} must be at least 1"));
            }
        }
        match self.storage.kind {
            StorageKind::Local if self.data.is_none() => {
                bad("local storage needs a data directory (--data DIR or data = \"...\")".into())
            }
            StorageKind::S3 if self.storage.endpoint.is_none() || self.storage.bucket.is_none() => {
                bad("s3 storage needs storage.endpoint and storage.bucket".into())
            }
            _ => Ok(()),
        }
    }

    /// Where upload bodies are spooled: `storage.spool_dir` for an `s3` backend, else
    /// `<data>/.tarn-spool`; `None` when neither is set.
    pub(crate) fn spool_dir(&self) -> Option<PathBuf> {
        match (self.storage.kind, &self.storage.spool_dir) {
            (StorageKind::S3, Some(d)) => Some(d.clone()),
            _ => self.data.as_deref().map(crate::storage::spool_dir_in),
        }
    }

    /// The parsed listen address.
    pub(crate) fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("invalid listen address {:?}", self.listen)))
    }

    /// Whether `scope` may be read anonymously.
    pub(crate) fn is_public(&self, scope: &str) -> bool {
        self.public_read.iter().any(|p| scope_matches(p, scope))
    }

    /// The key with this id.
    pub(crate) fn key(&self, id: &str) -> Option<&KeyConfig> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// Scope patterns (`*`, `prefix/*`), shared with the client's trusted keys.
pub use tarn_core::scope_matches;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(scope_matches("*", "a/b"));
        assert!(scope_matches("mathlib4/*", "mathlib4/master"));
        assert!(scope_matches("mathlib4/*", "mathlib4"));
        assert!(!scope_matches("mathlib4/*", "mathlib45"));
        assert!(!scope_matches("forks/*", "mathlib4/x"));
        assert!(scope_matches(
            "leanprover-community/*",
            "leanprover-community/mathlib4"
        ));
        assert!(scope_matches("a", "a"));
        assert!(!scope_matches("a", "ab"));
        assert!(scope_matches("*/ci", "x/y/ci"));
    }

    #[test]
    fn permissions_nest() {
        let k = KeyConfig {
            id: "i".into(),
            secret: "s".into(),
            read: vec![],
            write: vec!["forks/*".into()],
            admin: vec![],
        };
        assert!(k.allows(Access::Read, "forks/a"));
        assert!(k.allows(Access::Write, "forks/a"));
        assert!(!k.allows(Access::Admin, "forks/a"));
        assert!(!k.allows(Access::Write, "main"));
    }

    #[test]
    fn parses_a_full_file() {
        let c = ServerConfig::parse(
            r#"
listen = "0.0.0.0:8080"
data = "/srv/tarn"
public_read = ["mathlib4/*"]
max_artifact_bytes = 1000
[storage]
kind = "local"
[[key]]
id = "ci"
secret = "s3cret"
write = ["mathlib4/*"]
[gc]
keep_revs = 3
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.keys.len(), 1);
        assert_eq!(c.gc.keep_revs, 3);
        assert_eq!(c.gc.keep_days, 30);
        assert!(!c.is_public("forks/x"));
        assert!(ServerConfig::parse("bogus = 1").is_err());
    }

    #[test]
    fn storage_bounds_of_zero_are_refused() {
        let base = "data = \"/srv\"\n[storage]\n";
        let ok = ServerConfig::parse(&format!("{base}max_listing_keys = 10\n")).unwrap();
        ok.validate().unwrap();
        assert_eq!(ok.storage.max_listing_keys, Some(10));
        for key in [
            "request_timeout_secs",
            "stall_timeout_secs",
            "min_rate_bytes",
            "max_listing_keys",
        ] {
            let c = ServerConfig::parse(&format!("{base}{key} = 0\n")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("storage.{key} must be at least 1")),
                "{e}"
            );
        }
    }
}
