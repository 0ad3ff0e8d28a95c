//! What the unauthenticated endpoints read from the store, read at most once per
//! [`INTERVAL`] however many requests ask: the metadata document lists every
//! client, and `/metrics` counts every live token family, so a store read per
//! request would let anyone turn a request rate into a rate of table scans.
//! No SQL here: each caller passes its own load.

use std::{sync::Arc, time::Duration};

use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::{clock::Clock, oauth::metadata::ServerMetadata};

/// How long a value read from the store is served before it is read again. A
/// new client's scopes reach the metadata document within this time.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// The store reads of the public endpoints, one cache each.
#[derive(Debug, Default)]
pub struct Caches {
    /// The RFC 8414 document, computed from every registered client.
    pub metadata: Refreshed<ServerMetadata>,
    /// The token families neither revoked nor expired, for `/metrics`.
    pub active_families: Refreshed<u64>,
}

/// A value and when it was last read, read again once older than its interval.
///
/// Single flight: while one caller loads, the others wait for that load instead
/// of starting their own. The load runs in a task of its own, so that a caller
/// that goes away (a closed connection) neither cancels it nor lets the next
/// caller start another.
#[derive(Debug)]
pub struct Refreshed<T> {
    interval: Duration,
    slot: Arc<Mutex<Slot<T>>>,
}

#[derive(Debug)]
struct Slot<T> {
    /// The last value read; kept when a later load fails.
    value: Option<T>,
    /// When the last load began, whether or not it succeeded.
    loaded_at: Option<OffsetDateTime>,
}

impl<T> Default for Refreshed<T> {
    fn default() -> Self {
        Refreshed::new(INTERVAL)
    }
}

impl<T> Refreshed<T> {
    /// An empty cache whose value is read again once it is `interval` old.
    pub fn new(interval: Duration) -> Self {
        Refreshed {
            interval,
            slot: Arc::new(Mutex::new(Slot {
                value: None,
                loaded_at: None,
            })),
        }
    }
}

impl<T: Clone + Send + 'static> Refreshed<T> {
    /// The value, loaded with `load` when none was loaded within the interval
    /// (by the `clock`).
    ///
    /// `load` answers `None` when it failed (it logs why). Then the previous value
    /// is served until the next load, one interval later, and `None` only when no
    /// load has ever succeeded: a store that fails is not asked again per request.
    pub async fn get<F, Fut>(&self, clock: &Clock, load: F) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        let mut slot = self.slot.clone().lock_owned().await;
        // Read after the lock: a caller that waited for another's load finds it fresh.
        let now = clock.now();
        let fresh = slot
            .loaded_at
            .is_some_and(|at| at <= now && now - at < self.interval);
        if fresh {
            return slot.value.clone();
        }
        slot.loaded_at = Some(now);
        let load = load();
        let loading = tokio::spawn(async move {
            if let Some(value) = load.await {
                slot.value = Some(value);
            }
            slot.value.clone()
        });
        // A panicking load has released the lock and counts as a failed one.
        loading.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    const A_MINUTE: Duration = Duration::from_secs(60);

    /// A load that counts its calls and answers `value`.
    fn counted<T: Send + 'static>(
        calls: &Arc<AtomicUsize>,
        value: Option<T>,
    ) -> impl FnOnce() -> std::future::Ready<Option<T>> {
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(value)
        }
    }

    #[tokio::test]
    async fn a_value_is_loaded_once_per_interval_and_again_after_it() {
        let (clock, calls) = (Clock::system(), Arc::new(AtomicUsize::new(0)));
        let cache = Refreshed::new(A_MINUTE);

        assert_eq!(cache.get(&clock, counted(&calls, Some(1))).await, Some(1));
        assert_eq!(cache.get(&clock, counted(&calls, Some(2))).await, Some(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        clock.advance(A_MINUTE);
        assert_eq!(cache.get(&clock, counted(&calls, Some(3))).await, Some(3));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load() {
        // Arrange: a load that takes several turns of the scheduler, and many
        // callers that all find the cache empty while it runs.
        let (clock, calls) = (Clock::system(), Arc::new(AtomicUsize::new(0)));
        let cache = Arc::new(Refreshed::new(A_MINUTE));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (cache, clock, calls) = (cache.clone(), clock.clone(), calls.clone());
            callers.spawn(async move {
                cache
                    .get(&clock, move || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        async {
                            for _ in 0..10 {
                                tokio::task::yield_now().await;
                            }
                            Some(42)
                        }
                    })
                    .await
            });
        }

        // Act
        let answers = callers.join_all().await;

        // Assert
        assert_eq!(answers, vec![Some(42); 50]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_cancel_the_load() {
        // Arrange: a load held until the gate opens; its caller polls once and leaves.
        let (clock, calls) = (Clock::system(), Arc::new(AtomicUsize::new(0)));
        let cache = Refreshed::new(A_MINUTE);
        let (open, gate) = oneshot::channel::<()>();
        let mut leaving = Box::pin(cache.get(&clock, move || async move {
            let _ = gate.await;
            Some("loaded")
        }));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(leaving.as_mut().poll(&mut cx).is_pending());
        drop(leaving);

        // Act
        open.send(()).unwrap();
        let value = cache.get(&clock, counted(&calls, Some("again"))).await;

        // Assert: the next caller gets the first load's value without loading.
        assert_eq!(value, Some("loaded"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failed_load_keeps_the_previous_value_and_is_not_retried_within_the_interval() {
        let (clock, calls) = (Clock::system(), Arc::new(AtomicUsize::new(0)));
        let cache = Refreshed::new(A_MINUTE);
        assert_eq!(cache.get(&clock, counted(&calls, Some(1))).await, Some(1));
        clock.advance(A_MINUTE);

        assert_eq!(cache.get(&clock, counted(&calls, None)).await, Some(1));
        assert_eq!(cache.get(&clock, counted(&calls, Some(2))).await, Some(1));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn nothing_is_served_until_a_load_succeeds() {
        let (clock, calls) = (Clock::system(), Arc::new(AtomicUsize::new(0)));
        let cache = Refreshed::<u64>::new(A_MINUTE);

        assert_eq!(cache.get(&clock, counted(&calls, None)).await, None);
        assert_eq!(cache.get(&clock, counted(&calls, Some(1))).await, None);
        clock.advance(A_MINUTE);
        assert_eq!(cache.get(&clock, counted(&calls, Some(2))).await, Some(2));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
