//! Building and running the server: store, keys, hasher, listener.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    clock::Clock,
    config::Settings,
    crypto::{keys::KeyRing, password::PasswordHasher},
    http::{self, AppState},
    store::{self, Store},
};

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects the store named in the settings, migrates it unless
    /// `database.auto_migrate = false`, and binds the listener.
    ///
    /// # Errors
    /// The database cannot be reached or migrated, or the address cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let store = store::connect(&settings.database.url, settings.database.max_connections)
            .await
            .context("connecting to the database (database.url)")?;
        if settings.database.auto_migrate {
            store.migrate().await.context("running migrations")?;
        }
        Application::with_store(settings, store).await
    }

    /// Builds around an existing, migrated store (tests pass a fresh one each).
    ///
    /// # Errors
    /// Signing keys cannot be loaded or created, or the address cannot be bound.
    pub async fn with_store(
        settings: Settings,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Application> {
        if settings.keys.secret.is_none() {
            tracing::warn!(
                "keys.secret is not set: signing keys are stored unsealed, and a copy of the \
                 database is enough to mint access tokens; set ROTOR__KEYS__SECRET"
            );
        }
        let clock = Clock::system();
        let keys = KeyRing::load(
            store.as_ref(),
            settings.tokens.signing_alg,
            settings.max_access_token_lifetime(),
            settings.keys.reload_interval,
            settings.keys.cipher(),
            clock.now(),
        )
        .await
        .context("loading signing keys")?;
        let hasher = {
            let passwords = settings.passwords.clone();
            tokio::task::spawn_blocking(move || PasswordHasher::new(&passwords))
                .await
                .context("preparing the password hasher")??
        };
        let listener = TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("binding {} (server.bind)", settings.server.bind))?;
        let state = AppState {
            store,
            settings: Arc::new(settings),
            keys: Arc::new(keys),
            hasher,
            clock,
        };
        Ok(Application { listener, state })
    }

    /// The address actually bound (port 0 picks one).
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state, e.g. for the clock in tests or the store at first start.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let router = http::router(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
