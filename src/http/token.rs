//! `POST /oauth2/token` (RFC 6749 §3.2).

use axum::{Json, Router, extract::State, routing::post};

use super::{
    AppState,
    extract::{BasicAuth, OAuthParams},
};
use crate::oauth::{self, GrantRequest, OAuthError, PresentedClient, TokenResponse};

/// The token endpoint's routes.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/oauth2/token",
        // RFC 6749 §3.2: "The client MUST use the HTTP POST method".
        post(post_token).fallback(|| async { OAuthError::MethodNotAllowed { allow: "POST" } }),
    )
}

/// Issues tokens for the password and refresh_token grants.
async fn post_token(
    State(state): State<AppState>,
    basic: BasicAuth,
    OAuthParams(mut params): OAuthParams,
) -> Result<Json<TokenResponse>, OAuthError> {
    let presented = PresentedClient::new(basic.credentials, basic.malformed, &mut params);
    let request = GrantRequest::try_from(params)?;
    tracing::Span::current().record("grant_type", request.grant_type());
    let response = oauth::token(
        &state.grant_context(),
        presented,
        request,
        state.clock.now(),
    )
    .await?;
    Ok(Json(response))
}
