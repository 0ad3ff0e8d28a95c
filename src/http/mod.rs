//! The HTTP layer: axum routers that parse requests into typed `oauth` input, call
//! one `oauth` function, and turn the result into a response. No protocol rules
//! live here.

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue, header},
    middleware::{self, Next},
    response::Response,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use crate::{
    clock::Clock,
    config::Settings,
    crypto::{nonce::NonceKey, password::PasswordHasher},
    keyring::KeyRing,
    lifecycle::Lifecycle,
    live_settings::LiveSettings,
    metrics::Metrics,
    oauth::{GrantContext, GrantReport, OAuthError},
    store::Store,
};

pub mod admin_api;
pub mod api;
pub mod cache;
pub mod console;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod routes;

pub use routes::{Operation, Routes};

/// The state every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The settings in force; read a request's from one [`AppState::settings`].
    pub settings: LiveSettings,
    pub keys: Arc<KeyRing>,
    pub hasher: PasswordHasher,
    /// The key of DPoP nonces (RFC 9449 §8), the same on every instance.
    pub nonces: Arc<NonceKey>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    pub lifecycle: Lifecycle,
    /// What the unauthenticated endpoints read from the store.
    pub caches: Arc<cache::Caches>,
}

impl AppState {
    /// The settings in force: one snapshot, stored values included, to read a
    /// whole request from.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.current()
    }

    /// Puts the stored settings in force at once, after a change made through
    /// this instance; other instances apply it within `settings.reload_interval`.
    ///
    /// # Errors
    /// The store failed; the settings in force stay.
    pub async fn reload_settings(&self) -> crate::store::StoreResult<()> {
        crate::jobs::settings::reload(self.store.as_ref(), &self.settings, &self.keys).await
    }

    /// Borrows what a grant needs, with `settings` the request's snapshot; the
    /// grant notes what it saw in `report`.
    pub fn grant_context<'a>(
        &'a self,
        settings: &'a Settings,
        report: &'a GrantReport,
    ) -> GrantContext<'a> {
        GrantContext {
            store: self.store.as_ref(),
            settings,
            keys: &self.keys,
            hasher: &self.hasher,
            nonces: &self.nonces,
            report,
            client_ip: None,
        }
    }
}

/// Every operation the router serves with these settings, read off the same
/// [`Routes`] the router is built from. `openapi.json` documents them, and a test
/// holds the document against this list and against the running router.
pub fn operations(settings: &Settings) -> Vec<Operation> {
    routes(settings).operations().to_vec()
}

/// Every route module's routes.
fn routes(settings: &Settings) -> Routes {
    let routes = Routes::new()
        .merge(oauth::router())
        .merge(api::router())
        .merge(admin_api::router())
        .merge(ops::router(settings.metrics.enabled))
        .merge(openapi::router())
        .merge(pages::router());
    // With `console.bind`, the console has a listener of its own ([`console_router`]).
    if settings.console.enabled && settings.console.bind.is_none() {
        routes.merge(console::router())
    } else {
        routes
    }
}

/// The console's own listener's routes and layers (`console.bind`): the console
/// alone; its sign-in is at `tokens.issuer`.
pub fn console_router(state: AppState) -> Router {
    layered(console::router().into_router(), state)
}

/// The whole application's routes and layers.
pub fn router(state: AppState) -> Router {
    layered(routes(&state.settings()).into_router(), state)
}

/// `routes` with the fallback and the layers of every listener.
fn layered(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { OAuthError::NotFound })
        .layer(axum::middleware::from_fn(extract::limit_headers))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        // RFC 6749 §5.1: responses with tokens carry no-store; errors do too.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::PRAGMA,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// The request id header, taken from the balancer when it sends a sane one.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps each request in a span (request id, method, matched path; the token
/// endpoint adds grant type and client id) and logs one line when it completes,
/// with status and latency. The path is the route pattern, never the raw URI, and
/// no header or body value other than the request id is logged.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        method = %req.method(),
        path,
        grant_type = tracing::field::Empty,
        client_id = tracing::field::Empty,
    );
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, latency_ms, "request completed");
        } else {
            tracing::info!(status, latency_ms, "request completed");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

/// Up to 64 characters of letters, digits, `-`, `_` and `.`: enough for UUIDs and
/// nginx's `$request_id`, and nothing that could forge a log line.
fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_outside_are_short_and_plain() {
        assert!(is_sane_request_id("0f6c2f1e-8f0e-4c1e-9a55-0d1b2c3d4e5f"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("a b"));
        assert!(!is_sane_request_id("id\nforged=1"));
        assert!(!is_sane_request_id(&"x".repeat(65)));
    }
}
