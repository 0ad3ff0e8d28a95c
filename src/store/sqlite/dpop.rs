//! DPoP proofs seen and the nonce key, on SQLite.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{SqliteStore, ts};
use crate::store::{DpopStore, ProofUse, StoreError, StoreResult, retry_rolled_back};

#[async_trait]
impl DpopStore for SqliteStore {
    async fn record_dpop_proof(&self, p: &ProofUse) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // The primary key makes the insert the check; SQLite has one writer.
            // language=SQLite
            let done = sqlx::query(
                r#"insert into dpop_proofs (jti_hash, jkt, htu, expires_at)
                   values (?1, ?2, ?3, ?4) on conflict do nothing"#,
            )
            .bind(p.jti_hash.as_bytes().as_slice())
            .bind(&p.jkt)
            .bind(&p.htu)
            .bind(ts(p.expires_at))
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<u8>> {
        retry_rolled_back(move || async move {
            // language=SQLite
            let (value,): (Vec<u8>,) = sqlx::query_as(
                r#"insert into server_secrets (name, value, created_at) values (?1, ?2, ?3)
                   on conflict (name) do update set name = excluded.name
                   returning value"#,
            )
            .bind(name)
            .bind(candidate)
            .bind(ts(now))
            .fetch_one(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(value)
        })
        .await
    }

    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        // language=SQLite
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as(r#"select value from server_secrets where name = ?1"#)
                .bind(name)
                .fetch_optional(&self.read)
                .await
                .map_err(StoreError::from_sqlx)?;
        Ok(row.map(|(value,)| value))
    }

    async fn replace_server_secret(&self, name: &str, value: &[u8]) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"update server_secrets set value = ?2 where name = ?1"#)
            .bind(name)
            .bind(value)
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }
}
