//! `GET /openapi.json`: the OpenAPI 3 description of every endpoint, a static file
//! compiled in.

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};

use super::AppState;
use crate::oauth::OAuthError;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document's route.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(get_openapi).fallback(|| async { OAuthError::MethodNotAllowed { allow: "GET" } }),
    )
}

async fn get_openapi() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT,
    )
}
