//! Re-reading the settings stored in the database, so that a change made on
//! another instance, or by `rotor settings set`, is in force here within
//! `settings.reload_interval`.

use std::{sync::Arc, time::Duration};

use crate::{
    keyring::KeyRing,
    lifecycle::Lifecycle,
    live_settings::LiveSettings,
    store::{Store, StoreResult},
};

/// Re-reads the stored settings every `interval` until the shutdown begins. A
/// failed read keeps the settings in force and is tried again one interval later.
pub async fn run(
    store: Arc<dyn Store>,
    settings: LiveSettings,
    keys: Arc<KeyRing>,
    interval: Duration,
    lifecycle: Lifecycle,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = lifecycle.drained() => return,
        }
        if let Err(e) = reload(store.as_ref(), &settings, &keys).await {
            tracing::warn!(error = %e, "reloading the stored settings failed; retrying next interval");
        }
    }
}

/// One reload: the stored settings put in force, and the signing keys kept
/// published for as long as an access token may now live.
///
/// # Errors
/// The store failed; the settings in force stay.
pub async fn reload(store: &dyn Store, settings: &LiveSettings, keys: &KeyRing) -> StoreResult<()> {
    settings.reload(store).await?;
    keys.cover_token_lifetime(settings.current().max_access_token_lifetime());
    Ok(())
}
