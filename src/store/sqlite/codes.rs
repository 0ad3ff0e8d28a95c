//! Authorization codes, on SQLite.

use async_trait::async_trait;

use super::{SqliteStore, families::insert_family, id, ts, unique};
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
        // language=SQLite
        sqlx::query(
            r#"insert into authorization_codes
                   (code_hash, client_id, user_id, session_id, redirect_uri, redirect_uri_sent,
                    code_challenge, scope, offline, created_at, expires_at, dpop_jkt)
               values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"#,
        )
        .bind(c.hash.as_bytes().as_slice())
        .bind(&c.client_id)
        .bind(id(c.user_id))
        .bind(id(c.session_id))
        .bind(&c.redirect_uri)
        .bind(c.redirect_uri_sent)
        .bind(c.code_challenge.as_deref())
        .bind(&c.scope)
        .bind(c.offline)
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .bind(c.dpop_jkt.as_deref())
        .execute(&self.write)
        .await
        .map_err(unique("authorization_codes_pkey"))?;
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
            // One `begin immediate` transaction: of concurrent redeems exactly one
            // finds the code unspent, and a logout runs wholly before or after it.
            let mut tx = self.begin_write().await?;
            // language=SQLite
            let spent = sqlx::query(
                r#"update authorization_codes set used_at = ?2, family_id = ?3
                   where code_hash = ?1 and used_at is null and expires_at > ?2
                     and exists (select 1 from browser_sessions s
                                 where s.id = authorization_codes.session_id
                                   and s.ended_at is null and s.expires_at > ?2)"#,
            )
            .bind(r.code.as_bytes().as_slice())
            .bind(ts(r.now))
            .bind(id(r.family.family_id))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            if spent.rows_affected() == 1 {
                insert_family(&mut tx, &r.family).await?;
                // language=SQLite
                sqlx::query(
                    r#"insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
                       values (?1, ?2, ?3, ?4, ?5, ?6, ?7)"#,
                )
                .bind(ts(r.now))
                .bind(r.audit.kind.as_str())
                .bind(r.audit.username.as_deref().map(capped))
                .bind(&r.family.client_id)
                .bind(id(r.family.family_id))
                .bind(r.audit.ip.as_deref().map(capped))
                .bind(r.audit.outcome.as_str())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
                tx.commit().await.map_err(StoreError::from_sqlx)?;
                return Ok(RedeemOutcome::Redeemed);
            }
            // language=SQLite
            let facts: Option<(bool, Option<String>, bool)> = sqlx::query_as(
                r#"select used_at is not null, family_id, expires_at <= ?2
                   from authorization_codes where code_hash = ?1"#,
            )
            .bind(r.code.as_bytes().as_slice())
            .bind(ts(r.now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            let found = facts.is_some();
            let (used, family_id, expired) = facts.unwrap_or((false, None, false));
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
