//! Row-to-record mapping, written once for both backends. The row structs are
//! generic over how a backend stores a time (PostgreSQL `timestamptz`, SQLite unix
//! seconds), an id (`uuid`, text) and a count (`integer`, 64-bit integer); only the
//! SQL text stays per backend.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    StoreError, StoreResult,
    records::{
        AccessTokenRecord, AuditCount, AuditCursor, AuditEntry, AuditEvent, AuditKind,
        AuthorizationCodeRecord, BrowserSessionRecord, ClientRecord, CodeFlowSettings, Consent,
        ConsentRecord, ConsumeOutcome, DpopClientSettings, FamilyRecord, InstanceRecord,
        LoginAttempt, Outcome, Pkce, RefreshTokenRecord, SettingRecord, Subject, UserRecord,
    },
};
use crate::{
    crypto::{signing_key::StoredKey, token::TokenHash},
    wire::GrantType,
};

/// A stored time.
pub(crate) trait DbTime {
    fn into_time(self) -> StoreResult<OffsetDateTime>;
}

impl DbTime for OffsetDateTime {
    fn into_time(self) -> StoreResult<OffsetDateTime> {
        Ok(self)
    }
}

impl DbTime for i64 {
    fn into_time(self) -> StoreResult<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(self)
            .map_err(|_| StoreError::Corrupt(format!("timestamp out of range: {self}")))
    }
}

/// A stored uuid.
pub(crate) trait DbUuid {
    fn into_uuid(self) -> StoreResult<Uuid>;
}

impl DbUuid for Uuid {
    fn into_uuid(self) -> StoreResult<Uuid> {
        Ok(self)
    }
}

impl DbUuid for String {
    fn into_uuid(self) -> StoreResult<Uuid> {
        Uuid::parse_str(&self).map_err(|_| StoreError::Corrupt(format!("not a uuid: {self:?}")))
    }
}

/// A stored count or number of seconds.
pub(crate) trait DbCount {
    fn into_count(self, column: &str) -> StoreResult<u32>;
}

impl DbCount for i32 {
    fn into_count(self, column: &str) -> StoreResult<u32> {
        i64::from(self).into_count(column)
    }
}

impl DbCount for i64 {
    fn into_count(self, column: &str) -> StoreResult<u32> {
        u32::try_from(self)
            .map_err(|_| StoreError::Corrupt(format!("{column} out of range: {self}")))
    }
}

fn opt<T, U>(value: Option<T>, f: impl FnOnce(T) -> StoreResult<U>) -> StoreResult<Option<U>> {
    value.map(f).transpose()
}

fn hash(bytes: &[u8], what: &str) -> StoreResult<TokenHash> {
    TokenHash::from_slice(bytes).map_err(|_| StoreError::Corrupt(format!("{what} hash")))
}

/// Seconds as stored for a duration setting.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Space-separated lists, as stored for grant types and scopes.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_owned).collect()
}

/// Grant types as stored: their names, space-separated.
pub(crate) fn grant_list(grants: &[GrantType]) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `like` pattern (escape character `\`) of the keys that contain `text`,
/// lowercased: its wildcards `%` and `_`, and the escape itself, match only
/// themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The longest text kept in an audit or lockout row. Usernames are refused above
/// this length at parse time; the cap keeps any other caller from storing more.
pub(crate) const MAX_STORED_TEXT: usize = 256;

/// `text` cut to [`MAX_STORED_TEXT`] characters.
pub(crate) fn capped(text: &str) -> &str {
    match text.char_indices().nth(MAX_STORED_TEXT) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The subject of a family: its user when it has one, else its client.
fn subject<U: DbUuid>(
    client_id: &str,
    user_id: Option<U>,
    username: Option<String>,
) -> StoreResult<Subject> {
    match (user_id, username) {
        (Some(id), Some(username)) => Ok(Subject::User {
            id: id.into_uuid()?,
            username,
        }),
        (None, None) => Ok(Subject::Client {
            id: client_id.to_owned(),
        }),
        _ => Err(StoreError::Corrupt(
            "a family's user id and name disagree".into(),
        )),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow<U, T> {
    id: U,
    username: String,
    password_hash: String,
    disabled: bool,
    admin: bool,
    created_at: T,
}

impl<U: DbUuid, T: DbTime> TryFrom<UserRow<U, T>> for UserRecord {
    type Error = StoreError;
    fn try_from(r: UserRow<U, T>) -> StoreResult<Self> {
        Ok(UserRecord {
            id: r.id.into_uuid()?,
            username: r.username,
            password_hash: r.password_hash,
            disabled: r.disabled,
            admin: r.admin,
            created_at: r.created_at.into_time()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow<T, N> {
    id: String,
    secret_hash: Option<Vec<u8>>,
    grant_types: String,
    scopes: String,
    refresh_tokens: bool,
    refresh_ttl_secs: Option<i64>,
    grace_period_secs: Option<i64>,
    max_refreshes: Option<N>,
    created_at: T,
    redirect_uris: String,
    third_party: bool,
    pkce_optional: bool,
    offline_access: bool,
    offline_ttl_secs: Option<i64>,
    refresh_requires_offline: bool,
    dpop_bound_access_tokens: bool,
    dpop_require_nonce: Option<bool>,
}

/// The columns a client row adds for the authorization code flow, in the order
/// both backends insert them after the others.
pub(crate) struct CodeFlowColumns {
    pub redirect_uris: String,
    pub third_party: bool,
    pub pkce_optional: bool,
    pub offline_access: bool,
    pub offline_ttl_secs: Option<i64>,
    pub refresh_requires_offline: bool,
}

impl CodeFlowColumns {
    pub(crate) fn of(settings: &CodeFlowSettings) -> Self {
        CodeFlowColumns {
            redirect_uris: settings.redirect_uris.join(" "),
            third_party: settings.consent == Consent::ThirdParty,
            pkce_optional: settings.pkce == Pkce::Optional,
            offline_access: settings.offline_access,
            offline_ttl_secs: settings.offline_ttl.map(secs),
            refresh_requires_offline: settings.refresh_requires_offline,
        }
    }
}

/// The client columns every select lists, the same on both backends.
pub(crate) const CLIENT_COLUMNS: &str = "id, secret_hash, grant_types, scopes, refresh_tokens, \
     refresh_ttl_secs, grace_period_secs, max_refreshes, created_at, redirect_uris, third_party, \
     pkce_optional, offline_access, offline_ttl_secs, refresh_requires_offline, \
     dpop_bound_access_tokens, dpop_require_nonce";

impl<T: DbTime, N: DbCount> TryFrom<ClientRow<T, N>> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow<T, N>) -> StoreResult<Self> {
        let duration =
            |s: i64, column: &str| s.into_count(column).map(|s| Duration::from_secs(s.into()));
        let grant_types = split_list(&r.grant_types)
            .iter()
            .map(|name| {
                GrantType::parse(name).ok_or_else(|| {
                    StoreError::Corrupt(format!("client {} has grant type {name:?}", r.id))
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(ClientRecord {
            secret_hash: opt(r.secret_hash, |h| hash(&h, "client secret"))?,
            grant_types,
            scopes: split_list(&r.scopes),
            refresh_tokens: r.refresh_tokens,
            refresh_ttl: opt(r.refresh_ttl_secs, |s| duration(s, "refresh_ttl_secs"))?,
            grace_period: opt(r.grace_period_secs, |s| duration(s, "grace_period_secs"))?,
            max_refreshes: opt(r.max_refreshes, |m| m.into_count("max_refreshes"))?,
            created_at: r.created_at.into_time()?,
            code_flow: CodeFlowSettings {
                redirect_uris: split_list(&r.redirect_uris),
                consent: if r.third_party {
                    Consent::ThirdParty
                } else {
                    Consent::FirstParty
                },
                pkce: if r.pkce_optional {
                    Pkce::Optional
                } else {
                    Pkce::Required
                },
                offline_access: r.offline_access,
                offline_ttl: opt(r.offline_ttl_secs, |s| duration(s, "offline_ttl_secs"))?,
                refresh_requires_offline: r.refresh_requires_offline,
            },
            dpop: DpopClientSettings {
                bound_access_tokens: r.dpop_bound_access_tokens,
                require_nonce: r.dpop_require_nonce,
            },
            id: r.id,
        })
    }
}

/// The columns of [`RefreshTokenRecord`], selected the same way by both backends.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshRow<U, T, N> {
    token_hash: Vec<u8>,
    family_id: U,
    client_id: String,
    user_id: Option<U>,
    username: Option<String>,
    subject_disabled: bool,
    scope: String,
    refresh_count: N,
    family_revoked: bool,
    session_id: Option<U>,
    offline: bool,
    family_expires_at: Option<T>,
    dpop_jkt: Option<String>,
    issued_at: T,
    expires_at: T,
    used_at: Option<T>,
    successor_used: bool,
    retry_answer: Option<Vec<u8>>,
    retry_until: Option<T>,
}

impl<U: DbUuid, T: DbTime, N: DbCount> TryFrom<RefreshRow<U, T, N>> for RefreshTokenRecord {
    type Error = StoreError;
    fn try_from(r: RefreshRow<U, T, N>) -> StoreResult<Self> {
        Ok(RefreshTokenRecord {
            hash: hash(&r.token_hash, "refresh token")?,
            family_id: r.family_id.into_uuid()?,
            subject: subject(&r.client_id, r.user_id, r.username)?,
            client_id: r.client_id,
            subject_disabled: r.subject_disabled,
            scope: r.scope,
            refresh_count: r.refresh_count.into_count("refresh_count")?,
            family_revoked: r.family_revoked,
            session_id: opt(r.session_id, DbUuid::into_uuid)?,
            offline: r.offline,
            family_expires_at: opt(r.family_expires_at, DbTime::into_time)?,
            dpop_jkt: r.dpop_jkt,
            issued_at: r.issued_at.into_time()?,
            expires_at: r.expires_at.into_time()?,
            used_at: opt(r.used_at, DbTime::into_time)?,
            successor_used: r.successor_used,
            retry_answer: r.retry_answer,
            retry_until: opt(r.retry_until, DbTime::into_time)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow<U, T> {
    jti: U,
    family_id: U,
    client_id: String,
    user_id: Option<U>,
    username: Option<String>,
    subject_disabled: bool,
    revoked: bool,
    family_revoked: bool,
    issued_at: T,
    expires_at: T,
}

impl<U: DbUuid, T: DbTime> TryFrom<AccessRow<U, T>> for AccessTokenRecord {
    type Error = StoreError;
    fn try_from(r: AccessRow<U, T>) -> StoreResult<Self> {
        Ok(AccessTokenRecord {
            jti: r.jti.into_uuid()?,
            family_id: r.family_id.into_uuid()?,
            subject: subject(&r.client_id, r.user_id, r.username)?,
            client_id: r.client_id,
            subject_disabled: r.subject_disabled,
            revoked: r.revoked,
            family_revoked: r.family_revoked,
            issued_at: r.issued_at.into_time()?,
            expires_at: r.expires_at.into_time()?,
        })
    }
}

/// The columns of [`BrowserSessionRecord`], selected the same way by both backends.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow<U, T> {
    id: U,
    user_id: U,
    username: String,
    user_disabled: bool,
    created_at: T,
    last_seen_at: T,
    expires_at: T,
    ended_at: Option<T>,
    ip: Option<String>,
}

impl<U: DbUuid, T: DbTime> TryFrom<SessionRow<U, T>> for BrowserSessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow<U, T>) -> StoreResult<Self> {
        Ok(BrowserSessionRecord {
            id: r.id.into_uuid()?,
            user_id: r.user_id.into_uuid()?,
            username: r.username,
            user_disabled: r.user_disabled,
            created_at: r.created_at.into_time()?,
            last_seen_at: r.last_seen_at.into_time()?,
            expires_at: r.expires_at.into_time()?,
            ended_at: opt(r.ended_at, DbTime::into_time)?,
            ip: r.ip,
        })
    }
}

/// The columns of [`AuthorizationCodeRecord`], selected the same way by both
/// backends.
#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow<U, T> {
    client_id: String,
    user_id: U,
    username: String,
    user_disabled: bool,
    session_id: U,
    session_expires_at: Option<T>,
    redirect_uri: String,
    redirect_uri_sent: bool,
    code_challenge: Option<String>,
    scope: String,
    offline: bool,
    dpop_jkt: Option<String>,
    expires_at: T,
    used_at: Option<T>,
    family_id: Option<U>,
}

impl<U: DbUuid, T: DbTime> TryFrom<CodeRow<U, T>> for AuthorizationCodeRecord {
    type Error = StoreError;
    fn try_from(r: CodeRow<U, T>) -> StoreResult<Self> {
        Ok(AuthorizationCodeRecord {
            client_id: r.client_id,
            user_id: r.user_id.into_uuid()?,
            username: r.username,
            user_disabled: r.user_disabled,
            session_id: r.session_id.into_uuid()?,
            session_expires_at: opt(r.session_expires_at, DbTime::into_time)?,
            redirect_uri: r.redirect_uri,
            redirect_uri_sent: r.redirect_uri_sent,
            code_challenge: r.code_challenge,
            scope: r.scope,
            offline: r.offline,
            dpop_jkt: r.dpop_jkt,
            expires_at: r.expires_at.into_time()?,
            used_at: opt(r.used_at, DbTime::into_time)?,
            family_id: opt(r.family_id, DbUuid::into_uuid)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConsentRow<T> {
    client_id: String,
    scope: String,
    granted_at: T,
}

impl<T: DbTime> TryFrom<ConsentRow<T>> for ConsentRecord {
    type Error = StoreError;
    fn try_from(r: ConsentRow<T>) -> StoreResult<Self> {
        Ok(ConsentRecord {
            client_id: r.client_id,
            scope: r.scope,
            granted_at: r.granted_at.into_time()?,
        })
    }
}

/// The columns of [`FamilyRecord`], selected the same way by both backends.
#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow<U, T, N> {
    id: U,
    client_id: String,
    user_id: Option<U>,
    username: Option<String>,
    scope: String,
    refresh_count: N,
    created_at: T,
    revoked_at: Option<T>,
    session_id: Option<U>,
    offline: bool,
    last_issued_at: Option<T>,
    last_ip: Option<String>,
    live: bool,
}

impl<U: DbUuid, T: DbTime, N: DbCount> TryFrom<FamilyRow<U, T, N>> for FamilyRecord {
    type Error = StoreError;
    fn try_from(r: FamilyRow<U, T, N>) -> StoreResult<Self> {
        Ok(FamilyRecord {
            id: r.id.into_uuid()?,
            subject: subject(&r.client_id, r.user_id, r.username)?,
            client_id: r.client_id,
            scope: r.scope,
            refresh_count: r.refresh_count.into_count("refresh_count")?,
            created_at: r.created_at.into_time()?,
            revoked_at: opt(r.revoked_at, DbTime::into_time)?,
            session_id: opt(r.session_id, DbUuid::into_uuid)?,
            offline: r.offline,
            last_issued_at: opt(r.last_issued_at, DbTime::into_time)?,
            last_ip: r.last_ip,
            live: r.live,
        })
    }
}

/// The family columns both backends select, with `?1`/`$1` the time `live` is
/// judged at. `f` is `token_families`, `u` the left-joined `users`. The newest
/// refresh token's issue time and the address of the family's newest audit event
/// are what the console's list of logins shows as "last refresh" and "address".
pub(crate) const FAMILY_COLUMNS: &str = "f.id, f.client_id, f.user_id, u.username, f.scope, \
     f.refresh_count, f.created_at, f.revoked_at, f.session_id, f.offline, \
     (select max(lt.issued_at) from refresh_tokens lt where lt.family_id = f.id) \
     as last_issued_at, \
     (select la.ip from audit_events la where la.family_id = f.id order by la.id desc limit 1) \
     as last_ip";

#[derive(sqlx::FromRow)]
pub(crate) struct SettingRow<T> {
    key: String,
    value: String,
    updated_at: T,
    updated_by: String,
}

impl<T: DbTime> TryFrom<SettingRow<T>> for SettingRecord {
    type Error = StoreError;
    fn try_from(r: SettingRow<T>) -> StoreResult<Self> {
        Ok(SettingRecord {
            key: r.key,
            value: r.value,
            updated_at: r.updated_at.into_time()?,
            updated_by: r.updated_by,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InstanceRow<U, T> {
    id: U,
    name: String,
    version: String,
    started_at: T,
    seen_at: T,
    signing_kid: Option<String>,
}

impl<U: DbUuid, T: DbTime> TryFrom<InstanceRow<U, T>> for InstanceRecord {
    type Error = StoreError;
    fn try_from(r: InstanceRow<U, T>) -> StoreResult<Self> {
        Ok(InstanceRecord {
            id: r.id.into_uuid()?,
            name: r.name,
            version: r.version,
            started_at: r.started_at.into_time()?,
            seen_at: r.seen_at.into_time()?,
            signing_kid: r.signing_kid,
        })
    }
}

/// What a refused redeem found: the code's state under the write lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedeemFacts<U> {
    pub found: bool,
    pub used: bool,
    pub family_id: Option<U>,
    pub expired: bool,
}

/// Why a redeem changed nothing, in one order for both backends: a spent code
/// first (its replay revokes what it gave), then its lifetime, then its session.
pub(crate) fn redeem_refusal<U: DbUuid>(
    facts: RedeemFacts<U>,
) -> StoreResult<crate::store::RedeemOutcome> {
    use crate::store::RedeemOutcome;
    Ok(match facts {
        RedeemFacts { found: false, .. } => RedeemOutcome::Unknown,
        RedeemFacts {
            used: true,
            family_id,
            ..
        } => RedeemOutcome::AlreadyUsed {
            family_id: opt(family_id, DbUuid::into_uuid)?,
        },
        RedeemFacts { expired: true, .. } => RedeemOutcome::Expired,
        _ => RedeemOutcome::SessionEnded,
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow<T> {
    kid: String,
    alg: String,
    private_key: Vec<u8>,
    created_at: T,
}

impl<T: DbTime> TryFrom<KeyRow<T>> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow<T>) -> StoreResult<Self> {
        Ok(StoredKey {
            alg: r.alg.parse().map_err(StoreError::Corrupt)?,
            kid: r.kid,
            private_key: r.private_key,
            created_at: r.created_at.into_time()?,
        })
    }
}

/// An audit row with its id, for [`AuditEntry`]: the columns both backends select.
pub(crate) const AUDIT_COLUMNS: &str =
    "id, at, kind, username, client_id, family_id, ip, outcome, target, actor";

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow<U, T> {
    id: i64,
    at: T,
    kind: String,
    username: Option<String>,
    client_id: Option<String>,
    family_id: Option<U>,
    ip: Option<String>,
    outcome: String,
    target: Option<String>,
    actor: Option<String>,
}

impl<U: DbUuid, T: DbTime> TryFrom<AuditRow<U, T>> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow<U, T>) -> StoreResult<Self> {
        let at = r.at.into_time()?;
        let event = AuditEvent {
            at,
            kind: AuditKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("audit kind {:?}", r.kind)))?,
            username: r.username,
            client_id: r.client_id,
            family_id: opt(r.family_id, DbUuid::into_uuid)?,
            ip: r.ip,
            outcome: Outcome::parse(&r.outcome)
                .ok_or_else(|| StoreError::Corrupt(format!("audit outcome {:?}", r.outcome)))?,
            target: r.target,
            actor: r.actor,
        };
        Ok(AuditEntry {
            cursor: AuditCursor { at, id: r.id },
            event,
        })
    }
}

/// A `select kind, outcome, count(*)` row of both backends.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditCountRow {
    kind: String,
    outcome: String,
    count: i64,
}

impl TryFrom<AuditCountRow> for AuditCount {
    type Error = StoreError;
    fn try_from(r: AuditCountRow) -> StoreResult<Self> {
        Ok(AuditCount {
            kind: AuditKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("audit kind {:?}", r.kind)))?,
            outcome: Outcome::parse(&r.outcome)
                .ok_or_else(|| StoreError::Corrupt(format!("audit outcome {:?}", r.outcome)))?,
            count: u64::try_from(r.count).unwrap_or(0),
        })
    }
}

/// What a refused consume found, for [`consume_refusal`]: the token's state as
/// the consuming statement saw it, under its lock.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct ConsumeFacts {
    pub found: bool,
    pub used: bool,
    pub revoked: bool,
    pub subject_disabled: bool,
    pub wrong_client: bool,
    pub expired: bool,
    /// The family is bound to another DPoP key than the request's.
    pub wrong_key: bool,
    /// Everything else allowed the refresh, but its proof was seen before.
    pub replayed: bool,
}

/// Why a consume changed nothing. Both backends guard the consuming write with the
/// same conditions; this explains a refusal in one order for both: a DPoP-bound
/// token presented without its key first (its holder lacks the key, so it must
/// neither spend the token nor trigger reuse detection, RFC 9449 §5), then a spent
/// token (reuse detection must see it), the family, the client, the lifetime, the
/// counter, and last a replayed proof.
pub(crate) fn consume_refusal(facts: ConsumeFacts) -> ConsumeOutcome {
    match facts {
        ConsumeFacts { found: false, .. } => ConsumeOutcome::Unknown,
        ConsumeFacts {
            wrong_key: true, ..
        } => ConsumeOutcome::WrongKey,
        ConsumeFacts { used: true, .. } => ConsumeOutcome::AlreadyUsed,
        ConsumeFacts { revoked: true, .. } => ConsumeOutcome::Revoked,
        ConsumeFacts {
            subject_disabled: true,
            ..
        } => ConsumeOutcome::SubjectDisabled,
        ConsumeFacts {
            wrong_client: true, ..
        } => ConsumeOutcome::WrongClient,
        ConsumeFacts { expired: true, .. } => ConsumeOutcome::Expired,
        ConsumeFacts { replayed: true, .. } => ConsumeOutcome::ProofReplayed,
        _ => ConsumeOutcome::LimitReached,
    }
}

/// The answer a login attempt's upsert stored in `last_attempt`.
pub(crate) fn login_attempt(code: i64) -> LoginAttempt {
    match code {
        0 => LoginAttempt::Allowed,
        1 => LoginAttempt::Busy,
        _ => LoginAttempt::Locked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ConsumeFacts {
        ConsumeFacts {
            found: true,
            used: false,
            revoked: false,
            subject_disabled: false,
            wrong_client: false,
            expired: false,
            wrong_key: false,
            replayed: false,
        }
    }

    #[test]
    fn a_spent_token_is_reported_before_anything_else() {
        let all = ConsumeFacts {
            used: true,
            revoked: true,
            wrong_client: true,
            expired: true,
            ..facts()
        };
        assert_eq!(consume_refusal(all), ConsumeOutcome::AlreadyUsed);
        assert_eq!(
            consume_refusal(ConsumeFacts {
                found: false,
                ..facts()
            }),
            ConsumeOutcome::Unknown
        );
    }

    #[test]
    fn a_token_bound_to_another_key_is_reported_before_its_use() {
        let all = ConsumeFacts {
            used: true,
            wrong_key: true,
            replayed: true,
            ..facts()
        };
        assert_eq!(consume_refusal(all), ConsumeOutcome::WrongKey);
        assert_eq!(
            consume_refusal(ConsumeFacts {
                replayed: true,
                ..facts()
            }),
            ConsumeOutcome::ProofReplayed
        );
    }

    #[test]
    fn a_live_token_refused_for_no_other_reason_reached_the_limit() {
        assert_eq!(consume_refusal(facts()), ConsumeOutcome::LimitReached);
        assert_eq!(
            consume_refusal(ConsumeFacts {
                wrong_client: true,
                expired: true,
                ..facts()
            }),
            ConsumeOutcome::WrongClient
        );
    }

    #[test]
    fn stored_text_is_capped_on_a_character_boundary() {
        let long = "é".repeat(MAX_STORED_TEXT + 10);
        assert_eq!(capped(&long).chars().count(), MAX_STORED_TEXT);
        assert_eq!(capped("alice"), "alice");
    }
}
