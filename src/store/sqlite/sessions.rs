//! Browser sessions, on SQLite.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, id, ts, unique};
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
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &NewBrowserSession) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(
            r#"insert into browser_sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, ip)
               values (?1, ?2, ?3, ?4, ?4, ?5, ?6)"#,
        )
        .bind(id(s.id))
        .bind(s.hash.as_bytes().as_slice())
        .bind(id(s.user_id))
        .bind(ts(s.created_at))
        .bind(ts(s.expires_at))
        .bind(s.ip.as_deref().map(capped))
        .execute(&self.write)
        .await
        .map_err(unique("browser_sessions_pkey"))?;
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<BrowserSessionRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let row: Option<SessionRow<String, i64>> = sqlx::query_as(
                r#"select s.id, s.user_id, u.username, u.disabled as user_disabled, s.created_at,
                          s.last_seen_at, s.expires_at, s.ended_at, s.ip
                   from browser_sessions s join users u on u.id = s.user_id
                   where s.token_hash = ?1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn touch_session(&self, session: Uuid, now: OffsetDateTime) -> StoreResult<()> {
        // Every single sign-on touches its session: a step of the writer's next
        // group, like the code it stores next.
        // language=SQLite
        let query = sqlx::query_as(
            r#"savepoint one_step;
               update browser_sessions set last_seen_at = ?2
               where id = ?1 and last_seen_at < ?2;
               select changes();
               release one_step;"#,
        )
        .bind(id(session))
        .bind(ts(now));
        let _: Vec<(i64,)> = self.write_in_one_step(query, StoreError::from_sqlx).await?;
        Ok(())
    }

    async fn end_session(&self, session: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            let mut tx = self.begin_write().await?;
            // language=SQLite
            let ended = sqlx::query(
                r#"update browser_sessions set ended_at = ?2 where id = ?1 and ended_at is null"#,
            )
            .bind(id(session))
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            // language=SQLite
            sqlx::query(
                r#"update refresh_tokens set retry_answer = null, retry_until = null
                   where retry_answer is not null
                     and family_id in (select id from token_families
                                       where session_id = ?1 and not offline
                                         and revoked_at is null)"#,
            )
            .bind(id(session))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            // language=SQLite
            sqlx::query(
                r#"update token_families set revoked_at = ?2
                   where session_id = ?1 and not offline and revoked_at is null"#,
            )
            .bind(id(session))
            .bind(ts(now))
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
        // language=SQLite
        let rows: Vec<SessionRow<String, i64>> = sqlx::query_as(
            r#"select s.id, s.user_id, u.username, u.disabled as user_disabled, s.created_at,
                      s.last_seen_at, s.expires_at, s.ended_at, s.ip
               from browser_sessions s join users u on u.id = s.user_id
               where s.user_id = ?1
                 and (?3 is null or s.created_at < ?3 or (s.created_at = ?3 and s.id < ?4))
               order by s.created_at desc, s.id desc limit ?2"#,
        )
        .bind(id(user_id))
        .bind(i64::from(page.limit))
        .bind(page.before.map(|c| ts(c.created_at)))
        .bind(page.before.map(|c| id(c.id)))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
