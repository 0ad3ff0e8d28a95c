//! The authorization code grant's token request (RFC 6749 §4.1.3, OAuth 2.1
//! §4.1.3, RFC 7636 §4.5–4.6, RFC 9700 §4.8).
//!
//! The code is read, every binding checked — client, redirect URI, PKCE, lifetime,
//! user — and the tokens prepared before the store spends the code and stores the
//! family and its audit event in one step ([`CodeStore::redeem_code`]), so that of concurrent
//! exchanges exactly one succeeds and nothing can fail after it committed.
//!
//! A code presented again in an otherwise valid request is a replay: every token
//! issued from it is revoked (OAuth 2.1 §4.1.3 "SHOULD revoke all tokens
//! previously issued based on that authorization code").
//!
//! [`CodeStore::redeem_code`]: crate::store::CodeStore::redeem_code

use time::OffsetDateTime;

use super::require_grant;
use crate::{
    crypto::token::{AuthorizationCode, RefreshToken},
    oauth::{
        AuthenticatedClient, GrantContext, GrantType, OAuthError, Scope, TokenResponse,
        audit::Audit,
        dpop::{self, VerifiedProof},
        pkce::{CodeChallenge, check_verifier},
        policy::RefreshPolicy,
        token::{mint_access_token, response},
    },
    store::{
        AuditKind, AuthorizationCodeRecord, NewFamily, NewRefreshToken, Outcome, Redeem,
        RedeemOutcome, Subject, new_row_id,
    },
};

const INVALID: &str = "the authorization code is invalid";

/// The token request's own parameters (RFC 6749 §4.1.3, RFC 7636 §4.5).
#[derive(Debug)]
pub struct Exchange {
    pub code: AuthorizationCode,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// Runs the token request of the authorization code grant.
///
/// # Errors
/// `unauthorized_client` when the client may not use the grant; `invalid_request`
/// for a malformed `code_verifier`; `invalid_grant` for a code that is unknown,
/// another client's, expired, spent, of an ended session or a disabled user, or
/// whose redirect URI, PKCE verifier or DPoP key does not match.
#[tracing::instrument(skip_all, fields(grant = "authorization_code", client_id = %client.id()))]
pub async fn grant(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    exchange: Exchange,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let Exchange {
        code,
        redirect_uri,
        code_verifier,
    } = exchange;
    require_grant(client, GrantType::AuthorizationCode)?;
    if let Some(verifier) = &code_verifier {
        check_verifier(verifier)?;
    }
    let hash = code.hash();
    let Some(record) = ctx.store.find_code(&hash).await? else {
        return Err(OAuthError::InvalidGrant(INVALID.into()));
    };
    // RFC 6749 §4.1.3: "ensure that the authorization code was issued to the
    // authenticated confidential client, or if the client is public, ensure that
    // the code was issued to "client_id" in the request".
    if record.client_id != client.id() {
        tracing::warn!("authorization code presented by another client");
        return Err(OAuthError::InvalidGrant(INVALID.into()));
    }
    check_bindings(&record, redirect_uri.as_deref(), code_verifier.as_deref())?;
    // RFC 9449 §10: a code bound with `dpop_jkt` is exchanged only with a proof
    // of that key. Checked before the replay rule: whoever lacks the key must not
    // be able to revoke what the code gave.
    if !dpop::matches_binding(record.dpop_jkt.as_deref(), proof) {
        Audit::new(ctx, AuditKind::DpopWrongKey, Outcome::Refused, now)
            .username(&record.username)
            .client(client.id())
            .record(ctx)
            .await;
        return Err(OAuthError::InvalidGrant(
            "the authorization code is bound to another DPoP key (dpop_jkt)".into(),
        ));
    }
    if record.used_at.is_some() {
        return Err(replayed(ctx, &record, now).await);
    }
    if record.expires_at <= now {
        return Err(OAuthError::InvalidGrant(
            "the authorization code has expired".into(),
        ));
    }
    if record.user_disabled {
        return Err(OAuthError::InvalidGrant(
            "the user account is disabled".into(),
        ));
    }

    let scope = Scope::parse(&record.scope)?;
    let subject = Subject::User {
        id: record.user_id,
        username: record.username.clone(),
    };
    let access = mint_access_token(ctx, &subject, client.id(), &scope, proof, now).await?;
    let policy = RefreshPolicy::for_client(ctx.settings, client);
    // ReachFive: a client may get refresh tokens from the flow only with
    // offline_access.
    let issue_refresh =
        policy.issue && (record.offline || !client.0.code_flow.refresh_requires_offline);
    let refresh = issue_refresh.then(RefreshToken::generate);
    // A login without offline_access belongs to its browser session: none of its
    // refresh tokens outlives the session (Secret Server's rule).
    let family_end = if record.offline {
        None
    } else {
        Some(record.session_expires_at.unwrap_or(now))
    };
    let family_id = new_row_id();
    let (response, access) = response(
        access,
        refresh.as_ref().map(|rt| rt.expose().to_owned()),
        &scope,
    );
    if let Some(proof) = proof {
        dpop::record_use(ctx, client.id(), proof, now).await?;
    }
    let outcome = ctx
        .store
        .redeem_code(&Redeem {
            code: hash,
            now,
            family: NewFamily {
                family_id,
                client_id: client.id().to_owned(),
                user_id: Some(record.user_id),
                scope: scope.to_string(),
                created_at: now,
                session_id: Some(record.session_id),
                offline: record.offline,
                expires_at: family_end,
                dpop_jkt: dpop::family_binding(client, proof),
                refresh: refresh.as_ref().map(|rt| NewRefreshToken {
                    hash: rt.hash(),
                    issued_at: now,
                    expires_at: policy.expires_at(now, record.offline, family_end),
                }),
                access,
            },
            audit: Audit::new(ctx, AuditKind::Login, Outcome::Success, now)
                .subject(&subject)
                .client(client.id())
                .family(family_id)
                .build(),
        })
        .await?;
    match outcome {
        RedeemOutcome::Redeemed => {
            tracing::info!(%family_id, "authorization code exchanged");
            Ok(response)
        }
        // A concurrent exchange of the same code won: this one is a replay.
        RedeemOutcome::AlreadyUsed { family_id } => {
            let spent = AuthorizationCodeRecord {
                family_id,
                ..record
            };
            Err(replayed(ctx, &spent, now).await)
        }
        RedeemOutcome::Expired => Err(OAuthError::InvalidGrant(
            "the authorization code has expired".into(),
        )),
        RedeemOutcome::SessionEnded => Err(OAuthError::InvalidGrant(
            "the sign-in that issued this authorization code has ended".into(),
        )),
        RedeemOutcome::Unknown => Err(OAuthError::InvalidGrant(INVALID.into())),
    }
}

/// The redirect URI and PKCE bindings of a code (RFC 6749 §4.1.3, RFC 7636 §4.6,
/// RFC 9700 §4.8.2).
fn check_bindings(
    record: &AuthorizationCodeRecord,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    // RFC 6749 §4.1.3: redirect_uri is "REQUIRED, if the "redirect_uri" parameter
    // was included in the authorization request ..., and their values MUST be
    // identical." One sent although the request had none must be the same too.
    match redirect_uri {
        Some(sent) if sent != record.redirect_uri => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri does not match the authorization request".into(),
            ));
        }
        None if record.redirect_uri_sent => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri is required: the authorization request named one".into(),
            ));
        }
        _ => {}
    }
    match (&record.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            if !CodeChallenge::from_stored(challenge.clone()).is_met_by(verifier) {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier is required: the authorization request sent a code_challenge".into(),
            ));
        }
        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is
        // refused, or an attacker could downgrade a flow to one without PKCE.
        (None, Some(_)) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier was sent, but the authorization request sent no code_challenge"
                    .into(),
            ));
        }
        (None, None) => {}
    }
    Ok(())
}

/// A spent code presented again: the family it was exchanged for is revoked.
async fn replayed(
    ctx: &GrantContext<'_>,
    record: &AuthorizationCodeRecord,
    now: OffsetDateTime,
) -> OAuthError {
    if let Some(family_id) = record.family_id {
        match ctx.store.revoke_family(family_id, now).await {
            Ok(revoked) => {
                ctx.report.record_reuse(revoked);
                Audit::new(ctx, AuditKind::CodeReuse, Outcome::FamilyRevoked, now)
                    .username(&record.username)
                    .client(&record.client_id)
                    .family(family_id)
                    .record(ctx)
                    .await;
                tracing::warn!(%family_id, newly_revoked = revoked, "authorization code replayed: its tokens revoked");
            }
            Err(e) => return e.into(),
        }
    }
    OAuthError::InvalidGrant(
        "the authorization code was already used; every token issued from it has been revoked"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn code(challenge: Option<&str>, redirect_uri_sent: bool) -> AuthorizationCodeRecord {
        AuthorizationCodeRecord {
            client_id: "spa".into(),
            user_id: Uuid::new_v4(),
            username: "alice".into(),
            user_disabled: false,
            session_id: Uuid::new_v4(),
            session_expires_at: None,
            redirect_uri: "http://127.0.0.1:5000/cb".into(),
            redirect_uri_sent,
            code_challenge: challenge.map(str::to_owned),
            scope: "read".into(),
            offline: false,
            dpop_jkt: None,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            used_at: None,
            family_id: None,
        }
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const URI: &str = "http://127.0.0.1:5000/cb";

    #[test]
    fn the_verifier_must_meet_the_challenge() {
        let c = code(Some(CHALLENGE), true);
        check_bindings(&c, Some(URI), Some(VERIFIER)).unwrap();
        let wrong = "x".repeat(43);
        assert_eq!(
            check_bindings(&c, Some(URI), Some(&wrong))
                .unwrap_err()
                .code(),
            "invalid_grant"
        );
        assert_eq!(
            check_bindings(&c, Some(URI), None).unwrap_err().code(),
            "invalid_grant"
        );
    }

    #[test]
    fn a_verifier_without_a_challenge_is_a_downgrade_and_refused() {
        let c = code(None, true);
        check_bindings(&c, Some(URI), None).unwrap();
        assert!(check_bindings(&c, Some(URI), Some(VERIFIER)).is_err());
    }

    #[test]
    fn the_redirect_uri_must_be_the_one_of_the_request() {
        let sent = code(None, true);
        assert!(check_bindings(&sent, None, None).is_err());
        assert!(check_bindings(&sent, Some("http://127.0.0.1:5001/cb"), None).is_err());
        let defaulted = code(None, false);
        check_bindings(&defaulted, None, None).unwrap();
        check_bindings(&defaulted, Some(URI), None).unwrap();
        assert!(check_bindings(&defaulted, Some("https://evil.example/cb"), None).is_err());
    }
}
