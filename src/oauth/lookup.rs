//! Finding a presented token of either kind, for revocation and introspection.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{GrantContext, OAuthError};
use crate::{
    crypto::{jwt::AccessClaims, token::TokenHash},
    store::{AccessTokenRecord, RefreshTokenRecord},
};

/// RFC 7009 §2.1 / RFC 7662 §2.1 `token_type_hint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    /// Parses the hint.
    ///
    /// # Errors
    /// `unsupported_token_type` for a value other than `access_token` or
    /// `refresh_token` (RFC 7009 §2.2.1).
    pub fn parse(value: &str) -> Result<TokenTypeHint, OAuthError> {
        match value {
            "access_token" => Ok(TokenTypeHint::AccessToken),
            "refresh_token" => Ok(TokenTypeHint::RefreshToken),
            _ => Err(OAuthError::UnsupportedTokenType(
                "token_type_hint must be access_token or refresh_token".into(),
            )),
        }
    }
}

/// A token found in the store.
#[derive(Debug)]
pub enum FoundToken {
    Refresh(RefreshTokenRecord),
    /// A signature-checked access token and its record.
    Access(Box<AccessClaims>, AccessTokenRecord),
}

/// Looks a token up, in the hinted kind first and then in the other (RFC 7009 §2.1:
/// "If the server is unable to locate the token using the given hint, it MUST extend
/// its search across all of its supported token types").
///
/// # Errors
/// Only store failures; an unknown or malformed token is `Ok(None)`.
pub async fn find(
    ctx: &GrantContext<'_>,
    token: &str,
    hint: Option<TokenTypeHint>,
    now: OffsetDateTime,
) -> Result<Option<FoundToken>, OAuthError> {
    let order = match hint {
        Some(TokenTypeHint::AccessToken) => {
            [TokenTypeHint::AccessToken, TokenTypeHint::RefreshToken]
        }
        _ => [TokenTypeHint::RefreshToken, TokenTypeHint::AccessToken],
    };
    for kind in order {
        let found = match kind {
            TokenTypeHint::RefreshToken => ctx
                .store
                .find_refresh_token(&TokenHash::of(token))
                .await?
                .map(FoundToken::Refresh),
            TokenTypeHint::AccessToken => find_access(ctx, token, now).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn find_access(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<FoundToken>, OAuthError> {
    // Only a token this server signed can be an access token of ours; the signature
    // also keeps anyone from probing the store with made-up ids.
    let Ok(claims) = verify_access_token(ctx, token, now).await else {
        return Ok(None);
    };
    let Ok(jti) = Uuid::parse_str(&claims.jti) else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .find_access_token(jti)
        .await?
        .map(|record| FoundToken::Access(Box::new(claims), record)))
}

/// Checks an access token's signature, `typ`, `iss`, `aud`, and `exp` against the
/// server clock's `now` (RFC 7519 §4.1.4, see [`crate::crypto::jwt::is_expired`]).
///
/// # Errors
/// The reason the token is not valid.
pub async fn verify_access_token(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, crate::crypto::jwt::TokenRejected> {
    let tokens = &ctx.settings.tokens;
    ctx.keys
        .verify(
            ctx.store,
            now,
            token,
            &tokens.issuer,
            &tokens.audience,
            tokens.leeway,
        )
        .await
}
