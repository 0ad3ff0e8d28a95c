//! The server's notion of "now", passed into the protocol code as a value so that
//! expiry can be tested by moving a clock instead of sleeping.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use time::OffsetDateTime;

/// System time plus an offset that only tests move.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// Now, shifted by every [`Clock::advance`] so far.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}
