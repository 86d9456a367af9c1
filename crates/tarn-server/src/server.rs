//! The listener: plain HTTP/1.1 + h2c, or TLS; one task per connection, hyper-util's auto
//! builder; graceful shutdown on Ctrl-C / SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::error::StartError;
use crate::{App, AppRef};

/// Counts what storage holds, for the `tarn_stored_*` gauges (run in the background).
pub async fn scan_stored(app: AppRef) {
    let mut objects = 0i64;
    let mut bytes = 0i64;
    for p in [&app.cfg.artifact_prefix, &app.cfg.revision_prefix] {
        match app.storage.list(&format!("{p}/")).await {
            Ok(list) => {
                objects += list.len() as i64;
                bytes += list.iter().map(|l| l.meta.len as i64).sum::<i64>();
            }
            Err(e) => tracing::warn!("counting stored objects: {e}"),
        }
    }
    app.metrics.objects.fetch_add(objects, Relaxed);
    app.metrics.stored_bytes.fetch_add(bytes, Relaxed);
}

/// A bound server, ready to run.
pub struct Bound {
    listener: TcpListener,
    app: AppRef,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Bound {
    /// The actual listen address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound socket")
    }

    /// The shared state.
    pub fn app(&self) -> &AppRef {
        &self.app
    }
}

/// Binds the listener.
pub async fn bind(app: App, tls: Option<tokio_rustls::TlsAcceptor>) -> Result<Bound, StartError> {
    let addr = app.cfg.listen_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    Ok(Bound {
        listener,
        app: Arc::new(app),
        tls,
    })
}

/// Serves until `shutdown` resolves.
pub async fn run(
    bound: Bound,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let Bound { listener, app, tls } = bound;
    if let crate::storage::Storage::Local(l) = &app.storage {
        let n = l.clean_dead_spool();
        if n > 0 {
            tracing::warn!("removed {n} upload spool file(s) left by a killed server");
        }
    }
    // Local storage is counted before the first request (so that uploads during the scan
    // are not counted twice); a bucket is counted in the background.
    if matches!(app.storage, crate::storage::Storage::Local(_)) {
        scan_stored(app.clone()).await;
    } else {
        tokio::spawn(scan_stored(app.clone()));
    }
    let builder = {
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        b.http1().keep_alive(true).max_buf_size(1 << 20);
        b.http2().max_concurrent_streams(256);
        Arc::new(b)
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(crate::routes::handle(app, req.map(Body::new)).await) }
            });
            let r = match tls {
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                }
                Some(acc) => match acc.accept(stream).await {
                    Ok(s) => {
                        builder
                            .serve_connection_with_upgrades(TokioIo::new(s), service)
                            .await
                    }
                    Err(e) => {
                        tracing::debug!("TLS handshake: {e}");
                        return;
                    }
                },
            };
            if let Err(e) = r {
                tracing::debug!("connection: {e}");
            }
        });
    }
    Ok(())
}
