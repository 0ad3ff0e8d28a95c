//! `POST /oauth2/token` (RFC 6749 §3.2).

use std::time::Instant;

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};

use crate::{
    http::{
        AppState, Routes,
        error::insert_nonce,
        extract::{BasicAuth, ClientIp, DpopHeader, OAuthParams},
    },
    oauth::{self, GrantContext, GrantReport, GrantRequest, PresentedClient},
};

/// The token endpoint's routes.
pub fn router() -> Routes {
    // RFC 6749 §3.2: "The client MUST use the HTTP POST method".
    Routes::new().post("/oauth2/token", post_token)
}

/// Issues tokens for every grant; with a DPoP proof, bound to its key.
async fn post_token(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    basic: BasicAuth,
    DpopHeader(proof): DpopHeader,
    OAuthParams(mut params): OAuthParams,
) -> Response {
    let started = Instant::now();
    let now = state.clock.now();
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
            let result = oauth::token(&ctx, presented, &proof, request, now).await;
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
    let mut response = match result {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => e.into_response(),
    };
    // RFC 9449 §8.2: a fresh nonce rides on every answer to a DPoP request, so
    // that the client's next proof carries a current one.
    if proof.is_present() {
        insert_nonce(response.headers_mut(), &state.nonces.issue(now));
    }
    response
}
