//! argon2id password hashing. Verification is slow by design, so it runs on a
//! fixed set of hashing threads (`passwords.max_concurrent`): password logins can
//! saturate them without starving the async runtime that serves refreshes.
//!
//! At most `passwords.max_queue` verifications wait for a thread. Past that a login
//! is refused at once ([`VerifyError::QueueFull`], answered 503
//! `temporarily_unavailable`), so that a burst cannot pile up argon2 work faster
//! than the threads clear it and make every login wait behind it. A waiting
//! verification whose requester has gone (the connection closed) is dropped
//! unhashed when a thread reaches it.
//!
//! Each hashing thread keeps its argon2 working memory (19 MiB with the default
//! parameters) from one verification to the next. Allocating it per call, on
//! tokio's blocking pool, cost page faults on every login and left a 19 MiB
//! allocator arena behind on every thread the pool started (over 500 MiB
//! resident after a few hundred logins).

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::config::PasswordSettings;

/// How many verifications may wait per hashing thread when `passwords.max_queue`
/// is 0. With the default parameters a verification takes some tens of
/// milliseconds, so a full queue is about a second of work.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 32;

/// A password in clear, as presented by a user. `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a presented password.
    pub fn new(value: String) -> Self {
        Password(value)
    }

    fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Hashes and verifies passwords with bounded concurrency and a bounded queue.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// Verifications waiting for a hashing thread. The threads end when the
    /// last clone of the hasher is dropped.
    jobs: mpsc::Sender<Job>,
    /// The end the hashing threads take jobs from, shared by all of them.
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// How many verifications may wait at once (`passwords.max_queue`).
    max_queue: usize,
    /// How many verifications wait for a thread, for the bound and the metrics.
    waiting: Arc<AtomicUsize>,
    /// What the hashing threads did.
    counters: Arc<Counters>,
    /// Verified against when the user does not exist, so that an unknown user costs
    /// the same time as a wrong password.
    dummy_hash: Arc<String>,
}

/// Why a password could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// `passwords.max_queue` verifications already wait for a hashing thread.
    #[error("the password hashing queue is full")]
    QueueFull,
    /// The hashing threads are gone (one panicked).
    #[error("password hashing threads stopped")]
    Stopped,
}

/// One verification for a hashing thread.
struct Job {
    password: Password,
    hash: String,
    span: tracing::Span,
    reply: oneshot::Sender<bool>,
    /// Counts the job as waiting until a thread takes it.
    queued: Queued,
}

/// What the hashing threads did, counted since start.
#[derive(Debug, Default)]
struct Counters {
    /// Verifications hashed.
    verified: AtomicU64,
    /// Verifications dropped unhashed because their requester had gone.
    skipped: AtomicU64,
}

/// The loop of one hashing thread: takes jobs until every sender is gone.
fn hashing_thread(jobs: &Mutex<mpsc::Receiver<Job>>, keep_blocks: usize, counters: &Counters) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let Ok(queue) = jobs.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        drop(job.queued);
        // The requester went away while the job waited (client disconnected, request
        // timed out): hashing for nobody would only delay the jobs behind it.
        if job.reply.is_closed() {
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let _entered = job.span.enter();
        let ok = verify_with_memory(job.password.expose(), &job.hash, &mut memory);
        counters.verified.fetch_add(1, Ordering::Relaxed);
        if memory.len() > keep_blocks {
            // An old hash made with more memory than the configured parameters.
            memory = Vec::new();
        }
        // The requester may have gone away meanwhile; nothing to do.
        let _ = job.reply.send(ok);
    }
}

/// Verifies `password` against a PHC string with the parameters the hash was
/// made with, in `memory` (grown as needed). Compares the output in constant time.
fn verify_with_memory(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        tracing::error!("a stored password hash has unsupported parameters");
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("max_queue", &self.max_queue)
            .finish()
    }
}

impl PasswordHasher {
    /// Builds the hasher and its dummy hash, and starts the hashing threads.
    ///
    /// # Errors
    /// The argon2 parameters are out of range, or a thread cannot be started.
    pub fn new(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let hasher = PasswordHasher::without_threads(settings)?;
        hasher.start_threads(hashing_threads(settings))?;
        Ok(hasher)
    }

    /// The hasher with its queue and dummy hash, but no thread yet to take jobs.
    fn without_threads(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid configuration: passwords: {e}"))?;
        let max_queue = match settings.max_queue {
            0 => hashing_threads(settings).saturating_mul(DEFAULT_QUEUE_PER_THREAD),
            n => n,
        };
        let (jobs, queue) = mpsc::channel();
        let mut hasher = PasswordHasher {
            params,
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            max_queue,
            waiting: Arc::default(),
            counters: Arc::default(),
            dummy_hash: Arc::new(String::new()),
        };
        hasher.dummy_hash = Arc::new(hasher.hash_blocking(&Password::new("rotor-dummy".into()))?);
        Ok(hasher)
    }

    /// Starts `count` more hashing threads on the queue.
    fn start_threads(&self, count: usize) -> anyhow::Result<()> {
        let keep_blocks = self.params.block_count();
        for i in 0..count {
            let (queue, counters) = (self.queue.clone(), self.counters.clone());
            std::thread::Builder::new()
                .name(format!("rotor-argon2-{i}"))
                .spawn(move || hashing_thread(&queue, keep_blocks, &counters))
                .context("starting a password hashing thread")?;
        }
        Ok(())
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes a new password into a PHC string. Blocking: for the CLI and start-up.
    ///
    /// # Errors
    /// Only if argon2 rejects its input, which the validated parameters rule out.
    pub fn hash_blocking(&self, password: &Password) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(self
            .argon2()
            .hash_password(password.expose(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?
            .to_string())
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is
    /// no user, so that both cases cost the same. Waits for a free hashing thread.
    ///
    /// # Errors
    /// [`VerifyError::QueueFull`] at once when `passwords.max_queue` verifications
    /// already wait; [`VerifyError::Stopped`] when a hashing thread panicked.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, VerifyError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.as_str().to_owned());
        let answer = self.submit(password, hash)?;
        let ok = answer.await.map_err(|_| VerifyError::Stopped)?;
        Ok(ok && known)
    }

    /// Queues one verification, or refuses it when the queue is full. Dropping the
    /// returned receiver withdraws the job.
    fn submit(
        &self,
        password: Password,
        hash: String,
    ) -> Result<oneshot::Receiver<bool>, VerifyError> {
        let queued = Queued::enter(&self.waiting, self.max_queue).ok_or(VerifyError::QueueFull)?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                password,
                hash,
                span: tracing::Span::current(),
                reply,
                queued,
            })
            .map_err(|_| VerifyError::Stopped)?;
        Ok(answer)
    }
}

/// The number of hashing threads: `passwords.max_concurrent`, or one per core.
fn hashing_threads(settings: &PasswordSettings) -> usize {
    match settings.max_concurrent {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    }
}

impl PasswordHasher {
    /// Verifications waiting for a hashing slot right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Verifications dropped unhashed since start, because their requester had
    /// gone before a hashing thread reached them.
    pub fn skipped_verifications(&self) -> u64 {
        self.counters.skipped.load(Ordering::Relaxed)
    }
}

/// One place in the queue; leaves it when dropped (taken by a thread, or dropped
/// with the queue).
struct Queued(Arc<AtomicUsize>);

impl Queued {
    /// Takes a place if fewer than `max` are taken.
    fn enter(counter: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Queued(counter.clone()))
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(&PasswordSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_queue: 0,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn right_password_verifies_and_wrong_one_does_not() {
        let h = cheap();
        let stored = h
            .hash_blocking(&Password::new("correct horse".into()))
            .unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            h.verify(Password::new("correct horse".into()), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !h.verify(Password::new("wrong".into()), Some(stored))
                .await
                .unwrap()
        );
    }

    #[test]
    fn a_reused_memory_buffer_verifies_hashes_of_any_size() {
        let small = cheap();
        let large = PasswordHasher::new(&PasswordSettings {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 1,
            max_queue: 0,
        })
        .unwrap();
        let pw = Password::new("pw".into());
        let mut memory = Vec::new();
        let h_large = large.hash_blocking(&pw).unwrap();
        let h_small = small.hash_blocking(&pw).unwrap();
        assert!(verify_with_memory(pw.expose(), &h_large, &mut memory));
        assert!(verify_with_memory(pw.expose(), &h_small, &mut memory));
        assert!(!verify_with_memory(b"other", &h_small, &mut memory));
        assert!(!verify_with_memory(pw.expose(), "not a hash", &mut memory));
    }

    #[tokio::test]
    async fn many_concurrent_verifications_all_answer() {
        let h = cheap();
        let stored = h.hash_blocking(&Password::new("pw".into())).unwrap();
        let mut checks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (h, stored) = (h.clone(), stored.clone());
            let pw = if i % 2 == 0 { "pw" } else { "no" };
            checks
                .spawn(async move { (i, h.verify(Password::new(pw.into()), Some(stored)).await) });
        }
        let mut answered = 0;
        while let Some(done) = checks.join_next().await {
            let (i, ok) = done.unwrap();
            assert_eq!(ok.unwrap(), i % 2 == 0);
            answered += 1;
        }
        assert_eq!(answered, 20);
    }

    #[tokio::test]
    async fn queue_depth_rises_with_waiting_verifications_and_returns_to_zero() {
        // One thread, a costlier hash: a burst must queue behind it.
        let h = PasswordHasher::new(&PasswordSettings {
            memory_kib: 4096,
            iterations: 3,
            parallelism: 1,
            max_concurrent: 1,
            max_queue: 0,
        })
        .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let h = h.clone();
            tasks.spawn(async move { h.verify(Password::new("x".into()), None).await });
        }
        let mut seen = 0;
        for _ in 0..10_000 {
            seen = seen.max(h.queue_depth());
            if seen >= 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!((2..=8).contains(&seen), "{seen}");
        for verified in tasks.join_all().await {
            assert!(!verified.unwrap());
        }
        assert_eq!(h.queue_depth(), 0);
    }

    #[tokio::test]
    async fn unknown_user_never_verifies_even_with_the_dummy_password() {
        let h = cheap();
        assert!(
            !h.verify(Password::new("rotor-dummy".into()), None)
                .await
                .unwrap()
        );
    }

    /// A cheap hasher with room for `max_queue` waiting verifications and no
    /// hashing thread yet, so that the test decides when jobs are taken.
    fn stalled(max_queue: usize) -> PasswordHasher {
        PasswordHasher::without_threads(&PasswordSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 1,
            max_queue,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_the_waiting_verifications_still_answer() {
        // Arrange: room for two, both taken.
        let h = stalled(2);
        let stored = h.hash_blocking(&Password::new("pw".into())).unwrap();
        let first = h
            .submit(Password::new("pw".into()), stored.clone())
            .unwrap();
        let second = h
            .submit(Password::new("no".into()), stored.clone())
            .unwrap();

        // Act: one poll, so that a verification that waits shows as pending.
        let mut third = Box::pin(h.verify(Password::new("pw".into()), Some(stored.clone())));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let third = third.as_mut().poll(&mut cx);

        // Assert: refused without waiting; the two queued ones answer once a thread runs.
        assert!(
            matches!(third, std::task::Poll::Ready(Err(VerifyError::QueueFull))),
            "{third:?}"
        );
        assert_eq!(h.queue_depth(), 2);
        h.start_threads(1).unwrap();
        assert!(first.await.unwrap());
        assert!(!second.await.unwrap());
        assert_eq!(h.queue_depth(), 0);
        assert!(
            h.verify(Password::new("pw".into()), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_verification_whose_requester_has_gone_is_not_hashed() {
        // Arrange: a login that gave up while waiting (its future polled once, so
        // queued, then dropped, as when the client disconnects), and one that waits.
        let h = stalled(4);
        let stored = h.hash_blocking(&Password::new("pw".into())).unwrap();
        let mut abandoned = Box::pin(h.verify(Password::new("pw".into()), Some(stored.clone())));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(abandoned.as_mut().poll(&mut cx).is_pending());
        assert_eq!(h.queue_depth(), 1);
        drop(abandoned);
        let kept = h.submit(Password::new("pw".into()), stored).unwrap();

        // Act
        h.start_threads(1).unwrap();
        let verified = kept.await.unwrap();

        // Assert: only the waiting login cost a hash.
        assert!(verified);
        assert_eq!(h.counters.verified.load(Ordering::Relaxed), 1);
        assert_eq!(h.skipped_verifications(), 1);
    }

    #[test]
    fn the_default_queue_is_32_per_hashing_thread() {
        let h = PasswordHasher::without_threads(&PasswordSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 3,
            max_queue: 0,
        })
        .unwrap();
        assert_eq!(h.max_queue, 3 * DEFAULT_QUEUE_PER_THREAD);
        assert_eq!(stalled(5).max_queue, 5);
    }
}
