//! Browser sessions of the login page as an admin sees them: a user's sessions,
//! and ending one (which ends the logins born from it that are not offline).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AdminError,
    lists::{self, Page},
};
use crate::store::{BrowserSessionRecord, CreatedPage, Store};

/// A session id typed by an operator or taken from a path.
///
/// # Errors
/// [`AdminError::NoSuchSession`]: no session has an id that is not a UUID.
pub fn parse_id(text: &str) -> Result<Uuid, AdminError> {
    Uuid::parse_str(text).map_err(|_| AdminError::NoSuchSession)
}

/// Whether a session can still sign its user in without a password.
pub fn state(session: &BrowserSessionRecord, now: OffsetDateTime) -> &'static str {
    if session.ended_at.is_some() {
        "ended"
    } else if session.expires_at <= now {
        "expired"
    } else {
        "active"
    }
}

/// One page of the browser sessions of `username`, newest first; its `next` is
/// the `before` of the page after.
///
/// # Errors
/// [`AdminError::NoSuchUser`], or the store failed.
pub async fn of_user(
    store: &dyn Store,
    username: &str,
    page: &CreatedPage,
) -> Result<Page<BrowserSessionRecord>, AdminError> {
    let user = store
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(username.to_owned()))?;
    let rows = store
        .list_sessions(user.id, &lists::probe_recent(page))
        .await?;
    Ok(lists::cut_recent(rows, page.limit, |s| {
        (s.created_at, s.id)
    }))
}

/// Ends a browser session: its cookie signs no one in any more, and the logins
/// born from it that are not offline are revoked with it.
///
/// # Errors
/// [`AdminError::NoSuchSession`] when no live session has this id, or the store
/// failed.
pub async fn end(store: &dyn Store, id: Uuid, now: OffsetDateTime) -> Result<(), AdminError> {
    if store.end_session(id, now).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchSession)
    }
}
