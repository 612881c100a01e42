//! `GET /` (HTML status page, see [`crate::status_page`]), `GET /health` (JSON, see
//! [`crate::freshness::Health`]), `GET /metrics` (Prometheus text) and `GET /wait?ts=N`
//! (read-your-writes, see [`crate::wait`]), `GET /rounds?limit=N` (the newest round audit
//! records, newest first, see [`crate::audit`]), `GET /group` (a consumer group member's view of
//! its group, see [`crate::group::status`]).
//!
//! `/health` answers 200 when the status is `ready` or `lagging`, 503 when `stalled` or
//! `failing`; every answer is refreshed against the wall clock when asked (checkpoint age,
//! time since the last success), so a stuck round loop still turns `failing`.
//!
//! Served only when `--metrics-addr` is given. A bare port (`9100`) binds 127.0.0.1 (see
//! [`crate::config::parse_metrics_addr`]); any other interface, `0.0.0.0:9100` included, only
//! when the address says so. Nothing served here carries a secret: URIs are shown redacted and
//! error texts pass through [`crate::secrets`] before they reach [`Health`].

use crate::error::{Error, Result};
use crate::freshness::{Health, RoundRecord};
use crate::metrics::Metrics;
use crate::wait::WaitRequest;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct AppState {
    health: Arc<Mutex<Health>>,
    metrics: Metrics,
}

/// The health document refreshed for the wall clock now (see [`Health::refresh`]).
fn current(s: &AppState) -> Health {
    let mut h = s.health.lock().map(|h| h.clone()).unwrap_or_default();
    h.refresh(crate::freshness::now_ms());
    h
}

/// HTTP status of a [`crate::freshness::Status`].
fn code(h: &Health) -> StatusCode {
    StatusCode::from_u16(h.status.http_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn get_health(State(s): State<AppState>) -> impl IntoResponse {
    let h = current(&s);
    (code(&h), Json(h))
}

async fn get_status_page(State(s): State<AppState>) -> impl IntoResponse {
    let h = current(&s);
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::status_page::render(&h, crate::freshness::now_ms()),
    )
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    ts: Option<String>,
    timeout: Option<String>,
}

async fn get_wait(State(s): State<AppState>, Query(q): Query<WaitQuery>) -> Response {
    let req = match WaitRequest::parse(q.ts.as_deref(), q.timeout.as_deref()) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let a = crate::wait::wait(&s.health, req).await;
    let code = if a.reached {
        StatusCode::OK
    } else {
        StatusCode::GATEWAY_TIMEOUT
    };
    (code, Json(a)).into_response()
}

#[derive(serde::Deserialize)]
struct RoundsQuery {
    limit: Option<usize>,
}

/// `GET /rounds?limit=N`: the newest `N` round records (default 100, at most
/// [`crate::audit::ROUNDS_IN_MEMORY`]), newest first.
async fn get_rounds(State(s): State<AppState>, Query(q): Query<RoundsQuery>) -> impl IntoResponse {
    let limit = q.limit.unwrap_or(100).min(crate::audit::ROUNDS_IN_MEMORY);
    let rounds: Vec<RoundRecord> = s
        .health
        .lock()
        .map(|h| h.rounds.iter().rev().take(limit).cloned().collect())
        .unwrap_or_default();
    Json(rounds)
}

/// `GET /group`: the consumer group as this member last saw it (members, their tables, lease
/// ages; see [`crate::group::status`]); 404 when the consumer is not in a group.
async fn get_group(State(s): State<AppState>) -> Response {
    match s.health.lock().ok().and_then(|h| h.group.clone()) {
        Some(g) => Json(g).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "not a consumer group member (no --group)",
        )
            .into_response(),
    }
}

async fn get_metrics(State(s): State<AppState>) -> impl IntoResponse {
    s.metrics.set_freshness(&current(&s));
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
        .route("/wait", get(get_wait))
        .route("/rounds", get(get_rounds))
        .route("/group", get(get_group))
        .with_state(AppState { health, metrics });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    Ok(local)
}
