//! Authorization codes, on SQLite.

use async_trait::async_trait;

use super::{SqliteStore, id, ts, unique};
use crate::{
    crypto::token::TokenHash,
    store::{
        AuthorizationCodeRecord, CodeStore, NewAuthorizationCode, Redeem, RedeemOutcome,
        StoreError, StoreResult,
        codec::{CodeRow, RedeemFacts, capped, redeem_refusal},
        retry_read, retry_rolled_back,
    },
};

#[async_trait]
impl CodeStore for SqliteStore {
    async fn create_code(&self, c: &NewAuthorizationCode) -> StoreResult<()> {
        // A single sign-on stores a code and nothing else: one step of the writer's
        // next group ([`SqliteStore::write_in_one_step`]), so that a burst of
        // sign-ins shares commits and index pages as a burst of exchanges does.
        // language=SQLite
        let query = sqlx::query_as(
            r#"savepoint one_step;
               insert into authorization_codes
                   (code_hash, client_id, user_id, session_id, redirect_uri, redirect_uri_sent,
                    code_challenge, scope, offline, created_at, expires_at, dpop_jkt)
               values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
               returning 1 as done;
               release one_step;"#,
        )
        .bind(c.hash.as_bytes().to_vec())
        .bind(c.client_id.clone())
        .bind(id(c.user_id))
        .bind(id(c.session_id))
        .bind(c.redirect_uri.clone())
        .bind(c.redirect_uri_sent)
        .bind(c.code_challenge.clone())
        .bind(c.scope.clone())
        .bind(c.offline)
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .bind(c.dpop_jkt.clone());
        let _: Vec<(i64,)> = self
            .write_in_one_step(query, unique("authorization_codes_pkey"))
            .await?;
        Ok(())
    }

    async fn find_code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCodeRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let row: Option<CodeRow<String, i64>> = sqlx::query_as(
                r#"select c.client_id, c.user_id, u.username, u.disabled as user_disabled,
                          c.session_id, s.expires_at as session_expires_at, c.redirect_uri, c.redirect_uri_sent, c.code_challenge,
                          c.scope, c.offline, c.dpop_jkt, c.expires_at, c.used_at, c.family_id
                   from authorization_codes c join users u on u.id = c.user_id
                   left join browser_sessions s on s.id = c.session_id
                   where c.code_hash = ?1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn redeem_code(&self, r: &Redeem) -> StoreResult<RedeemOutcome> {
        retry_rolled_back(move || async move {
            // One step in a savepoint of a `begin immediate` transaction: of concurrent redeems
            // exactly one finds the code unspent, and a logout runs wholly before or
            // after it. The code then names this request's new family (`?3`, fresh
            // and random), which is what every later write checks for: they all
            // happen, or none does. The last statement reads the code's state under
            // the same lock, for the answer either way.
            let f = &r.family;
            // language=SQLite
            let query = sqlx::query_as(
                r#"savepoint one_step;
                   update authorization_codes set used_at = ?2, family_id = ?3
                   where code_hash = ?1 and used_at is null and expires_at > ?2
                     and exists (select 1 from browser_sessions s
                                 where s.id = authorization_codes.session_id
                                   and s.ended_at is null and s.expires_at > ?2);
                   insert into token_families (id, client_id, user_id, scope, refresh_count,
                                               created_at, session_id, offline, expires_at,
                                               dpop_jkt)
                   select ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?21 from authorization_codes
                   where code_hash = ?1 and family_id = ?3;
                   insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
                   select ?11, ?3, ?12, ?13 from authorization_codes
                   where ?11 is not null and code_hash = ?1 and family_id = ?3;
                   insert into access_tokens (jti, family_id, issued_at, expires_at)
                   select ?14, ?3, ?15, ?16 from authorization_codes
                   where code_hash = ?1 and family_id = ?3;
                   insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
                   select ?2, ?17, ?18, ?4, ?3, ?19, ?20 from authorization_codes
                   where code_hash = ?1 and family_id = ?3;
                   select coalesce(family_id = ?3, 0) as redeemed, 1 as found, used_at is not null as used,
                          family_id, expires_at <= ?2 as expired
                   from authorization_codes where code_hash = ?1;
                   release one_step;"#,
            )
            .bind(r.code.as_bytes().to_vec())
            .bind(ts(r.now))
            .bind(id(f.family_id))
            .bind(f.client_id.clone())
            .bind(f.user_id.map(id))
            .bind(f.scope.clone())
            .bind(ts(f.created_at))
            .bind(f.session_id.map(id))
            .bind(f.offline)
            .bind(f.expires_at.map(ts))
            .bind(f.refresh.as_ref().map(|rt| rt.hash.as_bytes().to_vec()))
            .bind(f.refresh.as_ref().map(|rt| ts(rt.issued_at)))
            .bind(f.refresh.as_ref().map(|rt| ts(rt.expires_at)))
            .bind(id(f.access.jti))
            .bind(ts(f.access.issued_at))
            .bind(ts(f.access.expires_at))
            .bind(r.audit.kind.as_str().to_owned())
            .bind(r.audit.username.as_deref().map(|v| capped(v).to_owned()))
            .bind(r.audit.ip.as_deref().map(|v| capped(v).to_owned()))
            .bind(r.audit.outcome.as_str().to_owned())
            .bind(f.dpop_jkt.clone());
            let rows: Vec<RedeemStep> = self
                .write_in_one_step(query, unique("token_families_pkey"))
                .await?;
            match rows.into_iter().next() {
                Some(RedeemStep { redeemed: true, .. }) => Ok(RedeemOutcome::Redeemed),
                Some(RedeemStep {
                    found,
                    used,
                    family_id,
                    expired,
                    ..
                }) => redeem_refusal(RedeemFacts {
                    found,
                    used,
                    family_id,
                    expired,
                }),
                None => redeem_refusal(RedeemFacts::<String> {
                    found: false,
                    used: false,
                    family_id: None,
                    expired: false,
                }),
            }
        })
        .await
    }
}

/// The code's state after the one-step redeem, under its write lock.
#[derive(sqlx::FromRow)]
struct RedeemStep {
    /// The code now names this request's family: it was redeemed by it.
    redeemed: bool,
    found: bool,
    used: bool,
    family_id: Option<String>,
    expired: bool,
}
