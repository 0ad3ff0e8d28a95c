//! What a pasted token is: an admin pastes a refresh or access token, and sees
//! its kind, its login (family), and its state — found by its SHA-256 (refresh
//! tokens) or its signature and `jti` (access tokens), never stored, logged or
//! shown back. The search is that of revocation and introspection
//! ([`oauth::lookup::find`]).

use time::OffsetDateTime;
use uuid::Uuid;

use super::AdminError;
use crate::oauth::{
    GrantContext,
    lookup::{self, FoundToken},
};
use crate::store::Subject;

/// A token found by [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// `refresh_token` or `access_token`.
    pub kind: &'static str,
    pub family_id: Uuid,
    pub client_id: String,
    /// The username, or the client id for a client's own token.
    pub subject: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// `active`, `spent` (a rotated refresh token), `expired`, `revoked` (its
    /// login, or the access token alone) or `subject_disabled`.
    pub state: &'static str,
}

/// Finds a pasted token.
///
/// # Errors
/// [`AdminError::UnknownToken`] when no token of this server is this one (or it
/// is an access token past its expiry: its signature no longer verifies), or the
/// store failed.
pub async fn find(
    ctx: &GrantContext<'_>,
    token: &str,
    now: OffsetDateTime,
) -> Result<TokenInfo, AdminError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AdminError::UnknownToken);
    }
    let found = lookup::find(ctx, token, None, now)
        .await
        .map_err(|e| match e {
            crate::oauth::OAuthError::Internal(e) => AdminError::Internal(e),
            other => AdminError::Internal(anyhow::anyhow!("{}", other.description())),
        })?;
    match found {
        None => Err(AdminError::UnknownToken),
        Some(FoundToken::Refresh(r)) => Ok(TokenInfo {
            kind: "refresh_token",
            family_id: r.family_id,
            client_id: r.client_id,
            subject: subject_name(&r.subject),
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            state: if r.family_revoked {
                "revoked"
            } else if r.subject_disabled {
                "subject_disabled"
            } else if r.used_at.is_some() {
                "spent"
            } else if r.expires_at <= now {
                "expired"
            } else {
                "active"
            },
        }),
        Some(FoundToken::Access(_, a)) => Ok(TokenInfo {
            kind: "access_token",
            family_id: a.family_id,
            client_id: a.client_id,
            subject: subject_name(&a.subject),
            issued_at: a.issued_at,
            expires_at: a.expires_at,
            state: if a.revoked || a.family_revoked {
                "revoked"
            } else if a.subject_disabled {
                "subject_disabled"
            } else if a.expires_at <= now {
                "expired"
            } else {
                "active"
            },
        }),
    }
}

/// A user's name, or a client's id.
fn subject_name(subject: &Subject) -> String {
    subject
        .username()
        .map_or_else(|| subject.sub(), str::to_owned)
}
