//! Validating bearer access tokens for resource servers (RFC 6750, RFC 9068 §4).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{GrantContext, OAuthError, lookup::verify_access_token};
use crate::crypto::jwt::AccessClaims;

/// Why a protected resource refuses a request (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header: a 401 naming the scheme, without an error
    /// code (RFC 6750 §3.1).
    #[error("no bearer token")]
    Missing,
    /// A malformed request, e.g. a token sent twice.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Expired, revoked, malformed or not signed by this server.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// Valid, but without the scope this resource needs.
    #[error("insufficient_scope: {required}")]
    InsufficientScope { required: String },
    /// The store could not be asked (503) or failed (500).
    #[error(transparent)]
    Server(OAuthError),
}

impl BearerError {
    /// The RFC 6750 error code, if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            BearerError::Missing => None,
            BearerError::InvalidRequest(_) => Some("invalid_request"),
            BearerError::InvalidToken(_) => Some("invalid_token"),
            BearerError::InsufficientScope { .. } => Some("insufficient_scope"),
            BearerError::Server(e) => Some(e.code()),
        }
    }
}

/// Validates an access token: signature by `kid`, `typ`, `iss`, `aud`, `exp`, and,
/// with `check_revocation`, that neither the token nor its family was revoked and
/// its user is still enabled.
///
/// # Errors
/// `invalid_token` with the reason; `Server` when the store fails.
pub async fn authenticate(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
    check_revocation: bool,
) -> Result<AccessClaims, BearerError> {
    let claims = verify_access_token(ctx, token, now)
        .await
        .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
    if check_revocation {
        let jti = Uuid::parse_str(&claims.jti)
            .map_err(|_| BearerError::InvalidToken("malformed jti".into()))?;
        let record = ctx
            .store
            .find_access_token(jti)
            .await
            .map_err(|e| BearerError::Server(e.into()))?;
        match record {
            Some(r) if !r.revoked && !r.family_revoked && !r.subject_disabled => {}
            Some(_) => {
                return Err(BearerError::InvalidToken(
                    "the token has been revoked".into(),
                ));
            }
            None => return Err(BearerError::InvalidToken("unknown token".into())),
        }
    }
    Ok(claims)
}

/// The scope of tokens for the admin API.
pub const ADMIN_SCOPE: &str = "rotor:admin";

/// Who acts through the admin API: an admin user (through the console's client or
/// any client allowed the scope), or a confidential client on its own behalf
/// (client_credentials with `rotor:admin`, for scripts and CI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(String),
    Client(String),
}

impl Actor {
    /// How audit events name the actor.
    pub fn name(&self) -> &str {
        match self {
            Actor::User(name) | Actor::Client(name) => name,
        }
    }
}

/// Why the admin API refuses a token that is valid as a bearer token.
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    /// 401: no token, or one that is invalid, expired or revoked.
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// 403: a valid token without the admin scope, or of a user who is not an
    /// admin (any more) or is disabled.
    #[error("{0}")]
    Forbidden(String),
}

/// Authenticates an admin: a valid, unrevoked token carrying [`ADMIN_SCOPE`], of a
/// client acting for itself or of an enabled user with the admin role.
///
/// # Errors
/// [`AdminRefusal::Bearer`] for a token that does not authenticate (401),
/// [`AdminRefusal::Forbidden`] for one that may not administer (403).
pub async fn authenticate_admin(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
) -> Result<Actor, AdminRefusal> {
    let claims = verify_access_token(ctx, token, now)
        .await
        .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
    let jti = Uuid::parse_str(&claims.jti)
        .map_err(|_| BearerError::InvalidToken("malformed jti".into()))?;
    let record = ctx
        .store
        .find_access_token(jti)
        .await
        .map_err(|e| BearerError::Server(e.into()))?
        .ok_or_else(|| BearerError::InvalidToken("unknown token".into()))?;
    if record.revoked || record.family_revoked {
        return Err(BearerError::InvalidToken("the token has been revoked".into()).into());
    }
    if require_scope(&claims, ADMIN_SCOPE).is_err() {
        return Err(AdminRefusal::Forbidden(format!(
            "the token lacks the scope {ADMIN_SCOPE}"
        )));
    }
    match record.subject {
        crate::store::Subject::Client { id } => Ok(Actor::Client(id)),
        crate::store::Subject::User { username, .. } => {
            // The role is read now, not from the token: a withdrawn role or a
            // disabled account takes effect at once.
            let user = ctx
                .store
                .find_user(&username)
                .await
                .map_err(|e| BearerError::Server(e.into()))?;
            match user {
                Some(u) if u.admin && !u.disabled => Ok(Actor::User(username)),
                Some(u) if u.disabled => Err(AdminRefusal::Forbidden(
                    "the user account is disabled".into(),
                )),
                _ => Err(AdminRefusal::Forbidden("the user is not an admin".into())),
            }
        }
    }
}

/// Checks that the token carries `scope`.
///
/// # Errors
/// `insufficient_scope` naming the scope needed.
pub fn require_scope(claims: &AccessClaims, scope: &str) -> Result<(), BearerError> {
    if claims.scope.split(' ').any(|s| s == scope) {
        Ok(())
    } else {
        Err(BearerError::InsufficientScope {
            required: scope.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_required_token_by_token() {
        let claims = AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "read write".into(),
        };
        assert!(require_scope(&claims, "read").is_ok());
        assert!(matches!(
            require_scope(&claims, "rea"),
            Err(BearerError::InsufficientScope { .. })
        ));
    }
}
