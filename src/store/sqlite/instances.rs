//! The instances serving the database, on SQLite.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, id, ts};
use crate::store::{
    InstanceRecord, InstanceStore, StoreError, StoreResult, codec::InstanceRow, retry_read,
};

#[async_trait]
impl InstanceStore for SqliteStore {
    async fn record_instance(&self, i: &InstanceRecord) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(
            r#"insert into instances (id, name, version, started_at, seen_at, signing_kid)
               values (?1, ?2, ?3, ?4, ?5, ?6)
               on conflict (id) do update
               set seen_at = excluded.seen_at, signing_kid = excluded.signing_kid"#,
        )
        .bind(id(i.id))
        .bind(&i.name)
        .bind(&i.version)
        .bind(ts(i.started_at))
        .bind(ts(i.seen_at))
        .bind(i.signing_kid.as_deref())
        .execute(&self.write)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn list_instances(&self, since: OffsetDateTime) -> StoreResult<Vec<InstanceRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let rows: Vec<InstanceRow<String, i64>> = sqlx::query_as(
                r#"select id, name, version, started_at, seen_at, signing_kid from instances
                   where seen_at >= ?1 order by name, started_at, id"#,
            )
            .bind(ts(since))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
            rows.into_iter().map(TryInto::try_into).collect()
        })
        .await
    }

    async fn remove_instance(&self, instance: Uuid) -> StoreResult<bool> {
        // language=SQLite
        let done = sqlx::query("delete from instances where id = ?1")
            .bind(id(instance))
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_instances(&self, before: OffsetDateTime) -> StoreResult<u64> {
        // language=SQLite
        let done = sqlx::query("delete from instances where seen_at < ?1")
            .bind(ts(before))
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }
}
