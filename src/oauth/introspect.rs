//! Token introspection (RFC 7662).

use serde::Serialize;
use time::OffsetDateTime;

use crate::crypto::jwt::Confirmation;

use super::{
    AuthenticatedClient, GrantContext, OAuthError, Params, PresentedClient, TokenType, client_auth,
    lookup::{self, FoundToken, TokenTypeHint},
    revoke::token_and_hint,
};

/// RFC 7662 §2.2 response. An inactive token is exactly `{"active": false}`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// RFC 9449 §6.2: the key a DPoP-bound access token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Introspection {
    fn inactive() -> Self {
        Introspection::default()
    }
}

/// Describes a token to a confidential client (a resource server).
///
/// # Errors
/// Client authentication errors; `invalid_client` for a public client (RFC 7662
/// §2.1 requires the caller to be authorized, and only confidential clients can
/// prove who they are); `invalid_request` without `token`; store failures.
pub async fn introspect(
    ctx: &GrantContext<'_>,
    presented: PresentedClient,
    mut params: Params,
    now: OffsetDateTime,
) -> Result<Introspection, OAuthError> {
    let basic_attempted = presented.basic_attempted();
    let client = client_auth::authenticate(ctx, presented).await?;
    let (token, hint) = token_and_hint(&mut params)?;
    describe(ctx, &client, basic_attempted, &token, hint, now).await
}

#[tracing::instrument(skip_all, fields(client_id = %client.id()))]
async fn describe(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    basic_attempted: bool,
    token: &str,
    hint: Option<TokenTypeHint>,
    now: OffsetDateTime,
) -> Result<Introspection, OAuthError> {
    if client.0.is_public() {
        // A public client may come through Basic with an empty secret; then the
        // refusal is a 401 with a challenge like any other (RFC 6749 §5.2).
        return Err(OAuthError::invalid_client(
            "introspection is for confidential clients only",
            basic_attempted,
        ));
    }
    let tokens = &ctx.settings.tokens;
    Ok(match lookup::find(ctx, token, hint, now).await? {
        None => Introspection::inactive(),
        Some(FoundToken::Refresh(r)) => {
            let live = r.used_at.is_none()
                && r.expires_at > now
                && !r.family_revoked
                && !r.subject_disabled;
            if !live {
                return Ok(Introspection::inactive());
            }
            Introspection {
                active: true,
                scope: (!r.scope.is_empty()).then(|| r.scope.clone()),
                client_id: Some(r.client_id.clone()),
                username: r.subject.username().map(str::to_owned),
                token_type: Some("refresh_token".into()),
                exp: Some(r.expires_at.unix_timestamp()),
                iat: Some(r.issued_at.unix_timestamp()),
                sub: Some(r.subject.sub()),
                aud: Some(tokens.audience.clone()),
                iss: Some(tokens.issuer.clone()),
                // An identifier of the token that reveals nothing of it.
                jti: Some(hex_prefix(r.hash.as_bytes())),
                cnf: r.dpop_jkt.clone().map(|jkt| Confirmation { jkt }),
            }
        }
        Some(FoundToken::Access(claims, a)) => {
            // A token whose family was revoked (revocation or reuse detection) is
            // inactive at once, although its signature and `exp` are still good.
            if a.revoked || a.family_revoked || a.subject_disabled {
                return Ok(Introspection::inactive());
            }
            Introspection {
                active: true,
                scope: (!claims.scope.is_empty()).then(|| claims.scope.clone()),
                client_id: Some(claims.client_id),
                username: a.subject.username().map(str::to_owned),
                // RFC 9449 §6.2: "token_type": "DPoP" and `cnf.jkt` for a bound one.
                token_type: Some(
                    if claims.cnf.is_some() {
                        TokenType::DPoP
                    } else {
                        TokenType::Bearer
                    }
                    .as_str()
                    .into(),
                ),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                sub: Some(claims.sub),
                aud: Some(claims.aud),
                iss: Some(claims.iss),
                jti: Some(claims.jti),
                cnf: claims.cnf,
            }
        }
    })
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_answer_is_exactly_active_false() {
        let json = serde_json::to_string(&Introspection::inactive()).unwrap();
        assert_eq!(json, r#"{"active":false}"#);
    }
}
