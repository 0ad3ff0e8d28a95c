//! Operations endpoints for balancers and monitoring: `GET /healthz` (the process
//! answers), `GET /readyz` (the store answers and no shutdown is under way) and
//! `GET /metrics` (Prometheus).

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{AppState, Routes};
use crate::{metrics, oauth::OAuthError};

/// How long a probe or a scrape waits for the store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The operations routes; `/metrics` only when `metrics.enabled`.
pub fn router(metrics_enabled: bool) -> Routes {
    let routes = Routes::new()
        .get("/healthz", get_healthz)
        .get("/readyz", get_readyz);
    if metrics_enabled {
        routes.get("/metrics", get_metrics)
    } else {
        routes
    }
}

/// Liveness: the process is up and serving.
async fn get_healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 while the store answers; 503 `temporarily_unavailable` when it
/// does not, or once a shutdown has begun.
async fn get_readyz(State(state): State<AppState>) -> Result<Json<Value>, OAuthError> {
    if state.lifecycle.is_draining() {
        return Err(OAuthError::TemporarilyUnavailable(
            "this instance is shutting down".into(),
        ));
    }
    match tokio::time::timeout(STORE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: store unreachable");
            Err(OAuthError::TemporarilyUnavailable(
                "the token store is unreachable".into(),
            ))
        }
        Err(_) => Err(OAuthError::TemporarilyUnavailable(
            "the token store does not answer".into(),
        )),
    }
}

/// Prometheus metrics in the OpenMetrics text format. The live families are
/// counted at most once per [`super::cache::INTERVAL`], not per scrape: a count reads
/// the whole table.
async fn get_metrics(State(state): State<AppState>) -> Response {
    let (store, clock) = (state.store.clone(), state.clock.clone());
    let count = move || async move {
        match tokio::time::timeout(STORE_TIMEOUT, store.count_active_families(clock.now())).await {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: counting the active families failed");
                None
            }
            Err(_) => None,
        }
    };
    let active = state.caches.active_families.get(&state.clock, count).await;
    state.metrics.set_gauges(active, state.hasher.queue_depth());
    state
        .metrics
        .set_skipped_verifications(state.hasher.skipped_verifications());
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}
