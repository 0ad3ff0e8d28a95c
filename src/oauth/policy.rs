//! How refresh tokens work for one client: the server settings with the client's
//! overrides, decided in one place.

use std::time::Duration;

use super::{AuthenticatedClient, GrantType, OAuthError};
use crate::config::{SessionTimeout, Settings};

/// How refresh tokens work for one client, from the server settings and the
/// client's overrides.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Whether refresh tokens are issued to this client.
    pub issue: bool,
    /// Lifetime of each refresh token from its issue.
    pub ttl: Duration,
    /// Refreshes allowed per family; 0 = unlimited.
    pub max_refreshes: u32,
    /// How long a spent token may be retried for the same answer; zero = never.
    pub grace_period: Duration,
}

impl RefreshPolicy {
    /// The policy for `client`.
    pub fn for_client(settings: &Settings, client: &AuthenticatedClient) -> RefreshPolicy {
        RefreshPolicy {
            issue: refresh_available(settings).is_ok()
                && client.0.refresh_tokens
                && client.0.allows(GrantType::RefreshToken),
            ttl: client
                .0
                .refresh_ttl
                .unwrap_or_else(|| settings.default_refresh_ttl()),
            max_refreshes: client
                .0
                .max_refreshes
                .unwrap_or(settings.refresh.max_refreshes),
            grace_period: client
                .0
                .grace_period
                .unwrap_or(settings.refresh.grace_period),
        }
    }
}

/// Whether the server issues refresh tokens at all.
///
/// # Errors
/// `unsupported_grant_type`, saying why, when it does not.
pub fn refresh_available(settings: &Settings) -> Result<(), OAuthError> {
    if !settings.refresh.enabled {
        return Err(OAuthError::UnsupportedGrantType(
            "the refresh_token grant is turned off on this server".into(),
        ));
    }
    if settings.tokens.session_timeout == SessionTimeout::Unlimited {
        return Err(OAuthError::UnsupportedGrantType(
            "refresh tokens are not issued while the session timeout is unlimited".into(),
        ));
    }
    Ok(())
}
