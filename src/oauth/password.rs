//! The resource owner password credentials grant (RFC 6749 §4.3).
//!
//! RFC 9700 §2.4 says this grant MUST NOT be used; rotor supports it because the
//! scripts of its users depend on it, with argon2id hashing on a bounded pool and
//! the same cost and answer for unknown users and wrong passwords.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AuthenticatedClient, GrantContext, OAuthError, RefreshPolicy, Scope, TokenResponse, audit,
    mint_access_token, response_scope, scope,
};
use crate::{
    crypto::{password::Password, token::RefreshToken},
    store::{NewRefreshToken, NewSession},
};

/// The one answer for an unknown user and a wrong password, so that the two cannot
/// be told apart.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// Runs the password grant.
///
/// # Errors
/// `unauthorized_client` when the client may not use it, `invalid_scope` for a
/// scope beyond the client's, `invalid_grant` for bad or disabled credentials.
#[tracing::instrument(skip_all, fields(grant = "password", client_id = %client.id()))]
pub async fn grant(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    username: String,
    password: Password,
    requested: Option<Scope>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §5.2 unauthorized_client: "The authenticated client is not
    // authorized to use this authorization grant type."
    if !client.allows_grant("password") {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the password grant".into(),
        ));
    }
    // RFC 6749 §3.3: the client's scopes are the default and the upper bound.
    let scope = scope::narrow(requested, &Scope::from_stored(&client.0.scopes))?;

    // Brute force: a locked username or address is refused before any hashing, so
    // that a flood of guesses costs no argon2 time and cannot starve other logins.
    let lockout = &ctx.settings.lockout;
    let keys = lockout_keys(&username, ctx.client_ip);
    if lockout.enabled && ctx.store.is_locked_out(&keys, now).await? {
        audit(
            ctx,
            "login_failed",
            Some(&username),
            Some(client.id()),
            None,
            "locked_out",
            now,
        )
        .await;
        return Err(OAuthError::InvalidGrant(LOCKED_OUT.into()));
    }

    let user = ctx.store.find_user(&username).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = ctx.hasher.verify(password, stored_hash).await?;
    let user = match user {
        Some(u) if verified => u,
        _ => {
            count_failure(ctx, client, &username, &keys, now).await?;
            audit(
                ctx,
                "login_failed",
                Some(&username),
                Some(client.id()),
                None,
                "invalid_credentials",
                now,
            )
            .await;
            return Err(OAuthError::InvalidGrant(BAD_CREDENTIALS.into()));
        }
    };
    if user.disabled {
        audit(
            ctx,
            "login_failed",
            Some(&username),
            Some(client.id()),
            None,
            "user_disabled",
            now,
        )
        .await;
        return Err(OAuthError::InvalidGrant(
            "the user account is disabled".into(),
        ));
    }
    if lockout.enabled {
        ctx.store.clear_login_failures(&keys[0]).await?;
    }

    let access = mint_access_token(ctx, user.id, client.id(), &scope, now).await?;
    let family_id = Uuid::new_v4();
    let policy = RefreshPolicy::for_client(ctx.settings, client);
    let refresh = policy.issue.then(RefreshToken::generate);
    ctx.store
        .create_session(&NewSession {
            family_id,
            client_id: client.id().to_owned(),
            user_id: user.id,
            scope: scope.to_string(),
            created_at: now,
            refresh: refresh.as_ref().map(|rt| NewRefreshToken {
                hash: rt.hash(),
                issued_at: now,
                expires_at: now + policy.ttl,
            }),
            access: access.record,
        })
        .await?;
    audit(
        ctx,
        "login",
        Some(&username),
        Some(client.id()),
        Some(family_id),
        "success",
        now,
    )
    .await;
    Ok(TokenResponse {
        access_token: access.jwt,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: refresh.map(|rt| rt.expose().to_owned()),
        scope: response_scope(&scope),
    })
}

/// The answer during a lockout. It says nothing of whether the user exists: failures
/// of unknown usernames count and lock the same way.
pub const LOCKED_OUT: &str = "too many failed sign-in attempts; try again later";

/// The lockout counters of a login: its username, and its client address if known.
fn lockout_keys(username: &str, ip: Option<std::net::IpAddr>) -> Vec<String> {
    let mut keys = vec![format!("user:{username}")];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    keys
}

/// Counts a failed login against the username and the address.
async fn count_failure(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    username: &str,
    keys: &[String],
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let lockout = &ctx.settings.lockout;
    if !lockout.enabled {
        return Ok(());
    }
    for (i, key) in keys.iter().enumerate() {
        let max = if i == 0 {
            lockout.max_failures_per_user
        } else {
            lockout.max_failures_per_ip
        };
        let locked = ctx
            .store
            .record_login_failure(key, now, lockout.window, max, lockout.duration)
            .await?;
        if locked {
            let what = if i == 0 {
                "username_locked"
            } else {
                "address_locked"
            };
            audit(
                ctx,
                "lockout",
                Some(username),
                Some(client.id()),
                None,
                what,
                now,
            )
            .await;
        }
    }
    Ok(())
}
