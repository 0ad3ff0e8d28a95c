//! Signing keys, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{PgStore, unique};
use crate::{
    crypto::signing_key::StoredKey,
    store::{KeyStore, StoreError, StoreResult, codec::KeyRow},
};

#[async_trait]
impl KeyStore for PgStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        // language=PostgreSQL
        let rows: Vec<KeyRow<OffsetDateTime>> = sqlx::query_as(
            r#"select kid, alg, private_key, created_at from signing_keys order by created_at, kid"#,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"insert into signing_keys (kid, alg, private_key, created_at) values ($1, $2, $3, $4)"#,
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(unique("signing_keys_pkey"))?;
        Ok(())
    }

    async fn insert_first_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        // Under read committed, two `insert … where not exists` can both insert: a
        // transaction-scoped advisory lock makes the check and the insert one step.
        // language=PostgreSQL
        sqlx::query(r#"select pg_advisory_xact_lock(hashtext('rotor.signing_keys'))"#)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        // language=PostgreSQL
        let done = sqlx::query(
            r#"insert into signing_keys (kid, alg, private_key, created_at)
               select $1, $2, $3, $4
               where not exists (select 1 from signing_keys where alg = $2)"#,
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(unique("signing_keys_pkey"))?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(r#"delete from signing_keys where kid = $1"#)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn update_signing_key(&self, kid: &str, private_key: &[u8]) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(r#"update signing_keys set private_key = $2 where kid = $1"#)
            .bind(kid)
            .bind(private_key)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }
}
