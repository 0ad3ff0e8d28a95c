//! The HTTP layer: axum routers that parse requests into typed `oauth` input, call
//! one `oauth` function, and turn the result into a response. No protocol rules
//! live here.

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderValue, header},
};
use tower_http::{set_header::SetResponseHeaderLayer, trace::TraceLayer};

use crate::{
    clock::Clock,
    config::Settings,
    crypto::{keys::KeyRing, password::PasswordHasher},
    oauth::{GrantContext, OAuthError},
    store::Store,
};

pub mod api;
pub mod bearer;
pub mod error;
pub mod extract;
pub mod metadata;
pub mod openapi;
pub mod revoke;
pub mod token;

/// The state every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub keys: Arc<KeyRing>,
    pub hasher: PasswordHasher,
    pub clock: Clock,
}

impl AppState {
    /// Borrows what a grant needs.
    pub fn grant_context(&self) -> GrantContext<'_> {
        GrantContext {
            store: self.store.as_ref(),
            settings: &self.settings,
            keys: &self.keys,
            hasher: &self.hasher,
        }
    }
}

/// Every (method, path) the router serves, as `openapi.json` documents them; a
/// test holds the two and the router in step.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/oauth2/token"),
    ("POST", "/oauth2/revoke"),
    ("POST", "/oauth2/introspect"),
    ("GET", "/oauth2/jwks"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/api/v1/me"),
    ("GET", "/openapi.json"),
];

/// The whole application's routes and layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(token::router())
        .merge(revoke::router())
        .merge(metadata::router())
        .merge(api::router())
        .merge(openapi::router())
        .fallback(|| async { OAuthError::NotFound })
        .layer(axum::middleware::from_fn(extract::limit_headers))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        // RFC 6749 §5.1: responses with tokens carry no-store; errors do too.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::PRAGMA, HeaderValue::from_static("no-cache")))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), path, grant_type = tracing::field::Empty, client_id = tracing::field::Empty)
        }))
        .with_state(state)
}
