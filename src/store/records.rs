//! The domain records the store reads and writes. They hold hashes, never a token,
//! secret or password in clear, and their `Debug` shows no hash of a password.

use std::{fmt, time::Duration};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{crypto::token::TokenHash, wire::GrantType};

/// A user as stored.
#[derive(Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A PHC string is an offline-crackable copy of the password.
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A client as stored.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub id: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<TokenHash>,
    /// The grants this client may use.
    pub grant_types: Vec<GrantType>,
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

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// Whose tokens a family holds: a user's, or the client's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A resource owner who signed in (the password grant).
    User { id: Uuid, username: String },
    /// The client acting on its own behalf (client_credentials, RFC 6749 §4.4).
    Client { id: String },
}

impl Subject {
    /// The JWT `sub` (RFC 9068 §2.2): the user's id, or the client id when the
    /// client is the subject.
    pub fn sub(&self) -> String {
        match self {
            Subject::User { id, .. } => id.to_string(),
            Subject::Client { id } => id.clone(),
        }
    }

    /// The user's name, when the subject is a user.
    pub fn username(&self) -> Option<&str> {
        match self {
            Subject::User { username, .. } => Some(username),
            Subject::Client { .. } => None,
        }
    }

    /// The user's id, when the subject is a user.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Subject::User { id, .. } => Some(*id),
            Subject::Client { .. } => None,
        }
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

/// A grant's new token family with its first tokens, written in one transaction.
#[derive(Debug, Clone)]
pub struct NewFamily {
    pub family_id: Uuid,
    pub client_id: String,
    /// The user, or `None` when the client is the subject.
    pub user_id: Option<Uuid>,
    pub scope: String,
    pub created_at: OffsetDateTime,
    pub refresh: Option<NewRefreshToken>,
    pub access: NewAccessToken,
}

/// A refresh token with the state of its family, subject and client, as the grant
/// needs it to decide.
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub client_id: String,
    pub subject: Subject,
    /// The subject is a user who was disabled.
    pub subject_disabled: bool,
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

/// An issued access token's id with the state of its family, subject and client,
/// for revocation, introspection and the bearer guard.
#[derive(Debug, Clone)]
pub struct AccessTokenRecord {
    pub jti: Uuid,
    pub family_id: Uuid,
    pub client_id: String,
    pub subject: Subject,
    pub subject_disabled: bool,
    pub revoked: bool,
    pub family_revoked: bool,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// One refresh for [`FamilyStore::consume_refresh_token`](super::FamilyStore):
/// everything the grant prepared before asking, so that nothing is left to fail
/// once the store has committed.
#[derive(Debug, Clone)]
pub struct Consume {
    pub token: TokenHash,
    /// The authenticated client; another client's token is not consumed.
    pub client_id: String,
    pub now: OffsetDateTime,
    /// Refreshes allowed in the family; 0 = unlimited.
    pub max_refreshes: u32,
    /// With rotation on, the token is spent and this successor stored; with rotation
    /// off (`None`) the token stays valid and only the counter moves.
    pub successor: Option<NewRefreshToken>,
    pub access: NewAccessToken,
    /// The sealed answer kept on the spent token for retries (grace period on).
    pub retry: Option<SealedAnswer>,
    /// Recorded in the same step, so that a refresh and its audit record commit
    /// together.
    pub audit: AuditEvent,
}

/// What [`FamilyStore::consume_refresh_token`](super::FamilyStore) did. Anything but
/// `Consumed` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The token is spent (rotation on), the counter moved, the new tokens stored.
    Consumed { refresh_count: u32 },
    /// The token was spent before: by an earlier refresh, or a concurrent one.
    AlreadyUsed,
    /// The token's lifetime is over.
    Expired,
    /// The token was issued to another client.
    WrongClient,
    /// The family was revoked.
    Revoked,
    /// The family's user is disabled.
    SubjectDisabled,
    /// The family reached its refresh limit.
    LimitReached,
    /// No such token.
    Unknown,
}

/// An answer sealed for retries, and when its window ends.
#[derive(Debug, Clone)]
pub struct SealedAnswer {
    pub ciphertext: Vec<u8>,
    pub until: OffsetDateTime,
}

/// What [`LockoutStore::begin_login_attempt`](super::LockoutStore) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Under the limit: the credentials may be checked.
    Allowed,
    /// The failures and the attempts being checked are at the limit: refused for
    /// now, without locking.
    Busy,
    /// The key is locked.
    Locked,
}

/// What an audit event records. Stored by [`AuditKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A user signed in and a family began.
    Login,
    /// A sign-in was refused.
    LoginFailed,
    /// A username or address was locked out.
    Lockout,
    /// A client obtained a token for itself (client_credentials).
    Issued,
    /// A refresh token was rotated.
    Refresh,
    /// A spent refresh token was presented again.
    ReuseDetected,
    /// A client revoked a token.
    Revoked,
}

impl AuditKind {
    /// Every kind, for parsing.
    pub const ALL: [AuditKind; 7] = [
        AuditKind::Login,
        AuditKind::LoginFailed,
        AuditKind::Lockout,
        AuditKind::Issued,
        AuditKind::Refresh,
        AuditKind::ReuseDetected,
        AuditKind::Revoked,
    ];

    /// The stored and logged name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Login => "login",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::Lockout => "lockout",
            AuditKind::Issued => "issued",
            AuditKind::Refresh => "refresh",
            AuditKind::ReuseDetected => "reuse_detected",
            AuditKind::Revoked => "revoked",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How an audited action ended. Stored by [`Outcome::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A password was checked and was wrong (or the user unknown).
    InvalidCredentials,
    /// Refused during a lockout, before any hashing.
    LockedOut,
    UserDisabled,
    /// The username's failures locked it.
    UsernameLocked,
    /// The address's failures locked it.
    AddressLocked,
    /// Reuse detection ended the family.
    FamilyRevoked,
    /// A revocation ended a whole family.
    Family,
    /// A revocation ended one access token.
    AccessToken,
}

impl Outcome {
    /// Every outcome, for parsing.
    pub const ALL: [Outcome; 9] = [
        Outcome::Success,
        Outcome::InvalidCredentials,
        Outcome::LockedOut,
        Outcome::UserDisabled,
        Outcome::UsernameLocked,
        Outcome::AddressLocked,
        Outcome::FamilyRevoked,
        Outcome::Family,
        Outcome::AccessToken,
    ];

    /// The stored and logged name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::InvalidCredentials => "invalid_credentials",
            Outcome::LockedOut => "locked_out",
            Outcome::UserDisabled => "user_disabled",
            Outcome::UsernameLocked => "username_locked",
            Outcome::AddressLocked => "address_locked",
            Outcome::FamilyRevoked => "family_revoked",
            Outcome::Family => "family",
            Outcome::AccessToken => "access_token",
        }
    }

    /// The outcome stored as `name`.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// One audit record: who, which client and login, when, from where, what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    pub kind: AuditKind,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub family_id: Option<Uuid>,
    pub ip: Option<String>,
    pub outcome: Outcome,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub limit: u32,
}

/// What one [`CleanupStore::purge_expired`](super::CleanupStore) batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub access_tokens: u64,
    pub families: u64,
}
