//! tarn-server: `tarn serve`, a Lake-compatible cache service.
//!
//! * Lake's `s3` service kind talks to `/a0` (artifacts) and `/r0` (revision files) with
//!   path-style requests and SigV4 header authentication (`routes::s3`, `auth`).
//! * Lake's `reservoir` kind talks to `/api/v1` (`routes::reservoir`).
//! * tarn clients additionally use the batch existence API (`routes::batch`,
//!   `docs/server-api.md`).
//!
//! Every upload is spooled to a temp file while it is hashed, validated (`validate`), and
//! only then published atomically through a storage backend (local disk or an S3 bucket).
//!
//! The public surface is what the `tarn` binary needs: [`config`] (the configuration),
//! [`start`] → [`Serving`] (bind first, then create the data directory and admin key; the
//! banner; [`Serving::run`] with periodic GC), [`shutdown_signal`], [`App::for_maintenance`]
//! with [`gc`] (garbage collection and scrub), [`StartError`], and [`Handler`] (the request
//! handler without a listener, for tests at the server's boundary). The listener, TLS,
//! routing, authentication, validation, storage, metrics and the object cache are private.
//!
//! ```no_run
//! # async fn serve() -> Result<(), tarn_server::StartError> {
//! let cfg = tarn_server::config::ServerConfig {
//!     data: Some("./tarn-data".into()),
//!     ..Default::default()
//! };
//! let serving = tarn_server::start(cfg, tarn_server::ServeOptions::default()).await?;
//! print!("{}", serving.banner());
//! serving.run(tarn_server::shutdown_signal()).await
//! # }
//! ```

// Engines report through return values and events; only the binary prints (ARCHITECTURE.md).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod admin_key;
mod auth;
mod banner;
mod body_pace;
mod budget;
mod cache;
pub mod config;
mod error;
pub mod gc;
mod handler;
mod launch;
mod listings;
mod metrics;
mod peer_share;
mod replay;
mod revision_locks;
mod routes;
mod server;
mod status;
mod storage;
mod tls;
mod upload_slots;
mod validate;

pub use error::StartError;
pub use handler::Handler;
pub use launch::{shutdown_signal, start, ServeOptions, Serving};
pub use server::raise_fd_limit;

use std::sync::Arc;

use config::{ServerConfig, StorageKind};
use metrics::Metrics;
use storage::Storage;

/// Shared state of a running server.
pub struct App {
    /// The configuration.
    pub cfg: ServerConfig,
    /// The storage backend.
    pub(crate) storage: Storage,
    /// Counters.
    pub(crate) metrics: Metrics,
    /// Reservoir API prefix split into components (`["api","v1"]`).
    pub(crate) reservoir_prefix: Vec<String>,
    /// Whether the listener uses TLS (for URLs built from the Host header).
    pub tls: bool,
    /// In-memory cache of small artifact bodies.
    pub(crate) cache: cache::ObjectCache,
    /// Slots for upload bodies being spooled (`max_concurrent_uploads`, a quarter per key).
    pub(crate) upload_slots: upload_slots::UploadSlots,
    /// Memory for request bodies parsed in memory and the replies built from them
    /// (`parse_budget_bytes`, `anonymous_parse_budget_bytes`).
    pub(crate) budget: budget::Budget,
    /// The status page's counters, journal and cached storage listing.
    pub(crate) status: status::StatusState,
    /// Scope listings shared by batch existence requests on an S3 bucket.
    pub(crate) listings: listings::Listings,
    /// Opened for `tarn serve gc` / `scrub` rather than to serve (recorded with their runs).
    pub(crate) maintenance: bool,
    /// Signatures of recent signed writes, refused if replayed.
    pub(crate) seen_signatures: Arc<replay::SeenSignatures>,
    /// Revision and signature uploads of one key, one at a time.
    pub(crate) revision_locks: revision_locks::RevisionLocks,
}

/// The shared state handle.
pub(crate) type AppRef = Arc<App>;

/// Opens the configured storage backend; `serving` asks for an upload spool directory
/// (maintenance runs of `gc` and `scrub` accept no uploads and create none for a bucket).
pub(crate) fn open_storage(cfg: &ServerConfig, serving: bool) -> Result<Storage, StartError> {
    match cfg.storage.kind {
        StorageKind::Local => {
            let data = cfg
                .data
                .as_ref()
                .ok_or(StartError::Missing("local storage needs --data DIR"))?;
            Ok(Storage::Local(
                storage::local::LocalStore::new(data).map_err(|source| StartError::File {
                    path: data.clone(),
                    source,
                })?,
            ))
        }
        StorageKind::S3 => {
            let s = &cfg.storage;
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let access = s
                .access_key
                .clone()
                .or_else(|| env("TARN_S3_ACCESS_KEY"))
                .ok_or(StartError::Missing("s3 storage needs storage.access_key"))?;
            let secret = s
                .secret_key
                .clone()
                .or_else(|| env("TARN_S3_SECRET_KEY"))
                .ok_or(StartError::Missing("s3 storage needs storage.secret_key"))?;
            let spool = match (serving, cfg.spool_dir()) {
                (false, _) => None,
                (true, Some(d)) => Some(d),
                (true, None) => return Err(StartError::Missing(
                    "s3 storage needs a directory for upload spool files: --data DIR or storage.spool_dir",
                )),
            };
            let settings = storage::s3::S3Settings {
                endpoint: s.endpoint.clone().unwrap_or_default(),
                bucket: s.bucket.clone().unwrap_or_default(),
                region: s.region.clone().unwrap_or_else(|| "us-east-1".into()),
                creds: tarn_core::sigv4::Credentials {
                    access_key_id: access,
                    secret_access_key: secret,
                },
                prefix: s.prefix.clone().unwrap_or_default(),
                bounds: {
                    let d = storage::s3::S3Bounds::default();
                    let secs = |v: Option<u64>, d: std::time::Duration| {
                        v.map_or(d, std::time::Duration::from_secs)
                    };
                    storage::s3::S3Bounds {
                        request_timeout: secs(s.request_timeout_secs, d.request_timeout),
                        stall_timeout: secs(s.stall_timeout_secs, d.stall_timeout),
                        min_rate: s.min_rate_bytes.unwrap_or(d.min_rate),
                        max_listing_keys: s.max_listing_keys.unwrap_or(d.max_listing_keys),
                    }
                },
            };
            Ok(Storage::S3(Box::new(
                storage::s3::S3Store::new(settings, spool.as_deref()).map_err(StartError::S3)?,
            )))
        }
    }
}

impl App {
    /// The state for maintenance (`tarn serve gc`, `scrub`): the configuration validated
    /// and storage opened, with no listener and no upload spool for a bucket.
    pub fn for_maintenance(cfg: ServerConfig) -> Result<App, StartError> {
        App::new(cfg, false, false)
    }

    /// Builds the state (validating the configuration, reading the trusted keys of its
    /// `[[signed]]` scopes and opening storage); `serving` prepares the upload spool. Every
    /// serving state is built here ([`crate::start`], [`Handler::new`]), so a handler
    /// enforces the `[[signed]]` scopes of the configuration it is given, however it was made.
    pub(crate) fn new(mut cfg: ServerConfig, tls: bool, serving: bool) -> Result<App, StartError> {
        cfg.validate()?;
        if serving {
            cfg.load_signature_keys()?;
        }
        let storage = open_storage(&cfg, serving)?;
        let reservoir_prefix = cfg
            .reservoir_prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let cache = cache::ObjectCache::new(if matches!(storage, Storage::Local(_)) {
            cfg.memory_cache_bytes
        } else {
            0
        });
        let status = status::StatusState::new(cfg.data.as_deref());
        Ok(App {
            status,
            listings: listings::Listings::default(),
            revision_locks: revision_locks::RevisionLocks::default(),
            maintenance: !serving,
            upload_slots: upload_slots::UploadSlots::new(cfg.max_concurrent_uploads),
            budget: budget::Budget::new(&cfg),
            seen_signatures: Arc::default(),
            cfg,
            storage,
            metrics: Metrics::default(),
            cache,
            reservoir_prefix,
            tls,
        })
    }
}
