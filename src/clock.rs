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
    shift: Arc<Shift>,
}

/// What tests changed, shared by every clone of a clock.
#[derive(Debug)]
struct Shift {
    offset_nanos: AtomicI64,
    /// Unix nanoseconds the clock stands at, or [`RUNNING`].
    frozen_at_nanos: AtomicI64,
}

/// `frozen_at_nanos` of a clock that follows the system time.
const RUNNING: i64 = i64::MIN;

impl Default for Shift {
    fn default() -> Self {
        Shift {
            offset_nanos: AtomicI64::new(0),
            frozen_at_nanos: AtomicI64::new(RUNNING),
        }
    }
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// Now, shifted by every [`Clock::advance`] so far.
    pub fn now(&self) -> OffsetDateTime {
        let base = match self.shift.frozen_at_nanos.load(Ordering::Relaxed) {
            RUNNING => OffsetDateTime::now_utc(),
            frozen => OffsetDateTime::from_unix_timestamp_nanos(i128::from(frozen))
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        };
        base + time::Duration::nanoseconds(self.shift.offset_nanos.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward, to the nanosecond.
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.shift.offset_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Stops this clock (and every clone of it) where it stands, so that a test can
    /// reach an exact instant with [`Clock::advance`], which still moves it.
    pub fn freeze(&self) {
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let now = i64::try_from(now).unwrap_or(RUNNING + 1);
        self.shift.frozen_at_nanos.store(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_by_advance_and_to_the_nanosecond() {
        let clock = Clock::system();
        let clone = clock.clone();
        clock.freeze();
        let frozen = clone.now();
        assert_eq!(clone.now(), frozen);
        clock.advance(Duration::from_nanos(1_500_000_001));
        assert_eq!(
            clone.now() - frozen,
            time::Duration::nanoseconds(1_500_000_001)
        );
    }

    #[test]
    fn a_running_clock_follows_the_system_time_plus_the_offset() {
        let clock = Clock::system();
        clock.advance(Duration::from_secs(3600));
        let ahead = clock.now() - OffsetDateTime::now_utc();
        assert!(ahead > time::Duration::minutes(59) && ahead <= time::Duration::hours(1));
    }
}
