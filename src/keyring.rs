//! The signing keys of a running instance: created on first start, re-read from the
//! store now and then so that every instance sharing a database signs with the same
//! key, rotated and resealed by `rotor keys`.
//!
//! This module is where the store meets [`crypto::jwt`](crate::crypto::jwt),
//! [`crypto::signing_key`](crate::crypto::signing_key) and
//! [`crypto::seal`](crate::crypto::seal), which stay pure: no store, no I/O.

use std::{
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::{
    config::{KeySettings, SigningAlg},
    crypto::{
        jwt::{AccessClaims, KeySet, TokenRejected},
        nonce::NonceKey,
        seal::KeyCipher,
        signing_key::{StoredKey, retired_keys},
    },
    store::{Store, StoreError},
};

/// The cipher that seals signing keys at rest under `keys.secret`, and opens keys
/// sealed under `keys.previous_secrets`.
pub fn cipher(settings: &KeySettings) -> KeyCipher {
    let previous: Vec<&str> = settings
        .previous_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    KeyCipher::new(
        settings.secret.as_ref().map(|s| s.expose_secret()),
        &previous,
    )
}

/// The name the DPoP nonce key is kept under, and sealed with.
const NONCE_KEY_NAME: &str = "dpop-nonce";

/// The key of DPoP nonces (RFC 9449 §8): read from the store, where the first
/// instance to start put a random one, sealed under `keys.secret` like the
/// signing keys. Every instance then makes and accepts the same nonces.
///
/// # Errors
/// The store failed, or the stored key is sealed under a secret this instance
/// does not have.
pub async fn nonce_key(
    store: &dyn Store,
    cipher: &KeyCipher,
    now: time::OffsetDateTime,
) -> anyhow::Result<NonceKey> {
    let candidate = NonceKey::generate();
    let sealed = cipher.seal(NONCE_KEY_NAME, candidate.as_bytes());
    let stored = store.server_secret(NONCE_KEY_NAME, &sealed, now).await?;
    NonceKey::from_slice(&cipher.open(NONCE_KEY_NAME, &stored)?)
}

/// The shortest time between two reads of the signing keys from the store, whatever
/// asks for them.
///
/// A token whose `kid` this instance does not hold may be signed by a key another
/// instance made since the last read, so it makes the instance read the keys again
/// before refusing. Anyone can send such a token without credentials, so those reads
/// happen at most once per interval: within it, a token of a key this instance has
/// not seen yet is refused, and once it has passed, the first such token brings the
/// key in. `keys.reload_interval` below this counts as this.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The key set in force, re-read from the store now and then so that a key rotated
/// by `rotor keys rotate` (or by another instance) is picked up by every instance.
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    alg: SigningAlg,
    /// How long a retired key stays published, in nanoseconds: the longest an
    /// access token signed by this instance can live. Raised, never lowered, when
    /// `tokens.session_timeout` is changed at run time ([`KeyRing::cover_token_lifetime`]).
    max_token_lifetime: AtomicU64,
    reload_every: Duration,
    cipher: KeyCipher,
    /// When the store was last read, in Unix nanoseconds of the server clock.
    last_read: AtomicI64,
    /// Held while the store is read, so that one read serves every request waiting.
    reloading: tokio::sync::Mutex<()>,
    /// Reads of the store since [`KeyRing::load`].
    reloads: AtomicU64,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("alg", &self.alg).finish()
    }
}

impl KeyRing {
    /// Loads the keys, creating one of `alg` when the store has none (first start).
    /// Instances starting together may each create one; the newest signs everywhere
    /// once every instance has reloaded.
    ///
    /// # Errors
    /// The store failed, or key generation failed.
    pub async fn load(
        store: &dyn Store,
        alg: SigningAlg,
        max_token_lifetime: Duration,
        reload_every: Duration,
        cipher: KeyCipher,
        now: time::OffsetDateTime,
    ) -> anyhow::Result<KeyRing> {
        let mut stored = store.signing_keys().await?;
        if !stored.iter().any(|k| k.alg == alg) {
            let sealer = cipher.clone();
            let key = tokio::task::spawn_blocking(move || StoredKey::generate(alg, now, &sealer))
                .await
                .context("key generation task")??;
            // Instances starting together on an empty store: one key wins, and
            // every instance then loads that one.
            match store.insert_first_signing_key(&key).await {
                Ok(true) => {
                    tracing::info!(kid = %key.kid, alg = alg.as_str(), "created signing key")
                }
                Ok(false) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            stored = store.signing_keys().await?;
        }
        let set = KeySet::new(&live_keys(&stored, now, max_token_lifetime), alg, &cipher)?;
        Ok(KeyRing {
            current: RwLock::new(Arc::new(set)),
            alg,
            max_token_lifetime: AtomicU64::new(nanos(max_token_lifetime)),
            reload_every,
            cipher,
            last_read: AtomicI64::new(unix_nanos(now)),
            reloading: tokio::sync::Mutex::new(()),
            reloads: AtomicU64::new(0),
        })
    }

    /// The keys in force; re-reads the store first when `keys.reload_interval` has
    /// passed since the last read.
    pub async fn current(&self, store: &dyn Store, now: time::OffsetDateTime) -> Arc<KeySet> {
        if self.read_due(now, self.reload_every) {
            // A request that finds a read under way goes on with the keys in force.
            if let Ok(_reading) = self.reloading.try_lock()
                && self.read_due(now, self.reload_every)
            {
                self.reload(store, now).await;
            }
        }
        self.snapshot()
    }

    /// The keys in force, without touching the store.
    pub fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Keeps retired keys published for at least `lifetime` (the new longest
    /// access-token lifetime after a change of `tokens.session_timeout` at run
    /// time), so that no token outlives the key that verifies it. A shorter
    /// lifetime changes nothing: tokens issued before it still live.
    pub fn cover_token_lifetime(&self, lifetime: Duration) {
        self.max_token_lifetime
            .fetch_max(nanos(lifetime), Ordering::Relaxed);
    }

    /// How long a retired key stays published.
    pub fn max_token_lifetime(&self) -> Duration {
        Duration::from_nanos(self.max_token_lifetime.load(Ordering::Relaxed))
    }

    /// How many times this ring has re-read the store since it was loaded.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Whether `interval` (at least [`MIN_RELOAD_INTERVAL`]) has passed since the last
    /// read. A clock set back before the last read allows one read, which then
    /// counts from the new time.
    fn read_due(&self, now: time::OffsetDateTime, interval: Duration) -> bool {
        let last = self.last_read.load(Ordering::Relaxed);
        let now = unix_nanos(now);
        let interval =
            i64::try_from(interval.max(MIN_RELOAD_INTERVAL).as_nanos()).unwrap_or(i64::MAX);
        now < last || now >= last.saturating_add(interval)
    }

    /// Re-reads the store; keys already held are kept as they are, not opened and
    /// parsed again. On failure the old set stays in force. The caller holds
    /// `reloading`.
    async fn reload(&self, store: &dyn Store, now: time::OffsetDateTime) {
        self.last_read.store(unix_nanos(now), Ordering::Relaxed);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let built = match store.signing_keys().await {
            Ok(stored) => KeySet::with_known(
                &live_keys(&stored, now, self.max_token_lifetime()),
                self.alg,
                &self.cipher,
                &self.snapshot(),
            ),
            Err(e) => Err(e.into()),
        };
        match built {
            Ok(set) => {
                let mut current = match self.current.write() {
                    Ok(c) => c,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = Arc::new(set);
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reloading signing keys failed"),
        }
    }

    /// Verifies an access token. A kid this instance does not hold makes it re-read
    /// the store before refusing, at most once per [`MIN_RELOAD_INTERVAL`].
    ///
    /// # Errors
    /// As [`KeySet::verify`].
    pub async fn verify(
        &self,
        store: &dyn Store,
        now: time::OffsetDateTime,
        token: &str,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Result<AccessClaims, TokenRejected> {
        let seen = self.current(store, now).await;
        match seen.verify(token, issuer, audience, now, leeway) {
            Err(TokenRejected::UnknownKid) => {}
            other => return other,
        }
        {
            // Requests with unknown kids wait for one read rather than each reading;
            // when another read ended while this one waited, its keys serve.
            let _reading = self.reloading.lock().await;
            if Arc::ptr_eq(&self.snapshot(), &seen) && self.read_due(now, MIN_RELOAD_INTERVAL) {
                self.reload(store, now).await;
            }
        }
        self.snapshot().verify(token, issuer, audience, now, leeway)
    }
}

/// The stored keys that an unexpired token can still carry.
fn live_keys(
    stored: &[StoredKey],
    now: time::OffsetDateTime,
    max_token_lifetime: Duration,
) -> Vec<StoredKey> {
    let retired = retired_keys(stored, now, max_token_lifetime);
    stored
        .iter()
        .filter(|k| !retired.iter().any(|r| r.kid == k.kid))
        .cloned()
        .collect()
}

/// `at` in Unix nanoseconds, saturating past the year 2262.
fn unix_nanos(at: time::OffsetDateTime) -> i64 {
    let nanos = at.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// `d` in nanoseconds, saturating past 584 years.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Makes a new key of `alg` the signing key, and drops keys no live token can carry.
///
/// # Errors
/// Key generation or the store failed.
pub async fn rotate(
    store: &dyn Store,
    alg: SigningAlg,
    now: time::OffsetDateTime,
    max_token_lifetime: Duration,
    cipher: &KeyCipher,
) -> anyhow::Result<StoredKey> {
    // The newest key signs, and SQLite keeps whole seconds: a rotation within the
    // second of the previous key must still sort after it.
    let newest = store
        .signing_keys()
        .await?
        .iter()
        .map(|k| k.created_at)
        .max();
    let created_at = match newest {
        Some(t) if t.unix_timestamp() >= now.unix_timestamp() => t + Duration::from_secs(1),
        _ => now,
    };
    let sealer = cipher.clone();
    let key = tokio::task::spawn_blocking(move || StoredKey::generate(alg, created_at, &sealer))
        .await
        .context("key generation task")??;
    store.insert_signing_key(&key).await?;
    let stored = store.signing_keys().await?;
    for retired in retired_keys(&stored, now, max_token_lifetime) {
        store.delete_signing_key(&retired.kid).await?;
        tracing::info!(kid = %retired.kid, "dropped retired signing key");
    }
    Ok(key)
}

/// Seals every stored key, and the DPoP nonce key, under the current secret
/// (after `keys.secret` changed). Returns how many signing keys it resealed.
///
/// # Errors
/// A key cannot be opened with the configured secrets, or the store failed.
pub async fn reseal(store: &dyn Store, cipher: &KeyCipher) -> anyhow::Result<usize> {
    let keys = store.signing_keys().await?;
    for key in &keys {
        let der = cipher.open(&key.kid, &key.private_key)?;
        store
            .update_signing_key(&key.kid, &cipher.seal(&key.kid, &der))
            .await?;
    }
    // The DPoP nonce key is sealed the same way, and moves with them.
    if let Some(stored) = store.find_server_secret(NONCE_KEY_NAME).await? {
        let plain = cipher.open(NONCE_KEY_NAME, &stored)?;
        store
            .replace_server_secret(NONCE_KEY_NAME, &cipher.seal(NONCE_KEY_NAME, &plain))
            .await?;
    }
    Ok(keys.len())
}
