//! How refresh tokens work for one client: the server settings with the client's
//! overrides, decided in one place.

use std::time::Duration;

use time::OffsetDateTime;

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
    /// Lifetime of each refresh token of an offline family (`offline_access`).
    pub offline_ttl: Duration,
}

/// ReachFive's default lifetime of an offline refresh token.
pub const DEFAULT_OFFLINE_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// The bounds of a client's offline lifetime: one to 365 days (ReachFive's).
pub const OFFLINE_TTL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(24 * 3600)..=Duration::from_secs(365 * 24 * 3600);

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
            offline_ttl: client
                .0
                .code_flow
                .offline_ttl
                .unwrap_or(DEFAULT_OFFLINE_TTL),
        }
    }

    /// When a refresh token issued `now` expires: an offline family's after the
    /// client's offline lifetime, any other after the refresh lifetime — and never
    /// after `cap`, the end of the browser session a non-offline family belongs to.
    pub fn expires_at(
        &self,
        now: OffsetDateTime,
        offline: bool,
        cap: Option<OffsetDateTime>,
    ) -> OffsetDateTime {
        let ttl = if offline { self.offline_ttl } else { self.ttl };
        let end = now + ttl;
        cap.map_or(end, |cap| end.min(cap))
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
            code_flow: Default::default(),
            dpop: Default::default(),
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
    fn an_offline_token_lives_the_offline_ttl_and_others_end_with_their_session() {
        let settings = Settings::load(None).unwrap();
        let mut c = client(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
        c.0.code_flow.offline_ttl = Some(Duration::from_secs(30 * 24 * 3600));
        let policy = RefreshPolicy::for_client(&settings, &c);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let session_end = now + Duration::from_secs(600);
        assert_eq!(
            policy.expires_at(now, true, None),
            now + Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(
            policy.expires_at(now, false, Some(session_end)),
            session_end
        );
        assert_eq!(policy.expires_at(now, false, None), now + policy.ttl);
        let default = RefreshPolicy::for_client(&settings, &client(vec![]));
        assert_eq!(default.offline_ttl, DEFAULT_OFFLINE_TTL);
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
