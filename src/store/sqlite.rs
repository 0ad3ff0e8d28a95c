//! The embedded SQLite store: the default, so that rotor runs with nothing installed.
//! Times are unix seconds, ids are text. WAL mode lets readers run beside the one
//! writer; every write transaction starts with its write, so it takes the write lock
//! first and waits (busy timeout) instead of failing on an upgrade.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Connection, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
        SqliteSynchronous,
    },
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AccessTokenRecord, AuditEvent, AuditFilter, ClientRecord, NewAccessToken, NewRefreshToken,
    NewSession, Purged, RefreshTokenRecord, Rotation, RotationOutcome, Store, StoreError,
    StoreResult, UserRecord, count, retry_read, retry_rolled_back, split_list,
};
use crate::crypto::{keys::StoredKey, token::TokenHash};

/// How long a writer waits for the file lock, and a request for a pooled connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (and creates, when missing) the database file named by a
    /// `sqlite://relative/path` or `sqlite:///absolute/path` URL.
    ///
    /// # Errors
    /// Malformed URL or a file that cannot be opened.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url).map_err(StoreError::Backend)?;
        SqliteStore::open(options, max_connections).await
    }

    /// Opens a pool with rotor's settings (WAL, busy timeout, foreign keys) on top of
    /// `options`.
    ///
    /// # Errors
    /// The file cannot be opened, created or written.
    pub async fn open(
        options: SqliteConnectOptions,
        max_connections: u32,
    ) -> StoreResult<SqliteStore> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let path = options.get_filename().to_owned();
        let failed = |e| unwritable(&path).unwrap_or_else(|| StoreError::from_sqlx(e));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(BUSY_TIMEOUT)
            .after_release(|conn, _| Box::pin(keep_after_release(conn)))
            .connect_with(options)
            .await
            .map_err(failed)?;
        // SQLite opens a file it may not write read-only, without a word (a
        // read-only volume that still holds the -wal and -shm files). A token
        // server that cannot write is of no use: say so at start, not on each grant.
        sqlx::raw_sql("begin immediate; create table rotor_write_check (x integer); rollback;")
            .execute(&pool)
            .await
            .map_err(failed)?;
        Ok(SqliteStore { pool })
    }

    /// Wraps an existing pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: SqlitePool) -> SqliteStore {
        SqliteStore { pool }
    }
}

/// Whether a connection handed back to the pool may be reused.
///
/// When a write fails with SQLITE_FULL or an I/O error, SQLite may end the
/// transaction by itself. The driver still counts it open, its ROLLBACK then fails,
/// and the next `begin` on that connection would open only a savepoint: a
/// transaction that never commits, holds the write lock, and answers later reads
/// with its own uncommitted rows. Such a connection is closed instead.
async fn keep_after_release(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    // Runs the rollback queued by a dropped transaction before looking.
    conn.ping().await?;
    Ok(!conn.is_in_transaction())
}

/// Why a database that failed to open cannot be written, if that is the reason.
/// SQLite says only "unable to open database file" when, say, the volume is
/// read-only; the operating system's answer names the cause.
fn unwritable(path: &Path) -> Option<StoreError> {
    if path == Path::new(":memory:") {
        return None;
    }
    let file = if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        Ok(())
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".rotor-write-check-{}", Uuid::new_v4()));
    let writable = file.and_then(|()| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
    });
    writable.err().map(|source| StoreError::Unwritable {
        path: path.to_owned(),
        source,
    })
}

fn unique(constraint: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { constraint }
        }
        _ => StoreError::from_sqlx(e),
    }
}

fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn dt(secs: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| StoreError::Corrupt(format!("timestamp out of range: {secs}")))
}

fn uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("not a uuid: {text:?}")))
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    disabled: bool,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(UserRecord {
            id: uuid(&r.id)?,
            username: r.username,
            password_hash: r.password_hash,
            disabled: r.disabled,
            created_at: dt(r.created_at)?,
        })
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
    max_refreshes: Option<i64>,
    created_at: i64,
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
                .map(|m| count(m, "max_refreshes"))
                .transpose()?,
            created_at: dt(r.created_at)?,
            id: r.id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    token_hash: Vec<u8>,
    family_id: String,
    client_id: String,
    user_id: String,
    username: String,
    user_disabled: bool,
    scope: String,
    refresh_count: i64,
    family_revoked: bool,
    issued_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    successor_used: bool,
    retry_answer: Option<Vec<u8>>,
    retry_until: Option<i64>,
}

impl TryFrom<RefreshRow> for RefreshTokenRecord {
    type Error = StoreError;
    fn try_from(r: RefreshRow) -> StoreResult<Self> {
        Ok(RefreshTokenRecord {
            hash: TokenHash::from_slice(&r.token_hash)
                .map_err(|_| StoreError::Corrupt("refresh token hash".into()))?,
            family_id: uuid(&r.family_id)?,
            client_id: r.client_id,
            user_id: uuid(&r.user_id)?,
            username: r.username,
            user_disabled: r.user_disabled,
            scope: r.scope,
            refresh_count: count(r.refresh_count, "refresh_count")?,
            family_revoked: r.family_revoked,
            issued_at: dt(r.issued_at)?,
            expires_at: dt(r.expires_at)?,
            used_at: r.used_at.map(dt).transpose()?,
            successor_used: r.successor_used,
            retry_answer: r.retry_answer,
            retry_until: r.retry_until.map(dt).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    jti: String,
    family_id: String,
    client_id: String,
    user_id: String,
    username: String,
    user_disabled: bool,
    revoked: bool,
    family_revoked: bool,
    issued_at: i64,
    expires_at: i64,
}

impl TryFrom<AccessRow> for AccessTokenRecord {
    type Error = StoreError;
    fn try_from(r: AccessRow) -> StoreResult<Self> {
        Ok(AccessTokenRecord {
            jti: uuid(&r.jti)?,
            family_id: uuid(&r.family_id)?,
            client_id: r.client_id,
            user_id: uuid(&r.user_id)?,
            username: r.username,
            user_disabled: r.user_disabled,
            revoked: r.revoked,
            family_revoked: r.family_revoked,
            issued_at: dt(r.issued_at)?,
            expires_at: dt(r.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    private_key: Vec<u8>,
    created_at: i64,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(StoredKey {
            alg: r.alg.parse().map_err(StoreError::Corrupt)?,
            kid: r.kid,
            private_key: r.private_key,
            created_at: dt(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: i64,
    kind: String,
    username: Option<String>,
    client_id: Option<String>,
    family_id: Option<String>,
    ip: Option<String>,
    outcome: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> StoreResult<Self> {
        Ok(AuditEvent {
            at: dt(r.at)?,
            kind: r.kind,
            username: r.username,
            client_id: r.client_id,
            family_id: r.family_id.as_deref().map(uuid).transpose()?,
            ip: r.ip,
            outcome: r.outcome,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/sqlite")
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
        // language=SQLite
        let (empty,): (bool,) = sqlx::query_as(
            r#"select not exists (select 1 from users) and not exists (select 1 from clients)"#,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(empty)
    }

    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(
            r#"insert into users (id, username, password_hash, disabled, created_at)
               values (?1, ?2, ?3, ?4, ?5)"#,
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.disabled)
        .bind(ts(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(unique("users_username_key"))?;
        Ok(())
    }

    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let row: Option<UserRow> = sqlx::query_as(
                r#"select id, username, password_hash, disabled, created_at
                   from users where username = ?1"#,
            )
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        // language=SQLite
        let rows: Vec<UserRow> = sqlx::query_as(
            r#"select id, username, password_hash, disabled, created_at
               from users order by username"#,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<()> {
        // language=SQLite
        let done = sqlx::query(r#"update users set disabled = ?2 where username = ?1"#)
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
        // language=SQLite
        sqlx::query(
            r#"insert into clients (id, secret_hash, grant_types, scopes, refresh_tokens,
                                    refresh_ttl_secs, max_refreshes, created_at, grace_period_secs)
               values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"#,
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
        .bind(client.max_refreshes.map(i64::from))
        .bind(ts(client.created_at))
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
            // language=SQLite
            let row: Option<ClientRow> = sqlx::query_as(
                r#"select id, secret_hash, grant_types, scopes, refresh_tokens, refresh_ttl_secs,
                          grace_period_secs, max_refreshes, created_at
                   from clients where id = ?1"#,
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
        // language=SQLite
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
        // language=SQLite
        let done = sqlx::query(r#"delete from clients where id = ?1"#)
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
            // language=SQLite
            sqlx::query(
                r#"insert into token_families (id, client_id, user_id, scope, refresh_count, created_at)
                   values (?1, ?2, ?3, ?4, 0, ?5)"#,
            )
            .bind(s.family_id.to_string())
            .bind(&s.client_id)
            .bind(s.user_id.to_string())
            .bind(&s.scope)
            .bind(ts(s.created_at))
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
            // language=SQLite
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
                   where rt.token_hash = ?1"#,
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
                // The first statement writes, so this transaction holds the database's
                // write lock from here on: of concurrent requests for one token, exactly
                // one finds `used_at is null`.
                // language=SQLite
                let spent = sqlx::query(
                    r#"update refresh_tokens
                       set used_at = ?2, successor_hash = ?3, retry_answer = ?4, retry_until = ?5
                       where token_hash = ?1 and used_at is null"#,
                )
                .bind(r.old.as_bytes().as_slice())
                .bind(ts(r.now))
                .bind(r.successor.as_ref().map(|s| s.hash.as_bytes().to_vec()))
                .bind(r.retry.as_ref().map(|a| a.ciphertext.clone()))
                .bind(r.retry.as_ref().map(|a| ts(a.until)))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
                if spent.rows_affected() == 0 {
                    return Ok(RotationOutcome::AlreadyUsed);
                }
            }
            // language=SQLite
            let counted: Option<(i64,)> = sqlx::query_as(
                r#"update token_families set refresh_count = refresh_count + 1
                   where id = ?1 and revoked_at is null
                     and (?2 = 0 or refresh_count < ?2)
                     and exists (select 1 from users u
                                 where u.id = token_families.user_id and not u.disabled)
                   returning refresh_count"#,
            )
            .bind(r.family_id.to_string())
            .bind(i64::from(r.max_refreshes))
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            let Some((refresh_count,)) = counted else {
                // language=SQLite
                let (live,): (bool,) = sqlx::query_as(
                    r#"select f.revoked_at is null and not u.disabled
                       from token_families f join users u on u.id = f.user_id where f.id = ?1"#,
                )
                .bind(r.family_id.to_string())
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
                refresh_count: count(refresh_count, "refresh_count")?,
            })
        })
        .await
    }

    async fn revoke_family(&self, family_id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // language=SQLite
            let done = sqlx::query(
                r#"update token_families set revoked_at = ?2 where id = ?1 and revoked_at is null"#,
            )
            .bind(family_id.to_string())
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            // A revoked family is never revived by a retry: its sealed answers go too.
            // language=SQLite
            sqlx::query(
                r#"update refresh_tokens set retry_answer = null, retry_until = null
                   where family_id = ?1 and retry_answer is not null"#,
            )
            .bind(family_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        // language=SQLite
        let rows: Vec<KeyRow> = sqlx::query_as(
            r#"select kid, alg, private_key, created_at from signing_keys order by created_at, kid"#,
        )
        .fetch_all(&self.pool)
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
        .execute(&self.pool)
        .await
        .map_err(unique("signing_keys_pkey"))?;
        Ok(())
    }

    async fn find_access_token(&self, jti: Uuid) -> StoreResult<Option<AccessTokenRecord>> {
        retry_read(move || async move {
            // language=SQLite
            let row: Option<AccessRow> = sqlx::query_as(
                r#"select a.jti, a.family_id, f.client_id, f.user_id, u.username,
                          u.disabled as user_disabled, a.revoked_at is not null as revoked,
                          f.revoked_at is not null as family_revoked, a.issued_at, a.expires_at
                   from access_tokens a
                   join token_families f on f.id = a.family_id
                   join users u on u.id = f.user_id
                   where a.jti = ?1"#,
            )
            .bind(jti.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            row.map(TryInto::try_into).transpose()
        })
        .await
    }

    async fn revoke_access_token(&self, jti: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        retry_rolled_back(move || async move {
            // language=SQLite
            let done = sqlx::query(
                r#"update access_tokens set revoked_at = ?2 where jti = ?1 and revoked_at is null"#,
            )
            .bind(jti.to_string())
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"delete from signing_keys where kid = ?1"#)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn update_signing_key(&self, kid: &str, private_key: &[u8]) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"update signing_keys set private_key = ?2 where kid = ?1"#)
            .bind(kid)
            .bind(private_key)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn erase_stale_retry_answers(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        // language=SQLite
        let done = sqlx::query(
            r#"update refresh_tokens set retry_answer = null, retry_until = null
               where token_hash in (select token_hash from refresh_tokens
                                    where retry_answer is not null and retry_until <= ?1
                                    limit ?2)"#,
        )
        .bind(ts(now))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"select 1"#)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn count_active_families(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // language=SQLite
        let (n,): (i64,) = sqlx::query_as(
            r#"select count(*) from token_families f
               where f.revoked_at is null
                 and (exists (select 1 from refresh_tokens rt
                              where rt.family_id = f.id and rt.used_at is null
                                and rt.expires_at > ?1)
                      or exists (select 1 from access_tokens at
                                 where at.family_id = f.id and at.expires_at > ?1))"#,
        )
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Purged> {
        // One writer at a time: each delete is its own short write transaction.
        // language=SQLite
        let access = sqlx::query(
            r#"delete from access_tokens where jti in (
                 select jti from access_tokens where expires_at <= ?1 limit ?2)"#,
        )
        .bind(ts(now))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        // language=SQLite
        let families = sqlx::query(
            r#"delete from token_families where id in (
                 select f.id from token_families f
                 where not exists (select 1 from refresh_tokens rt
                                   where rt.family_id = f.id and rt.expires_at > ?1)
                   and not exists (select 1 from access_tokens at
                                   where at.family_id = f.id and at.expires_at > ?1)
                 limit ?2)"#,
        )
        .bind(ts(now))
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
        .execute(&self.pool)
        .await
        .map_err(unique("signing_keys_pkey"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_locked_out(&self, keys: &[String], now: OffsetDateTime) -> StoreResult<bool> {
        for key in keys {
            // language=SQLite
            let (locked,): (bool,) = sqlx::query_as(
                r#"select exists (select 1 from login_failures
                                  where key = ?1 and locked_until > ?2)"#,
            )
            .bind(key)
            .bind(ts(now))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            if locked {
                return Ok(true);
            }
        }
        Ok(false)
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
            // language=SQLite
            let (locked,): (bool,) = sqlx::query_as(
                r#"insert into login_failures (key, window_start, failures, locked_until)
                   values (?1, ?2, 1, case when ?4 <= 1 then ?5 end)
                   on conflict (key) do update set
                     window_start = case when window_start <= ?3 then ?2 else window_start end,
                     failures = case when window_start <= ?3 then 1 else failures + 1 end,
                     locked_until = case
                       when (case when window_start <= ?3 then 1 else failures + 1 end) >= ?4
                       then ?5 else locked_until end
                   returning coalesce(locked_until > ?2, 0)"#,
            )
            .bind(key)
            .bind(ts(now))
            .bind(ts(now - window))
            .bind(i64::from(max))
            .bind(ts(now + lock_for))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            Ok(locked)
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        retry_rolled_back(move || async move {
            // language=SQLite
            sqlx::query(r#"delete from login_failures where key = ?1"#)
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
        // language=SQLite
        let rows: Vec<AuditRow> = sqlx::query_as(
            r#"select at, kind, username, client_id, family_id, ip, outcome from audit_events
               where (?1 is null or username = ?1)
                 and (?2 is null or client_id = ?2)
                 and (?3 is null or at >= ?3)
               order by at desc, id desc limit ?4"#,
        )
        .bind(&f.username)
        .bind(&f.client_id)
        .bind(f.since.map(ts))
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    family_id: Uuid,
    rt: &NewRefreshToken,
) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into refresh_tokens (token_hash, family_id, issued_at, expires_at)
           values (?1, ?2, ?3, ?4)"#,
    )
    .bind(rt.hash.as_bytes().as_slice())
    .bind(family_id.to_string())
    .bind(ts(rt.issued_at))
    .bind(ts(rt.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(unique("refresh_tokens_pkey"))?;
    Ok(())
}

async fn insert_access_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    family_id: Uuid,
    at: &NewAccessToken,
) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into access_tokens (jti, family_id, issued_at, expires_at)
           values (?1, ?2, ?3, ?4)"#,
    )
    .bind(at.jti.to_string())
    .bind(family_id.to_string())
    .bind(ts(at.issued_at))
    .bind(ts(at.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(unique("access_tokens_pkey"))?;
    Ok(())
}

/// Appends an audit event, on the pool or inside a rotation's transaction.
async fn insert_audit<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    event: &AuditEvent,
) -> StoreResult<()> {
    // language=SQLite
    sqlx::query(
        r#"insert into audit_events (at, kind, username, client_id, family_id, ip, outcome)
           values (?1, ?2, ?3, ?4, ?5, ?6, ?7)"#,
    )
    .bind(ts(event.at))
    .bind(&event.kind)
    .bind(&event.username)
    .bind(&event.client_id)
    .bind(event.family_id.map(|f| f.to_string()))
    .bind(&event.ip)
    .bind(&event.outcome)
    .execute(executor)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_whose_transaction_sqlite_ended_is_not_reused() {
        let store = SqliteStore::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        // SQLite ends the transaction itself, as after SQLITE_FULL during a commit.
        sqlx::query("rollback").execute(&mut *tx).await.unwrap();
        drop(tx);
        conn.ping().await.unwrap();
        assert!(
            conn.is_in_transaction(),
            "the driver still counts the ended transaction"
        );
        drop(conn);

        let mut conn = store.pool.acquire().await.unwrap();
        assert!(!conn.is_in_transaction());
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("create table t (x integer)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(!conn.is_in_transaction());
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_created_says_why() {
        let dir = std::env::temp_dir().join(format!("rotor-missing-{}", Uuid::new_v4()));
        let url = format!("sqlite://{}/rotor.db", dir.display());

        let opened = SqliteStore::connect(&url, 1).await;

        let Err(e) = opened else {
            panic!("opened a database in a directory that does not exist")
        };
        let message = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(matches!(e, StoreError::Unwritable { .. }), "{e:?}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("No such file or directory"), "{message}");
    }

    #[tokio::test]
    async fn a_read_only_database_is_unavailable_for_writes_and_refused_at_start() {
        let path = std::env::temp_dir().join(format!("rotor-ro-{}.db", Uuid::new_v4()));
        let url = format!("sqlite://{}", path.display());
        let writable = SqliteStore::connect(&url, 1).await.unwrap();
        sqlx::query("create table t (x integer)")
            .execute(&writable.pool)
            .await
            .unwrap();
        writable.pool.close().await;
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .read_only(true);
        let read_only = SqlitePool::connect_with(options).await.unwrap();

        let write = sqlx::query("insert into t (x) values (1)")
            .execute(&read_only)
            .await
            .map_err(StoreError::from_sqlx);
        let typo = sqlx::query("insert into no_such_table (x) values (1)")
            .execute(&read_only)
            .await
            .map_err(StoreError::from_sqlx);

        read_only.close().await;
        let store = SqliteStore::open(
            SqliteConnectOptions::from_str(&url)
                .unwrap()
                .read_only(true),
            1,
        )
        .await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(
            matches!(write, Err(StoreError::Unavailable(_))),
            "{write:?}"
        );
        assert!(matches!(typo, Err(StoreError::Backend(_))), "{typo:?}");
        assert!(
            store.is_err(),
            "a database it cannot write opened as a store"
        );
    }
}
