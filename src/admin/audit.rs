//! The audit trail as an admin reads it: filters by user, client, kind, outcome
//! and time, pages by position rather than by offset, and the export as JSON
//! lines. The admin API, the console and `rotor audit` name filters the same way.

use time::OffsetDateTime;

use super::AdminError;
use crate::store::{AuditCursor, AuditEntry, AuditFilter, AuditKind, Outcome, Store};

/// The most events one page lists.
pub const PAGE: u32 = 500;

/// The most events one export holds; a longer trail is exported in parts, each
/// starting `before` the last one's end.
pub const EXPORT_MAX: u32 = 10_000;

/// A filter as an operator types it: every field optional, empty meaning none.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub user: Option<String>,
    pub client: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339.
    pub since: Option<String>,
    /// A position from a previous page's `next`.
    pub before: Option<String>,
    pub limit: Option<u32>,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl Query {
    /// The store's filter, at most `max` events.
    ///
    /// # Errors
    /// [`AdminError::InvalidFilter`] naming the filter and what it takes.
    pub fn filter(self, max: u32) -> Result<AuditFilter, AdminError> {
        let bad = |m: String| AdminError::InvalidFilter(m);
        let kind = nonempty(self.kind)
            .map(|k| {
                AuditKind::parse(&k).ok_or_else(|| {
                    bad(format!(
                        "kind must be one of {}",
                        AuditKind::ALL.map(AuditKind::as_str).join(", ")
                    ))
                })
            })
            .transpose()?;
        let outcome = nonempty(self.outcome)
            .map(|o| {
                Outcome::parse(&o).ok_or_else(|| {
                    bad(format!(
                        "outcome must be one of {}",
                        Outcome::ALL.map(Outcome::as_str).join(", ")
                    ))
                })
            })
            .transpose()?;
        let since = nonempty(self.since)
            .map(|t| {
                OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| bad("since must be an RFC 3339 time".into()))
            })
            .transpose()?;
        let before = nonempty(self.before)
            .map(|b| {
                AuditCursor::parse(&b)
                    .ok_or_else(|| bad("before must be the next value of a previous page".into()))
            })
            .transpose()?;
        Ok(AuditFilter {
            username: nonempty(self.user),
            client_id: nonempty(self.client),
            family_id: None,
            kind,
            outcome,
            since,
            before,
            limit: self.limit.unwrap_or(100).clamp(1, max),
        })
    }
}

/// One page of the trail, newest first, and the position of the next page when
/// there may be one.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<AuditEntry>,
    pub next: Option<AuditCursor>,
}

/// The events matching `filter`, one page.
///
/// # Errors
/// The store failed.
pub async fn page(store: &dyn Store, filter: &AuditFilter) -> Result<Page, AdminError> {
    let events = store.audit_page(filter).await?;
    let full = u32::try_from(events.len()).unwrap_or(u32::MAX) >= filter.limit;
    let next = full.then(|| events.last().map(|e| e.cursor)).flatten();
    Ok(Page { events, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_and_wrong_ones_named() {
        let f = Query {
            kind: Some("reuse_detected".into()),
            outcome: Some(" family_revoked ".into()),
            user: Some("".into()),
            limit: Some(100_000),
            ..Query::default()
        }
        .filter(PAGE)
        .unwrap();
        assert_eq!(f.kind, Some(AuditKind::ReuseDetected));
        assert_eq!(f.outcome, Some(Outcome::FamilyRevoked));
        assert_eq!(f.username, None);
        assert_eq!(f.limit, PAGE);
        let refused = Query {
            kind: Some("nope".into()),
            ..Query::default()
        }
        .filter(PAGE)
        .unwrap_err()
        .to_string();
        assert!(
            refused.starts_with("kind must be one of login, "),
            "{refused}"
        );
        assert!(
            Query {
                before: Some("x.1".into()),
                ..Query::default()
            }
            .filter(PAGE)
            .is_err()
        );
    }

    #[test]
    fn a_cursor_reads_back_what_it_writes() {
        let c = AuditCursor {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            id: 42,
        };
        assert_eq!(AuditCursor::parse(&c.as_text()), Some(c));
        assert_eq!(AuditCursor::parse("1.-2"), None);
    }
}
