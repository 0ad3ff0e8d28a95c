//! The refresh token grant (RFC 6749 §6) with single use, rotation, a per-family
//! counter, reuse detection (RFC 9700 §4.14.2) and a retry window.
//!
//! The grant reads the token, decides, and prepares everything — the signed
//! access token, the successor, the sealed retry answer — before it asks the store
//! to consume the token in one step ([`FamilyStore::consume_refresh_token`]), which
//! re-checks every condition atomically. Once that has committed, nothing is left
//! that can fail: a client whose request failed never finds its retry counted as
//! reuse.
//!
//! The retry window (`refresh.grace_period`): a client whose answer was lost
//! presents the token it just spent again. Within the window, by the same client,
//! while the successor is unspent and the family live, it gets exactly the same
//! tokens again — no new family member, no counter move, no reuse detection. The
//! answer is kept sealed under a key derived from the spent token
//! ([`crate::crypto::retry`]), so the store never holds a usable token.
//!
//! DPoP (RFC 9449 §5): a family bound to a key (a public client's, see
//! [`dpop::family_binding`]) is refreshed only with a proof of that key; any
//! other request is refused before anything is spent, and without revoking the
//! family — whoever lacks the key must not be able to end the login. The proof is
//! recorded in the consuming step itself; a retry must bring a new proof of the
//! key its answer's access token is bound to.
//!
//! [`FamilyStore::consume_refresh_token`]: crate::store::FamilyStore::consume_refresh_token

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    crypto::{retry, token::RefreshToken},
    oauth::{
        AuthenticatedClient, GrantContext, OAuthError, Scope, TokenResponse, TokenType,
        audit::Audit,
        dpop::{self, VerifiedProof},
        policy::{RefreshPolicy, refresh_available},
        scope,
        token::{mint_access_token, response},
    },
    store::{
        AuditKind, Consume, ConsumeOutcome, NewRefreshToken, Outcome, RefreshTokenRecord,
        SealedAnswer,
    },
};

const INVALID: &str = "the refresh token is invalid";
const REVOKED: &str = "the refresh token has been revoked";
const WRONG_KEY: &str = "the refresh token is bound to another DPoP key";

/// What is sealed for a retry: the tokens, and when the access token expires so
/// that `expires_in` stays true.
#[derive(Serialize, Deserialize)]
struct RetryAnswer {
    access_token: String,
    access_expires_at: i64,
    refresh_token: String,
    scope: Option<String>,
    /// The key the access token is bound to (RFC 9449 §6.1), if any.
    #[serde(default)]
    jkt: Option<String>,
}

/// Runs the refresh token grant.
///
/// # Errors
/// `unsupported_grant_type` when refresh is off on the server, `unauthorized_client`
/// when off for the client, `invalid_scope` for a wider scope, `invalid_grant` for a
/// token that is unknown, another client's, expired, revoked, spent or over the limit.
#[tracing::instrument(skip_all, fields(grant = "refresh_token", client_id = %client.id()))]
pub async fn grant(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    token: RefreshToken,
    requested: Option<Scope>,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    refresh_available(ctx.settings)?;
    let policy = RefreshPolicy::for_client(ctx.settings, client);
    if !policy.issue {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the refresh_token grant".into(),
        ));
    }

    let hash = token.hash();
    let Some(record) = ctx.store.find_refresh_token(&hash).await? else {
        return Err(OAuthError::InvalidGrant(INVALID.into()));
    };
    if record.family_revoked {
        return Err(OAuthError::InvalidGrant(REVOKED.into()));
    }
    // RFC 9449 §5: "The binding MUST be validated when the refresh token is later
    // presented to get new access tokens." Before reuse detection: a spent token
    // without its key proves no theft worth a revocation.
    if !dpop::matches_binding(record.dpop_jkt.as_deref(), proof) {
        return Err(wrong_key(ctx, client, &record, now).await);
    }
    if record.used_at.is_some() {
        return spent_token_presented(ctx, client, &token, &record, proof, now).await;
    }
    // RFC 6749 §6: "The requested scope MUST NOT include any scope not originally
    // granted by the resource owner, and if omitted is treated as equal to the
    // scope originally granted." A narrower scope applies to the new access token
    // only; the family keeps the original scope.
    let granted = Scope::parse(&record.scope)?;
    let access_scope = scope::narrow(requested, &granted)?;

    // Everything that can fail happens before the consume commits.
    let access =
        mint_access_token(ctx, &record.subject, client.id(), &access_scope, proof, now).await?;
    let rotate = ctx.settings.refresh.rotate;
    let successor = rotate.then(RefreshToken::generate);
    // WSO2's RenewRefreshTokenForRefreshGrant=false: with rotation off the same
    // refresh token is returned until it expires.
    let refresh_token = successor.as_ref().unwrap_or(&token).expose().to_owned();
    let access_expires_at = access.record.expires_at;
    let (response, access) = response(access, Some(refresh_token.clone()), &access_scope);
    let retry = if rotate && !policy.grace_period.is_zero() {
        let answer = RetryAnswer {
            access_token: response.access_token.clone(),
            access_expires_at: access_expires_at.unix_timestamp(),
            refresh_token,
            scope: response.scope.clone(),
            jkt: proof.map(|p| p.jkt.clone()),
        };
        let plain = serde_json::to_vec(&answer).map_err(|e| {
            OAuthError::Internal(anyhow::Error::new(e).context("sealing the retry answer"))
        })?;
        Some(SealedAnswer {
            ciphertext: retry::seal(&token, &hash, &plain),
            until: now + policy.grace_period,
        })
    } else {
        None
    };
    let outcome = ctx
        .store
        .consume_refresh_token(&Consume {
            token: hash,
            client_id: client.id().to_owned(),
            now,
            max_refreshes: policy.max_refreshes,
            successor: successor.as_ref().map(|rt| NewRefreshToken {
                hash: rt.hash(),
                issued_at: now,
                expires_at: policy.expires_at(now, record.offline, record.family_expires_at),
            }),
            access,
            retry,
            proof: proof.map(|p| p.usage(&ctx.settings.dpop, now)),
            bind_family: dpop::family_binding(client, proof).is_some(),
            audit: Audit::new(ctx, AuditKind::Refresh, Outcome::Success, now)
                .subject(&record.subject)
                .client(client.id())
                .family(record.family_id)
                .build(),
        })
        .await?;
    match outcome {
        ConsumeOutcome::Consumed { refresh_count } => {
            tracing::info!(family_id = %record.family_id, refresh_count, "refresh token rotated");
            Ok(response)
        }
        // Another request spent the token between the read and the consume: a
        // concurrent duplicate (answered from its retry answer) or reuse.
        ConsumeOutcome::AlreadyUsed => match ctx.store.find_refresh_token(&hash).await? {
            Some(spent) => spent_token_presented(ctx, client, &token, &spent, proof, now).await,
            None => Err(OAuthError::InvalidGrant(INVALID.into())),
        },
        // RFC 6749 §6: the server MUST "ensure that the refresh token was issued to
        // the authenticated client".
        ConsumeOutcome::WrongClient => {
            tracing::warn!(family_id = %record.family_id, "refresh token presented by another client");
            Err(OAuthError::InvalidGrant(INVALID.into()))
        }
        ConsumeOutcome::Expired => Err(OAuthError::InvalidGrant(
            "the refresh token has expired".into(),
        )),
        ConsumeOutcome::Revoked => Err(OAuthError::InvalidGrant(REVOKED.into())),
        ConsumeOutcome::SubjectDisabled => Err(OAuthError::InvalidGrant(
            "the user account is disabled".into(),
        )),
        ConsumeOutcome::LimitReached => Err(limit_reached(policy.max_refreshes)),
        ConsumeOutcome::WrongKey => Err(wrong_key(ctx, client, &record, now).await),
        ConsumeOutcome::ProofReplayed => Err(dpop::replayed(ctx, client.id(), now).await),
        ConsumeOutcome::Unknown => Err(OAuthError::InvalidGrant(INVALID.into())),
    }
}

fn limit_reached(max: u32) -> OAuthError {
    OAuthError::InvalidGrant(format!(
        "the refresh limit of {max} for this login is reached; sign in again"
    ))
}

/// A DPoP-bound family presented without a proof of its key: refused, audited,
/// nothing spent and nothing revoked.
async fn wrong_key(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    record: &RefreshTokenRecord,
    now: OffsetDateTime,
) -> OAuthError {
    Audit::new(ctx, AuditKind::DpopWrongKey, Outcome::Refused, now)
        .subject(&record.subject)
        .client(client.id())
        .family(record.family_id)
        .record(ctx)
        .await;
    tracing::warn!(family_id = %record.family_id, "DPoP-bound refresh token presented without its key");
    OAuthError::InvalidGrant(WRONG_KEY.into())
}

/// A spent token: the same answer again inside its retry window, reuse otherwise.
async fn spent_token_presented(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    token: &RefreshToken,
    record: &RefreshTokenRecord,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    match retry_answer(client, token, record, proof, now) {
        Retry::Answer(answer) => {
            // RFC 9449 §11.1: the retry's own proof is new, or it is a replay.
            if let Some(proof) = proof {
                dpop::record_use(ctx, client.id(), proof, now).await?;
            }
            tracing::info!(family_id = %record.family_id, "retried refresh answered with the same tokens");
            // Shown in the family's chain as `retried`; a counter, not an audit row
            // per retry, so that retries cannot grow the trail.
            if let Err(e) = ctx.store.note_retry(&record.hash, now).await {
                tracing::error!(error = %e, "counting a retry failed");
            }
            Ok(answer)
        }
        // The client that spent the token retries, but without a proof of the key
        // its answer is bound to: nothing to answer, and no theft to punish.
        Retry::WrongKey => Err(OAuthError::InvalidGrant(
            "a retried refresh must carry a new DPoP proof of the same key".into(),
        )),
        Retry::Reuse => Err(reuse_detected(ctx, record, now).await),
    }
}

/// What a spent token's presentation is.
#[derive(Debug)]
enum Retry {
    /// A retry: the first answer again.
    Answer(TokenResponse),
    /// A retry inside the window whose proof is not of the answer's key.
    WrongKey,
    /// Not a retry: reuse.
    Reuse,
}

/// The sealed answer, when this presentation is a retry: same client, inside the
/// window, successor unspent, family live and user enabled — and a proof of the
/// key the answer's access token is bound to, if it is.
fn retry_answer(
    client: &AuthenticatedClient,
    token: &RefreshToken,
    record: &RefreshTokenRecord,
    proof: Option<&VerifiedProof>,
    now: OffsetDateTime,
) -> Retry {
    let in_window = record.retry_until.is_some_and(|until| now < until);
    if !in_window
        || record.client_id != client.id()
        || record.successor_used
        || record.family_revoked
        || record.subject_disabled
    {
        return Retry::Reuse;
    }
    let Some(answer) = record
        .retry_answer
        .as_deref()
        .and_then(|sealed| retry::open(token, &record.hash, sealed))
        .and_then(|plain| serde_json::from_slice::<RetryAnswer>(&plain).ok())
    else {
        return Retry::Reuse;
    };
    if answer.jkt.as_deref() != proof.map(|p| p.jkt.as_str()) {
        return Retry::WrongKey;
    }
    let remaining = (answer.access_expires_at - now.unix_timestamp()).max(0);
    Retry::Answer(TokenResponse {
        access_token: answer.access_token,
        token_type: if answer.jkt.is_some() {
            TokenType::DPoP
        } else {
            TokenType::Bearer
        },
        expires_in: u64::try_from(remaining).unwrap_or(0),
        refresh_token: Some(answer.refresh_token),
        scope: answer.scope,
    })
}

/// RFC 9700 §4.14.2: when a spent refresh token is presented, the server cannot
/// tell the legitimate client from an attacker, so it revokes the whole family. The
/// revocation is committed on its own, although the request fails. A family born
/// from a browser session also ends that session, and with it every other family
/// of it that is not offline (ReachFive: reuse "invalidates all other tokens as
/// well as the user session").
async fn reuse_detected(
    ctx: &GrantContext<'_>,
    record: &RefreshTokenRecord,
    now: OffsetDateTime,
) -> OAuthError {
    if !ctx.settings.refresh.reuse_detection {
        ctx.report.record_reuse(false);
        return OAuthError::InvalidGrant("the refresh token was already used".into());
    }
    let revoked = match ctx.store.revoke_family(record.family_id, now).await {
        Ok(revoked) => match record.session_id {
            Some(session) => ctx.store.end_session(session, now).await.map(|_| revoked),
            None => Ok(revoked),
        },
        Err(e) => Err(e),
    };
    match revoked {
        Ok(revoked) => {
            Audit::new(ctx, AuditKind::ReuseDetected, Outcome::FamilyRevoked, now)
                .subject(&record.subject)
                .client(&record.client_id)
                .family(record.family_id)
                .record(ctx)
                .await;
            ctx.report.record_reuse(revoked);
            tracing::warn!(
                family_id = %record.family_id,
                sub = %record.subject.sub(),
                newly_revoked = revoked,
                "refresh token reuse detected: token family revoked"
            );
            OAuthError::InvalidGrant(
                "the refresh token was already used; every token of this login has been revoked"
                    .into(),
            )
        }
        Err(e) => e.into(),
    }
}

/// Grant decisions that need no store: the retry window, against a fake clock.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;
    use crate::store::{ClientRecord, Subject};

    const T0: i64 = 1_800_000_000;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
    }

    fn client(id: &str) -> AuthenticatedClient {
        AuthenticatedClient(ClientRecord {
            id: id.into(),
            secret_hash: None,
            grant_types: vec![crate::wire::GrantType::RefreshToken],
            scopes: vec!["read".into()],
            refresh_tokens: true,
            refresh_ttl: None,
            max_refreshes: None,
            grace_period: None,
            code_flow: Default::default(),
            dpop: Default::default(),
            created_at: at(0),
        })
    }

    /// A token spent at `at(0)` whose retry window lasts 10 s.
    fn spent(token: &RefreshToken) -> RefreshTokenRecord {
        let answer = RetryAnswer {
            access_token: "eyJ.access.token".into(),
            access_expires_at: T0 + 600,
            refresh_token: "rotor_rt_successor".into(),
            scope: Some("read".into()),
            jkt: None,
        };
        let plain = serde_json::to_vec(&answer).unwrap();
        RefreshTokenRecord {
            hash: token.hash(),
            family_id: Uuid::new_v4(),
            client_id: "app".into(),
            subject: Subject::User {
                id: Uuid::new_v4(),
                username: "alice".into(),
            },
            subject_disabled: false,
            scope: "read".into(),
            refresh_count: 1,
            family_revoked: false,
            session_id: None,
            offline: false,
            family_expires_at: None,
            dpop_jkt: None,
            issued_at: at(-60),
            expires_at: at(600),
            used_at: Some(at(0)),
            successor_used: false,
            retry_answer: Some(retry::seal(token, &token.hash(), &plain)),
            retry_until: Some(at(0) + Duration::from_secs(10)),
        }
    }

    #[test]
    fn a_retry_inside_the_window_gets_the_same_tokens_with_the_time_left() {
        let token = RefreshToken::generate();
        let Retry::Answer(answer) =
            retry_answer(&client("app"), &token, &spent(&token), None, at(4))
        else {
            panic!("not answered as a retry");
        };
        assert_eq!(answer.access_token, "eyJ.access.token");
        assert_eq!(answer.refresh_token.as_deref(), Some("rotor_rt_successor"));
        assert_eq!(answer.expires_in, 596);
    }

    #[test]
    fn a_retry_at_the_end_of_the_window_is_reuse() {
        let token = RefreshToken::generate();
        assert!(matches!(
            retry_answer(&client("app"), &token, &spent(&token), None, at(10)),
            Retry::Reuse
        ));
    }

    #[test]
    fn a_retry_by_another_client_or_after_the_successor_was_used_is_reuse() {
        let token = RefreshToken::generate();
        let record = spent(&token);
        assert!(matches!(
            retry_answer(&client("other"), &token, &record, None, at(1)),
            Retry::Reuse
        ));
        let moved_on = RefreshTokenRecord {
            successor_used: true,
            ..record.clone()
        };
        assert!(matches!(
            retry_answer(&client("app"), &token, &moved_on, None, at(1)),
            Retry::Reuse
        ));
        let revoked = RefreshTokenRecord {
            family_revoked: true,
            ..record
        };
        assert!(matches!(
            retry_answer(&client("app"), &token, &revoked, None, at(1)),
            Retry::Reuse
        ));
    }

    #[test]
    fn a_retry_with_another_token_cannot_open_the_answer() {
        let token = RefreshToken::generate();
        let record = spent(&token);
        let guess = RefreshToken::generate();
        assert!(matches!(
            retry_answer(&client("app"), &guess, &record, None, at(1)),
            Retry::Reuse
        ));
    }

    #[test]
    fn a_retry_must_prove_the_key_its_answer_is_bound_to() {
        let token = RefreshToken::generate();
        let answer = RetryAnswer {
            access_token: "eyJ.bound.token".into(),
            access_expires_at: T0 + 600,
            refresh_token: "rotor_rt_successor".into(),
            scope: None,
            jkt: Some("key-1".into()),
        };
        let record = RefreshTokenRecord {
            retry_answer: Some(retry::seal(
                &token,
                &token.hash(),
                &serde_json::to_vec(&answer).unwrap(),
            )),
            ..spent(&token)
        };
        let proof = |jkt: &str| VerifiedProof {
            jkt: jkt.into(),
            jti: crate::crypto::token::TokenHash::of("j"),
            htu: "https://rotor.test/oauth2/token".into(),
        };
        let app = client("app");
        assert!(matches!(
            retry_answer(&app, &token, &record, None, at(1)),
            Retry::WrongKey
        ));
        assert!(matches!(
            retry_answer(&app, &token, &record, Some(&proof("key-2")), at(1)),
            Retry::WrongKey
        ));
        let Retry::Answer(again) =
            retry_answer(&app, &token, &record, Some(&proof("key-1")), at(1))
        else {
            panic!("not answered as a retry");
        };
        assert_eq!(again.token_type, TokenType::DPoP);
        // Outside the window a wrong key is no retry at all.
        assert!(matches!(
            retry_answer(&app, &token, &record, None, at(11)),
            Retry::Reuse
        ));
    }
}
