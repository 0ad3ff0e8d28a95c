//! `GET /oauth2/jwks`: the public keys that verify access tokens (RFC 7517).

use axum::{Json, Router, extract::State, routing::get};
use jsonwebtoken::jwk::JwkSet;

use super::AppState;
use crate::oauth::OAuthError;

/// The key set's routes.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/oauth2/jwks",
        get(get_jwks).fallback(|| async { OAuthError::MethodNotAllowed { allow: "GET" } }),
    )
}

/// Publishes every key that may have signed a live token.
async fn get_jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.keys.jwks())
}
