//! Signing keys, on SQLite.

use async_trait::async_trait;

use super::{SqliteStore, ts, unique};
use crate::{
    crypto::signing_key::StoredKey,
    store::{KeyStore, StoreError, StoreResult, codec::KeyRow},
};

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        // language=SQLite
        let rows: Vec<KeyRow<i64>> = sqlx::query_as(
            r#"select kid, alg, private_key, created_at from signing_keys order by created_at, kid"#,
        )
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(
            r#"insert into signing_keys (kid, alg, private_key, created_at) values (?1, ?2, ?3, ?4)"#,
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(ts(key.created_at))
        .execute(&self.write)
        .await
        .map_err(unique("signing_keys_pkey"))?;
        Ok(())
    }

    async fn insert_first_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // One statement is atomic: SQLite has a single writer.
        // language=SQLite
        let done = sqlx::query(
            r#"insert into signing_keys (kid, alg, private_key, created_at)
               select ?1, ?2, ?3, ?4
               where not exists (select 1 from signing_keys where alg = ?2)"#,
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(ts(key.created_at))
        .execute(&self.write)
        .await
        .map_err(unique("signing_keys_pkey"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"delete from signing_keys where kid = ?1"#)
            .bind(kid)
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn update_signing_key(&self, kid: &str, private_key: &[u8]) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"update signing_keys set private_key = ?2 where kid = ?1"#)
            .bind(kid)
            .bind(private_key)
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }
}
