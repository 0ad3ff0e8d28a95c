//! `GET /oauth2/jwks`: the public signing keys.

use axum::{Json, extract::State};
use jsonwebtoken::jwk::JwkSet;

use crate::http::{AppState, Routes};

/// The JWK set route.
pub fn router() -> Routes {
    Routes::new().get("/oauth2/jwks", get_jwks)
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
