//! Retention deletes, on PostgreSQL. `skip locked`: instances cleaning at the same
//! time take different rows instead of waiting for each other.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::PgStore;
use crate::store::{CleanupStore, Purged, StoreError, StoreResult};

#[async_trait]
impl CleanupStore for PgStore {
    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Purged> {
        // language=PostgreSQL
        let access = sqlx::query(
            r#"delete from access_tokens where jti in (
                 select jti from access_tokens where expires_at <= $1
                 limit $2 for update skip locked)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        // language=PostgreSQL
        let families = sqlx::query(
            r#"delete from token_families where id in (
                 select f.id from token_families f
                 where not exists (select 1 from refresh_tokens rt
                                   where rt.family_id = f.id and rt.expires_at > $1)
                   and not exists (select 1 from access_tokens at
                                   where at.family_id = f.id and at.expires_at > $1)
                 limit $2 for update skip locked)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(Purged {
            access_tokens: access.rows_affected(),
            families: families.rows_affected(),
        })
    }

    async fn erase_stale_retry_answers(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        // language=PostgreSQL
        let done = sqlx::query(
            r#"update refresh_tokens set retry_answer = null, retry_until = null
               where token_hash in (select token_hash from refresh_tokens
                                    where retry_answer is not null and retry_until <= $1
                                    limit $2 for update skip locked)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn purge_codes_and_sessions(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        // language=PostgreSQL
        let codes = sqlx::query(
            r#"delete from authorization_codes where code_hash in (
                 select code_hash from authorization_codes where expires_at < $1
                 limit $2 for update skip locked)"#,
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        // language=PostgreSQL
        let sessions = sqlx::query(
            r#"delete from browser_sessions where id in (
                 select id from browser_sessions where expires_at < $1 or ended_at < $1
                 limit $2 for update skip locked)"#,
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(codes.rows_affected() + sessions.rows_affected())
    }

    async fn purge_dpop_proofs(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        // language=PostgreSQL
        let done = sqlx::query(
            r#"delete from dpop_proofs where (jti_hash, jkt, htu) in (
                 select jti_hash, jkt, htu from dpop_proofs where expires_at <= $1
                 limit $2 for update skip locked)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn purge_audit_events(&self, before: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        // language=PostgreSQL
        let done = sqlx::query(
            r#"delete from audit_events where id in (
                 select id from audit_events where at < $1
                 limit $2 for update skip locked)"#,
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn purge_login_failures(
        &self,
        now: OffsetDateTime,
        window_start_before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        // language=PostgreSQL
        let done = sqlx::query(
            r#"delete from login_failures where key in (
                 select key from login_failures
                 where window_start <= $2 and (locked_until is null or locked_until <= $1)
                 limit $3 for update skip locked)"#,
        )
        .bind(now)
        .bind(window_start_before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }
}
