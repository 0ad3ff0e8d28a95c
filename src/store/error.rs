//! What can go wrong in the store, how a driver error is sorted into "retry later"
//! and "broken", and the two retry rules that follow from it.

use super::StoreResult;

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

/// Maps a unique violation to `Conflict` on `constraint`, the same way on both
/// backends; any other error is sorted by [`StoreError::from_sqlx`].
pub(crate) fn unique(constraint: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { constraint }
        }
        _ => StoreError::from_sqlx(e),
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
