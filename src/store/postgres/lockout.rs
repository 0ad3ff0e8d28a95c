//! Brute-force counters, on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::PgStore;
use crate::store::{
    LockoutStore, LoginAttempt, StoreError, StoreResult,
    codec::{capped, login_attempt},
    retry_rolled_back,
};

#[async_trait]
impl LockoutStore for PgStore {
    async fn begin_login_attempt(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
        max: u32,
    ) -> StoreResult<LoginAttempt> {
        retry_rolled_back(move || async move {
            // One upsert over the old row: a locked key refuses (2); an ended window
            // or lock starts a new one; otherwise the attempt is allowed (0) while
            // failures and pending attempts stay under the limit, and refused (1)
            // at it. Every refusal is counted in `refused`.
            // language=PostgreSQL
            let (code,): (i32,) = sqlx::query_as(
                r#"insert into login_failures as lf
                       (key, window_start, failures, pending, locked_until, refused, last_attempt)
                   values ($1, $2, 0, case when $4 > 0 then 1 else 0 end, null,
                           case when $4 > 0 then 0 else 1 end, case when $4 > 0 then 0 else 1 end)
                   on conflict (key) do update set
                     last_attempt = case
                       when lf.locked_until > $2 then 2
                       when lf.window_start <= $3 or lf.locked_until is not null
                         then case when $4 > 0 then 0 else 1 end
                       when lf.failures + lf.pending < $4 then 0
                       else 1 end,
                     pending = case
                       when lf.locked_until > $2 then lf.pending
                       when lf.window_start <= $3 or lf.locked_until is not null
                         then case when $4 > 0 then 1 else 0 end
                       when lf.failures + lf.pending < $4 then lf.pending + 1
                       else lf.pending end,
                     refused = case
                       when lf.locked_until > $2 then lf.refused + 1
                       when lf.window_start <= $3 or lf.locked_until is not null
                         then case when $4 > 0 then 0 else 1 end
                       when lf.failures + lf.pending < $4 then lf.refused
                       else lf.refused + 1 end,
                     failures = case
                       when lf.locked_until > $2 then lf.failures
                       when lf.window_start <= $3 or lf.locked_until is not null then 0
                       else lf.failures end,
                     window_start = case
                       when lf.locked_until > $2 then lf.window_start
                       when lf.window_start <= $3 or lf.locked_until is not null then $2
                       else lf.window_start end,
                     locked_until = case when lf.locked_until > $2 then lf.locked_until end
                   returning last_attempt"#,
            )
            .bind(capped(key))
            .bind(now)
            .bind(now - window)
            .bind(i64::from(max))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(login_attempt(code.into()))
        })
        .await
    }

    async fn end_login_attempt(
        &self,
        key: &str,
        failed: bool,
        now: OffsetDateTime,
        max: u32,
        lock_for: Duration,
    ) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // The failure that reaches the limit sets the lock.
            // language=PostgreSQL
            let locked: Option<(bool,)> = sqlx::query_as(
                r#"update login_failures set
                     pending = greatest(pending - 1, 0),
                     failures = case when $2 then failures + 1 else failures end,
                     locked_until = case when $2 and failures + 1 >= $3 and locked_until is null
                                         then $4 else locked_until end
                   where key = $1
                   returning $2 and failures = $3"#,
            )
            .bind(capped(key))
            .bind(failed)
            .bind(i64::from(max))
            .bind(now + lock_for)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(locked.is_some_and(|(l,)| l))
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // language=PostgreSQL
            sqlx::query(r#"delete from login_failures where key = $1"#)
                .bind(capped(key))
                .execute(&self.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            Ok(())
        })
        .await
    }

    async fn locked_keys(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<(String, OffsetDateTime)>> {
        let keys: Vec<&str> = keys.iter().map(|k| capped(k)).collect();
        // language=PostgreSQL
        let rows: Vec<(String, OffsetDateTime)> = sqlx::query_as(
            r#"select key, locked_until from login_failures
               where key = any($1) and locked_until > $2"#,
        )
        .bind(keys)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows)
    }
}
