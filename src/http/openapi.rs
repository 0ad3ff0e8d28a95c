//! `GET /openapi.json`: the OpenAPI 3 description of every endpoint, a static file
//! compiled in.

use axum::{
    http::{HeaderValue, header},
    response::IntoResponse,
};

use super::Routes;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document's route.
pub fn router() -> Routes {
    Routes::new().get("/openapi.json", get_openapi)
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
