//! Starting `tarn serve`: the one entry point the binary calls.
//!
//! The order matters to the operator: the configuration is checked and the listen address
//! bound *before* anything is created, so a mistake or a busy port leaves no data directory
//! and no admin key behind. Then the admin key of a zero-configuration server is loaded or
//! generated ([`crate::admin_key`]), storage is opened, and [`Serving::run`] serves (with
//! periodic GC when asked) until the shutdown future resolves.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{KeyConfig, ServerConfig, StorageKind};
use crate::error::StartError;
use crate::server::Bound;
use crate::App;

/// What `tarn serve` takes besides the configuration file's settings.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Run GC with the `[gc]` policy this often; `None` uses `gc.interval_hours` (0 = never).
    pub gc_interval: Option<Duration>,
}

/// A server whose address is bound and whose storage is open, ready to [`Serving::run`].
pub struct Serving {
    bound: Bound,
    generated_key: Option<KeyConfig>,
    gc_every: Option<Duration>,
}

/// Checks `cfg`, binds its listen address, then (only then) creates what the server needs:
/// the data directory, the admin key when no key is configured on local storage, the upload
/// spool.
pub async fn start(mut cfg: ServerConfig, opts: ServeOptions) -> Result<Serving, StartError> {
    cfg.validate()?;
    cfg.load_signature_keys()?;
    let addr = cfg.listen_addr()?;
    let tls = match &cfg.tls {
        Some(t) => Some(crate::tls::acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let listener = crate::server::listen(addr).await?;
    let generated_key = match (&cfg.data, cfg.storage.kind) {
        (Some(data), StorageKind::Local) if cfg.keys.is_empty() => {
            let key = crate::admin_key::load_or_create(data)?;
            cfg.keys.push(key.clone());
            Some(key)
        }
        _ => None,
    };
    let gc_every = opts
        .gc_interval
        .or_else(|| {
            (cfg.gc.interval_hours > 0).then(|| Duration::from_secs(cfg.gc.interval_hours * 3600))
        })
        .filter(|d| !d.is_zero());
    let app = App::new(cfg, tls.is_some(), true)?;
    Ok(Serving {
        bound: Bound::new(listener, app, tls),
        generated_key,
        gc_every,
    })
}

impl Serving {
    /// The bound address (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// The base URL clients use: the configured `public_url`, else `http(s)://<address>`.
    pub(crate) fn base_url(&self) -> String {
        let app = self.bound.app();
        app.cfg.public_url.clone().unwrap_or_else(|| {
            let scheme = if app.tls { "https" } else { "http" };
            format!("{scheme}://{}", self.local_addr())
        })
    }

    /// The start-up banner: the address, a complete Lake configuration, two commands and
    /// the upload key (see `docs/server.md`).
    pub fn banner(&self) -> String {
        crate::banner::banner(
            &self.bound.app().cfg,
            &self.base_url(),
            self.generated_key.as_ref(),
        )
    }

    /// Serves until `shutdown` resolves, running GC periodically when configured.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), StartError> {
        if let Some(every) = self.gc_every {
            crate::gc::spawn_periodic(self.bound.app().clone(), every);
        }
        crate::server::run(self.bound, shutdown).await
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM: the usual shutdown of `tarn serve`.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
