//! `GET /.well-known/oauth-authorization-server` (RFC 8414).

use std::time::Duration;

use axum::{Json, extract::State};

use crate::{
    http::{AppState, Routes},
    oauth::{
        OAuthError,
        metadata::{self, ServerMetadata},
    },
};

/// How long a read of the clients may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The discovery route.
pub fn router() -> Routes {
    Routes::new().get("/.well-known/oauth-authorization-server", get_metadata)
}

/// The server's metadata, computed from the configuration and the registered
/// clients. The clients are read at most once per [`crate::http::cache::INTERVAL`], not per
/// request: this endpoint is public.
async fn get_metadata(State(state): State<AppState>) -> Result<Json<ServerMetadata>, OAuthError> {
    let (store, settings) = (state.store.clone(), state.settings());
    let load = move || async move {
        match tokio::time::timeout(STORE_TIMEOUT, store.list_clients()).await {
            Ok(Ok(clients)) => Some(metadata::document(&settings, &clients)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metadata: reading the clients failed");
                None
            }
            Err(_) => {
                tracing::warn!("metadata: the store did not answer");
                None
            }
        }
    };
    match state.caches.metadata.get(&state.clock, load).await {
        Some(document) => Ok(Json(document)),
        None => Err(OAuthError::TemporarilyUnavailable(
            "the client registry is unavailable, retry shortly".into(),
        )),
    }
}
