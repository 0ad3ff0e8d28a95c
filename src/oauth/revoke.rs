//! Token revocation (RFC 7009).
//!
//! Revoking a refresh token ends its whole family: every refresh and access token
//! of that login. Revoking an access token ends that token only (RFC 7009 §2.1
//! makes revoking the refresh token as well optional): the blast radius of a
//! leaked access token is one token, and a client that wants to end the login
//! revokes its refresh token.

use time::OffsetDateTime;

use super::{
    AuthenticatedClient, GrantContext, OAuthError, Params, PresentedClient,
    audit::Audit,
    client_auth,
    lookup::{self, FoundToken, TokenTypeHint},
};
use crate::store::{AuditKind, Outcome};

/// Handles a revocation request: authenticates the client exactly as the token
/// endpoint does, then revokes `token`.
///
/// # Errors
/// Client authentication errors; `invalid_request` without `token`;
/// `unsupported_token_type` for an unknown hint; `unauthorized_client` when the
/// token was issued to another client. An unknown, expired or already revoked token
/// is not an error (RFC 7009 §2.2).
pub async fn revoke(
    ctx: &GrantContext<'_>,
    presented: PresentedClient,
    mut params: Params,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let client = client_auth::authenticate(ctx, presented).await?;
    let (token, hint) = token_and_hint(&mut params)?;
    revoke_token(ctx, &client, &token, hint, now).await
}

/// Takes `token` and `token_type_hint` from the parameters.
///
/// # Errors
/// `invalid_request` without `token`, `unsupported_token_type` for an unknown hint.
pub fn token_and_hint(params: &mut Params) -> Result<(String, Option<TokenTypeHint>), OAuthError> {
    let token = params
        .take("token")
        .ok_or_else(|| OAuthError::InvalidRequest("missing parameter: token".into()))?;
    let hint = params
        .take("token_type_hint")
        .map(|h| TokenTypeHint::parse(&h))
        .transpose()?;
    Ok((token, hint))
}

#[tracing::instrument(skip_all, fields(client_id = %client.id()))]
async fn revoke_token(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    token: &str,
    hint: Option<TokenTypeHint>,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let Some(found) = lookup::find(ctx, token, hint, now).await? else {
        tracing::debug!("revocation of an unknown token");
        return Ok(());
    };
    // RFC 7009 §2.1: the server "verifies whether the token was issued to the client
    // making the revocation request. If this validation fails, the request is
    // refused and the client is informed of the error".
    let owner = match &found {
        FoundToken::Refresh(r) => &r.client_id,
        FoundToken::Access(_, a) => &a.client_id,
    };
    if owner != client.id() {
        tracing::warn!("revocation of another client's token refused");
        return Err(OAuthError::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    match found {
        FoundToken::Refresh(r) => {
            let revoked = ctx.store.revoke_family(r.family_id, now).await?;
            ctx.report.record_revocation(revoked);
            Audit::new(ctx, AuditKind::Revoked, Outcome::Family, now)
                .subject(&r.subject)
                .client(client.id())
                .family(r.family_id)
                .record(ctx)
                .await;
            tracing::info!(family_id = %r.family_id, newly_revoked = revoked, "refresh token revoked: family ended");
        }
        FoundToken::Access(_, a) => {
            let revoked = ctx.store.revoke_access_token(a.jti, now).await?;
            ctx.report.record_revocation(revoked);
            Audit::new(ctx, AuditKind::Revoked, Outcome::AccessToken, now)
                .subject(&a.subject)
                .client(client.id())
                .family(a.family_id)
                .record(ctx)
                .await;
            tracing::info!(jti = %a.jti, newly_revoked = revoked, "access token revoked");
        }
    }
    Ok(())
}
