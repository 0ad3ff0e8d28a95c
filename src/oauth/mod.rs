//! The OAuth 2.0 protocol: grant rules of RFC 6749, RFC 9700 and RFC 9068 as plain
//! Rust. This module knows nothing of HTTP (no axum types) and nothing of SQL (it
//! calls the [`Store`] trait); the current time comes in as a value.

use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

use crate::{
    config::Settings,
    crypto::{nonce::NonceKey, password::PasswordHasher},
    keyring::KeyRing,
    store::Store,
};

pub(crate) mod audit;
pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod credentials;
pub mod dpop;
pub mod error;
pub mod grant;
pub mod introspect;
pub mod lookup;
pub mod metadata;
pub mod pkce;
pub mod policy;
pub mod redirect;
pub mod request;
pub mod revoke;
pub mod scope;
pub mod token;

pub use crate::wire::{GrantType, TokenType};
pub use client_auth::{AuthenticatedClient, BasicCredentials, PresentedClient};
pub use error::OAuthError;
pub use policy::{RefreshPolicy, refresh_available};
pub use request::{GrantRequest, Params};
pub use scope::Scope;
pub use token::TokenResponse;

/// Everything a grant needs, borrowed from the server state for one request.
#[derive(Debug, Clone, Copy)]
pub struct GrantContext<'a> {
    pub store: &'a dyn Store,
    pub settings: &'a Settings,
    pub keys: &'a KeyRing,
    pub hasher: &'a PasswordHasher,
    /// The key of DPoP nonces, shared by every instance.
    pub nonces: &'a NonceKey,
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

/// Handles a token request: authenticates the client, checks its DPoP proof
/// (RFC 9449 §5), then runs the grant.
///
/// # Errors
/// Any RFC 6749 §5.2 or RFC 9449 §5 error the request deserves.
pub async fn token(
    ctx: &GrantContext<'_>,
    presented: PresentedClient,
    proof: &dpop::PresentedProof,
    request: GrantRequest,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let client = client_auth::authenticate(ctx, presented).await?;
    tracing::Span::current().record("client_id", client.id());
    let proof = dpop::at_token_endpoint(ctx, &client, proof, now)?;
    grant::run(ctx, &client, request, proof.as_ref(), now).await
}
