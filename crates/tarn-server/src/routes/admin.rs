//! Operational endpoints: `/healthz` and `/metrics`.

use axum::body::Body;
use axum::http::{Response, StatusCode};

use super::text;
use crate::AppRef;

/// `GET /healthz`.
pub(crate) async fn healthz(app: &AppRef) -> Response<Body> {
    if app.storage.healthy().await {
        text(StatusCode::OK, "text/plain", "ok\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "storage unavailable\n",
        )
    }
}

/// `GET /metrics`.
pub(crate) fn metrics(app: &AppRef) -> Response<Body> {
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        app.metrics.render(),
    )
}
