//! Issuing access tokens (RFC 9068) and shaping the token response (RFC 6749 §5.1),
//! the same way for every grant.

use time::OffsetDateTime;

use super::{GrantContext, OAuthError, Scope, TokenType, dpop::VerifiedProof};
use crate::{
    crypto::jwt::{AccessClaims, Confirmation},
    store::{NewAccessToken, Subject, new_row_id},
};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A signed access token and the record of its id.
pub(crate) struct MintedAccessToken {
    pub jwt: String,
    pub record: NewAccessToken,
    pub expires_in: u64,
    /// `DPoP` when bound to a proof's key, else `Bearer`.
    pub token_type: TokenType,
}

/// Signs an RFC 9068 access token for `subject`, issued now; with a DPoP proof,
/// bound to its key (RFC 9449 §6.1: `cnf.jkt`), whatever the grant.
pub(crate) async fn mint_access_token(
    ctx: &GrantContext<'_>,
    subject: &Subject,
    client_id: &str,
    scope: &Scope,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<MintedAccessToken, OAuthError> {
    let lifetime = ctx.settings.tokens.session_timeout.access_token_lifetime();
    let record = NewAccessToken {
        jti: new_row_id(),
        issued_at: now,
        expires_at: now + lifetime,
    };
    let claims = AccessClaims {
        iss: ctx.settings.tokens.issuer.clone(),
        // RFC 9068 §2.2: `sub` is the resource owner, or the client itself when the
        // client is the subject (client_credentials).
        sub: subject.sub(),
        aud: ctx.settings.tokens.audience.clone(),
        exp: record.expires_at.unix_timestamp(),
        iat: record.issued_at.unix_timestamp(),
        jti: record.jti.to_string(),
        client_id: client_id.to_owned(),
        scope: scope.to_string(),
        cnf: proof.map(|p| Confirmation { jkt: p.jkt.clone() }),
    };
    let seconds = (record.expires_at - record.issued_at).whole_seconds();
    Ok(MintedAccessToken {
        jwt: ctx.keys.current(ctx.store, now).await.sign(&claims)?,
        record,
        expires_in: u64::try_from(seconds).unwrap_or(0),
        // RFC 9449 §5: "token_type" is "DPoP" for a DPoP-bound access token.
        token_type: if proof.is_some() {
            TokenType::DPoP
        } else {
            TokenType::Bearer
        },
    })
}

/// `scope` as the response carries it: left out when empty.
pub(crate) fn response_scope(scope: &Scope) -> Option<String> {
    (!scope.is_empty()).then(|| scope.to_string())
}

/// The response for a freshly minted access token and, if any, a refresh token.
pub(crate) fn response(
    access: MintedAccessToken,
    refresh_token: Option<String>,
    scope: &Scope,
) -> (TokenResponse, NewAccessToken) {
    (
        TokenResponse {
            access_token: access.jwt,
            token_type: access.token_type,
            expires_in: access.expires_in,
            refresh_token,
            scope: response_scope(scope),
        },
        access.record,
    )
}
