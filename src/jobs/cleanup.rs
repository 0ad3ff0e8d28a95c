//! The periodic clean-up, every retention rule in one place: expired access-token
//! ids, dead token families (with their refresh tokens), sealed retry answers whose
//! window ended, audit events older than `audit.retention`, lockout counters
//! whose window and lock are over, DPoP proofs past their window, and
//! authorization codes and browser sessions an hour after they expired or ended —
//! so that no table grows without bound, whoever
//! sends the requests. Deletes run in bounded batches. Every instance runs it; the
//! store's deletes skip rows another instance is deleting, so running it everywhere
//! at once is safe and merely shares the work.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use time::OffsetDateTime;

use crate::{
    clock::Clock,
    config::{CleanupSettings, Settings},
    lifecycle::Lifecycle,
    metrics::Metrics,
    store::{Purged, Store, StoreResult},
};

/// How long a spent or expired authorization code, and an ended browser session,
/// are kept: long enough that a code replayed soon after its exchange still
/// revokes what it gave (OAuth 2.1 §4.1.3), short enough that the table stays the
/// size of an hour of sign-ins.
pub const CODE_AND_SESSION_RETENTION: Duration = Duration::from_secs(3600);

/// What the clean-up keeps and for how long, from the settings.
#[derive(Debug, Clone)]
pub struct Retention {
    pub cleanup: CleanupSettings,
    /// Audit events older than this are deleted.
    pub audit: Duration,
    /// Lockout counters whose window started longer ago than this are deleted
    /// (unless still locked).
    pub lockout_window: Duration,
}

impl From<&Settings> for Retention {
    fn from(settings: &Settings) -> Retention {
        Retention {
            cleanup: settings.cleanup.clone(),
            audit: settings.audit.retention,
            lockout_window: settings.lockout.window,
        }
    }
}

/// Runs the clean-up every `settings.interval` until the shutdown begins. The first
/// run comes at a random point of the first interval, so that instances started
/// together do not clean in lock-step.
pub async fn run(
    store: Arc<dyn Store>,
    retention: Retention,
    clock: Clock,
    metrics: Arc<Metrics>,
    lifecycle: Lifecycle,
) {
    let interval_ms = u64::try_from(retention.cleanup.interval.as_millis()).unwrap_or(u64::MAX);
    let mut wait = Duration::from_millis(rand::thread_rng().gen_range(0..interval_ms.max(1)));
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = lifecycle.drained() => return,
        }
        match run_once(store.as_ref(), &retention, clock.now(), &metrics).await {
            Ok(p) if p.access_tokens + p.families > 0 => tracing::info!(
                access_tokens = p.access_tokens,
                families = p.families,
                "clean-up removed expired rows"
            ),
            Ok(_) => tracing::debug!("clean-up found nothing expired"),
            Err(e) => tracing::warn!(error = %e, "clean-up failed; retrying next interval"),
        }
        wait = retention.cleanup.interval;
    }
}

/// One run: batches of at most `batch_size` rows each, until a batch comes back
/// short or `max_batches` were run; then the audit events and lockout counters past
/// their retention, in batches the same way.
///
/// # Errors
/// The store failed; the batches before it stay deleted.
pub async fn run_once(
    store: &dyn Store,
    retention: &Retention,
    now: OffsetDateTime,
    metrics: &Metrics,
) -> StoreResult<Purged> {
    let settings = &retention.cleanup;
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
    let audit_before = now - retention.audit;
    let window_start_before = now - retention.lockout_window;
    let codes_before = now - CODE_AND_SESSION_RETENTION;
    for _ in 0..settings.max_batches {
        let audit = store
            .purge_audit_events(audit_before, settings.batch_size)
            .await?;
        let counters = store
            .purge_login_failures(now, window_start_before, settings.batch_size)
            .await?;
        let codes = store
            .purge_codes_and_sessions(codes_before, settings.batch_size)
            .await?;
        // RFC 9449 §11.1: a proof's record is needed only while its `iat` could
        // still be accepted.
        let proofs = store.purge_dpop_proofs(now, settings.batch_size).await?;
        if audit < limit && counters < limit && codes < limit && proofs < limit {
            break;
        }
    }
    Ok(total)
}
