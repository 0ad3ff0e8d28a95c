//! The protected API: `GET /api/v1/me`, which shows the full token cycle.

use axum::{Json, Router, routing::get};
use serde::Serialize;

use super::{AppState, bearer::Bearer};
use crate::oauth::OAuthError;

/// The API routes.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/me",
        get(get_me).fallback(|| async { OAuthError::MethodNotAllowed { allow: "GET" } }),
    )
}

/// Who the access token speaks for.
#[derive(Debug, Serialize)]
struct Me {
    sub: String,
    client_id: String,
    scope: String,
}

async fn get_me(Bearer(claims): Bearer) -> Json<Me> {
    Json(Me {
        sub: claims.sub,
        client_id: claims.client_id,
        scope: claims.scope,
    })
}
