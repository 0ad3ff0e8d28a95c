//! Checking a user's credentials, with the brute-force lockout: the one way any
//! grant or page signs a user in, so that every sign-in shares the argon2id pool,
//! the lockout counters and the audit events.
//!
//! The lockout counts an attempt *before* its password is hashed, atomically in the
//! store: of concurrent guesses at most `lockout.max_failures_per_user` are ever
//! hashed per window, whatever the concurrency, and a guess while locked costs no
//! argon2 time.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::{GrantContext, OAuthError, audit::Audit, request::MAX_USERNAME_LEN};
use crate::{
    crypto::password::Password,
    store::{AuditKind, LoginAttempt, Outcome, UserRecord},
};

/// The one answer for an unknown user and a wrong password, so that the two cannot
/// be told apart.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// The answer during a lockout. It says nothing of whether the user exists: failures
/// of unknown usernames count and lock the same way.
pub const LOCKED_OUT: &str =
    "too many failed sign-in attempts; the sign-in is temporarily locked, try again later";

/// The answer while as many sign-ins of a username or address are being checked
/// as its limit allows: 503, retry shortly.
pub const BUSY: &str =
    "too many sign-ins of this user or address are being checked at once; retry shortly";

/// Verifies `username` and `password` for the client `client_id`, under the
/// lockout: the password grant's client, or the client a login page signs in for.
///
/// # Errors
/// `invalid_request` for an over-long username; `invalid_grant` for bad
/// credentials, a locked username or address, or a disabled user;
/// `temporarily_unavailable` when the store or the hashing pool is saturated.
pub async fn verify_credentials(
    ctx: &GrantContext<'_>,
    client_id: &str,
    username: &str,
    password: Password,
    now: OffsetDateTime,
) -> Result<UserRecord, OAuthError> {
    // Request parsing refuses these already; a caller that builds the username
    // itself (a login page) meets the same rule here, before any counter or audit
    // row could hold it.
    if username.len() > MAX_USERNAME_LEN {
        return Err(OAuthError::InvalidRequest(
            "the username is too long".into(),
        ));
    }
    let keys = LockoutKeys::new(username, ctx.client_ip);
    let lockout = ctx.settings.lockout.enabled;
    if lockout {
        begin_attempt(ctx, &keys, now).await?;
    }

    let user = ctx.store.find_user(username).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = ctx.hasher.verify(password, stored_hash).await;
    let verified = match verified {
        Ok(verified) => verified,
        Err(e) => {
            if lockout {
                // Not checked after all: the attempt stops counting as pending.
                end_attempt(ctx, client_id, username, &keys, false, now).await?;
            }
            return Err(e.into());
        }
    };
    let user = match user {
        Some(u) if verified => u,
        _ => {
            if lockout {
                end_attempt(ctx, client_id, username, &keys, true, now).await?;
            }
            Audit::new(
                ctx,
                AuditKind::LoginFailed,
                Outcome::InvalidCredentials,
                now,
            )
            .username(username)
            .client(client_id)
            .record(ctx)
            .await;
            return Err(OAuthError::InvalidGrant(BAD_CREDENTIALS.into()));
        }
    };
    if lockout {
        // The user's own sign-in: the username's failures are forgotten, and the
        // address's attempt ends without counting.
        ctx.store.clear_login_failures(&keys.user).await?;
        if let Some(ip) = &keys.ip {
            let max = ctx.settings.lockout.max_failures_per_ip;
            let lock_for = ctx.settings.lockout.duration;
            ctx.store
                .end_login_attempt(ip, false, now, max, lock_for)
                .await?;
        }
    }
    if user.disabled {
        Audit::new(ctx, AuditKind::LoginFailed, Outcome::UserDisabled, now)
            .username(username)
            .client(client_id)
            .record(ctx)
            .await;
        return Err(OAuthError::InvalidGrant(
            "the user account is disabled".into(),
        ));
    }
    Ok(user)
}

/// The lockout counters of a sign-in: its username, and its client address if known.
struct LockoutKeys {
    user: String,
    ip: Option<String>,
}

/// The lockout counter of a username, in one place: the sign-in counts on it,
/// and an admin's unlock clears it.
pub fn username_lockout_key(username: &str) -> String {
    format!("user:{username}")
}

impl LockoutKeys {
    fn new(username: &str, ip: Option<IpAddr>) -> LockoutKeys {
        LockoutKeys {
            user: username_lockout_key(username),
            ip: ip.map(|ip| format!("ip:{ip}")),
        }
    }
}

/// One lockout counter of a sign-in.
struct Counter<'k> {
    key: &'k str,
    /// Failures within the window that lock the key.
    max: u32,
    /// How many failures and attempts still being checked the counter allows at
    /// once. The username's limit holds attempts in flight too, so that no burst of
    /// guesses gets past it. An address is shared (a NAT, a balancer that is not a
    /// trusted proxy) by people signing in at once: its counter refuses only once
    /// its failures locked it.
    in_flight: u32,
    /// The audit outcome when this counter locks.
    locked: Outcome,
}

/// The counters of `keys`: the username's, and the address's when known.
fn counters<'k>(ctx: &GrantContext<'_>, keys: &'k LockoutKeys) -> Vec<Counter<'k>> {
    let lockout = &ctx.settings.lockout;
    let mut counters = vec![Counter {
        key: &keys.user,
        max: lockout.max_failures_per_user,
        in_flight: lockout.max_failures_per_user,
        locked: Outcome::UsernameLocked,
    }];
    if let Some(ip) = &keys.ip {
        counters.push(Counter {
            key: ip,
            max: lockout.max_failures_per_ip,
            in_flight: u32::MAX,
            locked: Outcome::AddressLocked,
        });
    }
    counters
}

/// Counts the attempt against the username and the address before anything is
/// hashed, and refuses it when either is locked or at its limit. A refused attempt
/// is counted on the key's row, not written as an audit row of its own.
async fn begin_attempt(
    ctx: &GrantContext<'_>,
    keys: &LockoutKeys,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let lockout = &ctx.settings.lockout;
    let mut begun = Vec::new();
    for counter in counters(ctx, keys) {
        let attempt = ctx
            .store
            .begin_login_attempt(counter.key, now, lockout.window, counter.in_flight)
            .await?;
        if attempt == LoginAttempt::Allowed {
            begun.push(counter);
            continue;
        }
        // The counters already begun stop counting this attempt.
        for c in begun {
            ctx.store
                .end_login_attempt(c.key, false, now, c.max, lockout.duration)
                .await?;
        }
        tracing::info!(
            key = counter.key,
            ?attempt,
            "sign-in refused by the lockout"
        );
        return Err(match attempt {
            // Failures and attempts being checked are at the limit, without a
            // lock: a burst of concurrent sign-ins retries shortly.
            LoginAttempt::Busy => OAuthError::TemporarilyUnavailable(BUSY.into()),
            _ => OAuthError::InvalidGrant(LOCKED_OUT.into()),
        });
    }
    Ok(())
}

/// Ends the attempt on every counter; a failure counts, and the one that reaches a
/// limit locks that key and is audited.
async fn end_attempt(
    ctx: &GrantContext<'_>,
    client_id: &str,
    username: &str,
    keys: &LockoutKeys,
    failed: bool,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let lock_for = ctx.settings.lockout.duration;
    for counter in counters(ctx, keys) {
        let locked = ctx
            .store
            .end_login_attempt(counter.key, failed, now, counter.max, lock_for)
            .await?;
        if locked {
            Audit::new(ctx, AuditKind::Lockout, counter.locked, now)
                .username(username)
                .client(client_id)
                .record(ctx)
                .await;
        }
    }
    Ok(())
}
