//! Browser sessions, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, unique};
use crate::{
    crypto::token::TokenHash,
    store::{
        BrowserSessionRecord, CreatedPage, NewBrowserSession, SessionStore, StoreError,
        StoreResult,
        codec::{SessionRow, capped},
        retry_read, retry_rolled_back,
    },
};

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, s: &NewBrowserSession) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"insert into browser_sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, ip)
               values ($1, $2, $3, $4, $4, $5, $6)"#,
        )
        .bind(s.id)
        .bind(s.hash.as_bytes().as_slice())
        .bind(s.user_id)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.ip.as_deref().map(capped))
        .execute(&self.pool)
        .await
        .map_err(unique("browser_sessions_pkey"))?;
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<BrowserSessionRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<SessionRow<Uuid, OffsetDateTime>> = sqlx::query_as(
                r#"select s.id, s.user_id, u.username, u.disabled as user_disabled, s.created_at,
                          s.last_seen_at, s.expires_at, s.ended_at, s.ip
                   from browser_sessions s join users u on u.id = s.user_id
                   where s.token_hash = $1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn touch_session(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"update browser_sessions set last_seen_at = $2
               where id = $1 and last_seen_at < $2"#,
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn end_session(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // Two statements in one transaction, in this order: the first locks the
            // session row, so that a code being redeemed for it (which locks the row
            // too) either commits before — and the second statement, with a fresh
            // snapshot, revokes its family — or sees the session ended.
            let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
            // language=PostgreSQL
            let ended = sqlx::query(
                r#"update browser_sessions set ended_at = $2 where id = $1 and ended_at is null"#,
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            // language=PostgreSQL
            sqlx::query(
                r#"with revoked as (
                       update token_families set revoked_at = $2
                       where session_id = $1 and not offline and revoked_at is null
                       returning id
                   )
                   update refresh_tokens set retry_answer = null, retry_until = null
                   where family_id in (select id from revoked) and retry_answer is not null"#,
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(ended.rows_affected() == 1)
        })
        .await
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        page: &CreatedPage,
    ) -> StoreResult<Vec<BrowserSessionRecord>> {
        // language=PostgreSQL
        let rows: Vec<SessionRow<Uuid, OffsetDateTime>> = sqlx::query_as(
            r#"select s.id, s.user_id, u.username, u.disabled as user_disabled, s.created_at,
                      s.last_seen_at, s.expires_at, s.ended_at, s.ip
               from browser_sessions s join users u on u.id = s.user_id
               where s.user_id = $1
                 and ($3::timestamptz is null or (s.created_at, s.id) < ($3, $4::uuid))
               order by s.created_at desc, s.id desc limit $2"#,
        )
        .bind(user_id)
        .bind(i64::from(page.limit))
        .bind(page.before.map(|c| c.created_at))
        .bind(page.before.map(|c| c.id))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
