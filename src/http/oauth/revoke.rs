//! `POST /oauth2/revoke` (RFC 7009).

use axum::{extract::State, http::StatusCode};

use crate::{
    http::{
        AppState, Routes,
        extract::{BasicAuth, ClientIp, OAuthParams},
    },
    oauth::{GrantContext, GrantReport, OAuthError, PresentedClient, revoke},
};

/// The revocation route.
pub fn router() -> Routes {
    Routes::new().post("/oauth2/revoke", post_revoke)
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
    let settings = state.settings();
    let ctx = GrantContext {
        client_ip,
        ..state.grant_context(&settings, &report)
    };
    revoke::revoke(&ctx, presented, params, state.clock.now()).await?;
    if report.family_revoked() {
        state.metrics.revocation("revoked_by_client");
    }
    Ok(StatusCode::OK)
}
