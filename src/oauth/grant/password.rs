//! The resource owner password credentials grant (RFC 6749 §4.3).
//!
//! RFC 9700 §2.4 says this grant MUST NOT be used; rotor supports it because the
//! scripts of its users depend on it. The credentials are checked by
//! [`verify_credentials`], with the same cost and answer for unknown users and
//! wrong passwords.

use time::OffsetDateTime;

use super::require_grant;
use crate::{
    crypto::{password::Password, token::RefreshToken},
    oauth::{
        AuthenticatedClient, GrantContext, GrantType, OAuthError, Scope, TokenResponse,
        audit::Audit,
        credentials::verify_credentials,
        dpop::{self, VerifiedProof},
        policy::RefreshPolicy,
        scope,
        token::{mint_access_token, response},
    },
    store::{AuditKind, NewFamily, NewRefreshToken, Outcome, Subject, new_row_id},
};

/// Runs the password grant.
///
/// # Errors
/// `unauthorized_client` when the client may not use it, `invalid_scope` for a
/// scope beyond the client's, `invalid_grant` for bad, locked or disabled
/// credentials.
#[tracing::instrument(skip_all, fields(grant = "password", client_id = %client.id()))]
pub async fn grant(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    username: String,
    password: Password,
    requested: Option<Scope>,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, GrantType::Password)?;
    // RFC 6749 §3.3: the client's scopes are the default and the upper bound.
    let scope = scope::narrow(requested, &Scope::from_stored(&client.0.scopes))?;
    let user = verify_credentials(ctx, client.id(), &username, password, now).await?;

    let subject = Subject::User {
        id: user.id,
        username: user.username,
    };
    let access = mint_access_token(ctx, &subject, client.id(), &scope, proof, now).await?;
    let family_id = new_row_id();
    let policy = RefreshPolicy::for_client(ctx.settings, client);
    let refresh = policy.issue.then(RefreshToken::generate);
    let (response, access) = response(
        access,
        refresh.as_ref().map(|rt| rt.expose().to_owned()),
        &scope,
    );
    if let Some(proof) = proof {
        dpop::record_use(ctx, client.id(), proof, now).await?;
    }
    ctx.store
        .create_family(&NewFamily {
            family_id,
            client_id: client.id().to_owned(),
            user_id: subject.user_id(),
            scope: scope.to_string(),
            created_at: now,
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: dpop::family_binding(client, proof),
            refresh: refresh.as_ref().map(|rt| NewRefreshToken {
                hash: rt.hash(),
                issued_at: now,
                expires_at: now + policy.ttl,
            }),
            access,
        })
        .await?;
    Audit::new(ctx, AuditKind::Login, Outcome::Success, now)
        .subject(&subject)
        .client(client.id())
        .family(family_id)
        .record(ctx)
        .await;
    Ok(response)
}
