//! `POST /oauth2/introspect` (RFC 7662).

use axum::{Json, extract::State};

use crate::{
    http::{
        AppState, Routes,
        extract::{BasicAuth, OAuthParams},
    },
    oauth::{
        GrantReport, OAuthError, PresentedClient,
        introspect::{self, Introspection},
    },
};

/// The introspection route.
pub fn router() -> Routes {
    Routes::new().post("/oauth2/introspect", post_introspect)
}

/// Describes a token to a confidential client.
async fn post_introspect(
    State(state): State<AppState>,
    basic: BasicAuth,
    OAuthParams(mut params): OAuthParams,
) -> Result<Json<Introspection>, OAuthError> {
    let presented = PresentedClient::new(basic.credentials, basic.malformed, &mut params);
    let settings = state.settings();
    let answer = introspect::introspect(
        &state.grant_context(&settings, &GrantReport::default()),
        presented,
        params,
        state.clock.now(),
    )
    .await?;
    Ok(Json(answer))
}
