//! Clients, on SQLite.

use async_trait::async_trait;

use super::{SqliteStore, ts, unique};
use crate::{
    crypto::token::TokenHash,
    store::{
        ClientRecord, ClientStore, KeyPage, StoreError, StoreResult,
        codec::{CLIENT_COLUMNS, ClientRow, CodeFlowColumns, contains_pattern, grant_list, secs},
        retry_read,
    },
};

type Row = ClientRow<i64, i64>;

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, client: &ClientRecord) -> StoreResult<()> {
        let flow = CodeFlowColumns::of(&client.code_flow);
        // language=SQLite
        sqlx::query(
            r#"insert into clients (id, secret_hash, grant_types, scopes, refresh_tokens,
                                    refresh_ttl_secs, max_refreshes, created_at, grace_period_secs,
                                    redirect_uris, third_party, pkce_optional, offline_access,
                                    offline_ttl_secs, refresh_requires_offline,
                                    dpop_bound_access_tokens, dpop_require_nonce)
               values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                       ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"#,
        )
        .bind(&client.id)
        .bind(client.secret_hash.map(|h| h.as_bytes().to_vec()))
        .bind(grant_list(&client.grant_types))
        .bind(client.scopes.join(" "))
        .bind(client.refresh_tokens)
        .bind(client.refresh_ttl.map(secs))
        .bind(client.max_refreshes.map(i64::from))
        .bind(ts(client.created_at))
        .bind(client.grace_period.map(secs))
        .bind(flow.redirect_uris)
        .bind(flow.third_party)
        .bind(flow.pkce_optional)
        .bind(flow.offline_access)
        .bind(flow.offline_ttl_secs)
        .bind(flow.refresh_requires_offline)
        .bind(client.dpop.bound_access_tokens)
        .bind(client.dpop.require_nonce)
        .execute(&self.write)
        .await
        .map_err(unique("clients_pkey"))?;
        Ok(())
    }

    async fn find_client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let row: Option<Row> = sqlx::query_as(&format!(
                "select {CLIENT_COLUMNS} from clients where id = ?1"
            ))
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        // language=SQLite
        let rows: Vec<Row> =
            sqlx::query_as(&format!("select {CLIENT_COLUMNS} from clients order by id"))
                .fetch_all(&self.read)
                .await
                .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn clients_page(&self, page: &KeyPage) -> StoreResult<Vec<ClientRecord>> {
        // language=SQLite
        let sql = format!(
            r#"select {CLIENT_COLUMNS} from clients
               where (?1 is null or lower(id) like ?1 escape '\')
                 and (?2 is null or id > ?2)
               order by id limit ?3"#
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(page.contains.as_deref().map(contains_pattern))
            .bind(&page.after)
            .bind(i64::from(page.limit))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_client(&self, id: &str) -> StoreResult<()> {
        // language=SQLite
        let done = sqlx::query(r#"delete from clients where id = ?1"#)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn update_client(&self, client: &ClientRecord) -> StoreResult<()> {
        let flow = CodeFlowColumns::of(&client.code_flow);
        // language=SQLite
        let done = sqlx::query(
            r#"update clients set grant_types = ?2, scopes = ?3, refresh_tokens = ?4,
                                  refresh_ttl_secs = ?5, max_refreshes = ?6, grace_period_secs = ?7,
                                  redirect_uris = ?8, third_party = ?9, pkce_optional = ?10,
                                  offline_access = ?11, offline_ttl_secs = ?12,
                                  refresh_requires_offline = ?13,
                                  dpop_bound_access_tokens = ?14, dpop_require_nonce = ?15
               where id = ?1"#,
        )
        .bind(&client.id)
        .bind(grant_list(&client.grant_types))
        .bind(client.scopes.join(" "))
        .bind(client.refresh_tokens)
        .bind(client.refresh_ttl.map(secs))
        .bind(client.max_refreshes.map(i64::from))
        .bind(client.grace_period.map(secs))
        .bind(flow.redirect_uris)
        .bind(flow.third_party)
        .bind(flow.pkce_optional)
        .bind(flow.offline_access)
        .bind(flow.offline_ttl_secs)
        .bind(flow.refresh_requires_offline)
        .bind(client.dpop.bound_access_tokens)
        .bind(client.dpop.require_nonce)
        .execute(&self.write)
        .await
        .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_client_secret(&self, id: &str, secret_hash: &TokenHash) -> StoreResult<()> {
        // language=SQLite
        let done = sqlx::query(
            r#"update clients set secret_hash = ?2 where id = ?1 and secret_hash is not null"#,
        )
        .bind(id)
        .bind(secret_hash.as_bytes().to_vec())
        .execute(&self.write)
        .await
        .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
