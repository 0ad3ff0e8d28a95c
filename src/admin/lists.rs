//! Lists of users and clients read a page at a time, by key rather than by
//! offset: each page starts `after` the last key of the one before, so that a
//! user added or a client removed meanwhile neither repeats a row nor hides one.
//! The admin API and the console name the parameters the same way (`q`, `after`,
//! `limit`). A user's logins and sessions, newest first, page the same way by
//! their position in time (`before`, `limit`).

use super::AdminError;
use crate::store::{CreatedCursor, CreatedPage, KeyPage};

/// The most rows one page lists.
pub const MAX: u32 = 500;

/// The rows a page lists when the request names no `limit`.
pub const DEFAULT: u32 = 100;

/// A page as an operator asks for it: every field optional, empty meaning none.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Text the key (username, client id) contains, ignoring case.
    pub q: Option<String>,
    /// The `next` of a previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl Query {
    /// The store's page, at most [`MAX`] rows.
    ///
    /// # Errors
    /// [`AdminError::InvalidFilter`] when `q` or `after` holds a control character
    /// or is longer than any key.
    pub fn page(self) -> Result<KeyPage, AdminError> {
        let check = |name: &str, v: Option<String>| match nonempty(v) {
            Some(v) if v.chars().any(char::is_control) => Err(AdminError::InvalidFilter(format!(
                "{name} must not contain a control character"
            ))),
            // No username or client id is longer (see `Username::parse`).
            Some(v) if v.len() > 255 => Err(AdminError::InvalidFilter(format!(
                "{name} must be at most 255 bytes"
            ))),
            v => Ok(v),
        };
        Ok(KeyPage {
            contains: check("q", self.q)?,
            after: check("after", self.after)?,
            limit: self.limit.unwrap_or(DEFAULT).clamp(1, MAX),
        })
    }
}

/// A page of a newest-first list as an operator asks for it.
#[derive(Debug, Clone, Default)]
pub struct RecentQuery {
    /// The `next` of a previous page.
    pub before: Option<String>,
    pub limit: Option<u32>,
}

impl RecentQuery {
    /// The store's page, at most [`MAX`] rows.
    ///
    /// # Errors
    /// [`AdminError::InvalidFilter`] when `before` is not the `next` of a page.
    pub fn page(self) -> Result<CreatedPage, AdminError> {
        let before = nonempty(self.before)
            .map(|b| {
                CreatedCursor::parse(&b).ok_or_else(|| {
                    AdminError::InvalidFilter(
                        "before must be the next value of a previous page".into(),
                    )
                })
            })
            .transpose()?;
        Ok(CreatedPage {
            before,
            limit: self.limit.unwrap_or(DEFAULT).clamp(1, MAX),
        })
    }
}

/// One page of a list, in key order, and the `after` of the next page when there
/// is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The store page to read for `page`: one row more than it lists, so that
/// [`cut`] knows whether a next page exists without an empty last page.
pub(crate) fn probe(page: &KeyPage) -> KeyPage {
    KeyPage {
        limit: page.limit.saturating_add(1),
        ..page.clone()
    }
}

/// [`probe`] for a newest-first page.
pub(crate) fn probe_recent(page: &CreatedPage) -> CreatedPage {
    CreatedPage {
        limit: page.limit.saturating_add(1),
        ..*page
    }
}

/// [`cut`] for a newest-first page: the next page's `before` is the position
/// (`created_at`, id) of the last row kept.
pub(crate) fn cut_recent<T>(
    rows: Vec<T>,
    limit: u32,
    position: impl Fn(&T) -> (time::OffsetDateTime, uuid::Uuid),
) -> Page<T> {
    cut(rows, limit, |row| {
        let (created_at, id) = position(row);
        CreatedCursor { created_at, id }.as_text()
    })
}

/// `rows`, read with [`probe`] or [`probe_recent`], cut to `limit`, and the key
/// of the last row kept when a row was cut.
pub(crate) fn cut<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(key)
    } else {
        None
    };
    Page { items: rows, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_clamped_and_empty_values_mean_none() {
        let page = Query {
            q: Some("  ".into()),
            after: Some(" bob ".into()),
            limit: Some(100_000),
        }
        .page()
        .unwrap();
        assert_eq!(page.contains, None);
        assert_eq!(page.after.as_deref(), Some("bob"));
        assert_eq!(page.limit, MAX);
        assert_eq!(Query::default().page().unwrap().limit, DEFAULT);
        assert_eq!(
            Query {
                limit: Some(0),
                ..Query::default()
            }
            .page()
            .unwrap()
            .limit,
            1
        );
    }

    #[test]
    fn control_characters_and_overlong_keys_are_refused_by_name() {
        let refused = Query {
            q: Some("a\u{7}".into()),
            ..Query::default()
        }
        .page()
        .unwrap_err()
        .to_string();
        assert_eq!(refused, "q must not contain a control character");
        let refused = Query {
            after: Some("x".repeat(256)),
            ..Query::default()
        }
        .page()
        .unwrap_err()
        .to_string();
        assert_eq!(refused, "after must be at most 255 bytes");
    }

    #[test]
    fn a_recent_page_takes_only_a_position_it_wrote() {
        let cursor = CreatedCursor {
            created_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            id: uuid::Uuid::from_u128(7),
        };
        let page = RecentQuery {
            before: Some(cursor.as_text()),
            limit: Some(100_000),
        }
        .page()
        .unwrap();
        assert_eq!(page.before, Some(cursor));
        assert_eq!(page.limit, MAX);
        for bad in ["7", "x.y", "1.not-a-uuid", "1700000000000000"] {
            let refused = RecentQuery {
                before: Some(bad.into()),
                limit: None,
            }
            .page()
            .unwrap_err()
            .to_string();
            assert_eq!(refused, "before must be the next value of a previous page");
        }
        assert_eq!(RecentQuery::default().page().unwrap().limit, DEFAULT);
    }

    #[test]
    fn a_next_page_is_named_only_when_a_row_was_cut() {
        let full = cut(vec!["a", "b", "c"], 2, |s| (*s).to_owned());
        assert_eq!(full.items, ["a", "b"]);
        assert_eq!(full.next.as_deref(), Some("b"));
        let last = cut(vec!["a", "b"], 2, |s| (*s).to_owned());
        assert_eq!(last.items, ["a", "b"]);
        assert_eq!(last.next, None);
    }
}
