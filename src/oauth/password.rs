//! The resource owner password credentials grant (RFC 6749 §4.3).
//!
//! RFC 9700 §2.4 says this grant MUST NOT be used; rotor supports it because the
//! scripts of its users depend on it, with argon2id hashing on a bounded pool and
//! the same cost and answer for unknown users and wrong passwords.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AuthenticatedClient, GrantContext, OAuthError, RefreshPolicy, Scope, TokenResponse,
    mint_access_token, response_scope, scope,
};
use crate::{
    crypto::{password::Password, token::RefreshToken},
    store::{NewRefreshToken, NewSession},
};

/// The one answer for an unknown user and a wrong password, so that the two cannot
/// be told apart.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// Runs the password grant.
///
/// # Errors
/// `unauthorized_client` when the client may not use it, `invalid_scope` for a
/// scope beyond the client's, `invalid_grant` for bad or disabled credentials.
#[tracing::instrument(skip_all, fields(grant = "password", client_id = %client.id()))]
pub async fn grant(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    username: String,
    password: Password,
    requested: Option<Scope>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §5.2 unauthorized_client: "The authenticated client is not
    // authorized to use this authorization grant type."
    if !client.allows_grant("password") {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the password grant".into(),
        ));
    }
    // RFC 6749 §3.3: the client's scopes are the default and the upper bound.
    let scope = scope::narrow(requested, &Scope::from_stored(&client.0.scopes))?;

    let user = ctx.store.find_user(&username).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = ctx.hasher.verify(password, stored_hash).await?;
    let user = match user {
        Some(u) if verified => u,
        _ => {
            tracing::info!("password grant refused: bad credentials");
            return Err(OAuthError::InvalidGrant(BAD_CREDENTIALS.into()));
        }
    };
    if user.disabled {
        return Err(OAuthError::InvalidGrant(
            "the user account is disabled".into(),
        ));
    }

    let access = mint_access_token(ctx, user.id, client.id(), &scope, now).await?;
    let policy = RefreshPolicy::for_client(ctx.settings, client);
    let refresh = policy.issue.then(RefreshToken::generate);
    ctx.store
        .create_session(&NewSession {
            family_id: Uuid::new_v4(),
            client_id: client.id().to_owned(),
            user_id: user.id,
            scope: scope.to_string(),
            created_at: now,
            refresh: refresh.as_ref().map(|rt| NewRefreshToken {
                hash: rt.hash(),
                issued_at: now,
                expires_at: now + policy.ttl,
            }),
            access: access.record,
        })
        .await?;
    tracing::info!("password grant issued tokens");
    Ok(TokenResponse {
        access_token: access.jwt,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: refresh.map(|rt| rt.expose().to_owned()),
        scope: response_scope(&scope),
    })
}
