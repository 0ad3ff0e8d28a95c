//! Signing keys as an admin sees them: which exist and which one signs, and
//! rotating to a new one.

use time::OffsetDateTime;

use super::AdminError;
use crate::{
    config::{Settings, SigningAlg},
    keyring,
    store::Store,
};

/// A signing key without its private part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: OffsetDateTime,
    /// Whether it signs new tokens (the newest does).
    pub active: bool,
}

/// Every stored key, the active one marked.
///
/// # Errors
/// The store failed.
pub async fn list(store: &dyn Store) -> Result<Vec<KeyInfo>, AdminError> {
    let keys = store.signing_keys().await?;
    let newest = keys.iter().map(|k| k.created_at).max();
    Ok(keys
        .iter()
        .map(|k| KeyInfo {
            kid: k.kid.clone(),
            alg: k.alg,
            created_at: k.created_at,
            active: Some(k.created_at) == newest,
        })
        .collect())
}

/// A new signing key, which signs from now on; keys no token of
/// `max_token_lifetime` can need any more are dropped.
///
/// # Errors
/// Key generation or the store failed.
pub async fn rotate(
    store: &dyn Store,
    settings: &Settings,
    max_token_lifetime: std::time::Duration,
    now: OffsetDateTime,
) -> Result<KeyInfo, AdminError> {
    let key = keyring::rotate(
        store,
        settings.tokens.signing_alg,
        now,
        max_token_lifetime,
        &keyring::cipher(&settings.keys),
    )
    .await?;
    Ok(KeyInfo {
        kid: key.kid.clone(),
        alg: key.alg,
        created_at: key.created_at,
        active: true,
    })
}
