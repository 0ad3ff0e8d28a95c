//! DPoP proofs seen and the nonce key, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::PgStore;
use crate::store::{DpopStore, ProofUse, StoreError, StoreResult, retry_rolled_back};

#[async_trait]
impl DpopStore for PgStore {
    async fn record_dpop_proof(&self, p: &ProofUse) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // The primary key makes the insert the check: of concurrent inserts of
            // one proof, on any instance, exactly one adds a row.
            // language=PostgreSQL
            let done = sqlx::query(
                r#"insert into dpop_proofs (jti_hash, jkt, htu, expires_at)
                   values ($1, $2, $3, $4) on conflict do nothing"#,
            )
            .bind(p.jti_hash.as_bytes().as_slice())
            .bind(&p.jkt)
            .bind(&p.htu)
            .bind(p.expires_at)
            .execute(&self.pool)
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
            // language=PostgreSQL
            sqlx::query(
                r#"insert into server_secrets (name, value, created_at) values ($1, $2, $3)
                   on conflict (name) do nothing"#,
            )
            .bind(name)
            .bind(candidate)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            // language=PostgreSQL
            let (value,): (Vec<u8>,) =
                sqlx::query_as(r#"select value from server_secrets where name = $1"#)
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
            Ok(value)
        })
        .await
    }

    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        // language=PostgreSQL
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as(r#"select value from server_secrets where name = $1"#)
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        Ok(row.map(|(value,)| value))
    }

    async fn replace_server_secret(&self, name: &str, value: &[u8]) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(r#"update server_secrets set value = $2 where name = $1"#)
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }
}
