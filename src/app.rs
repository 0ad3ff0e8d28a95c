//! Building and running the server: store, settings, keys, hasher, listener, the
//! clean-up and settings-reload tasks, and the graceful shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::{
    clock::Clock,
    config::Settings,
    crypto::password::PasswordHasher,
    http::{self, AppState},
    jobs::{self, cleanup},
    keyring::{self, KeyRing},
    lifecycle::Lifecycle,
    live_settings::LiveSettings,
    metrics::Metrics,
    server::{Bound, serve},
    store::{self, Store},
};

/// How long closing the pool may wait for connections still in use.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound, ready-to-run server.
pub struct Application {
    listener: Bound,
    /// The console's own listener (`console.bind`).
    console: Option<Bound>,
    state: AppState,
}

impl Application {
    /// Connects the store named in the settings, migrates it unless
    /// `database.auto_migrate = false`, and binds the listener.
    ///
    /// # Errors
    /// The database cannot be reached or migrated, or the address cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let store = store::connect(
            settings.database.url.expose_secret(),
            settings.database.max_connections,
        )
        .await
        .context("connecting to the database (database.url)")?;
        if settings.database.auto_migrate {
            store.migrate().await.context("running migrations")?;
        }
        Application::with_store(settings, store).await
    }

    /// Builds around an existing, migrated store (tests pass a fresh one each),
    /// with the settings stored in it over `settings`.
    ///
    /// # Errors
    /// The stored settings or the signing keys cannot be loaded, a signing key
    /// cannot be created, or the address cannot be bound.
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
        let live = LiveSettings::load(settings, store.as_ref())
            .await
            .context("loading the settings stored in the database")?;
        let settings = live.current();
        let keys = KeyRing::load(
            store.as_ref(),
            settings.tokens.signing_alg,
            settings.max_access_token_lifetime(),
            settings.keys.reload_interval,
            keyring::cipher(&settings.keys),
            clock.now(),
        )
        .await
        .context("loading signing keys")?;
        let nonces = keyring::nonce_key(
            store.as_ref(),
            &keyring::cipher(&settings.keys),
            clock.now(),
        )
        .await
        .context("loading the DPoP nonce key")?;
        let hasher = {
            let passwords = settings.passwords.clone();
            tokio::task::spawn_blocking(move || PasswordHasher::new(&passwords))
                .await
                .context("preparing the password hasher")??
        };
        let listener = Bound::bind(&settings.server).await?;
        let console = match (settings.console.enabled, settings.console.bind) {
            (true, Some(bind)) => {
                let server = crate::config::ServerSettings {
                    bind,
                    ..settings.server.clone()
                };
                Some(
                    Bound::bind(&server)
                        .await
                        .context("binding the console's listener (console.bind)")?,
                )
            }
            _ => None,
        };
        let state = AppState {
            store,
            settings: live,
            keys: Arc::new(keys),
            hasher,
            nonces: Arc::new(nonces),
            clock,
            metrics: Arc::new(Metrics::new()),
            lifecycle: Lifecycle::default(),
            caches: Arc::default(),
        };
        Ok(Application {
            listener,
            console,
            state,
        })
    }

    /// The address actually bound (port 0 picks one).
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the console's own listener, with `console.bind`.
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn console_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.console.as_ref().map(Bound::local_addr).transpose()
    }

    /// Whether the listener speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.listener.is_tls()
    }

    /// The shared state, e.g. for the clock in tests or the store at first start.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully (see [`Application::run_until`]).
    ///
    /// # Errors
    /// The listener failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves, with the periodic clean-up beside it, until `signal` resolves. Then
    /// `/readyz` answers 503 for `server.shutdown_delay` while requests are still
    /// accepted; then the listener closes, requests in flight get
    /// `server.shutdown_timeout` to finish (idle keep-alive connections close at
    /// once), and the pool is closed.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn run_until<F>(self, signal: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.state;
        let settings = state.settings();
        let server = settings.server.clone();
        let lifecycle = state.lifecycle.clone();
        if settings.cleanup.enabled {
            tokio::spawn(cleanup::run(
                state.store.clone(),
                cleanup::Retention::from(settings.as_ref()),
                state.clock.clone(),
                state.metrics.clone(),
                lifecycle.clone(),
            ));
        }
        let heartbeat = tokio::spawn(jobs::heartbeat::run(
            state.store.clone(),
            state.keys.clone(),
            state.clock.clone(),
            lifecycle.clone(),
        ));
        tokio::spawn(jobs::settings::run(
            state.store.clone(),
            state.settings.clone(),
            state.keys.clone(),
            settings.settings.reload_interval,
            lifecycle.clone(),
        ));
        let stop_accepting = {
            let lifecycle = lifecycle.clone();
            async move {
                signal.await;
                lifecycle.begin_drain();
                if !server.shutdown_delay.is_zero() {
                    tracing::info!(delay = ?server.shutdown_delay, "shutting down: /readyz answers 503");
                    tokio::time::sleep(server.shutdown_delay).await;
                }
                tracing::info!("shutting down: listener closed, finishing requests in flight");
            }
        };
        let deadline = async {
            lifecycle.drained().await;
            tokio::time::sleep(server.shutdown_delay + server.shutdown_timeout).await;
        };
        let store = state.store.clone();
        // The console's own listener stops accepting as the shutdown begins.
        if let Some(console) = self.console {
            let router = http::console_router(state.clone());
            let lifecycle = lifecycle.clone();
            let timeout = server.header_read_timeout;
            tokio::spawn(async move {
                let stop = async move { lifecycle.drained().await };
                if let Err(e) = serve(console, router, timeout, stop).await {
                    tracing::error!(error = %e, "the console's listener failed");
                }
            });
        }
        let router = http::router(state);
        let result = tokio::select! {
            result = serve(self.listener, router, server.header_read_timeout, stop_accepting) => result,
            () = deadline => {
                tracing::warn!(
                    timeout = ?server.shutdown_timeout,
                    "shutting down: server.shutdown_timeout elapsed, dropping remaining connections"
                );
                Ok(())
            }
        };
        // The instance's row goes before the pool does, so that the overview
        // stops listing it at once.
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, heartbeat)
            .await
            .is_err()
        {
            tracing::warn!("shutting down: this instance's row could not be removed in time");
        }
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, store.close())
            .await
            .is_err()
        {
            tracing::warn!("shutting down: database connections still in use were abandoned");
        }
        tracing::info!("shut down");
        result
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
    tracing::info!("shutdown signal received");
}
