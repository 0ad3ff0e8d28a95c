//! The protected API: `GET /api/v1/me`, which shows the full token cycle.

use axum::Json;
use serde::Serialize;

use super::{Routes, extract::Bearer};

/// The API routes.
pub fn router() -> Routes {
    Routes::new().get("/api/v1/me", get_me)
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
