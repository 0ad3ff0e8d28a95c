//! The settings in force on this instance: the configuration's layers with the
//! values stored in the database over them ([`crate::admin::settings`]), re-read
//! every `settings.reload_interval` ([`crate::jobs::settings`]) and at once after a
//! change this instance made. A request takes one snapshot, [`LiveSettings::current`],
//! and reads every setting from it, so that a change arriving mid-request never
//! mixes two configurations in one answer.

use std::{
    fmt,
    sync::{Arc, RwLock},
};

use crate::{
    admin::settings::{self, Key},
    config::Settings,
    store::{SettingStore, StoreResult},
};

/// The configuration and the snapshot in force. Cheap to clone; every clone sees
/// the same snapshot.
#[derive(Clone)]
pub struct LiveSettings {
    inner: Arc<Inner>,
}

struct Inner {
    /// The configuration's layers, as read at start.
    file: Settings,
    /// `file` with the stored values over it.
    current: RwLock<Arc<Settings>>,
    /// Held while the store is read and the result applied, so that of two
    /// reloads the one that read later is the one left in force. It keeps why
    /// stored values were left out at the last reload, so that each is logged
    /// once, not at every reload.
    reloading: tokio::sync::Mutex<Vec<String>>,
}

impl fmt::Debug for LiveSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSettings")
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

impl LiveSettings {
    /// The configuration alone, until [`LiveSettings::reload`] reads the store.
    pub fn new(file: Settings) -> LiveSettings {
        LiveSettings {
            inner: Arc::new(Inner {
                current: RwLock::new(Arc::new(file.clone())),
                file,
                reloading: tokio::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// The configuration with the values stored now over it (at start).
    ///
    /// # Errors
    /// The store failed.
    pub async fn load(file: Settings, store: &dyn SettingStore) -> StoreResult<LiveSettings> {
        let live = LiveSettings::new(file);
        live.reload(store).await?;
        Ok(live)
    }

    /// The settings in force: one snapshot, to read a whole request from.
    pub fn current(&self) -> Arc<Settings> {
        match self.inner.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The configuration's layers without the stored values: what a setting goes
    /// back to when its stored value is removed.
    pub fn file(&self) -> &Settings {
        &self.inner.file
    }

    /// Re-reads the stored values and puts the result in force. A stored value
    /// that cannot be applied is logged and left out; the rest apply.
    ///
    /// # Errors
    /// The store failed; the snapshot in force stays.
    pub async fn reload(&self, store: &dyn SettingStore) -> StoreResult<()> {
        let mut left_out = self.inner.reloading.lock().await;
        let stored = store.list_settings().await?;
        let (next, refused) = settings::apply(&self.inner.file, &stored);
        let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
        for why in refused.iter().filter(|why| !left_out.contains(why)) {
            tracing::warn!(error = %why, "a stored setting was left out");
        }
        *left_out = refused;
        let next = Arc::new(next);
        let previous = {
            let mut current = match self.inner.current.write() {
                Ok(current) => current,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *current, next.clone())
        };
        for key in Key::ALL {
            let (was, is) = (key.value(&previous), key.value(&next));
            if was != is {
                tracing::info!(key = key.as_str(), was, is, "setting changed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use time::OffsetDateTime;

    use super::*;
    use crate::store::{AuditEvent, SettingRecord, StoreError};

    /// Settings held in memory.
    #[derive(Default)]
    struct Stored(Mutex<Vec<SettingRecord>>);

    #[async_trait]
    impl SettingStore for Stored {
        async fn list_settings(&self) -> StoreResult<Vec<SettingRecord>> {
            self.0
                .lock()
                .map(|s| s.clone())
                .map_err(|_| StoreError::NotFound)
        }
        async fn put_setting(&self, s: &SettingRecord, _: &AuditEvent) -> StoreResult<()> {
            let mut stored = self.0.lock().map_err(|_| StoreError::NotFound)?;
            stored.retain(|r| r.key != s.key);
            stored.push(s.clone());
            Ok(())
        }
        async fn remove_setting(&self, key: &str, _: &AuditEvent) -> StoreResult<bool> {
            let mut stored = self.0.lock().map_err(|_| StoreError::NotFound)?;
            let before = stored.len();
            stored.retain(|r| r.key != key);
            Ok(stored.len() < before)
        }
    }

    fn stored(key: &str, value: &str) -> SettingRecord {
        SettingRecord {
            key: key.into(),
            value: value.into(),
            updated_at: OffsetDateTime::UNIX_EPOCH,
            updated_by: "cli".into(),
        }
    }

    #[tokio::test]
    async fn a_snapshot_taken_before_a_reload_keeps_its_values() {
        // Arrange
        let store = Stored::default();
        let live = LiveSettings::load(Settings::load(None).unwrap(), &store)
            .await
            .unwrap();
        let before = live.current();
        store
            .0
            .lock()
            .unwrap()
            .push(stored("refresh.max_refreshes", "2"));

        // Act
        live.reload(&store).await.unwrap();

        // Assert
        assert_eq!(before.refresh.max_refreshes, 0);
        assert_eq!(live.current().refresh.max_refreshes, 2);
        assert_eq!(live.file().refresh.max_refreshes, 0);
    }

    #[tokio::test]
    async fn a_stored_value_that_cannot_apply_is_left_out_and_the_rest_apply() {
        let store = Stored::default();
        store.0.lock().unwrap().extend([
            stored("refresh.grace_period", "10m"),
            stored("server.bind", "0.0.0.0:1"),
            stored("refresh.rotate", "false"),
        ]);
        let live = LiveSettings::load(Settings::load(None).unwrap(), &store)
            .await
            .unwrap();
        let current = live.current();
        assert!(!current.refresh.rotate);
        assert_eq!(current.refresh.grace_period, std::time::Duration::ZERO);
        assert_eq!(current.server.bind.port(), 8080);
    }

    #[tokio::test]
    async fn removing_a_stored_value_brings_the_file_value_back() {
        let store = Stored::default();
        store
            .0
            .lock()
            .unwrap()
            .push(stored("refresh.enabled", "false"));
        let live = LiveSettings::load(Settings::load(None).unwrap(), &store)
            .await
            .unwrap();
        assert!(!live.current().refresh.enabled);
        store.0.lock().unwrap().clear();
        live.reload(&store).await.unwrap();
        assert!(live.current().refresh.enabled);
    }
}
