//! The periodic clean-up: expired access-token ids and dead token families (with
//! their refresh tokens) are deleted in bounded batches. Every instance runs it; the
//! store's deletes skip rows another instance is deleting, so running it everywhere
//! at once is safe and merely shares the work.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use time::OffsetDateTime;

use crate::{
    clock::Clock,
    config::CleanupSettings,
    lifecycle::Lifecycle,
    metrics::Metrics,
    store::{Purged, Store, StoreResult},
};

/// Runs the clean-up every `settings.interval` until the shutdown begins. The first
/// run comes at a random point of the first interval, so that instances started
/// together do not clean in lock-step.
pub async fn run(
    store: Arc<dyn Store>,
    settings: CleanupSettings,
    clock: Clock,
    metrics: Arc<Metrics>,
    lifecycle: Lifecycle,
) {
    let interval_ms = u64::try_from(settings.interval.as_millis()).unwrap_or(u64::MAX);
    let mut wait = Duration::from_millis(rand::thread_rng().gen_range(0..interval_ms.max(1)));
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = lifecycle.drained() => return,
        }
        match run_once(store.as_ref(), &settings, clock.now(), &metrics).await {
            Ok(p) if p.access_tokens + p.families > 0 => tracing::info!(
                access_tokens = p.access_tokens,
                families = p.families,
                "clean-up removed expired rows"
            ),
            Ok(_) => tracing::debug!("clean-up found nothing expired"),
            Err(e) => tracing::warn!(error = %e, "clean-up failed; retrying next interval"),
        }
        wait = settings.interval;
    }
}

/// One run: batches of at most `batch_size` rows each, until a batch comes back
/// short or `max_batches` were run.
///
/// # Errors
/// The store failed; the batches before it stay deleted.
pub async fn run_once(
    store: &dyn Store,
    settings: &CleanupSettings,
    now: OffsetDateTime,
    metrics: &Metrics,
) -> StoreResult<Purged> {
    let mut total = Purged::default();
    let limit = u64::from(settings.batch_size);
    for _ in 0..settings.max_batches {
        // Sealed retry answers whose window has ended go first (src/crypto/retry.rs).
        store
            .erase_stale_retry_answers(now, settings.batch_size)
            .await?;
        let batch = store.purge_expired(now, settings.batch_size).await?;
        metrics.cleaned(batch.access_tokens, batch.families);
        total.access_tokens += batch.access_tokens;
        total.families += batch.families;
        if batch.access_tokens < limit && batch.families < limit {
            break;
        }
    }
    Ok(total)
}
