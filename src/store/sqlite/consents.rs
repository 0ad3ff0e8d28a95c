//! Consents, on SQLite.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, id, ts};
use crate::store::{ConsentRecord, ConsentStore, StoreError, StoreResult, codec::ConsentRow};

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn find_consent(&self, user_id: Uuid, client_id: &str) -> StoreResult<Option<String>> {
        // language=SQLite
        let row: Option<(String,)> =
            sqlx::query_as(r#"select scope from consents where user_id = ?1 and client_id = ?2"#)
                .bind(id(user_id))
                .bind(client_id)
                .fetch_optional(&self.read)
                .await
                .map_err(StoreError::from_sqlx)?;
        Ok(row.map(|(scope,)| scope))
    }

    async fn grant_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        scope: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(
            r#"insert into consents (user_id, client_id, scope, granted_at) values (?1, ?2, ?3, ?4)
               on conflict (user_id, client_id) do update
               set scope = excluded.scope, granted_at = excluded.granted_at"#,
        )
        .bind(id(user_id))
        .bind(client_id)
        .bind(scope)
        .bind(ts(now))
        .execute(&self.write)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        // language=SQLite
        let rows: Vec<ConsentRow<i64>> = sqlx::query_as(
            r#"select client_id, scope, granted_at from consents where user_id = ?1
               order by client_id"#,
        )
        .bind(id(user_id))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_consent(&self, user_id: Uuid, client_id: &str) -> StoreResult<bool> {
        // language=SQLite
        let done = sqlx::query(r#"delete from consents where user_id = ?1 and client_id = ?2"#)
            .bind(id(user_id))
            .bind(client_id)
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() == 1)
    }
}
