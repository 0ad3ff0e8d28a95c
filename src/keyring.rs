//! The signing keys of a running instance: created on first start, re-read from the
//! store now and then so that every instance sharing a database signs with the same
//! key, rotated and resealed by `rotor keys`.
//!
//! This module is where the store meets [`crypto::keys`](crate::crypto::keys), which
//! stays pure: no store, no I/O.

use std::{
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;

use crate::{
    config::{KeySettings, SigningAlg},
    crypto::keys::{AccessClaims, KeyCipher, KeySet, StoredKey, TokenRejected, retired_keys},
    store::{Store, StoreError},
};

/// The cipher that seals signing keys at rest under `keys.secret`, and opens keys
/// sealed under `keys.previous_secrets`.
pub fn cipher(settings: &KeySettings) -> KeyCipher {
    KeyCipher::new(settings.secret.as_deref(), &settings.previous_secrets)
}

/// The key set in force, re-read from the store now and then so that a key rotated
/// by `rotor keys rotate` (or by another instance) is picked up by every instance.
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    alg: SigningAlg,
    max_token_lifetime: Duration,
    reload_every: Duration,
    cipher: KeyCipher,
    /// Unix seconds after which the next use re-reads the store.
    next_reload: AtomicI64,
    reloading: tokio::sync::Mutex<()>,
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
        let set = KeyRing::build(&stored, alg, now, max_token_lifetime, &cipher)?;
        Ok(KeyRing {
            current: RwLock::new(Arc::new(set)),
            alg,
            max_token_lifetime,
            reload_every,
            cipher,
            next_reload: AtomicI64::new(next_deadline(now, reload_every)),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    fn build(
        stored: &[StoredKey],
        alg: SigningAlg,
        now: time::OffsetDateTime,
        max_token_lifetime: Duration,
        cipher: &KeyCipher,
    ) -> anyhow::Result<KeySet> {
        let retired = retired_keys(stored, now, max_token_lifetime);
        let live: Vec<StoredKey> = stored
            .iter()
            .filter(|k| !retired.iter().any(|r| r.kid == k.kid))
            .cloned()
            .collect();
        KeySet::new(&live, alg, cipher)
    }

    /// The keys in force; re-reads the store first when the reload interval passed.
    pub async fn current(&self, store: &dyn Store, now: time::OffsetDateTime) -> Arc<KeySet> {
        if now.unix_timestamp() >= self.next_reload.load(Ordering::Relaxed) {
            self.reload(store, now).await;
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

    /// Re-reads the store now; on failure the old set stays in force.
    pub async fn reload(&self, store: &dyn Store, now: time::OffsetDateTime) {
        let Ok(_guard) = self.reloading.try_lock() else {
            return; // another request is reloading
        };
        self.next_reload
            .store(next_deadline(now, self.reload_every), Ordering::Relaxed);
        let built = match store.signing_keys().await {
            Ok(stored) => KeyRing::build(
                &stored,
                self.alg,
                now,
                self.max_token_lifetime,
                &self.cipher,
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

    /// Verifies an access token; a kid this instance does not know yet makes it
    /// re-read the store once before refusing.
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
        let set = self.current(store, now).await;
        match set.verify(token, issuer, audience, now, leeway) {
            Err(TokenRejected::UnknownKid) => {
                self.reload(store, now).await;
                self.snapshot().verify(token, issuer, audience, now, leeway)
            }
            other => other,
        }
    }
}

fn next_deadline(now: time::OffsetDateTime, every: Duration) -> i64 {
    now.unix_timestamp() + i64::try_from(every.as_secs()).unwrap_or(i64::MAX / 2)
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

/// Seals every stored key under the current secret (after `keys.secret` changed).
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
    Ok(keys.len())
}
