//! argon2id password hashing. Verification is slow by design, so it runs on the
//! blocking pool behind a semaphore: password logins can saturate the hashing
//! slots without starving the async runtime that serves refreshes.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

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
    slots: Arc<Semaphore>,
    /// Verifications waiting for a slot, for the metrics.
    waiting: Arc<AtomicUsize>,
    /// Verified against when the user does not exist, so that an unknown user costs
    /// the same time as a wrong password.
    dummy_hash: Arc<String>,
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
        let slots = match settings.max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let mut hasher = PasswordHasher {
            params,
            slots: Arc::new(Semaphore::new(slots)),
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
    /// no user, so that both cases cost the same. Waits for a free hashing slot.
    ///
    /// # Errors
    /// The blocking task panicked or the pool is shut down.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let queued = Queued::enter(&self.waiting);
        let _permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .context("hashing slots closed")?;
        drop(queued);
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.as_str().to_owned());
        let span = tracing::Span::current();
        let ok = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let Ok(parsed) = PasswordHash::new(&hash) else {
                tracing::error!("a stored password hash is not a valid PHC string");
                return false;
            };
            // Verify with the parameters the hash was made with.
            Argon2::default()
                .verify_password(password.expose(), &parsed)
                .is_ok()
        })
        .await
        .context("password verification task")?;
        Ok(ok && known)
    }
}

impl PasswordHasher {
    /// Verifications waiting for a hashing slot right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// One place in the queue; leaves it when dropped, also when the request is cancelled.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Queued(counter)
    }
}

impl Drop for Queued<'_> {
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

    #[tokio::test]
    async fn queue_depth_counts_verifications_waiting_for_a_slot() {
        let h = cheap();
        let held: Vec<_> = (0..2)
            .map(|_| h.slots.clone().try_acquire_owned().unwrap())
            .collect();
        let waiting = {
            let h = h.clone();
            tokio::spawn(async move { h.verify(Password::new("x".into()), None).await })
        };
        for _ in 0..1000 {
            if h.queue_depth() == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(h.queue_depth(), 1);
        drop(held);
        assert!(!waiting.await.unwrap().unwrap());
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
