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
