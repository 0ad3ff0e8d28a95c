//! The client credentials grant (RFC 6749 §4.4): a confidential client obtains an
//! access token for itself. Its subject is the client (RFC 9068 §2.2), and no
//! refresh token is issued (§4.4.3; a client can always authenticate again).

use time::OffsetDateTime;

use super::require_grant;
use crate::{
    oauth::{
        AuthenticatedClient, GrantContext, GrantType, OAuthError, Scope, TokenResponse,
        audit::Audit,
        dpop::{self, VerifiedProof},
        scope,
        token::{mint_access_token, response},
    },
    store::{AuditKind, NewFamily, Outcome, Subject, new_row_id},
};

/// Runs the client credentials grant.
///
/// # Errors
/// `unauthorized_client` for a public client or one not allowed this grant,
/// `invalid_scope` for a scope beyond the client's.
#[tracing::instrument(skip_all, fields(grant = "client_credentials", client_id = %client.id()))]
pub async fn grant(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    requested: Option<Scope>,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §4.4: "The client credentials grant type MUST only be used by
    // confidential clients."
    if client.0.is_public() {
        return Err(OAuthError::UnauthorizedClient(
            "the client_credentials grant is for confidential clients only".into(),
        ));
    }
    require_grant(client, GrantType::ClientCredentials)?;
    // RFC 6749 §3.3: the client's scopes are the default and the upper bound.
    let scope = scope::narrow(requested, &Scope::from_stored(&client.0.scopes))?;

    let subject = Subject::Client {
        id: client.id().to_owned(),
    };
    let access = mint_access_token(ctx, &subject, client.id(), &scope, proof, now).await?;
    // RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included."
    let (response, access) = response(access, None, &scope);
    // A family of its own, so that the token can be introspected and revoked like
    // any other; the clean-up removes it once the token has expired.
    let family_id = new_row_id();
    if let Some(proof) = proof {
        dpop::record_use(ctx, client.id(), proof, now).await?;
    }
    ctx.store
        .create_family(&NewFamily {
            family_id,
            client_id: client.id().to_owned(),
            user_id: None,
            scope: scope.to_string(),
            created_at: now,
            session_id: None,
            offline: false,
            expires_at: None,
            dpop_jkt: None,
            refresh: None,
            access,
        })
        .await?;
    Audit::new(ctx, AuditKind::Issued, Outcome::Success, now)
        .client(client.id())
        .family(family_id)
        .record(ctx)
        .await;
    Ok(response)
}
