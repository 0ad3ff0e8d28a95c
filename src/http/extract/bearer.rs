//! An axum extractor that guards resource-server routes with RFC 6750 bearer
//! tokens issued by this server.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts},
};

use crate::{
    crypto::jwt::AccessClaims,
    http::AppState,
    oauth::{
        GrantReport,
        bearer::{self, BearerError},
    },
};

/// The claims of a valid, unrevoked access token from `Authorization: Bearer`.
/// Rejections answer 401 `invalid_token` / 403 `insufficient_scope` with
/// `WWW-Authenticate: Bearer …` (RFC 6750 §3).
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
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::Missing);
        }
        let settings = state.settings();
        let claims = bearer::authenticate(
            &state.grant_context(&settings, &GrantReport::default()),
            token.trim(),
            state.clock.now(),
            true,
        )
        .await?;
        Ok(Bearer(claims))
    }
}
