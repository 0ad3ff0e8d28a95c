//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and `GET /oauth2/jwks`.

use axum::{Json, extract::State};
use jsonwebtoken::jwk::JwkSet;

use super::{AppState, Routes};
use crate::oauth::{
    OAuthError,
    metadata::{self, ServerMetadata},
};

/// The discovery routes.
pub fn router() -> Routes {
    Routes::new()
        .get("/.well-known/oauth-authorization-server", get_metadata)
        .get("/oauth2/jwks", get_jwks)
}

/// The server's metadata, computed from the configuration and the registered clients.
async fn get_metadata(State(state): State<AppState>) -> Result<Json<ServerMetadata>, OAuthError> {
    let clients = state.store.list_clients().await?;
    Ok(Json(metadata::document(&state.settings, &clients)))
}

/// Publishes every key that may have signed a live token.
async fn get_jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(
        state
            .keys
            .current(state.store.as_ref(), state.clock.now())
            .await
            .jwks(),
    )
}
