//! Storage: one trait of domain operations, with a PostgreSQL and a SQLite
//! implementation. All SQL of the project lives below this module; it knows nothing
//! of OAuth error codes and returns records and [`StoreError`].

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::crypto::{keys::StoredKey, token::TokenHash};

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict { constraint: &'static str },
    /// The database cannot be reached or cannot write for now (pool timeout, dropped
    /// connection, busy file, full or read-only disk, I/O error).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure, or a row that does not decode.
    #[error("database error")]
    Backend(#[source] sqlx::Error),
    /// A stored value is not what this version expects.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The SQLite file, or the directory that holds its `-wal` and `-shm` files,
    /// cannot be written (a read-only volume, permissions, a missing directory).
    #[error("{} cannot be written (rotor writes the database file and the -wal and -shm files beside it)", path.display())]
    Unwritable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Sorts a driver error into "retry later" and "broken".
    pub(crate) fn from_sqlx(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            sqlx::Error::Database(db) if is_transient(db.as_ref()) => StoreError::Unavailable(e),
            _ => StoreError::Backend(e),
        }
    }
}

/// Whether a database error is about the server or the disk rather than the
/// statement, so that a later attempt may succeed: the caller answers 503.
///
/// PostgreSQL (SQLSTATE): serialization failure, deadlock, too many connections,
/// connection errors (08…), shutdown and restart (57P…).
///
/// SQLite reports extended result codes, whose low byte is the primary code:
/// BUSY (5), LOCKED (6), READONLY (8: the file or its disk turned read-only),
/// IOERR (10: e.g. a disk that failed or was remounted read-only under us),
/// FULL (13) and CANTOPEN (14: the file became unreachable).
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    match error_code(db) {
        Some(ErrorCode::Sqlite(extended)) => matches!(extended & 0xff, 5 | 6 | 8 | 10 | 13 | 14),
        Some(ErrorCode::Sqlstate(code)) => {
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code.as_str(), "40001" | "40P01" | "53300")
        }
        None => false,
    }
}

/// A database error's code, read the way its backend means it.
enum ErrorCode {
    /// SQLite's extended result code.
    Sqlite(i32),
    /// PostgreSQL's SQLSTATE.
    Sqlstate(String),
}

fn error_code(db: &dyn sqlx::error::DatabaseError) -> Option<ErrorCode> {
    let code = db.code()?;
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse().ok().map(ErrorCode::Sqlite)
    } else {
        Some(ErrorCode::Sqlstate(code.into_owned()))
    }
}

/// Runs a read again, once, when it failed on a dropped connection or a transient
/// database error (a restart, a failover): reads are idempotent, so the retry is
/// safe. A pool timeout is not retried — waiting twice would only double the wait
/// before the 503. Writes are never retried here: after a dropped connection their
/// outcome is unknown, and the caller answers 503 `temporarily_unavailable`.
pub(crate) async fn retry_read<T, F, Fut>(mut read: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    match read().await {
        Err(StoreError::Unavailable(e)) if !matches!(e, sqlx::Error::PoolTimedOut) => {
            tracing::warn!(error = %e, "read failed on a transient error; retrying once");
            read().await
        }
        other => other,
    }
}

/// Runs a write again, once, when the database aborted it and says so: a
/// serialization failure or a deadlock (PostgreSQL), or a snapshot that another
/// writer made stale (SQLite BUSY_SNAPSHOT). The database rolled the transaction
/// back, so nothing of it was kept and running it again is safe. Nothing else is
/// retried: after a dropped connection a commit's outcome is unknown, and a busy
/// file has already been waited for; the caller answers 503.
pub(crate) async fn retry_rolled_back<T, F, Fut>(mut write: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    match write().await {
        Err(StoreError::Unavailable(e)) if was_rolled_back(&e) => {
            tracing::warn!(error = %e, "the database aborted a write; retrying it once");
            write().await
        }
        other => other,
    }
}

/// Whether the database reports that it rolled the transaction back on its own.
fn was_rolled_back(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    match error_code(db.as_ref()) {
        Some(ErrorCode::Sqlite(extended)) => extended == 517,
        Some(ErrorCode::Sqlstate(code)) => matches!(code.as_str(), "40001" | "40P01"),
        None => false,
    }
}

/// Shorthand used by both backends.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

/// A client as stored.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub id: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<TokenHash>,
    /// Grant type names this client may use.
    pub grant_types: Vec<String>,
    /// Scope values this client may ask for.
    pub scopes: Vec<String>,
    /// Whether this client receives refresh tokens.
    pub refresh_tokens: bool,
    /// Refresh-token lifetime for this client, instead of the server's.
    pub refresh_ttl: Option<Duration>,
    /// Refresh limit per family for this client, instead of the server's (0 = unlimited).
    pub max_refreshes: Option<u32>,
    /// Retry grace period for this client, instead of the server's.
    pub grace_period: Option<Duration>,
    pub created_at: OffsetDateTime,
}

impl ClientRecord {
    /// Public clients have no secret (RFC 6749 §2.1).
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: TokenHash,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The id of an issued access token, to store.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub jti: Uuid,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A login: a new token family with its first tokens, written in one transaction.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub family_id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    pub scope: String,
    pub created_at: OffsetDateTime,
    pub refresh: Option<NewRefreshToken>,
    pub access: NewAccessToken,
}

/// A refresh token with the state of its family, user and client, as the grant
/// needs it to decide.
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    pub username: String,
    pub user_disabled: bool,
    /// The scope granted at login; a narrowed refresh never changes it.
    pub scope: String,
    pub refresh_count: u32,
    pub family_revoked: bool,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    /// Whether the token that replaced this one was spent in turn, which closes
    /// this token's retry window.
    pub successor_used: bool,
    /// The sealed answer of this token's refresh, while its retry window lasts.
    pub retry_answer: Option<Vec<u8>>,
    pub retry_until: Option<OffsetDateTime>,
}

/// An issued access token's id with the state of its family, user and client, for
/// revocation, introspection and the bearer guard.
#[derive(Debug, Clone)]
pub struct AccessTokenRecord {
    pub jti: Uuid,
    pub family_id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    pub username: String,
    pub user_disabled: bool,
    pub revoked: bool,
    pub family_revoked: bool,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// One refresh, applied atomically by [`Store::rotate_refresh_token`].
#[derive(Debug, Clone)]
pub struct Rotation {
    pub old: TokenHash,
    pub family_id: Uuid,
    pub now: OffsetDateTime,
    /// Mark the old token used (rotation on). With rotation off it stays valid.
    pub spend_old: bool,
    /// Refreshes allowed in the family; 0 = unlimited.
    pub max_refreshes: u32,
    /// The successor (rotation on).
    pub successor: Option<NewRefreshToken>,
    pub access: NewAccessToken,
    /// The sealed answer kept on the spent token for retries (grace period on).
    pub retry: Option<SealedAnswer>,
    /// Recorded in the same transaction, so that a refresh and its audit record
    /// commit together.
    pub audit: Option<AuditEvent>,
}

/// A refresh for [`Store::rotate_in_one_step`]: no scope narrowing, no retry window.
#[derive(Debug, Clone)]
pub struct QuickRotation {
    pub old: TokenHash,
    pub client_id: String,
    pub now: OffsetDateTime,
    /// Refreshes allowed in the family; 0 = unlimited.
    pub max_refreshes: u32,
    pub successor: NewRefreshToken,
    pub access: NewAccessToken,
    /// The client's address, for the audit record written in the same statement.
    pub ip: Option<String>,
}

/// What the access token of a one-step rotation needs.
#[derive(Debug, Clone)]
pub struct QuickRotated {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub scope: String,
    pub refresh_count: u32,
}

/// An answer sealed for retries, and when its window ends.
#[derive(Debug, Clone)]
pub struct SealedAnswer {
    pub ciphertext: Vec<u8>,
    pub until: OffsetDateTime,
}

/// What [`Store::rotate_refresh_token`] did. Anything but `Rotated` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The old token is spent, the counter moved, the new tokens are stored.
    Rotated { refresh_count: u32 },
    /// Another request spent the token first.
    AlreadyUsed,
    /// The family reached its refresh limit.
    LimitReached,
    /// The family was revoked, or its user disabled, in the meantime.
    Inactive,
}

/// All persistent state of rotor. Methods are domain operations; each one is atomic.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies the embedded migrations; safe to run any number of times.
    async fn migrate(&self) -> StoreResult<()>;

    /// Closes every pooled connection; waits for those in use to be returned.
    async fn close(&self);

    /// Whether the store holds neither a client nor a user (first start).
    async fn is_empty(&self) -> StoreResult<bool>;

    /// Adds a user. `Conflict` when the name is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Finds a user by name.
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Every user, by name.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Disables or enables a user. `NotFound` when there is no such user.
    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<()>;

    /// Adds a client. `Conflict` when the id is taken.
    async fn create_client(&self, client: &ClientRecord) -> StoreResult<()>;
    /// Finds a client by id.
    async fn find_client(&self, id: &str) -> StoreResult<Option<ClientRecord>>;
    /// Every client, by id.
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Removes a client and, by cascade, every family and token issued to it.
    /// `NotFound` when there is no such client.
    async fn remove_client(&self, id: &str) -> StoreResult<()>;

    /// Stores a login: family, first refresh token (if any) and access-token id.
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;
    /// Finds a refresh token by hash, with its family's, user's and client's state.
    async fn find_refresh_token(&self, hash: &TokenHash)
    -> StoreResult<Option<RefreshTokenRecord>>;
    /// Spends the old token, moves the family counter and stores the new tokens, all
    /// or nothing. Concurrent calls for one token: exactly one returns `Rotated`.
    async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<RotationOutcome>;
    /// The common case of a refresh in one round trip: rotates only if the token is
    /// unspent, unexpired, of `client_id`, its family live and under the limit, and
    /// its user enabled; returns what the access token needs. `None` changed nothing
    /// (the grant then looks the token up to say why). A backend that cannot do this
    /// in one statement returns `None` without asking the database.
    async fn rotate_in_one_step(
        &self,
        rotation: &QuickRotation,
    ) -> StoreResult<Option<QuickRotated>> {
        let _ = rotation;
        Ok(None)
    }
    /// Revokes a family: every refresh and access token of the login, in one row
    /// update (and erases retry answers its tokens still keep). Returns whether it
    /// was live before.
    async fn revoke_family(&self, family_id: Uuid, now: OffsetDateTime) -> StoreResult<bool>;

    /// Every signing key.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Adds a signing key.
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;

    /// Finds an issued access token by its jti, with its family's state.
    async fn find_access_token(&self, jti: Uuid) -> StoreResult<Option<AccessTokenRecord>>;
    /// Revokes one access token. Returns whether it was live before.
    async fn revoke_access_token(&self, jti: Uuid, now: OffsetDateTime) -> StoreResult<bool>;
    /// Removes a signing key that no live token can carry any more.
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;
    /// Replaces a signing key's stored material (re-sealing under a new secret).
    async fn update_signing_key(&self, kid: &str, private_key: &[u8]) -> StoreResult<()>;
    /// Erases up to `limit` retry answers whose window has ended; returns how many.
    async fn erase_stale_retry_answers(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64>;
    /// Answers when the database can run a statement (the readiness probe).
    async fn ping(&self) -> StoreResult<()>;
    /// Families that are not revoked and still hold an unspent, unexpired refresh
    /// token or an unexpired access token.
    async fn count_active_families(&self, now: OffsetDateTime) -> StoreResult<u64>;
    /// Deletes at most `limit` expired access-token ids and at most `limit` dead
    /// families (nothing in them expires after `now`; their refresh tokens go with
    /// them). Spent refresh tokens of a live family stay, so that reuse detection
    /// holds for the family's whole life. Instances may run this at the same time.
    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Purged>;
    /// Adds `key` unless the store already holds a key of its algorithm; returns
    /// whether it was added. Of instances starting together on an empty store,
    /// exactly one adds its key, so that all of them sign with the same one.
    async fn insert_first_signing_key(&self, key: &StoredKey) -> StoreResult<bool>;

    /// Whether any of `keys` is locked out at `now`.
    async fn is_locked_out(&self, keys: &[String], now: OffsetDateTime) -> StoreResult<bool>;
    /// Counts a failed login for `key` within a sliding `window`; at `max` failures
    /// the key is locked for `lock_for`. Returns whether this failure locked it.
    /// Atomic, so that instances counting at once lose no failure.
    async fn record_login_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
        max: u32,
        lock_for: Duration,
    ) -> StoreResult<bool>;
    /// Forgets the failures of `key` (after a successful login).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;
    /// Appends an audit event.
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Audit events matching `filter`, newest first.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

/// One audit record: who, which client and login, when, from where, what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    /// `login`, `login_failed`, `lockout`, `refresh`, `reuse_detected`, `revoked`.
    pub kind: String,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub family_id: Option<Uuid>,
    pub ip: Option<String>,
    /// `success`, or why not.
    pub outcome: String,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub limit: u32,
}

/// What one [`Store::purge_expired`] batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub access_tokens: u64,
    pub families: u64,
}

/// Opens the store named by `database.url`.
///
/// # Errors
/// The URL is malformed or the database cannot be reached.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    }
}

/// Space-separated lists, as stored for grant types and scopes.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_owned).collect()
}

/// Converts a stored count to `u32`.
pub(crate) fn count(value: i64, column: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range: {value}")))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn dropped() -> StoreError {
        StoreError::from_sqlx(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))
    }

    #[tokio::test]
    async fn a_read_on_a_dropped_connection_is_retried_once() {
        let calls = AtomicU32::new(0);
        let got = retry_read(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(dropped()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_read_is_retried_at_most_once_and_never_after_a_pool_timeout() {
        let calls = AtomicU32::new(0);
        let got: StoreResult<()> = retry_read(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(dropped())
        })
        .await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = AtomicU32::new(0);
        let got: StoreResult<()> = retry_read(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::from_sqlx(sqlx::Error::PoolTimedOut))
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
