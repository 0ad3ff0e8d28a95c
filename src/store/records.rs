//! The domain records the store reads and writes. They hold hashes, never a token,
//! secret or password in clear, and their `Debug` shows no hash of a password.

use std::{fmt, time::Duration};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{crypto::token::TokenHash, wire::GrantType};

/// The id of a row the token endpoint creates on every grant: a token family, an
/// access token's `jti`. A UUIDv7 (RFC 9562 §5.7): ordered by creation time, so
/// each insert lands on the rightmost page of the primary-key index and of every
/// index keyed by the family (its tokens', its audit events'), the pages the
/// inserts just before it dirtied, instead of a random page of each. On SQLite,
/// whose single writer commits a group of such writes together, that is fewer
/// pages written per grant; on PostgreSQL, fewer pages split and read. The ids
/// are identifiers, never secrets (tokens and codes are); the 74 random bits keep
/// them unique across instances, and the time they carry is the `iat` beside them.
pub fn new_row_id() -> Uuid {
    Uuid::now_v7()
}

/// A user as stored.
#[derive(Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    /// May use the admin console and the admin API.
    pub admin: bool,
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
            .field("admin", &self.admin)
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
    /// How the client uses the authorization code flow.
    pub code_flow: CodeFlowSettings,
    /// How the client uses DPoP (RFC 9449).
    pub dpop: DpopClientSettings,
    pub created_at: OffsetDateTime,
}

/// How a client uses DPoP (RFC 9449). The default: proofs optional, the server's
/// nonce setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DpopClientSettings {
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request of the client
    /// must carry a proof.
    pub bound_access_tokens: bool,
    /// Whether its proofs need a nonce, instead of `dpop.require_nonce`.
    pub require_nonce: Option<bool>,
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

/// How a client uses the authorization code flow (RFC 6749 §4.1). The defaults
/// are the strict ones: no redirect URI (so no flow), first party, PKCE required,
/// no `offline_access`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeFlowSettings {
    /// Registered redirect URIs, compared exactly (RFC 9700 §2.1), loopback IP
    /// ones on any port (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// Whether the person is asked before the client gets tokens.
    pub consent: Consent,
    /// Whether the client must send a PKCE challenge.
    pub pkce: Pkce,
    /// Whether the client may ask for `offline_access`.
    pub offline_access: bool,
    /// Lifetime of each offline refresh token from its issue, instead of 90 days.
    pub offline_ttl: Option<Duration>,
    /// Refresh tokens from the flow only when `offline_access` was granted
    /// (ReachFive's rule).
    pub refresh_requires_offline: bool,
}

/// Whether a client's users are asked to consent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consent {
    /// The operator's own application: no consent screen.
    #[default]
    FirstParty,
    /// Someone else's application: the person consents once per scope set.
    ThirdParty,
}

/// Whether a client must use PKCE (RFC 7636).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pkce {
    /// OAuth 2.1 §4.1.1: every client sends a challenge.
    #[default]
    Required,
    /// A confidential client may leave it out (never a public one).
    Optional,
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
    /// The browser session the family was born from (authorization code flow).
    pub session_id: Option<Uuid>,
    /// Whether `offline_access` was granted: the family outlives its session.
    pub offline: bool,
    /// No refresh token of the family lives past this (its session's end).
    pub expires_at: Option<OffsetDateTime>,
    /// The JWK thumbprint its refresh tokens are bound to (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
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
    /// The browser session the family was born from, if any.
    pub session_id: Option<Uuid>,
    /// Whether the family outlives its session (`offline_access`).
    pub offline: bool,
    /// No successor may live past this.
    pub family_expires_at: Option<OffsetDateTime>,
    /// The JWK thumbprint the family's refresh tokens are bound to (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
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
    /// The DPoP proof of the request, recorded in the same step (RFC 9449 §11.1).
    /// A family bound to a key is refreshed only with a proof of that key.
    pub proof: Option<ProofUse>,
    /// Binds an unbound family to the proof's key (a public client's first
    /// refresh with a proof).
    pub bind_family: bool,
    /// Recorded in the same step, so that a refresh and its audit record commit
    /// together.
    pub audit: AuditEvent,
}

/// A DPoP proof as used (RFC 9449 §11.1): one per `jti`, key and URL until it
/// expires, across instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofUse {
    /// SHA-256 of the proof's `jti`.
    pub jti_hash: TokenHash,
    /// The JWK thumbprint of its key.
    pub jkt: String,
    /// Its normalised `htu`.
    pub htu: String,
    /// After this no proof with this `jti` is fresh enough to be accepted.
    pub expires_at: OffsetDateTime,
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
    /// The family is bound to another DPoP key than the proof's, or the request
    /// has no proof.
    WrongKey,
    /// The request's DPoP proof was used before.
    ProofReplayed,
    /// No such token.
    Unknown,
}

/// A browser session to store: created by a successful sign-in at the login page.
#[derive(Debug, Clone)]
pub struct NewBrowserSession {
    pub id: Uuid,
    /// SHA-256 of the cookie value.
    pub hash: TokenHash,
    pub user_id: Uuid,
    pub created_at: OffsetDateTime,
    /// The absolute end (`session.max_lifetime`).
    pub expires_at: OffsetDateTime,
    /// The address it signed in from, when known.
    pub ip: Option<String>,
}

/// A browser session with its user's state.
#[derive(Debug, Clone)]
pub struct BrowserSessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub user_disabled: bool,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    /// The address it signed in from, when known.
    pub ip: Option<String>,
}

/// An authorization code to store (RFC 6749 §4.1.2), bound to everything its
/// exchange must match.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    pub hash: TokenHash,
    pub client_id: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether the authorization request named it (then the exchange must too,
    /// RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    /// The S256 PKCE challenge, when one was sent.
    pub code_challenge: Option<String>,
    pub scope: String,
    /// Whether `offline_access` was granted.
    pub offline: bool,
    /// RFC 9449 §10: the `dpop_jkt` of the request; the exchange must present a
    /// proof of that key.
    pub dpop_jkt: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A stored authorization code with the state its exchange checks.
#[derive(Debug, Clone)]
pub struct AuthorizationCodeRecord {
    pub client_id: String,
    pub user_id: Uuid,
    pub username: String,
    pub user_disabled: bool,
    pub session_id: Uuid,
    /// When the code's browser session ends at the latest (gone: `None`).
    pub session_expires_at: Option<OffsetDateTime>,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub code_challenge: Option<String>,
    pub scope: String,
    pub offline: bool,
    pub dpop_jkt: Option<String>,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    /// The family the code was exchanged for.
    pub family_id: Option<Uuid>,
}

/// One exchange for [`CodeStore::redeem_code`](super::CodeStore): the code and the
/// family prepared for it.
#[derive(Debug, Clone)]
pub struct Redeem {
    pub code: TokenHash,
    pub now: OffsetDateTime,
    pub family: NewFamily,
    /// Recorded in the same step, so that a sign-in and its audit record commit
    /// together (as a refresh does).
    pub audit: AuditEvent,
}

/// What [`CodeStore::redeem_code`](super::CodeStore) did. Anything but `Redeemed`
/// changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemOutcome {
    /// The code is spent and the family stored.
    Redeemed,
    /// The code was exchanged before, for this family.
    AlreadyUsed {
        family_id: Option<Uuid>,
    },
    Expired,
    /// The browser session the code came from ended before the exchange.
    SessionEnded,
    Unknown,
}

/// A person's standing consent to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client_id: String,
    /// The scopes consented to, space-separated.
    pub scope: String,
    pub granted_at: OffsetDateTime,
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
    /// A browser session ended (logout or reuse detection).
    Logout,
    /// A person answered a consent page.
    Consent,
    /// An authorization code was presented again.
    CodeReuse,
    /// An admin changed something (see the event's target).
    AdminChange,
    /// A DPoP-bound refresh token or code was presented without a proof of its key.
    DpopWrongKey,
    /// A DPoP proof was presented again.
    DpopReplay,
}

impl AuditKind {
    /// Every kind, for parsing.
    pub const ALL: [AuditKind; 13] = [
        AuditKind::Login,
        AuditKind::LoginFailed,
        AuditKind::Lockout,
        AuditKind::Issued,
        AuditKind::Refresh,
        AuditKind::ReuseDetected,
        AuditKind::Revoked,
        AuditKind::Logout,
        AuditKind::Consent,
        AuditKind::CodeReuse,
        AuditKind::AdminChange,
        AuditKind::DpopWrongKey,
        AuditKind::DpopReplay,
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
            AuditKind::Logout => "logout",
            AuditKind::Consent => "consent",
            AuditKind::CodeReuse => "code_reuse",
            AuditKind::AdminChange => "admin_change",
            AuditKind::DpopWrongKey => "dpop_wrong_key",
            AuditKind::DpopReplay => "dpop_replay",
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
    /// The person refused (a consent page's deny).
    Denied,
    /// The request was refused and changed nothing.
    Refused,
}

impl Outcome {
    /// Every outcome, for parsing.
    pub const ALL: [Outcome; 11] = [
        Outcome::Success,
        Outcome::InvalidCredentials,
        Outcome::LockedOut,
        Outcome::UserDisabled,
        Outcome::UsernameLocked,
        Outcome::AddressLocked,
        Outcome::FamilyRevoked,
        Outcome::Family,
        Outcome::AccessToken,
        Outcome::Denied,
        Outcome::Refused,
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
            Outcome::Denied => "denied",
            Outcome::Refused => "refused",
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
    /// What an admin change was about: `client ID`, `user NAME`, `family ID`,
    /// `setting KEY`, `key KID`.
    pub target: Option<String>,
    /// Who made an admin change: `cli`, `user NAME` or `client ID`.
    pub actor: Option<String>,
}

/// One page of a list ordered by a unique text key — a username, a client id —
/// read by key rather than by offset, so that rows added or removed meanwhile
/// neither repeat nor vanish from the pages after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Only rows whose key contains this text, ignoring case (ASCII case on
    /// SQLite, whose `like` folds no other); `%`, `_` and `\` in it are literal.
    pub contains: Option<String>,
    /// Only rows whose key sorts after this one: the last key of the page before.
    pub after: Option<String>,
    pub limit: u32,
}

/// The position of a row in a list ordered newest first by creation time and
/// then by id: a user's token families or browser sessions. A page starts
/// `before` the position of the last row of the page before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedCursor {
    pub created_at: OffsetDateTime,
    pub id: Uuid,
}

impl CreatedCursor {
    /// The cursor as written in a `before` query parameter: `MICROSECONDS.UUID`
    /// (PostgreSQL keeps times to the microsecond, SQLite to the second).
    pub fn as_text(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.unix_timestamp_nanos() / 1000,
            self.id.as_hyphenated()
        )
    }

    /// A cursor written by [`CreatedCursor::as_text`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<CreatedCursor> {
        let (at, id) = text.split_once('.')?;
        let micros: i128 = at.parse().ok()?;
        let created_at =
            OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?;
        let id = Uuid::try_parse(id).ok()?;
        Some(CreatedCursor { created_at, id })
    }
}

/// One page of a list ordered newest first (see [`CreatedCursor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedPage {
    /// Only rows older than this position.
    pub before: Option<CreatedCursor>,
    pub limit: u32,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub username: Option<String>,
    pub client_id: Option<String>,
    /// Events of one family: its chain.
    pub family_id: Option<Uuid>,
    pub kind: Option<AuditKind>,
    pub outcome: Option<Outcome>,
    pub since: Option<OffsetDateTime>,
    /// Only events older than this position: the next page, by key rather than
    /// by offset, so that events written meanwhile neither repeat nor vanish.
    pub before: Option<AuditCursor>,
    pub limit: u32,
}

/// The position of an audit event in the trail's order (newest first): its time,
/// then its row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    pub at: OffsetDateTime,
    pub id: i64,
}

impl AuditCursor {
    /// The cursor as written in a `before` query parameter: `MICROSECONDS.ID`
    /// (PostgreSQL keeps times to the microsecond).
    pub fn as_text(&self) -> String {
        format!("{}.{}", self.at.unix_timestamp_nanos() / 1000, self.id)
    }

    /// A cursor written by [`AuditCursor::as_text`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<AuditCursor> {
        let (at, id) = text.split_once('.')?;
        let micros: i128 = at.parse().ok()?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?;
        let id = id.parse().ok().filter(|id: &i64| *id >= 0)?;
        Some(AuditCursor { at, id })
    }
}

/// An audit event and its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub cursor: AuditCursor,
    pub event: AuditEvent,
}

/// How many audit events of one kind and outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCount {
    pub kind: AuditKind,
    pub outcome: Outcome,
    pub count: u64,
}

/// The retries one spent refresh token answered inside its retry window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    pub count: u32,
    pub last_at: OffsetDateTime,
}

/// Whose families [`FamilyStore::revoke_families_of`](super::FamilyStore) revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyOwner {
    /// Every login of a user, whichever client.
    User(Uuid),
    /// Every login through a client, whoever the subject.
    Client(String),
}

/// A token family (one login) as an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    pub id: Uuid,
    pub client_id: String,
    pub subject: Subject,
    pub scope: String,
    pub refresh_count: u32,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub session_id: Option<Uuid>,
    pub offline: bool,
    /// When its newest refresh token was issued: the last refresh, or the login
    /// when `refresh_count` is 0.
    pub last_issued_at: Option<OffsetDateTime>,
    /// The address of its newest audit event (its last refresh, or its login).
    pub last_ip: Option<String>,
    /// Whether an unspent, unexpired refresh token or an unexpired access token of
    /// it remains.
    pub live: bool,
}

impl FamilyRecord {
    /// When it was last refreshed: its newest refresh token's issue, once there
    /// was a refresh.
    pub fn last_refresh_at(&self) -> Option<OffsetDateTime> {
        self.last_issued_at.filter(|_| self.refresh_count > 0)
    }

    /// `revoked`, `active` or `expired`.
    pub fn state(&self) -> &'static str {
        match (self.revoked_at, self.live) {
            (Some(_), _) => "revoked",
            (None, true) => "active",
            (None, false) => "expired",
        }
    }
}

/// What one [`CleanupStore::purge_expired`](super::CleanupStore) batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub access_tokens: u64,
    pub families: u64,
}

/// A setting changed at run time: the value of one dotted configuration key (e.g.
/// `refresh.max_refreshes`) that overrides the file's on every instance. The value
/// is text as the file would hold it; [`crate::admin::settings`] parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingRecord {
    pub key: String,
    pub value: String,
    pub updated_at: OffsetDateTime,
    /// Who made the change: `cli`, `user NAME` or `client ID`.
    pub updated_by: String,
}

/// A rotor process serving the database, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Made up at start: a restarted process is a new instance.
    pub id: Uuid,
    /// The host's name (a container's id, in most deployments).
    pub name: String,
    pub version: String,
    pub started_at: OffsetDateTime,
    pub seen_at: OffsetDateTime,
    /// The key it signs access tokens with (its key cache may lag a rotation).
    pub signing_kid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_sort_in_the_order_they_were_made_as_text_too() {
        // SQLite keeps ids as hyphenated text, PostgreSQL as uuid: both orders
        // must be the order of creation for inserts to land at the right edge.
        let ids: Vec<Uuid> = (0..1_000).map(|_| new_row_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
    }
}
