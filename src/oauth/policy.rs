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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::ClientRecord;

    fn client(grants: Vec<GrantType>) -> AuthenticatedClient {
        AuthenticatedClient(ClientRecord {
            id: "app".into(),
            secret_hash: None,
            grant_types: grants,
            scopes: Vec::new(),
            refresh_tokens: true,
            refresh_ttl: None,
            max_refreshes: None,
            grace_period: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_clients_own_limits_replace_the_servers() {
        let settings = Settings::load(None).unwrap();
        let mut c = client(vec![GrantType::Password, GrantType::RefreshToken]);
        let server = RefreshPolicy::for_client(&settings, &c);
        assert!(server.issue);
        assert_eq!(server.ttl, settings.default_refresh_ttl());
        c.0.refresh_ttl = Some(Duration::from_secs(60));
        c.0.max_refreshes = Some(3);
        let own = RefreshPolicy::for_client(&settings, &c);
        assert_eq!((own.ttl, own.max_refreshes), (Duration::from_secs(60), 3));
    }

    #[test]
    fn no_refresh_tokens_without_the_grant_the_switch_or_the_server() {
        let mut settings = Settings::load(None).unwrap();
        let without_grant = client(vec![GrantType::Password]);
        assert!(!RefreshPolicy::for_client(&settings, &without_grant).issue);
        let mut switched_off = client(vec![GrantType::Password, GrantType::RefreshToken]);
        switched_off.0.refresh_tokens = false;
        assert!(!RefreshPolicy::for_client(&settings, &switched_off).issue);
        settings.refresh.enabled = false;
        let c = client(vec![GrantType::Password, GrantType::RefreshToken]);
        assert!(!RefreshPolicy::for_client(&settings, &c).issue);
        assert_eq!(
            refresh_available(&settings).unwrap_err().code(),
            "unsupported_grant_type"
        );
    }
}
