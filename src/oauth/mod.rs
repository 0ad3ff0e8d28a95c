//! The OAuth 2.0 protocol: grant rules of RFC 6749, RFC 9700 and RFC 9068 as plain
//! Rust. This module knows nothing of HTTP (no axum types) and nothing of SQL (it
//! calls the [`Store`] trait); the current time comes in as a value.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    config::{SessionTimeout, Settings},
    crypto::{keys::AccessClaims, password::PasswordHasher},
    keyring::KeyRing,
    store::{NewAccessToken, Store},
};

pub mod bearer;
pub mod client_auth;
pub mod error;
pub mod introspect;
pub mod lookup;
pub mod metadata;
pub mod password;
pub mod refresh;
pub mod request;
pub mod revoke;
pub mod scope;

pub use client_auth::{AuthenticatedClient, BasicCredentials, PresentedClient};
pub use error::OAuthError;
pub use request::{GrantRequest, Params};
pub use scope::Scope;

/// Everything a grant needs, borrowed from the server state for one request.
#[derive(Debug, Clone, Copy)]
pub struct GrantContext<'a> {
    pub store: &'a dyn Store,
    pub settings: &'a Settings,
    pub keys: &'a KeyRing,
    pub hasher: &'a PasswordHasher,
    /// What the grant observed, for the caller's metrics.
    pub report: &'a GrantReport,
    /// The client's address, when known (lockout and audit).
    pub client_ip: Option<std::net::IpAddr>,
}

/// What a grant observed besides its answer, for metrics: one per request.
#[derive(Debug, Default)]
pub struct GrantReport {
    reuse_detected: AtomicBool,
    family_revoked: AtomicBool,
}

impl GrantReport {
    /// Notes that a spent refresh token was presented, and whether that revoked
    /// its family now (false when it already was).
    pub fn record_reuse(&self, family_revoked: bool) {
        self.reuse_detected.store(true, Ordering::Relaxed);
        self.family_revoked
            .fetch_or(family_revoked, Ordering::Relaxed);
    }

    /// Notes a revocation asked for by a client, and whether it revoked anything
    /// that was live.
    pub fn record_revocation(&self, revoked: bool) {
        self.family_revoked.fetch_or(revoked, Ordering::Relaxed);
    }

    /// Whether a spent refresh token was presented.
    pub fn reuse_detected(&self) -> bool {
        self.reuse_detected.load(Ordering::Relaxed)
    }

    /// Whether this request revoked a token family.
    pub fn family_revoked(&self) -> bool {
        self.family_revoked.load(Ordering::Relaxed)
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Handles a token request: authenticates the client, then runs the grant.
///
/// # Errors
/// Any RFC 6749 §5.2 error the request deserves.
pub async fn token(
    ctx: &GrantContext<'_>,
    presented: PresentedClient,
    request: GrantRequest,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let client = client_auth::authenticate(ctx, presented).await?;
    tracing::Span::current().record("client_id", client.id());
    match request {
        GrantRequest::Password {
            username,
            password,
            scope,
        } => password::grant(ctx, &client, username, password, scope, now).await,
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh::grant(ctx, &client, refresh_token, scope, now).await,
    }
}

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
                && client.allows_grant("refresh_token"),
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

/// A signed access token and the record of its id.
pub(crate) struct MintedAccessToken {
    pub jwt: String,
    pub record: NewAccessToken,
    pub expires_in: u64,
}

/// Signs an RFC 9068 access token.
pub(crate) async fn mint_access_token(
    ctx: &GrantContext<'_>,
    subject: Uuid,
    client_id: &str,
    scope: &Scope,
    now: OffsetDateTime,
) -> Result<MintedAccessToken, OAuthError> {
    sign_access_token(
        ctx,
        new_access_token(ctx, now),
        subject,
        client_id,
        scope,
        now,
    )
    .await
}

/// The id and lifetime of an access token about to be issued.
pub(crate) fn new_access_token(ctx: &GrantContext<'_>, now: OffsetDateTime) -> NewAccessToken {
    let lifetime = ctx.settings.tokens.session_timeout.access_token_lifetime();
    NewAccessToken {
        jti: Uuid::new_v4(),
        issued_at: now,
        expires_at: now + lifetime,
    }
}

/// Signs the access token `record` describes.
pub(crate) async fn sign_access_token(
    ctx: &GrantContext<'_>,
    record: NewAccessToken,
    subject: Uuid,
    client_id: &str,
    scope: &Scope,
    now: OffsetDateTime,
) -> Result<MintedAccessToken, OAuthError> {
    let claims = AccessClaims {
        iss: ctx.settings.tokens.issuer.clone(),
        sub: subject.to_string(),
        aud: ctx.settings.tokens.audience.clone(),
        exp: record.expires_at.unix_timestamp(),
        iat: record.issued_at.unix_timestamp(),
        jti: record.jti.to_string(),
        client_id: client_id.to_owned(),
        scope: scope.to_string(),
    };
    let lifetime = (record.expires_at - record.issued_at).whole_seconds();
    Ok(MintedAccessToken {
        jwt: ctx.keys.current(ctx.store, now).await.sign(&claims)?,
        record,
        expires_in: u64::try_from(lifetime).unwrap_or(0),
    })
}

/// `scope` as the response carries it: left out when empty.
pub(crate) fn response_scope(scope: &Scope) -> Option<String> {
    (!scope.is_empty()).then(|| scope.to_string())
}

/// Records an audit event in the store and the log. A failure to record is logged
/// and does not fail the request: the answer is decided already.
pub(crate) async fn audit(
    ctx: &GrantContext<'_>,
    kind: &str,
    username: Option<&str>,
    client_id: Option<&str>,
    family_id: Option<Uuid>,
    outcome: &str,
    now: OffsetDateTime,
) {
    let event = audit_event(ctx, kind, username, client_id, family_id, outcome, now);
    match kind {
        "reuse_detected" | "lockout" => {
            tracing::warn!(kind, outcome, username, client_id, family_id = ?family_id, ip = ?event.ip, "audit")
        }
        _ => {
            tracing::info!(kind, outcome, username, client_id, family_id = ?family_id, ip = ?event.ip, "audit")
        }
    }
    if let Err(e) = ctx.store.record_audit(&event).await {
        tracing::error!(error = %e, kind, "recording an audit event failed");
    }
}

/// Builds an audit event for this request.
pub(crate) fn audit_event(
    ctx: &GrantContext<'_>,
    kind: &str,
    username: Option<&str>,
    client_id: Option<&str>,
    family_id: Option<Uuid>,
    outcome: &str,
    now: OffsetDateTime,
) -> crate::store::AuditEvent {
    crate::store::AuditEvent {
        at: now,
        kind: kind.to_owned(),
        username: username.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        family_id,
        ip: ctx.client_ip.map(|ip| ip.to_string()),
        outcome: outcome.to_owned(),
    }
}
