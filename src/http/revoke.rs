//! `POST /oauth2/revoke` (RFC 7009) and `POST /oauth2/introspect` (RFC 7662).

use axum::{Json, extract::State, http::StatusCode};

use super::{
    AppState, Routes,
    extract::{BasicAuth, ClientIp, OAuthParams},
};
use crate::oauth::{
    GrantContext, GrantReport, OAuthError, PresentedClient,
    introspect::{self, Introspection},
    revoke,
};

/// The revocation and introspection routes.
pub fn router() -> Routes {
    Routes::new()
        .post("/oauth2/revoke", post_revoke)
        .post("/oauth2/introspect", post_introspect)
}

/// Revokes a token; answers 200 with an empty body, also for unknown tokens
/// (RFC 7009 §2.2).
async fn post_revoke(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    basic: BasicAuth,
    OAuthParams(mut params): OAuthParams,
) -> Result<StatusCode, OAuthError> {
    let presented = PresentedClient::new(basic.credentials, basic.malformed, &mut params);
    let report = GrantReport::default();
    let ctx = GrantContext {
        client_ip,
        ..state.grant_context(&report)
    };
    revoke::revoke(&ctx, presented, params, state.clock.now()).await?;
    if report.family_revoked() {
        state.metrics.revocation("revoked_by_client");
    }
    Ok(StatusCode::OK)
}

/// Describes a token to a confidential client.
async fn post_introspect(
    State(state): State<AppState>,
    basic: BasicAuth,
    OAuthParams(mut params): OAuthParams,
) -> Result<Json<Introspection>, OAuthError> {
    let presented = PresentedClient::new(basic.credentials, basic.malformed, &mut params);
    let answer = introspect::introspect(
        &state.grant_context(&GrantReport::default()),
        presented,
        params,
        state.clock.now(),
    )
    .await?;
    Ok(Json(answer))
}
