//! Users, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, unique};
use crate::store::{StoreError, StoreResult, UserRecord, UserStore, codec::UserRow, retry_read};

type Row = UserRow<Uuid, OffsetDateTime>;

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"insert into users (id, username, password_hash, disabled, admin, created_at)
               values ($1, $2, $3, $4, $6, $5)"#,
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.disabled)
        .bind(user.created_at)
        .bind(user.admin)
        .execute(&self.pool)
        .await
        .map_err(unique("users_username_key"))?;
        Ok(())
    }

    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<Row> = sqlx::query_as(
                r#"select id, username, password_hash, disabled, admin, created_at
                   from users where username = $1"#,
            )
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        // language=PostgreSQL
        let rows: Vec<Row> = sqlx::query_as(
            r#"select id, username, password_hash, disabled, admin, created_at
               from users order by username"#,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<()> {
        // language=PostgreSQL
        let done = sqlx::query(r#"update users set disabled = $2 where username = $1"#)
            .bind(username)
            .bind(disabled)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_user_admin(&self, username: &str, admin: bool) -> StoreResult<()> {
        // language=PostgreSQL
        let done = sqlx::query(r#"update users set admin = $2 where username = $1"#)
            .bind(username)
            .bind(admin)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_user_password(&self, username: &str, password_hash: &str) -> StoreResult<()> {
        // language=PostgreSQL
        let done = sqlx::query(r#"update users set password_hash = $2 where username = $1"#)
            .bind(username)
            .bind(password_hash)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
