//! This instance's row in the store's list of instances, which the console's
//! overview reads so that every instance shows them all: refreshed every
//! [`INTERVAL`] with the key it signs with, deleted at shutdown. A process that was
//! killed cannot delete its row; it drops out of the overview after
//! [`SEEN_WITHIN`] and out of the table a day later, purged by whichever instance
//! beats next.

use std::{sync::Arc, time::Duration};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    clock::Clock,
    keyring::KeyRing,
    lifecycle::Lifecycle,
    store::{InstanceRecord, Store},
};

/// How often an instance refreshes its row.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// An instance counts as running while its row is younger than this: three
/// missed beats.
pub const SEEN_WITHIN: Duration = Duration::from_secs(30);

/// A row not refreshed for this long is deleted.
const FORGOTTEN_AFTER: time::Duration = time::Duration::days(1);

/// How this process names itself: the host's name, which in a container is the
/// container's id (as `HOSTNAME` says), capped so that no row holds more.
pub fn host_name() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    name.chars().take(255).collect()
}

/// Beats until the shutdown begins, then deletes this instance's row. A failed
/// write is logged and tried again at the next beat.
pub async fn run(store: Arc<dyn Store>, keys: Arc<KeyRing>, clock: Clock, lifecycle: Lifecycle) {
    let id = Uuid::new_v4();
    let name = host_name();
    let started_at = clock.now();
    loop {
        let now = clock.now();
        let me = InstanceRecord {
            id,
            name: name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            seen_at: now,
            signing_kid: Some(keys.snapshot().active_kid().to_owned()),
        };
        if let Err(e) = beat(store.as_ref(), &me, now).await {
            tracing::warn!(error = %e, "recording this instance in the store failed; retrying next beat");
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = lifecycle.drained() => break,
        }
    }
    if let Err(e) = store.remove_instance(id).await {
        tracing::warn!(error = %e, "removing this instance from the store failed");
    }
}

async fn beat(
    store: &dyn Store,
    me: &InstanceRecord,
    now: OffsetDateTime,
) -> crate::store::StoreResult<()> {
    store.record_instance(me).await?;
    store.purge_instances(now - FORGOTTEN_AFTER).await?;
    Ok(())
}
