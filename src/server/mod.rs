//! The listening socket and the connection loop: plain HTTP or HTTPS ([`tls`]),
//! the header-read timeout, and the drain of open connections at shutdown.
//!
//! It serves whatever axum [`Router`] it is given and imports nothing of the `http`
//! layer, which reads the peer address as [`PeerAddr`].

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower::ServiceExt;

use crate::config::ServerSettings;

pub mod tls;

use tls::TlsListener;

/// The TCP peer of a connection, over plain or TLS listeners alike; every request
/// carries it as `ConnectInfo<PeerAddr>`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The listening socket: plain HTTP, or HTTPS when `server.tls_cert` is set.
pub enum Bound {
    Plain(TcpListener),
    Tls(TlsListener),
}

impl Bound {
    /// Reads the TLS files, if any, and binds `server.bind`.
    ///
    /// # Errors
    /// A TLS file cannot be read or does not fit, or the address cannot be bound.
    pub async fn bind(settings: &ServerSettings) -> anyhow::Result<Bound> {
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        let tcp = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding {} (server.bind)", settings.bind))?;
        Ok(match tls {
            Some(config) => Bound::Tls(TlsListener::new(tcp, config)),
            None => Bound::Plain(tcp),
        })
    }

    /// The address actually bound (port 0 picks one).
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Bound::Plain(l) => l.local_addr(),
            Bound::Tls(l) => l.local_addr(),
        }
    }

    /// Whether the listener speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Bound::Tls(_))
    }
}

/// Serves `router` on `listener` until `stop_accepting` resolves, then drains (see
/// `serve_on`).
///
/// # Errors
/// The listener failed.
pub async fn serve<F>(
    listener: Bound,
    router: Router,
    header_read_timeout: Duration,
    stop_accepting: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    match listener {
        Bound::Plain(l) => serve_on(l, router, header_read_timeout, stop_accepting).await,
        Bound::Tls(l) => serve_on(l, router, header_read_timeout, stop_accepting).await,
    }
}

/// Accepts connections until `stop_accepting` resolves, then asks each open
/// connection to finish its request in flight and close, and returns once all have.
///
/// This is axum's `serve` with one addition: a client must send its request
/// headers within `header_read_timeout`, or its connection is closed, so that
/// clients trickling headers (slowloris) cannot hold connections open. hyper counts
/// that time from when it starts waiting for a request, so on a keep-alive
/// connection it is also the idle timeout between requests. Dropping the returned
/// future (the shutdown deadline in `Application::run_until`) aborts every
/// connection still open.
async fn serve_on<L, F>(
    mut listener: L,
    router: Router,
    header_read_timeout: Duration,
    stop_accepting: F,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    F: Future<Output = ()> + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop_accepting = std::pin::pin!(stop_accepting);
    loop {
        tokio::select! {
            () = &mut stop_accepting => break,
            (io, peer) = listener.accept() => {
                let router = router.clone();
                // The peer address feeds lockout and audit (see `http::extract::ClientIp`).
                let service = service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
                    router.clone().oneshot(request.map(Body::new))
                });
                let connection = http.serve_connection(TokioIo::new(io), service);
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let mut connection = std::pin::pin!(connection);
                    let outcome = tokio::select! {
                        outcome = connection.as_mut() => outcome,
                        () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(e) = outcome {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}
