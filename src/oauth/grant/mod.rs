//! The grants, one file each (RFC 6749 §4.1, §4.3, §4.4, §6). Adding a grant is a
//! variant of [`GrantType`], a file here, and its arm below.

use time::OffsetDateTime;

use super::{
    AuthenticatedClient, GrantContext, GrantRequest, GrantType, OAuthError, TokenResponse,
    dpop::VerifiedProof,
};

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;

/// Runs the grant `request` asks for, for an authenticated client, with the
/// request's verified DPoP proof if it sent one.
///
/// # Errors
/// Any RFC 6749 §5.2 error the grant decides.
pub async fn run(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    request: GrantRequest,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    match request {
        GrantRequest::Password {
            username,
            password,
            scope,
        } => password::grant(ctx, client, username, password, scope, proof, now).await,
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh_token::grant(ctx, client, refresh_token, scope, proof, now).await,
        GrantRequest::ClientCredentials { scope } => {
            client_credentials::grant(ctx, client, scope, proof, now).await
        }
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let exchange = authorization_code::Exchange {
                code,
                redirect_uri,
                code_verifier,
            };
            authorization_code::grant(ctx, client, exchange, proof, now).await
        }
    }
}

/// RFC 6749 §5.2 `unauthorized_client`: "The authenticated client is not
/// authorized to use this authorization grant type."
pub(crate) fn require_grant(
    client: &AuthenticatedClient,
    grant: GrantType,
) -> Result<(), OAuthError> {
    if client.0.allows(grant) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use the {grant} grant"
        )))
    }
}
