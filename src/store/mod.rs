//! Storage: narrow traits of domain operations, one per aggregate, with a
//! PostgreSQL and a SQLite implementation. All SQL of the project lives below this
//! module; it knows nothing of OAuth error codes and returns records and
//! [`StoreError`]. Row mapping is shared ([`codec`]); only the SQL text is per
//! backend.
//!
//! A function asks for the sub-trait it uses (`&dyn FamilyStore`); the server state
//! holds `Arc<dyn Store>`, the sum of them all.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::crypto::{signing_key::StoredKey, token::TokenHash};

pub(crate) mod codec;
mod error;
pub mod postgres;
pub mod records;
pub mod sqlite;

pub use error::StoreError;
pub(crate) use error::{retry_read, retry_rolled_back, unique};
pub use postgres::PgStore;
pub use records::*;
pub use sqlite::SqliteStore;

/// Shorthand used by both backends.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database itself: schema, liveness, shutdown.
#[async_trait]
pub trait DatabaseStore: Send + Sync {
    /// Applies the embedded migrations; safe to run any number of times.
    async fn migrate(&self) -> StoreResult<()>;
    /// Closes every pooled connection; waits for those in use to be returned.
    async fn close(&self);
    /// Answers when the database can run a statement (the readiness probe).
    async fn ping(&self) -> StoreResult<()>;
    /// Whether the store holds neither a client nor a user (first start).
    async fn is_empty(&self) -> StoreResult<bool>;
}

/// Users (resource owners).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user. `Conflict` when the name is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Finds a user by name.
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Every user, by name.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// One page of the users, by name: those whose name contains
    /// [`KeyPage::contains`], after [`KeyPage::after`], at most [`KeyPage::limit`].
    async fn users_page(&self, page: &KeyPage) -> StoreResult<Vec<UserRecord>>;
    /// Disables or enables a user. `NotFound` when there is no such user.
    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<()>;
    /// Grants or withdraws the admin role. `NotFound` when there is no such user.
    async fn set_user_admin(&self, username: &str, admin: bool) -> StoreResult<()>;
    /// Replaces a user's password hash. `NotFound` when there is no such user.
    async fn set_user_password(&self, username: &str, password_hash: &str) -> StoreResult<()>;
}

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Adds a client. `Conflict` when the id is taken.
    async fn create_client(&self, client: &ClientRecord) -> StoreResult<()>;
    /// Finds a client by id.
    async fn find_client(&self, id: &str) -> StoreResult<Option<ClientRecord>>;
    /// Every client, by id.
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// One page of the clients, by id: those whose id contains
    /// [`KeyPage::contains`], after [`KeyPage::after`], at most [`KeyPage::limit`].
    async fn clients_page(&self, page: &KeyPage) -> StoreResult<Vec<ClientRecord>>;
    /// Removes a client and, by cascade, every family and token issued to it.
    /// `NotFound` when there is no such client.
    async fn remove_client(&self, id: &str) -> StoreResult<()>;
    /// Replaces what a client may do — grants, scopes, refresh and code-flow
    /// settings — keeping its id, secret and creation time. `NotFound` when there
    /// is no such client.
    async fn update_client(&self, client: &ClientRecord) -> StoreResult<()>;
    /// Replaces the secret hash of a confidential client; the old secret stops
    /// working at once. `NotFound` when there is no such confidential client.
    async fn set_client_secret(&self, id: &str, secret_hash: &TokenHash) -> StoreResult<()>;
}

/// Token families (one per grant) and their refresh tokens.
#[async_trait]
pub trait FamilyStore: Send + Sync {
    /// Stores a new family with its first refresh token (if any) and access-token
    /// id, all or nothing.
    async fn create_family(&self, family: &NewFamily) -> StoreResult<()>;
    /// Finds a refresh token by hash, with its family's, subject's and client's state.
    async fn find_refresh_token(&self, hash: &TokenHash)
    -> StoreResult<Option<RefreshTokenRecord>>;
    /// One refresh, in one step: spends the token (rotation on), moves the family
    /// counter and stores the successor, the access-token id, the retry answer and
    /// the audit event — only if the token is unspent, unexpired, of this client,
    /// its family live and under the limit, and its user enabled. Otherwise nothing
    /// changes and the outcome says why. Of concurrent calls for one token, across
    /// processes, exactly one is `Consumed`.
    async fn consume_refresh_token(&self, consume: &Consume) -> StoreResult<ConsumeOutcome>;
    /// Revokes a family — every refresh and access token of it — and erases the
    /// retry answers its tokens keep, in one transaction. Returns whether it was
    /// live before.
    async fn revoke_family(&self, family_id: Uuid, now: OffsetDateTime) -> StoreResult<bool>;
    /// A page of a user's families, newest first (by creation, then id).
    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        page: &CreatedPage,
    ) -> StoreResult<Vec<FamilyRecord>>;
    /// One family.
    async fn find_family(&self, id: Uuid, now: OffsetDateTime)
    -> StoreResult<Option<FamilyRecord>>;
    /// Families that are not revoked and still hold an unspent, unexpired refresh
    /// token or an unexpired access token.
    async fn count_active_families(&self, now: OffsetDateTime) -> StoreResult<u64>;
    /// Revokes every live family of `owner` — all of a user's logins, or all of a
    /// client's — and erases their retry answers, in one transaction. Returns how
    /// many were live.
    async fn revoke_families_of(
        &self,
        owner: &FamilyOwner,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// Counts a retry that the spent token `hash` answered inside its retry
    /// window: one counter on the token's row, so that retries show in the chain
    /// without one row each.
    async fn note_retry(&self, hash: &TokenHash, now: OffsetDateTime) -> StoreResult<()>;
    /// The retries the tokens of a family answered, oldest last retry first.
    async fn family_retries(&self, family_id: Uuid) -> StoreResult<Vec<Retries>>;
}

/// Browser sessions of the login page, known by the hash of their cookie and
/// shared by every instance.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: &NewBrowserSession) -> StoreResult<()>;
    /// Finds a session by the hash of its cookie, ended or not.
    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<BrowserSessionRecord>>;
    /// Notes activity (the idle timeout counts from it).
    async fn touch_session(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<()>;
    /// Ends a session and, in the same transaction, revokes every family born from
    /// it that is not offline. Returns whether it was live before.
    async fn end_session(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool>;
    /// A page of a user's sessions, ended or not, newest first (by creation,
    /// then id).
    async fn list_sessions(
        &self,
        user_id: Uuid,
        page: &CreatedPage,
    ) -> StoreResult<Vec<BrowserSessionRecord>>;
}

/// Authorization codes (RFC 6749 §4.1.2), known by their hash.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a new code.
    async fn create_code(&self, code: &NewAuthorizationCode) -> StoreResult<()>;
    /// Finds a code by hash, with its user's state.
    async fn find_code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCodeRecord>>;
    /// Spends a code and stores the family it is exchanged for and the audit event,
    /// in one step — only
    /// if the code is unspent, unexpired and its browser session live. Of
    /// concurrent calls for one code, across processes, exactly one is `Redeemed`.
    async fn redeem_code(&self, redeem: &Redeem) -> StoreResult<RedeemOutcome>;
}

/// Consents of people to third-party clients.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes `user_id` consented to for `client_id`, if any.
    async fn find_consent(&self, user_id: Uuid, client_id: &str) -> StoreResult<Option<String>>;
    /// Records consent to `scope` (space-separated), replacing the previous one.
    async fn grant_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        scope: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Every consent of a user, by client id.
    async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<ConsentRecord>>;
    /// Withdraws a consent; returns whether there was one.
    async fn revoke_consent(&self, user_id: Uuid, client_id: &str) -> StoreResult<bool>;
}

/// Issued access tokens, known by their `jti`.
#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    /// Finds an issued access token by its jti, with its family's state.
    async fn find_access_token(&self, jti: Uuid) -> StoreResult<Option<AccessTokenRecord>>;
    /// Revokes one access token. Returns whether it was live before.
    async fn revoke_access_token(&self, jti: Uuid, now: OffsetDateTime) -> StoreResult<bool>;
}

/// JWT signing keys, shared by every instance.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every signing key.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Adds a signing key.
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Adds `key` unless the store already holds a key of its algorithm; returns
    /// whether it was added. Of instances starting together on an empty store,
    /// exactly one adds its key, so that all of them sign with the same one.
    async fn insert_first_signing_key(&self, key: &StoredKey) -> StoreResult<bool>;
    /// Removes a signing key that no live token can carry any more.
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;
    /// Replaces a signing key's stored material (re-sealing under a new secret).
    async fn update_signing_key(&self, kid: &str, private_key: &[u8]) -> StoreResult<()>;
}

/// The brute-force counters, per username and per client address.
#[async_trait]
pub trait LockoutStore: Send + Sync {
    /// Begins a sign-in attempt for `key`, before its credentials are checked:
    /// allowed only while the failures and the attempts still being checked stay
    /// under `max` within a sliding `window`, so that of concurrent guesses at most
    /// `max` are ever checked per window, across instances. A refused attempt is
    /// counted on the key's row. An ended window or lock starts a new window.
    async fn begin_login_attempt(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
        max: u32,
    ) -> StoreResult<LoginAttempt>;
    /// Ends an attempt [`begin_login_attempt`](Self::begin_login_attempt) allowed.
    /// A failure is counted, and the failure that reaches `max` locks the key for
    /// `lock_for`; returns whether this call locked it.
    async fn end_login_attempt(
        &self,
        key: &str,
        failed: bool,
        now: OffsetDateTime,
        max: u32,
        lock_for: Duration,
    ) -> StoreResult<bool>;
    /// Forgets the failures of `key` (a successful sign-in of that username).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;
    /// Which of `keys` are locked at `now`, and until when.
    async fn locked_keys(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<(String, OffsetDateTime)>>;
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an audit event.
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Audit events matching `filter`, newest first, each with its position for
    /// the next page ([`AuditFilter::before`]).
    async fn audit_page(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Audit events matching `filter`, newest first.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        Ok(self
            .audit_page(filter)
            .await?
            .into_iter()
            .map(|e| e.event)
            .collect())
    }
    /// How many events of each kind and outcome happened at or after `since`.
    async fn count_audit(&self, since: OffsetDateTime) -> StoreResult<Vec<AuditCount>>;
}

/// Settings changed at run time, overriding the configuration file's on every
/// instance sharing the store. Each change is written with its audit event, in
/// one transaction.
#[async_trait]
pub trait SettingStore: Send + Sync {
    /// Every stored setting, by key.
    async fn list_settings(&self) -> StoreResult<Vec<SettingRecord>>;
    /// Stores `setting`, replacing the value its key had, and records `audit`.
    async fn put_setting(&self, setting: &SettingRecord, audit: &AuditEvent) -> StoreResult<()>;
    /// Removes the stored value of `key`, recording `audit` when there was one;
    /// returns whether there was one.
    async fn remove_setting(&self, key: &str, audit: &AuditEvent) -> StoreResult<bool>;
}

/// DPoP (RFC 9449): the proofs seen, and the key of the server's nonces.
#[async_trait]
pub trait DpopStore: Send + Sync {
    /// Records a proof as used, in one atomic insert under a unique key; returns
    /// false, changing nothing, when a proof with its `jti`, key and URL is
    /// recorded already (a replay, §11.1), whichever instance saw it.
    async fn record_dpop_proof(&self, proof: &ProofUse) -> StoreResult<bool>;
    /// The server secret kept as `name`, storing `candidate` first when there is
    /// none: of instances starting together every one gets the same value.
    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<u8>>;
    /// The server secret kept as `name`, if any.
    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Replaces the stored value of the server secret `name` (re-sealing under a
    /// new `keys.secret`).
    async fn replace_server_secret(&self, name: &str, value: &[u8]) -> StoreResult<()>;
}

/// Retention: every delete of rows that have outlived their use, in bounded
/// batches. Instances may run these at the same time.
#[async_trait]
pub trait CleanupStore: Send + Sync {
    /// Deletes at most `limit` expired access-token ids and at most `limit` dead
    /// families (nothing in them expires after `now`; their refresh tokens go with
    /// them). Spent refresh tokens of a live family stay, so that reuse detection
    /// holds for the family's whole life.
    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Purged>;
    /// Erases up to `limit` retry answers whose window has ended; returns how many.
    async fn erase_stale_retry_answers(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` authorization codes that expired before `before`, and
    /// up to `limit` browser sessions that ended or expired before it; returns how
    /// many rows went.
    async fn purge_codes_and_sessions(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64>;
    /// Deletes up to `limit` DPoP proof records that expired by `now`; returns how
    /// many.
    async fn purge_dpop_proofs(&self, now: OffsetDateTime, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` audit events older than `before`; returns how many.
    async fn purge_audit_events(&self, before: OffsetDateTime, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` lockout counters whose window started before
    /// `window_start_before` and whose lock (if any) ended by `now`.
    async fn purge_login_failures(
        &self,
        now: OffsetDateTime,
        window_start_before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64>;
}

/// The rotor processes serving the database, as each reports itself.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Creates or refreshes this instance's row.
    async fn record_instance(&self, instance: &InstanceRecord) -> StoreResult<()>;
    /// The instances seen at or after `since`, by name and start.
    async fn list_instances(&self, since: OffsetDateTime) -> StoreResult<Vec<InstanceRecord>>;
    /// Deletes an instance's row (it shuts down); whether there was one.
    async fn remove_instance(&self, id: Uuid) -> StoreResult<bool>;
    /// Deletes the rows last seen before `before`; returns how many.
    async fn purge_instances(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// All persistent state of rotor: every sub-trait. Each method is atomic.
pub trait Store:
    DatabaseStore
    + UserStore
    + ClientStore
    + FamilyStore
    + SessionStore
    + CodeStore
    + ConsentStore
    + AccessTokenStore
    + KeyStore
    + LockoutStore
    + AuditStore
    + SettingStore
    + DpopStore
    + CleanupStore
    + InstanceStore
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: DatabaseStore
        + UserStore
        + ClientStore
        + FamilyStore
        + SessionStore
        + CodeStore
        + ConsentStore
        + AccessTokenStore
        + KeyStore
        + LockoutStore
        + AuditStore
        + SettingStore
        + DpopStore
        + CleanupStore
        + InstanceStore
        + std::fmt::Debug
{
}

/// Brings every sub-trait into scope, for callers of `dyn Store` methods.
pub mod prelude {
    pub use super::{
        AccessTokenStore, AuditStore, CleanupStore, ClientStore, CodeStore, ConsentStore,
        DatabaseStore, DpopStore, FamilyStore, InstanceStore, KeyStore, LockoutStore, SessionStore,
        SettingStore, Store, UserStore,
    };
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
