//! Issued access-token ids, on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PgStore;
use crate::store::{
    AccessTokenRecord, AccessTokenStore, StoreError, StoreResult, codec::AccessRow, retry_read,
    retry_rolled_back,
};

type Row = AccessRow<Uuid, OffsetDateTime>;

#[async_trait]
impl AccessTokenStore for PgStore {
    async fn find_access_token(&self, jti: Uuid) -> StoreResult<Option<AccessTokenRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<Row> = sqlx::query_as(
                r#"select a.jti, a.family_id, f.client_id, f.user_id, u.username,
                          coalesce(u.disabled, false) as subject_disabled,
                          a.revoked_at is not null as revoked,
                          f.revoked_at is not null as family_revoked, a.issued_at, a.expires_at
                   from access_tokens a
                   join token_families f on f.id = a.family_id
                   left join users u on u.id = f.user_id
                   where a.jti = $1"#,
            )
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn revoke_access_token(&self, jti: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // language=PostgreSQL
            let done = sqlx::query(
                r#"update access_tokens set revoked_at = $2 where jti = $1 and revoked_at is null"#,
            )
            .bind(jti)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}
