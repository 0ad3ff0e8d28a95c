//! Consents, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PgStore;
use crate::store::{ConsentRecord, ConsentStore, StoreError, StoreResult, codec::ConsentRow};

#[async_trait]
impl ConsentStore for PgStore {
    async fn find_consent(&self, user_id: Uuid, client_id: &str) -> StoreResult<Option<String>> {
        // language=PostgreSQL
        let row: Option<(String,)> =
            sqlx::query_as(r#"select scope from consents where user_id = $1 and client_id = $2"#)
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
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
        // language=PostgreSQL
        sqlx::query(
            r#"insert into consents (user_id, client_id, scope, granted_at) values ($1, $2, $3, $4)
               on conflict (user_id, client_id) do update
               set scope = excluded.scope, granted_at = excluded.granted_at"#,
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        // language=PostgreSQL
        let rows: Vec<ConsentRow<OffsetDateTime>> = sqlx::query_as(
            r#"select client_id, scope, granted_at from consents where user_id = $1
               order by client_id"#,
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_consent(&self, user_id: Uuid, client_id: &str) -> StoreResult<bool> {
        // language=PostgreSQL
        let done = sqlx::query(r#"delete from consents where user_id = $1 and client_id = $2"#)
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() == 1)
    }
}
