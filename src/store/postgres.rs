//! The PostgreSQL store: the production backend that several rotor instances share.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AccessTokenRecord, AuditEvent, AuditFilter, ClientRecord, NewSession, Purged, QuickRotated,
    QuickRotation, RefreshTokenRecord, Rotation, RotationOutcome, Store, StoreError, StoreResult,
    UserRecord, count, retry_read, retry_rolled_back, split_list,
};
use crate::crypto::{keys::StoredKey, token::TokenHash};

/// How long a request waits for a pooled connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed [`Store`].
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

fn unique(constraint: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { constraint }
        }
        _ => StoreError::from_sqlx(e),
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    password_hash: String,
    disabled: bool,
    created_at: OffsetDateTime,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        UserRecord {
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: String,
    secret_hash: Option<Vec<u8>>,
    grant_types: String,
    scopes: String,
    refresh_tokens: bool,
    refresh_ttl_secs: Option<i64>,
    grace_period_secs: Option<i64>,
    max_refreshes: Option<i32>,
    created_at: OffsetDateTime,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> StoreResult<Self> {
        Ok(ClientRecord {
            secret_hash: r
                .secret_hash
                .map(|h| TokenHash::from_slice(&h))
                .transpose()
                .map_err(|_| StoreError::Corrupt(format!("secret hash of client {}", r.id)))?,
            grant_types: split_list(&r.grant_types),
            scopes: split_list(&r.scopes),
            refresh_tokens: r.refresh_tokens,
            refresh_ttl: r
                .refresh_ttl_secs
                .map(|s| count(s, "refresh_ttl_secs").map(|s| Duration::from_secs(s.into())))
                .transpose()?,
            grace_period: r
                .grace_period_secs
                .map(|s| count(s, "grace_period_secs").map(|s| Duration::from_secs(s.into())))
                .transpose()?,
            max_refreshes: r
                .max_refreshes
                .map(|m| count(m.into(), "max_refreshes"))
                .transpose()?,
            created_at: r.created_at,
            id: r.id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    token_hash: Vec<u8>,
    family_id: Uuid,
    client_id: String,
    user_id: Uuid,
    username: String,
    user_disabled: bool,
    scope: String,
    refresh_count: i32,
    family_revoked: bool,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    successor_used: bool,
    retry_answer: Option<Vec<u8>>,
    retry_until: Option<OffsetDateTime>,
}

impl TryFrom<RefreshRow> for RefreshTokenRecord {
    type Error = StoreError;
    fn try_from(r: RefreshRow) -> StoreResult<Self> {
        Ok(RefreshTokenRecord {
            hash: TokenHash::from_slice(&r.token_hash)
                .map_err(|_| StoreError::Corrupt("refresh token hash".into()))?,
            family_id: r.family_id,
            client_id: r.client_id,
            user_id: r.user_id,
            username: r.username,
            user_disabled: r.user_disabled,
            scope: r.scope,
            refresh_count: count(r.refresh_count.into(), "refresh_count")?,
            family_revoked: r.family_revoked,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            successor_used: r.successor_used,
            retry_answer: r.retry_answer,
            retry_until: r.retry_until,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    jti: Uuid,
    family_id: Uuid,
    client_id: String,
    user_id: Uuid,
    username: String,
    user_disabled: bool,
    revoked: bool,
    family_revoked: bool,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl From<AccessRow> for AccessTokenRecord {
    fn from(r: AccessRow) -> Self {
        AccessTokenRecord {
            jti: r.jti,
            family_id: r.family_id,
            client_id: r.client_id,
            user_id: r.user_id,
            username: r.username,
            user_disabled: r.user_disabled,
            revoked: r.revoked,
            family_revoked: r.family_revoked,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    private_key: Vec<u8>,
    created_at: OffsetDateTime,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(StoredKey {
            alg: r.alg.parse().map_err(StoreError::Corrupt)?,
            kid: r.kid,
            private_key: r.private_key,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: OffsetDateTime,
    kind: String,
    username: Option<String>,
    client_id: Option<String>,
    family_id: Option<Uuid>,
    ip: Option<String>,
    outcome: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            at: r.at,
            kind: r.kind,
            username: r.username,
            client_id: r.client_id,
            family_id: r.family_id,
            ip: r.ip,
            outcome: r.outcome,
        }
    }
}

#[async_trait]
impl Store for PgStore {
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

    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"insert into users (id, username, password_hash, disabled, created_at)
               values ($1, $2, $3, $4, $5)"#,
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.disabled)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(unique("users_username_key"))?;
        Ok(())
    }

    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<UserRow> = sqlx::query_as(
                r#"select id, username, password_hash, disabled, created_at
                   from users where username = $1"#,
            )
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(row.map(Into::into))
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        // language=PostgreSQL
        let rows: Vec<UserRow> = sqlx::query_as(
            r#"select id, username, password_hash, disabled, created_at
               from users order by username"#,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<()> {
        // language=PostgreSQL
        let done = sqlx::query(r#"update users set disabled = $2 where username = $1"#)
            .bind(username)
            .bind(disabled)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_client(&self, client: &ClientRecord) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(
            r#"insert into clients (id, secret_hash, grant_types, scopes, refresh_tokens,
                                    refresh_ttl_secs, max_refreshes, created_at, grace_period_secs)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        )
        .bind(&client.id)
        .bind(client.secret_hash.map(|h| h.as_bytes().to_vec()))
        .bind(client.grant_types.join(" "))
        .bind(client.scopes.join(" "))
        .bind(client.refresh_tokens)
        .bind(
            client
                .refresh_ttl
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        )
        .bind(
            client
                .max_refreshes
                .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        )
        .bind(client.created_at)
        .bind(
            client
                .grace_period
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        )
        .execute(&self.pool)
        .await
        .map_err(unique("clients_pkey"))?;
        Ok(())
    }

    async fn find_client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<ClientRow> = sqlx::query_as(
                r#"select id, secret_hash, grant_types, scopes, refresh_tokens, refresh_ttl_secs,
                          grace_period_secs, max_refreshes, created_at
                   from clients where id = $1"#,
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        // language=PostgreSQL
        let rows: Vec<ClientRow> = sqlx::query_as(
            r#"select id, secret_hash, grant_types, scopes, refresh_tokens, refresh_ttl_secs,
                      grace_period_secs, max_refreshes, created_at
               from clients order by id"#,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_client(&self, id: &str) -> StoreResult<()> {
        // language=PostgreSQL
        let done = sqlx::query(r#"delete from clients where id = $1"#)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_session(&self, s: &NewSession) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
            // language=PostgreSQL
            sqlx::query(
                r#"insert into token_families (id, client_id, user_id, scope, refresh_count, created_at)
                   values ($1, $2, $3, $4, 0, $5)"#,
            )
            .bind(s.family_id)
            .bind(&s.client_id)
            .bind(s.user_id)
            .bind(&s.scope)
            .bind(s.created_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            if let Some(rt) = &s.refresh {
                insert_refresh_token(&mut tx, s.family_id, rt).await?;
            }
            insert_access_token(&mut tx, s.family_id, &s.access).await?;
            tx.commit().await.map_err(StoreError::from_sqlx)
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<RefreshRow> = sqlx::query_as(
                r#"select rt.token_hash, rt.family_id, f.client_id, f.user_id, u.username,
                          u.disabled as user_disabled, f.scope, f.refresh_count,
                          f.revoked_at is not null as family_revoked,
                          rt.issued_at, rt.expires_at, rt.used_at,
                          s.used_at is not null as successor_used, rt.retry_answer, rt.retry_until
                   from refresh_tokens rt
                   join token_families f on f.id = rt.family_id
                   join users u on u.id = f.user_id
                   left join refresh_tokens s on s.token_hash = rt.successor_hash
                   where rt.token_hash = $1"#,
            )
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn rotate_refresh_token(&self, r: &Rotation) -> StoreResult<RotationOutcome> {
        retry_rolled_back(move || async move {
            let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
            if r.spend_old {
                // The conditional update is the lock: of concurrent requests for one
                // token, exactly one finds `used_at is null`.
                // language=PostgreSQL
                let spent = sqlx::query(
                    r#"update refresh_tokens
                       set used_at = $2, successor_hash = $3, retry_answer = $4, retry_until = $5
                       where token_hash = $1 and used_at is null"#,
                )
                .bind(r.old.as_bytes().as_slice())
                .bind(r.now)
                .bind(r.successor.as_ref().map(|s| s.hash.as_bytes().to_vec()))
                .bind(r.retry.as_ref().map(|a| a.ciphertext.clone()))
                .bind(r.retry.as_ref().map(|a| a.until))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
                if spent.rows_affected() == 0 {
                    return Ok(RotationOutcome::AlreadyUsed);
                }
            }
            // language=PostgreSQL
            let counted: Option<(i32,)> = sqlx::query_as(
                r#"update token_families f set refresh_count = refresh_count + 1
                   where id = $1 and revoked_at is null
                     and ($2 = 0 or refresh_count < $2)
                     and exists (select 1 from users u where u.id = f.user_id and not u.disabled)
                   returning refresh_count"#,
            )
            .bind(r.family_id)
            .bind(i64::from(r.max_refreshes))
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            let Some((refresh_count,)) = counted else {
                // language=PostgreSQL
                let (live,): (bool,) = sqlx::query_as(
                    r#"select f.revoked_at is null and not u.disabled
                       from token_families f join users u on u.id = f.user_id where f.id = $1"#,
                )
                .bind(r.family_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?
                .unwrap_or((false,));
                return Ok(if live {
                    RotationOutcome::LimitReached
                } else {
                    RotationOutcome::Inactive
                });
            };
            if let Some(successor) = &r.successor {
                insert_refresh_token(&mut tx, r.family_id, successor).await?;
            }
            insert_access_token(&mut tx, r.family_id, &r.access).await?;
            if let Some(event) = &r.audit {
                insert_audit(&mut *tx, event).await?;
            }
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(RotationOutcome::Rotated {
                refresh_count: count(refresh_count.into(), "refresh_count")?,
            })
        })
        .await
    }

    async fn rotate_in_one_step(&self, r: &QuickRotation) -> StoreResult<Option<QuickRotated>> {
        retry_rolled_back(move || async move {
            // One round trip for the common refresh. The candidate rows are locked, so of
            // concurrent requests for one token the later ones re-check `used_at` once
            // the first commits, find nothing, and take the general path (reuse).
            // language=PostgreSQL
            let row: Option<(Uuid, Uuid, String, i32)> = sqlx::query_as(
                r#"with candidate as (
                       select rt.token_hash, f.id as family_id, u.username
                       from refresh_tokens rt
                       join token_families f on f.id = rt.family_id
                       join users u on u.id = f.user_id
                       where rt.token_hash = $1
                         and rt.used_at is null and rt.expires_at > $2
                         and f.client_id = $3 and f.revoked_at is null and not u.disabled
                         and ($4 = 0 or f.refresh_count < $4)
                       for update of rt, f
                   ), spent as (
                       update refresh_tokens rt set used_at = $2, successor_hash = $5
                       from candidate c
                       where rt.token_hash = c.token_hash and rt.used_at is null
                       returning rt.family_id
                   ), counted as (
                       update token_families f set refresh_count = f.refresh_count + 1
                       from spent s
                       where f.id = s.family_id
                       returning f.id, f.user_id, f.scope, f.refresh_count
                   ), successor as (
                       insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
                       select $5, id, $2, $6 from counted
                   ), access as (
                       insert into access_tokens (jti, family_id, issued_at, expires_at)
                       select $7, id, $2, $8 from counted
                   ), audit as (
                       insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
                       select $2, 'refresh', c.username, $3, k.id, $9, 'success'
                       from counted k join candidate c on c.family_id = k.id
                   )
                   select id, user_id, scope, refresh_count from counted"#,
            )
            .bind(r.old.as_bytes().as_slice())
            .bind(r.now)
            .bind(&r.client_id)
            .bind(i64::from(r.max_refreshes))
            .bind(r.successor.hash.as_bytes().as_slice())
            .bind(r.successor.expires_at)
            .bind(r.access.jti)
            .bind(r.access.expires_at)
            .bind(&r.ip)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(|(family_id, user_id, scope, refresh_count)| {
                Ok(QuickRotated {
                    family_id,
                    user_id,
                    scope,
                    refresh_count: count(refresh_count.into(), "refresh_count")?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn revoke_family(&self, family_id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // language=PostgreSQL
            let done = sqlx::query(
                r#"update token_families set revoked_at = $2 where id = $1 and revoked_at is null"#,
            )
            .bind(family_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            // A revoked family is never revived by a retry: its sealed answers go too.
            // language=PostgreSQL
            sqlx::query(
                r#"update refresh_tokens set retry_answer = null, retry_until = null
                   where family_id = $1 and retry_answer is not null"#,
            )
            .bind(family_id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        // language=PostgreSQL
        let rows: Vec<KeyRow> = sqlx::query_as(
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

    async fn find_access_token(&self, jti: Uuid) -> StoreResult<Option<AccessTokenRecord>> {
        retry_read(move || async move {
            // language=PostgreSQL
            let row: Option<AccessRow> = sqlx::query_as(
                r#"select a.jti, a.family_id, f.client_id, f.user_id, u.username,
                          u.disabled as user_disabled, a.revoked_at is not null as revoked,
                          f.revoked_at is not null as family_revoked, a.issued_at, a.expires_at
                   from access_tokens a
                   join token_families f on f.id = a.family_id
                   join users u on u.id = f.user_id
                   where a.jti = $1"#,
            )
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(row.map(Into::into))
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

    async fn erase_stale_retry_answers(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        // language=PostgreSQL
        let done = sqlx::query(
            r#"update refresh_tokens set retry_answer = null, retry_until = null
               where token_hash in (select token_hash from refresh_tokens
                                    where retry_answer is not null and retry_until <= $1
                                    limit $2)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> StoreResult<()> {
        // language=PostgreSQL
        sqlx::query(r#"select 1"#)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn count_active_families(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // language=PostgreSQL
        let (n,): (i64,) = sqlx::query_as(
            r#"select count(*) from token_families f
               where f.revoked_at is null
                 and (exists (select 1 from refresh_tokens rt
                              where rt.family_id = f.id and rt.used_at is null
                                and rt.expires_at > $1)
                      or exists (select 1 from access_tokens at
                                 where at.family_id = f.id and at.expires_at > $1))"#,
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Purged> {
        // `skip locked`: instances cleaning at the same time take different rows
        // instead of waiting for each other.
        // language=PostgreSQL
        let access = sqlx::query(
            r#"delete from access_tokens where jti in (
                 select jti from access_tokens where expires_at <= $1
                 limit $2 for update skip locked)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        // language=PostgreSQL
        let families = sqlx::query(
            r#"delete from token_families where id in (
                 select f.id from token_families f
                 where not exists (select 1 from refresh_tokens rt
                                   where rt.family_id = f.id and rt.expires_at > $1)
                   and not exists (select 1 from access_tokens at
                                   where at.family_id = f.id and at.expires_at > $1)
                 limit $2 for update skip locked)"#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(Purged {
            access_tokens: access.rows_affected(),
            families: families.rows_affected(),
        })
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

    async fn is_locked_out(&self, keys: &[String], now: OffsetDateTime) -> StoreResult<bool> {
        // language=PostgreSQL
        let (locked,): (bool,) = sqlx::query_as(
            r#"select exists (select 1 from login_failures
                              where key = any($1) and locked_until > $2)"#,
        )
        .bind(keys)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(locked)
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
        max: u32,
        lock_for: Duration,
    ) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // One upsert: a failure outside the window starts a new one; reaching `max`
            // sets the lock.
            // language=PostgreSQL
            let (locked,): (bool,) = sqlx::query_as(
                r#"insert into login_failures as lf (key, window_start, failures, locked_until)
                   values ($1, $2, 1, case when $4 <= 1 then $5 end)
                   on conflict (key) do update set
                     window_start = case when lf.window_start <= $3 then $2 else lf.window_start end,
                     failures = case when lf.window_start <= $3 then 1 else lf.failures + 1 end,
                     locked_until = case
                       when (case when lf.window_start <= $3 then 1 else lf.failures + 1 end) >= $4
                       then $5 else lf.locked_until end
                   returning coalesce(locked_until > $2, false)"#,
            )
            .bind(key)
            .bind(now)
            .bind(now - window)
            .bind(i64::from(max))
            .bind(now + lock_for)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(locked)
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // language=PostgreSQL
            sqlx::query(r#"delete from login_failures where key = $1"#)
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            Ok(())
        })
        .await
    }

    async fn record_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        retry_rolled_back(move || async move { insert_audit(&self.pool, e).await }).await
    }

    async fn audit_events(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        // language=PostgreSQL
        let rows: Vec<AuditRow> = sqlx::query_as(
            r#"select at, kind, username, client_id, family_id, ip, outcome from audit_events
               where ($1::text is null or username = $1)
                 and ($2::text is null or client_id = $2)
                 and ($3::timestamptz is null or at >= $3)
               order by at desc, id desc limit $4"#,
        )
        .bind(&f.username)
        .bind(&f.client_id)
        .bind(f.since)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    family_id: Uuid,
    rt: &super::NewRefreshToken,
) -> StoreResult<()> {
    // language=PostgreSQL
    sqlx::query(
        r#"insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
           values ($1, $2, $3, $4)"#,
    )
    .bind(rt.hash.as_bytes().as_slice())
    .bind(family_id)
    .bind(rt.issued_at)
    .bind(rt.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(unique("refresh_tokens_pkey"))?;
    Ok(())
}

async fn insert_access_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    family_id: Uuid,
    at: &super::NewAccessToken,
) -> StoreResult<()> {
    // language=PostgreSQL
    sqlx::query(
        r#"insert into access_tokens (jti, family_id, issued_at, expires_at) values ($1, $2, $3, $4)"#,
    )
    .bind(at.jti)
    .bind(family_id)
    .bind(at.issued_at)
    .bind(at.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(unique("access_tokens_pkey"))?;
    Ok(())
}

/// Appends an audit event, on the pool or inside a rotation's transaction.
async fn insert_audit<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    event: &AuditEvent,
) -> StoreResult<()> {
    // language=PostgreSQL
    sqlx::query(
        r#"insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
    )
    .bind(event.at)
    .bind(&event.kind)
    .bind(&event.username)
    .bind(&event.client_id)
    .bind(event.family_id)
    .bind(&event.ip)
    .bind(&event.outcome)
    .execute(executor)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}
