//! argon2id password hashing. Verification is slow by design, so it runs on a
//! fixed set of hashing threads (`passwords.max_concurrent`): password logins can
//! saturate them without starving the async runtime that serves refreshes.
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
        atomic::{AtomicUsize, Ordering},
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

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// Verifications waiting for a hashing thread. The threads end when the
    /// last clone of the hasher is dropped.
    jobs: mpsc::Sender<Job>,
    /// How many verifications wait for a thread, for the metrics.
    waiting: Arc<AtomicUsize>,
    /// Verified against when the user does not exist, so that an unknown user costs
    /// the same time as a wrong password.
    dummy_hash: Arc<String>,
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

/// The loop of one hashing thread: takes jobs until every sender is gone.
fn hashing_thread(jobs: &Mutex<mpsc::Receiver<Job>>, keep_blocks: usize) {
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
        let _entered = job.span.enter();
        let ok = verify_with_memory(job.password.expose(), &job.hash, &mut memory);
        if memory.len() > keep_blocks {
            // An old hash made with more memory than the configured parameters.
            memory = Vec::new();
        }
        // The requester may have gone away (client disconnected); nothing to do.
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
            .finish()
    }
}

impl PasswordHasher {
    /// Builds the hasher and its dummy hash.
    ///
    /// # Errors
    /// The argon2 parameters are out of range.
    pub fn new(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid configuration: passwords: {e}"))?;
        let threads = match settings.max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let (jobs, queue) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let keep_blocks = params.block_count();
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("rotor-argon2-{i}"))
                .spawn(move || hashing_thread(&queue, keep_blocks))
                .context("starting a password hashing thread")?;
        }
        let mut hasher = PasswordHasher {
            params,
            jobs,
            waiting: Arc::default(),
            dummy_hash: Arc::new(String::new()),
        };
        hasher.dummy_hash = Arc::new(hasher.hash_blocking(&Password::new("rotor-dummy".into()))?);
        Ok(hasher)
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
    /// A hashing thread panicked.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                password,
                hash: stored.unwrap_or_else(|| self.dummy_hash.as_str().to_owned()),
                span: tracing::Span::current(),
                reply,
                queued: Queued::enter(&self.waiting),
            })
            .ok()
            .context("password hashing threads stopped")?;
        let ok = answer.await.context("password verification was dropped")?;
        Ok(ok && known)
    }
}

impl PasswordHasher {
    /// Verifications waiting for a hashing slot right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// One place in the queue; leaves it when dropped (taken by a thread, or dropped
/// with the queue).
struct Queued(Arc<AtomicUsize>);

impl Queued {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Queued(counter.clone())
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
}
