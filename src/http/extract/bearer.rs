//! An axum extractor that guards resource-server routes with access tokens issued
//! by this server: RFC 6750 bearer tokens, and DPoP-bound ones with their proofs
//! (RFC 9449 §7).

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts},
};

use crate::{
    crypto::jwt::AccessClaims,
    http::AppState,
    http::extract::presented_proof,
    oauth::{
        GrantReport,
        bearer::{self, BearerError, ResourceRequest, Scheme},
    },
};

/// The claims of a valid, unrevoked access token from `Authorization: Bearer`,
/// or of a DPoP-bound one from `Authorization: DPoP` with its `DPoP` proof.
/// Rejections answer 401 `invalid_token` / 403 `insufficient_scope` with
/// `WWW-Authenticate: Bearer …` (RFC 6750 §3), and binding or proof failures 401
/// with `WWW-Authenticate: DPoP …` (RFC 9449 §7.1).
///
/// # Examples
/// ```no_run
/// use axum::{Json, Router, routing::get};
/// use rotor::http::{AppState, extract::Bearer};
///
/// async fn get_orders(Bearer(claims): Bearer) -> Result<Json<String>, rotor::oauth::bearer::BearerError> {
///     rotor::oauth::bearer::require_scope(&claims, "read")?;
///     Ok(Json(format!("orders of {}", claims.sub)))
/// }
/// let api: Router<AppState> = Router::new().route("/api/v1/orders", get(get_orders));
/// ```
#[derive(Debug, Clone)]
pub struct Bearer(pub AccessClaims);

impl<S> FromRequestParts<S> for Bearer
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerError;

    #[tracing::instrument(name = "bearer", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BearerError> {
        let state = AppState::from_ref(state);
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(BearerError::Missing);
        };
        let value = value
            .to_str()
            .map_err(|_| BearerError::InvalidRequest("malformed Authorization header".into()))?;
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return Err(BearerError::Missing);
        };
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Scheme::DPoP
        } else {
            return Err(BearerError::Missing);
        };
        let settings = state.settings();
        let proof = presented_proof(&parts.headers);
        let request = ResourceRequest {
            scheme,
            token: token.trim(),
            proof: &proof,
            method: parts.method.as_str(),
            path: parts.uri.path(),
        };
        let claims = bearer::authenticate_request(
            &state.grant_context(&settings, &GrantReport::default()),
            &request,
            state.clock.now(),
        )
        .await?;
        Ok(Bearer(claims))
    }
}
