//! Settings changed at run time, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{PgStore, audit::insert_audit};
use crate::store::{
    AuditEvent, SettingRecord, SettingStore, StoreError, StoreResult, codec::SettingRow,
    retry_read, retry_rolled_back,
};

#[async_trait]
impl SettingStore for PgStore {
    async fn list_settings(&self) -> StoreResult<Vec<SettingRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let rows: Vec<SettingRow<OffsetDateTime>> = sqlx::query_as(
                r#"select key, value, updated_at, updated_by from settings order by key"#,
            )
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            rows.into_iter().map(TryInto::try_into).collect()
        })
        .await
    }

    async fn put_setting(&self, s: &SettingRecord, audit: &AuditEvent) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
            // language=PostgreSQL
            sqlx::query(
                r#"insert into settings (key, value, updated_at, updated_by) values ($1, $2, $3, $4)
                   on conflict (key) do update
                   set value = excluded.value, updated_at = excluded.updated_at,
                       updated_by = excluded.updated_by"#,
            )
            .bind(&s.key)
            .bind(&s.value)
            .bind(s.updated_at)
            .bind(&s.updated_by)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(StoreError::from_sqlx)
        })
        .await
    }

    async fn remove_setting(&self, key: &str, audit: &AuditEvent) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
            // language=PostgreSQL
            let done = sqlx::query(r#"delete from settings where key = $1"#)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(true)
        })
        .await
    }
}
