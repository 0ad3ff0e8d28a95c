//! The overview of the console and `GET overview`: live logins, and what happened
//! over the last hour and day, read from the store so that every instance shows
//! the same; and the signing keys every instance uses.

use time::{Duration, OffsetDateTime};

use super::{AdminError, keys};
use crate::{
    jobs::heartbeat,
    store::{AuditCount, AuditKind, InstanceRecord, Outcome, Store},
};

/// What happened within one span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Logins begun: a password, code or client_credentials grant.
    pub logins: u64,
    /// Refresh tokens rotated.
    pub refreshes: u64,
    /// Spent refresh tokens presented again (or codes): each ended a login.
    pub reuse_detections: u64,
    /// Usernames or addresses locked out.
    pub lockouts: u64,
    /// Sign-ins refused.
    pub failed_logins: u64,
}

impl Counts {
    fn of(counts: &[AuditCount]) -> Counts {
        let mut c = Counts::default();
        for n in counts {
            let slot = match n.kind {
                AuditKind::Login | AuditKind::Issued if n.outcome == Outcome::Success => {
                    &mut c.logins
                }
                AuditKind::Refresh if n.outcome == Outcome::Success => &mut c.refreshes,
                AuditKind::ReuseDetected | AuditKind::CodeReuse => &mut c.reuse_detections,
                AuditKind::Lockout => &mut c.lockouts,
                AuditKind::LoginFailed => &mut c.failed_logins,
                _ => continue,
            };
            *slot += n.count;
        }
        c
    }
}

/// The overview.
#[derive(Debug, Clone)]
pub struct Overview {
    pub clients: usize,
    pub users: usize,
    /// Logins that can still be used: a live refresh or access token.
    pub live_logins: u64,
    pub last_hour: Counts,
    pub last_day: Counts,
    /// The signing keys, the active one first: every instance signs with it
    /// once its key cache reloads.
    pub keys: Vec<keys::KeyInfo>,
    /// The instances running now, each with the key it signs with.
    pub instances: Vec<InstanceRecord>,
}

/// The overview at `now`.
///
/// # Errors
/// The store failed.
pub async fn overview(store: &dyn Store, now: OffsetDateTime) -> Result<Overview, AdminError> {
    let mut keys = keys::list(store).await?;
    keys.sort_by(|a, b| {
        b.active
            .cmp(&a.active)
            .then(b.created_at.cmp(&a.created_at))
    });
    Ok(Overview {
        clients: store.list_clients().await?.len(),
        users: store.list_users().await?.len(),
        live_logins: store.count_active_families(now).await?,
        last_hour: Counts::of(&store.count_audit(now - Duration::hours(1)).await?),
        last_day: Counts::of(&store.count_audit(now - Duration::days(1)).await?),
        keys,
        instances: store.list_instances(now - heartbeat::SEEN_WITHIN).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_kinds_and_leave_out_failed_refreshes() {
        let n = |kind, outcome, count| AuditCount {
            kind,
            outcome,
            count,
        };
        let counts = Counts::of(&[
            n(AuditKind::Login, Outcome::Success, 3),
            n(AuditKind::Issued, Outcome::Success, 2),
            n(AuditKind::Refresh, Outcome::Success, 7),
            n(AuditKind::Refresh, Outcome::UserDisabled, 1),
            n(AuditKind::ReuseDetected, Outcome::FamilyRevoked, 1),
            n(AuditKind::CodeReuse, Outcome::FamilyRevoked, 1),
            n(AuditKind::Lockout, Outcome::UsernameLocked, 4),
            n(AuditKind::AdminChange, Outcome::Success, 9),
        ]);
        assert_eq!(
            counts,
            Counts {
                logins: 5,
                refreshes: 7,
                reuse_detections: 2,
                lockouts: 4,
                failed_logins: 0,
            }
        );
    }
}
