//! Authorization codes, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, unique};
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
impl CodeStore for PgStore {
    async fn create_code(&self, c: &NewAuthorizationCode) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"insert into authorization_codes
                   (code_hash, client_id, user_id, session_id, redirect_uri, redirect_uri_sent,
                    code_challenge, scope, offline, created_at, expires_at, dpop_jkt)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
        )
        .bind(c.hash.as_bytes().as_slice())
        .bind(&c.client_id)
        .bind(c.user_id)
        .bind(c.session_id)
        .bind(&c.redirect_uri)
        .bind(c.redirect_uri_sent)
        .bind(c.code_challenge.as_deref())
        .bind(&c.scope)
        .bind(c.offline)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.dpop_jkt.as_deref())
        .execute(&self.pool)
        .await
        .map_err(unique("authorization_codes_pkey"))?;
        Ok(())
    }

    async fn find_code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCodeRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<CodeRow<Uuid, OffsetDateTime>> = sqlx::query_as(
                r#"select c.client_id, c.user_id, u.username, u.disabled as user_disabled,
                          c.session_id, s.expires_at as session_expires_at, c.redirect_uri, c.redirect_uri_sent, c.code_challenge,
                          c.scope, c.offline, c.dpop_jkt, c.expires_at, c.used_at, c.family_id
                   from authorization_codes c join users u on u.id = c.user_id
                   left join browser_sessions s on s.id = c.session_id
                   where c.code_hash = $1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn redeem_code(&self, r: &Redeem) -> StoreResult<RedeemOutcome> {
        retry_rolled_back(move || async move {
            let f = &r.family;
            // One statement. It locks the code, then its session: of concurrent
            // redeems the later ones wait and then see the code spent, and a logout
            // (`end_session` locks the session first) either waits for this family
            // to commit and revokes it, or has ended the session before it is read.
            // language=PostgreSQL
            let (redeemed, found, used, family_id, expired): (
                bool,
                bool,
                bool,
                Option<Uuid>,
                bool,
            ) = sqlx::query_as(
                r#"with code as (
                       select code_hash, session_id, used_at, expires_at, family_id
                       from authorization_codes where code_hash = $1
                       for update
                   ), sess as (
                       select id, ended_at, expires_at from browser_sessions
                       where id = (select session_id from code)
                       for update
                   ), allowed as (
                       select c.code_hash from code c join sess s on s.id = c.session_id
                       where c.used_at is null and c.expires_at > $2
                         and s.ended_at is null and s.expires_at > $2
                   ), spent as (
                       update authorization_codes a set used_at = $2, family_id = $3
                       from allowed where a.code_hash = allowed.code_hash
                       returning a.code_hash
                   ), family as (
                       insert into token_families (id, client_id, user_id, scope, refresh_count,
                                                   created_at, session_id, offline, expires_at,
                                                   dpop_jkt)
                       select $3, $4, $5, $6, 0, $7, $8, $9, $10, $21 from spent
                       returning id
                   ), refresh as (
                       insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
                       select $11, id, $12, $13 from family where $11::bytea is not null
                   ), access as (
                       insert into access_tokens (jti, family_id, issued_at, expires_at)
                       select $14, id, $15, $16 from family
                   ), audit as (
                       insert into audit_events (at, kind, username, client_id, family_id, ip,
                                                 outcome, target)
                       select $2, $17, $18, $4, id, $19, $20, null from family
                   )
                   select exists (select 1 from spent),
                          exists (select 1 from code),
                          coalesce((select used_at is not null from code), false),
                          (select family_id from code),
                          coalesce((select expires_at <= $2 from code), false)"#,
            )
            .bind(r.code.as_bytes().as_slice())
            .bind(r.now)
            .bind(f.family_id)
            .bind(&f.client_id)
            .bind(f.user_id)
            .bind(&f.scope)
            .bind(f.created_at)
            .bind(f.session_id)
            .bind(f.offline)
            .bind(f.expires_at)
            .bind(f.refresh.as_ref().map(|t| t.hash.as_bytes().to_vec()))
            .bind(f.refresh.as_ref().map(|t| t.issued_at))
            .bind(f.refresh.as_ref().map(|t| t.expires_at))
            .bind(f.access.jti)
            .bind(f.access.issued_at)
            .bind(f.access.expires_at)
            .bind(r.audit.kind.as_str())
            .bind(r.audit.username.as_deref().map(capped))
            .bind(r.audit.ip.as_deref().map(capped))
            .bind(r.audit.outcome.as_str())
            .bind(f.dpop_jkt.as_deref())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            if redeemed {
                return Ok(RedeemOutcome::Redeemed);
            }
            redeem_refusal(RedeemFacts {
                found,
                used,
                family_id,
                expired,
            })
        })
        .await
    }
}
