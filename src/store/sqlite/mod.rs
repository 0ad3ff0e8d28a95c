//! The embedded SQLite store: the default, so that rotor runs with nothing installed.
//! Times are unix seconds, ids are text. One file per aggregate; each implements one
//! of the store's sub-traits.
//!
//! Writes go through a pool of one connection, so they queue in the process instead
//! of contending for the file lock (whose busy handler sleeps); reads use a pool of
//! their own beside it, which WAL mode lets run while a write is under way. Every
//! write transaction begins `immediate`, so it holds the write lock from its start
//! and never fails upgrading a read.
//!
//! The hot writes (a refresh, a code exchange, a single sign-on's code and session
//! touch) are one step: the whole write, in a savepoint, is one multi-statement
//! query, so the single writer hands it to SQLite's worker thread once instead of
//! once per statement. The write lock is held for the statements' own time, not
//! for a round trip each ([`SqliteStore::write_in_one_step`]). The steps that
//! queue up while the writer is busy commit together, in one transaction
//! ([`group_commit`]).

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Connection, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
        SqliteSynchronous,
    },
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{DatabaseStore, StoreError, StoreResult, unique};

mod access_tokens;
mod audit;
mod cleanup;
mod clients;
mod codes;
mod consents;
mod dpop;
mod families;
mod group_commit;
mod instances;
mod keys;
mod lockout;
mod sessions;
mod settings;
mod users;

/// How long a writer waits for the file lock, and a request for a pooled connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite-backed store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers; WAL lets them run beside the writer.
    read: SqlitePool,
    /// The one connection that writes.
    write: SqlitePool,
    /// The one-step writes, committed in groups on `write`.
    steps: group_commit::GroupCommit,
}

impl SqliteStore {
    /// The WAL's length, in frames (one page each, 4 KiB by default: 64 MiB), past
    /// which the writer starts it over (see `checkpoint_beside_the_writer`). Large
    /// enough that under full load this happens about once a second, not at every
    /// checkpoint; small enough that the WAL's index stays a few tables long.
    pub const WAL_RESET_FRAMES: i64 = 16_384;

    /// Opens (and creates, when missing) the database file named by a
    /// `sqlite://relative/path` or `sqlite:///absolute/path` URL.
    ///
    /// # Errors
    /// Malformed URL or a file that cannot be opened.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url).map_err(StoreError::Backend)?;
        SqliteStore::open(options, max_connections).await
    }

    /// Opens a writer and a pool of `max_connections` readers with rotor's settings
    /// (WAL, busy timeout, foreign keys) on top of `options`. An in-memory database
    /// is one connection's own, so there the readers and the writer share one pool.
    ///
    /// # Errors
    /// The file cannot be opened, created or written.
    pub async fn open(
        options: SqliteConnectOptions,
        max_connections: u32,
    ) -> StoreResult<SqliteStore> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let path = options.get_filename().to_owned();
        let failed = |e| unwritable(&path).unwrap_or_else(|| StoreError::from_sqlx(e));
        let pool = |size: u32| {
            SqlitePoolOptions::new()
                .max_connections(size)
                .acquire_timeout(BUSY_TIMEOUT)
                // Each round trip to a connection's worker thread is two thread
                // switches, and the writer's are on everyone's path. A connection to
                // a file in this process does not go stale the way a socket does, so
                // it is not pinged before each use.
                .test_before_acquire(false)
                .after_release(|conn, _| keep_after_release(conn))
        };
        let in_memory = path == Path::new(":memory:");
        // The writer does not copy the WAL back into the database itself (SQLite's
        // default, every 1,000 pages): that copy would stall every write queued
        // behind it. A task beside it does, without the write lock.
        let writer_options = if in_memory {
            options.clone()
        } else {
            options.clone().pragma("wal_autocheckpoint", "0")
        };
        let write = pool(if in_memory { max_connections } else { 1 })
            .connect_with(writer_options)
            .await
            .map_err(failed)?;
        // SQLite opens a file it may not write read-only, without a word (a
        // read-only volume that still holds the -wal and -shm files). A token
        // server that cannot write is of no use: say so at start, not on each grant.
        sqlx::raw_sql("begin immediate; create table rotor_write_check (x integer); rollback;")
            .execute(&write)
            .await
            .map_err(failed)?;
        let read = if in_memory {
            write.clone()
        } else {
            let checkpoints = SqliteConnection::connect_with(&options)
                .await
                .map_err(failed)?;
            let read = pool(max_connections.max(1))
                .connect_with(options)
                .await
                .map_err(failed)?;
            tokio::spawn(checkpoint_beside_the_writer(
                checkpoints,
                read.clone(),
                write.clone(),
            ));
            read
        };
        let steps = group_commit::GroupCommit::start(write.clone(), BUSY_TIMEOUT);
        Ok(SqliteStore { read, write, steps })
    }

    /// Wraps an existing pool, for reads and writes alike. Within a Tokio runtime:
    /// it starts the task that commits the one-step writes.
    pub fn from_pool(pool: SqlitePool) -> SqliteStore {
        SqliteStore {
            read: pool.clone(),
            steps: group_commit::GroupCommit::start(pool.clone(), BUSY_TIMEOUT),
            write: pool,
        }
    }

    /// Runs `query` — one write, `savepoint one_step; …; release one_step;` — on the
    /// writer as one command, inside the transaction of its group
    /// ([`group_commit`]), and returns the rows its statements return once that
    /// transaction has committed; `failed` sorts a driver error of its own
    /// statements.
    ///
    /// Later statements see what earlier ones did through the database itself (a
    /// guard on `changes()` or on a value only this request wrote), so there is no
    /// Rust between them and nothing to wait for while the write lock is held. A
    /// statement that fails stops the query, and the write is rolled back to its
    /// savepoint. The write runs to its end even when its requester goes away
    /// meanwhile, so the connection is never left inside half a write.
    ///
    /// The statements share one list of numbered parameters (`?1` … `?N`), each
    /// using some of them. The driver also binds, in turn, each number below a
    /// statement's highest that the statement does not use, taking values from a
    /// running position in the list, and stops binding a statement when that
    /// position passes the list's end — leaving its later parameters NULL. Unused
    /// values appended to the list keep the position inside it.
    async fn write_in_one_step<T>(
        &self,
        query: group_commit::StepQuery<T>,
        failed: impl FnOnce(sqlx::Error) -> StoreError + Send + 'static,
    ) -> StoreResult<Vec<T>>
    where
        T: Send + Unpin + 'static + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    {
        /// More than the unused numbers of all the statements of one step together.
        const SKIPPED_NUMBERS: usize = 128;
        let query = (0..SKIPPED_NUMBERS).fold(query, |q, _| q.bind(None::<i64>));
        self.steps.write(query, failed).await
    }

    /// Begins a write transaction that holds the write lock from its first
    /// statement.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.write
            .begin_with("begin immediate")
            .await
            .map_err(StoreError::from_sqlx)
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// How long the writer waits for reads of older snapshots to end before it starts
/// the WAL over; past it, it tries again at the next tick.
const WAL_RESET_WAIT: Duration = Duration::from_millis(10);

/// Copies the WAL's committed pages back into the database file every
/// [`CHECKPOINT_INTERVAL`], on a connection of its own, until the store closes,
/// and has the writer start the WAL over when it is long.
///
/// A passive checkpoint takes no write lock and waits for nobody: writes go on
/// while it runs. A page written many times between two checkpoints is copied once.
///
/// That alone does not bound the WAL under steady traffic. SQLite starts the WAL
/// over only when a write begins after a checkpoint copied everything *and* no
/// reader still reads through the WAL; with reads and writes always in flight,
/// that moment never comes: the WAL grew by gigabytes a minute in the benchmark —
/// a disk filling up, and every read and write slower as the WAL's index grew
/// (each page is looked up in it, one table per 4,096 frames). So once a passive
/// checkpoint finds [`SqliteStore::WAL_RESET_FRAMES`] or more, the writer itself, in its turn
/// between two writes, runs a `restart` checkpoint: it copies what the passive one
/// left (the frames committed while it ran), waits up to [`WAL_RESET_WAIT`] for
/// the reads of older snapshots to end (new reads go on meanwhile), and the next
/// write starts the WAL from its beginning. The writes that queue up meanwhile wait
/// for the writer, as behind any write. The file keeps its size (reused, not
/// truncated: emptying a large file with its pages still cached took 300 ms here).
async fn checkpoint_beside_the_writer(
    mut conn: SqliteConnection,
    open: SqlitePool,
    write: SqlitePool,
) {
    let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !open.is_closed() {
        ticks.tick().await;
        if let Err(e) = checkpoint(&mut conn, &write).await {
            tracing::debug!(error = %e, "WAL checkpoint failed; trying again at the next tick");
        }
    }
    let _ = conn.close().await;
}

/// The row of a checkpoint: whether it was blocked, the WAL's frames, the frames
/// copied.
type CheckpointRow = (i64, i64, i64);

/// One passive checkpoint, and a restarting one by the writer when the WAL is long.
async fn checkpoint(conn: &mut SqliteConnection, write: &SqlitePool) -> Result<(), sqlx::Error> {
    let (_, frames, _): CheckpointRow = sqlx::query_as("pragma wal_checkpoint(passive)")
        .fetch_one(&mut *conn)
        .await?;
    if frames < SqliteStore::WAL_RESET_FRAMES {
        return Ok(());
    }
    let mut writer = write.acquire().await?;
    let short = format!("pragma busy_timeout = {}", WAL_RESET_WAIT.as_millis());
    sqlx::Executor::execute(&mut *writer, short.as_str()).await?;
    let restarted: Result<CheckpointRow, _> = sqlx::query_as("pragma wal_checkpoint(restart)")
        .fetch_one(&mut *writer)
        .await;
    let usual = format!("pragma busy_timeout = {}", BUSY_TIMEOUT.as_millis());
    if sqlx::Executor::execute(&mut *writer, usual.as_str())
        .await
        .is_err()
    {
        // A writer that would give up on a busy file after 10 ms is not put back.
        writer.close_on_drop();
    }
    if restarted?.0 != 0 {
        tracing::debug!(
            frames,
            "reads kept the WAL from starting over; trying again at the next tick"
        );
    }
    Ok(())
}

/// Whether a connection handed back to the pool may be reused.
///
/// When a write fails with SQLITE_FULL or an I/O error, SQLite may end the
/// transaction by itself. The driver still counts it open, its ROLLBACK then fails,
/// and the next `begin` on that connection would open only a savepoint: a
/// transaction that never commits, holds the write lock, and answers later reads
/// with its own uncommitted rows. Such a connection is closed instead.
///
/// A dropped driver transaction queues its rollback, and the driver counts the
/// transaction open until that has run: only then is a round trip needed, to wait
/// for it. A group of one-step writes, whose transaction is begun in SQL, is
/// settled by [`group_commit`] instead.
fn keep_after_release(
    conn: &mut SqliteConnection,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if conn.is_in_transaction() {
            conn.ping().await?;
        }
        Ok(!conn.is_in_transaction())
    })
}

/// Rolls back a transaction begun in SQL after one of its statements failed, and
/// says whether the connection is clean again: rolled back, or ended by SQLite
/// itself (on a full disk or an I/O error), which answers "no transaction is
/// active".
async fn roll_back_sql_transaction(conn: &mut SqliteConnection) -> bool {
    match sqlx::Executor::execute(&mut *conn, "rollback").await {
        Ok(_) => true,
        Err(sqlx::Error::Database(e)) => e.message().contains("no transaction is active"),
        Err(_) => false,
    }
}

/// Why a database that failed to open cannot be written, if that is the reason.
/// SQLite says only "unable to open database file" when, say, the volume is
/// read-only; the operating system's answer names the cause.
fn unwritable(path: &Path) -> Option<StoreError> {
    if path == Path::new(":memory:") {
        return None;
    }
    let file = if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        Ok(())
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".rotor-write-check-{}", Uuid::new_v4()));
    let writable = file.and_then(|()| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
    });
    writable.err().map(|source| StoreError::Unwritable {
        path: path.to_owned(),
        source,
    })
}

/// A time as stored: unix seconds.
fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// An id as stored: text.
fn id(u: Uuid) -> String {
    u.to_string()
}

#[async_trait]
impl DatabaseStore for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/sqlite")
            .run(&self.write)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => StoreError::from_sqlx(e),
                other => StoreError::Corrupt(format!("migrations: {other}")),
            })
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn ping(&self) -> StoreResult<()> {
        // language=SQLite
        sqlx::query(r#"select 1"#)
            .execute(&self.read)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        // language=SQLite
        let (empty,): (bool,) = sqlx::query_as(
            r#"select not exists (select 1 from users) and not exists (select 1 from clients)"#,
        )
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_whose_transaction_sqlite_ended_is_not_reused() {
        let store = SqliteStore::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = store.write.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        // SQLite ends the transaction itself, as after SQLITE_FULL during a commit.
        sqlx::query("rollback").execute(&mut *tx).await.unwrap();
        drop(tx);
        conn.ping().await.unwrap();
        assert!(
            conn.is_in_transaction(),
            "the driver still counts the ended transaction"
        );
        drop(conn);

        let mut conn = store.write.acquire().await.unwrap();
        assert!(!conn.is_in_transaction());
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("create table t (x integer)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(!conn.is_in_transaction());
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_created_says_why() {
        let dir = std::env::temp_dir().join(format!("rotor-missing-{}", Uuid::new_v4()));
        let url = format!("sqlite://{}/rotor.db", dir.display());

        let opened = SqliteStore::connect(&url, 1).await;

        let Err(e) = opened else {
            panic!("opened a database in a directory that does not exist")
        };
        let message = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(matches!(e, StoreError::Unwritable { .. }), "{e:?}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("No such file or directory"), "{message}");
    }

    #[tokio::test]
    async fn a_read_only_database_is_unavailable_for_writes_and_refused_at_start() {
        let path = std::env::temp_dir().join(format!("rotor-ro-{}.db", Uuid::new_v4()));
        let url = format!("sqlite://{}", path.display());
        let writable = SqliteStore::connect(&url, 1).await.unwrap();
        sqlx::query("create table t (x integer)")
            .execute(&writable.write)
            .await
            .unwrap();
        writable.write.close().await;
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .read_only(true);
        let read_only = SqlitePool::connect_with(options).await.unwrap();

        let write = sqlx::query("insert into t (x) values (1)")
            .execute(&read_only)
            .await
            .map_err(StoreError::from_sqlx);
        let typo = sqlx::query("insert into no_such_table (x) values (1)")
            .execute(&read_only)
            .await
            .map_err(StoreError::from_sqlx);

        read_only.close().await;
        let store = SqliteStore::open(
            SqliteConnectOptions::from_str(&url)
                .unwrap()
                .read_only(true),
            1,
        )
        .await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert!(
            matches!(write, Err(StoreError::Unavailable(_))),
            "{write:?}"
        );
        assert!(matches!(typo, Err(StoreError::Backend(_))), "{typo:?}");
        assert!(
            store.is_err(),
            "a database it cannot write opened as a store"
        );
    }
}
