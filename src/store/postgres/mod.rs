//! The PostgreSQL store: the production backend that several rotor instances share.
//! One file per aggregate; each implements one of the store's sub-traits.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::{DatabaseStore, StoreError, StoreResult, unique};

mod access_tokens;
mod audit;
mod cleanup;
mod clients;
mod codes;
mod consents;
mod dpop;
mod families;
mod instances;
mod keys;
mod lockout;
mod sessions;
mod settings;
mod users;

/// How long a request waits for a pooled connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a pool.
    ///
    /// # Errors
    /// Malformed URL or unreachable server.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<PgStore> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::Backend)?;
        PgStore::open(options, max_connections).await
    }

    /// Opens a pool of its own on `options`, as another instance would.
    ///
    /// # Errors
    /// Unreachable server.
    pub async fn open(options: PgConnectOptions, max_connections: u32) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(PgStore { pool })
    }

    /// Wraps an existing pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore { pool }
    }
}

#[async_trait]
impl DatabaseStore for PgStore {
    async fn migrate(&self) -> StoreResult<()> {
        // sqlx holds a PostgreSQL advisory lock while migrating, so instances
        // starting together apply each migration once.
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => StoreError::from_sqlx(e),
                other => StoreError::Corrupt(format!("migrations: {other}")),
            })
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn ping(&self) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(r#"select 1"#)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        // language=PostgreSQL
        let (empty,): (bool,) = sqlx::query_as(
            r#"select not exists (select 1 from users) and not exists (select 1 from clients)"#,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(empty)
    }
}
