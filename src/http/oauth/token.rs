//! `POST /oauth2/token` (RFC 6749 §3.2).

use std::time::Instant;

use axum::{Json, extract::State};

use crate::{
    http::{
        AppState, Routes,
        extract::{BasicAuth, ClientIp, OAuthParams},
    },
    oauth::{
        self, GrantContext, GrantReport, GrantRequest, OAuthError, PresentedClient, TokenResponse,
    },
};

/// The token endpoint's routes.
pub fn router() -> Routes {
    // RFC 6749 §3.2: "The client MUST use the HTTP POST method".
    Routes::new().post("/oauth2/token", post_token)
}

/// Issues tokens for the password and refresh_token grants.
async fn post_token(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    basic: BasicAuth,
    OAuthParams(mut params): OAuthParams,
) -> Result<Json<TokenResponse>, OAuthError> {
    let started = Instant::now();
    let report = GrantReport::default();
    let settings = state.settings();
    let presented = PresentedClient::new(basic.credentials, basic.malformed, &mut params);
    let (grant_type, result) = match GrantRequest::try_from(params) {
        Ok(request) => {
            let grant_type = request.grant_type().as_str();
            tracing::Span::current().record("grant_type", grant_type);
            let ctx = GrantContext {
                client_ip,
                ..state.grant_context(&settings, &report)
            };
            let result = oauth::token(&ctx, presented, request, state.clock.now()).await;
            (grant_type, result)
        }
        Err(e) => ("unknown", Err(e)),
    };
    let outcome = match &result {
        Ok(_) => "success",
        Err(_) if report.reuse_detected() => "reuse_detected",
        Err(e) => e.code(),
    };
    state
        .metrics
        .token_request(grant_type, outcome, started.elapsed());
    if report.family_revoked() {
        state.metrics.revocation("reuse_detected");
    }
    Ok(Json(result?))
}
