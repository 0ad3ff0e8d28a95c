//! Group commit of the one-step writes (a refresh, a code exchange, a stored code,
//! a session's last use).
//!
//! SQLite has one writer, and most of a small write's cost is not its statements
//! but what surrounds them: handing the connection from one request to the next
//! (a wake-up of the waiting task and of the driver's worker thread each time) and
//! the commit, which appends every page the write dirtied to the WAL — the same
//! rightmost pages of the audit trail's indexes, say, once per write. So the writes
//! that queue up while the writer is busy run together: one task takes all of
//! them (up to [`GROUP_MAX`]), runs them one after the other inside one `begin
//! immediate` transaction, each in a savepoint of its own, commits once, and only
//! then answers each. A write that fails is rolled back to its savepoint and
//! answered with its error; the others are unaffected. No one is told of a write
//! before it is committed, and if the commit fails, every write of the group is
//! answered with that failure — as each would have been alone.
//!
//! Each write is still its own atomic step, in the order it arrived: a later one
//! sees what an earlier one did, exactly as if they had run in turn. Of two
//! concurrent requests for one single-use token, the second in the group finds it
//! spent.
//!
//! A write whose requester went away before its turn (a closed connection) is not
//! run: nobody would be told of it.

use std::{future::Future, pin::Pin, time::Duration};

use sqlx::{
    Executor, SqliteConnection, SqlitePool,
    sqlite::{SqliteArguments, SqliteRow},
};
use tokio::sync::{mpsc, oneshot};

use crate::store::{StoreError, StoreResult};

/// The most writes one transaction holds: enough to take in what queues up behind
/// one group under load, few enough that a group's answers are not held back long.
const GROUP_MAX: usize = 64;

/// How many writes may wait for the writer. Beyond it, requests wait to be queued
/// (at most [`ENQUEUE_TIMEOUT`]), as they waited for the pooled connection before.
const QUEUE: usize = 1024;

/// A one-step write's statements: `savepoint one_step; …; release one_step;`.
pub(super) type StepQuery<T> =
    sqlx::query::QueryAs<'static, sqlx::Sqlite, T, SqliteArguments<'static>>;

/// The sender side: where [`SqliteStore`](super::SqliteStore) queues its writes.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Box<dyn Job>>,
    enqueue_timeout: Duration,
}

impl GroupCommit {
    /// Starts the task that runs the groups on `write`'s connection; it ends when
    /// every sender is gone.
    pub(super) fn start(write: SqlitePool, enqueue_timeout: Duration) -> GroupCommit {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run_groups(queue, write));
        GroupCommit {
            jobs,
            enqueue_timeout,
        }
    }

    /// Runs `query` in the next group and answers with its rows once that group has
    /// committed; `failed` sorts the error of a statement of this write.
    pub(super) async fn write<T>(
        &self,
        query: StepQuery<T>,
        failed: impl FnOnce(sqlx::Error) -> StoreError + Send + 'static,
    ) -> StoreResult<Vec<T>>
    where
        T: Send + Unpin + 'static + for<'r> sqlx::FromRow<'r, SqliteRow>,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Step {
            query,
            failed: Box::new(failed),
            reply,
        });
        match tokio::time::timeout(self.enqueue_timeout, self.jobs.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
            Err(_) => return Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
        answer
            .await
            .unwrap_or(Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)))
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One queued write, whatever rows it returns.
trait Job: Send {
    /// Whether its requester still waits for it.
    fn wanted(&self) -> bool;
    /// Runs its statements inside the group's transaction. The answer waits for the
    /// commit; `clean` is false when the connection's transaction could not be
    /// brought back to where it was before this write.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Ran>;
    /// Answers without running: the group could not start, or ended before its
    /// turn.
    fn refuse(self: Box<Self>, e: StoreError);
}

/// A write that has run, and its answer once the group's outcome is known.
struct Ran {
    answer: Box<dyn Answer>,
    clean: bool,
}

trait Answer: Send {
    /// Sends the write's rows, or why its group did not commit.
    fn settle(self: Box<Self>, not_committed: Option<&sqlx::Error>);
}

struct Step<T> {
    query: StepQuery<T>,
    failed: Box<dyn FnOnce(sqlx::Error) -> StoreError + Send>,
    reply: oneshot::Sender<StoreResult<Vec<T>>>,
}

impl<T> Job for Step<T>
where
    T: Send + Unpin + 'static + for<'r> sqlx::FromRow<'r, SqliteRow>,
{
    fn wanted(&self) -> bool {
        !self.reply.is_closed()
    }

    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Ran> {
        Box::pin(async move {
            let Step {
                query,
                failed,
                reply,
            } = *self;
            match query.fetch_all(&mut *conn).await {
                Ok(rows) => Ran {
                    answer: Box::new(Reply {
                        reply,
                        outcome: Ok(rows),
                    }),
                    clean: true,
                },
                Err(e) => {
                    // A failed statement stops the step where it is; undo what it
                    // did so far, and nothing of the others.
                    let clean = conn
                        .execute("rollback to one_step; release one_step;")
                        .await
                        .is_ok();
                    Ran {
                        answer: Box::new(Reply {
                            reply,
                            outcome: Err(failed(e)),
                        }),
                        clean,
                    }
                }
            }
        })
    }

    fn refuse(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// What one write answers: its own outcome, or the group's failed commit.
struct Reply<T> {
    reply: oneshot::Sender<StoreResult<Vec<T>>>,
    outcome: StoreResult<Vec<T>>,
}

impl<T: Send> Answer for Reply<T> {
    fn settle(self: Box<Self>, not_committed: Option<&sqlx::Error>) {
        let outcome = match (self.outcome, not_committed) {
            // A write that failed on its own was not kept either way.
            (Err(e), _) => Err(e),
            (Ok(rows), None) => Ok(rows),
            (Ok(_), Some(e)) => Err(group_failed(e)),
        };
        let _ = self.reply.send(outcome);
    }
}

/// The failure of a group's `begin` or `commit`, for each of its writes. The driver
/// error cannot be copied, so each gets one that says what it said, sorted the
/// way the original would be: the database could not write for now.
fn group_failed(e: &sqlx::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(format!(
        "the write's group did not commit: {e}"
    )))
}

async fn run_groups(mut queue: mpsc::Receiver<Box<dyn Job>>, write: SqlitePool) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    while queue.recv_many(&mut group, GROUP_MAX).await > 0 {
        group.retain(|job| job.wanted());
        if !group.is_empty() {
            run_group(&write, std::mem::take(&mut group)).await;
        }
    }
}

/// Runs one group in one transaction and answers its writes.
async fn run_group(write: &SqlitePool, group: Vec<Box<dyn Job>>) {
    let mut conn = match write.acquire().await {
        Ok(conn) => conn,
        Err(e) => return refuse_all(group, &e),
    };
    if let Err(e) = conn.execute("begin immediate").await {
        return refuse_all(group, &e);
    }
    let mut answers = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    let mut clean = true;
    for job in jobs.by_ref() {
        let ran = job.run(&mut conn).await;
        answers.push(ran.answer);
        if !ran.clean {
            clean = false;
            break;
        }
    }
    let committed = if clean {
        conn.execute("commit").await.map(drop)
    } else {
        // SQLite ended the transaction by itself (a full disk, an I/O error), or
        // left it where no one can vouch for it: keep nothing of this group.
        Err(sqlx::Error::Protocol(
            "a failed write of the group could not be undone".into(),
        ))
    };
    if committed.is_err() && !super::roll_back_sql_transaction(&mut conn).await {
        conn.close_on_drop();
    }
    for answer in answers {
        answer.settle(committed.as_ref().err());
    }
    if let Err(e) = &committed {
        refuse_all(jobs.collect(), e);
    }
}

/// Answers every write of `group` with the failure that kept it from running.
fn refuse_all(group: Vec<Box<dyn Job>>, e: &sqlx::Error) {
    for job in group {
        job.refuse(group_failed(e));
    }
}
