//! The instance's life after start: serving, then draining once SIGTERM arrives.
//! Shared by the readiness probe, the clean-up task and the server loop.

use std::sync::Arc;

use tokio::sync::watch;

/// Whether a shutdown has begun. Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    draining: Arc<watch::Sender<bool>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            draining: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Lifecycle {
    /// Starts the shutdown: `/readyz` answers 503 and background tasks stop.
    pub fn begin_drain(&self) {
        self.draining.send_replace(true);
    }

    /// Whether the shutdown has begun.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once the shutdown has begun.
    pub async fn drained(&self) {
        let mut rx = self.draining.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|draining| *draining).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_drain() {
        let a = Lifecycle::default();
        let b = a.clone();
        assert!(!b.is_draining());
        a.begin_drain();
        assert!(b.is_draining());
        b.drained().await;
    }
}
