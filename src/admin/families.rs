//! Token families (one login each) as an admin sees them: a user's logins, one
//! login's refresh chain read from the audit trail, and revoking a login. The
//! admin API and the console show the same chain through [`chain`].

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AdminError,
    lists::{self, Page},
};
use crate::store::{
    AuditEvent, AuditFilter, AuditKind, CreatedPage, FamilyOwner, FamilyRecord, Store,
};

/// The most chain events one answer lists.
pub const CHAIN: u32 = 500;

/// A family id typed by an operator or taken from a path.
///
/// # Errors
/// [`AdminError::NoSuchFamily`]: no family has an id that is not a UUID.
pub fn parse_id(text: &str) -> Result<Uuid, AdminError> {
    Uuid::parse_str(text).map_err(|_| AdminError::NoSuchFamily)
}

/// One page of the logins of `username`, newest first; its `next` is the
/// `before` of the page after.
///
/// # Errors
/// [`AdminError::NoSuchUser`], or the store failed.
pub async fn of_user(
    store: &dyn Store,
    username: &str,
    page: &CreatedPage,
    now: OffsetDateTime,
) -> Result<Page<FamilyRecord>, AdminError> {
    let user = store
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_owned()))?;
    let rows = store
        .list_families(user.id, now, &lists::probe_recent(page))
        .await?;
    Ok(lists::cut_recent(rows, page.limit, |f| {
        (f.created_at, f.id)
    }))
}

/// One event of a login's refresh chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEvent {
    /// `issued`, `refreshed`, `retried`, `reuse_detected`, `revoked`, or the
    /// audit kind of anything else.
    pub kind: &'static str,
    pub at: OffsetDateTime,
    pub outcome: &'static str,
    pub ip: Option<String>,
    /// Who, when an admin revoked the family.
    pub by: Option<String>,
    /// How many times, for `retried`: the retries one spent token answered,
    /// the last of them at `at`. 1 for every other event.
    pub times: u32,
}

impl ChainEvent {
    fn of(e: &AuditEvent) -> ChainEvent {
        let kind = match e.kind {
            AuditKind::Login | AuditKind::Issued => "issued",
            AuditKind::Refresh => "refreshed",
            AuditKind::ReuseDetected | AuditKind::CodeReuse => "reuse_detected",
            AuditKind::Revoked | AuditKind::AdminChange => "revoked",
            other => other.as_str(),
        };
        let by = (e.kind == AuditKind::AdminChange)
            .then(|| e.username.clone().or_else(|| e.client_id.clone()))
            .flatten();
        ChainEvent {
            kind,
            at: e.at,
            outcome: e.outcome.as_str(),
            ip: e.ip.clone(),
            by,
            times: 1,
        }
    }
}

/// A family and its chain, oldest event first.
///
/// # Errors
/// [`AdminError::NoSuchFamily`], or the store failed.
pub async fn chain(
    store: &dyn Store,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(FamilyRecord, Vec<ChainEvent>), AdminError> {
    let family = store
        .find_family(id, now)
        .await?
        .ok_or(AdminError::NoSuchFamily)?;
    let mut events = store
        .audit_events(&AuditFilter {
            family_id: Some(id),
            limit: CHAIN,
            ..AuditFilter::default()
        })
        .await?;
    events.reverse();
    let mut chain: Vec<ChainEvent> = events.iter().map(ChainEvent::of).collect();
    for r in store.family_retries(id).await? {
        chain.push(ChainEvent {
            kind: "retried",
            at: r.last_at,
            outcome: "success",
            ip: None,
            by: None,
            times: r.count,
        });
    }
    // Stable: events of one second keep the trail's order.
    chain.sort_by_key(|e| e.at);
    Ok((family, chain))
}

/// Revokes a login: its refresh and access tokens stop working at once.
///
/// # Errors
/// [`AdminError::NoSuchFamily`], or the store failed.
pub async fn revoke(store: &dyn Store, id: Uuid, now: OffsetDateTime) -> Result<(), AdminError> {
    if store.find_family(id, now).await?.is_none() {
        return Err(AdminError::NoSuchFamily);
    }
    store.revoke_family(id, now).await?;
    Ok(())
}

/// Whose logins [`revoke_all`] ends, as an operator names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Every login of this user.
    User(String),
    /// Every login through this client.
    Client(String),
}

impl Owner {
    /// The audit target: `user NAME` or `client ID`.
    pub fn target(&self) -> String {
        match self {
            Owner::User(name) => format!("user {name}"),
            Owner::Client(id) => format!("client {id}"),
        }
    }
}

/// Revokes every live login of a user or of a client ("revoke all logins"): their
/// refresh and access tokens stop working at once. Returns how many were live.
///
/// # Errors
/// [`AdminError::NoSuchUser`], [`AdminError::NoSuchClient`], or the store failed.
pub async fn revoke_all(
    store: &dyn Store,
    owner: &Owner,
    now: OffsetDateTime,
) -> Result<u64, AdminError> {
    let owner = match owner {
        Owner::User(name) => {
            let user = store
                .find_user(name)
                .await?
                .ok_or_else(|| AdminError::NoSuchUser(name.clone()))?;
            FamilyOwner::User(user.id)
        }
        Owner::Client(id) => {
            store
                .find_client(id)
                .await?
                .ok_or_else(|| AdminError::NoSuchClient(id.clone()))?;
            FamilyOwner::Client(id.clone())
        }
    };
    Ok(store.revoke_families_of(&owner, now).await?)
}
