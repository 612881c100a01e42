//! `GET /` (HTML status page, see [`crate::status_page`]), `GET /health` (JSON, see
//! [`crate::freshness::Health`]) and `GET /metrics` (Prometheus text).
//!
//! Served only when `--metrics-addr` is given. A bare port (`9100`) binds 127.0.0.1 (see
//! [`crate::config::parse_metrics_addr`]); any other interface, `0.0.0.0:9100` included, only
//! when the address says so. Nothing served here carries a secret: URIs are shown redacted and
//! error texts pass through [`crate::secrets`] before they reach [`Health`].

use crate::error::{Error, Result};
use crate::freshness::Health;
use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct AppState {
    health: Arc<Mutex<Health>>,
    metrics: Metrics,
}

async fn get_health(State(s): State<AppState>) -> Json<Health> {
    let h = s.health.lock().map(|h| h.clone()).unwrap_or_default();
    Json(h)
}

async fn get_status_page(State(s): State<AppState>) -> impl IntoResponse {
    let h = s.health.lock().map(|h| h.clone()).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::status_page::render(&h, crate::freshness::now_ms()),
    )
}

async fn get_metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// Binds `addr` and serves in a background task; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Mutex<Health>>,
    metrics: Metrics,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io {
            path: addr.to_string(),
            source: e,
        })?;
    let local = listener.local_addr().map_err(|e| Error::Io {
        path: addr.to_string(),
        source: e,
    })?;
    let app = Router::new()
        .route("/", get(get_status_page))
        .route("/health", get(get_health))
        .route("/metrics", get(get_metrics))
        .with_state(AppState { health, metrics });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    Ok(local)
}
