//! The request handler without a listener: [`Handler`] answers requests exactly as a
//! connection task of `tarn serve` does, so tests can drive the server at its own boundary
//! (method, path, headers, body → reply, objects stored) without a socket or a process.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response};

use crate::config::ServerConfig;
use crate::error::StartError;
use crate::{App, AppRef};

/// `tarn serve`'s request handler, without a listener, TLS or connection limits (those
/// belong to the listener and are tested through a socket). Public for the crate's
/// in-process tests (`tests/`); the binary serves through [`start`](crate::start).
pub struct Handler {
    app: AppRef,
}

impl Handler {
    /// Checks `cfg`, opens its storage (creating a local data directory) and prepares it as
    /// `tarn serve` does before its first request (stale spool files removed, stored objects
    /// counted). No admin key is generated: the keys are those of `cfg`.
    pub async fn new(cfg: ServerConfig) -> Result<Handler, StartError> {
        let app = Arc::new(App::new(cfg, false, true)?);
        crate::server::prepare(&app).await;
        Ok(Handler { app })
    }

    /// Answers one request: routing, authentication, validation, storage and metrics, as
    /// for a request read from a connection.
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        crate::routes::handle(self.app.clone(), req).await
    }

    /// Answers one request as read from a connection of `peer`: the per-address shares
    /// (half the anonymous parse pool for one address) count it against that address. For
    /// the tests of those shares.
    pub async fn handle_from(&self, peer: IpAddr, mut req: Request<Body>) -> Response<Body> {
        req.extensions_mut().insert(crate::peer_share::PeerIp(peer));
        self.handle(req).await
    }
}
