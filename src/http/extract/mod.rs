//! Extractors whose rejection is an [`OAuthError`], so that even a malformed
//! request is answered with RFC 6749 JSON (the bearer guard answers RFC 6750), and
//! the header limit every request passes first.

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::oauth::OAuthError;

mod bearer;
mod body;
mod client;
mod client_ip;
mod cookies;
mod dpop;

pub use bearer::Bearer;
pub use body::{MAX_BODY_BYTES, OAuthParams, parse_body};
pub use client::BasicAuth;
pub use client_ip::ClientIp;
pub use cookies::{CookieJar, Cookies};
pub use dpop::{DpopHeader, presented_proof};

/// The largest accepted header section (names and values). A bearer token is well
/// under 2 KiB; anything larger is refused with 431 before a handler runs.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers exceed [`MAX_HEADER_BYTES`] with 431
/// `invalid_request`. (hyper itself answers a bare 431 beyond 100 headers.)
pub async fn limit_headers(req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return OAuthError::HeadersTooLarge.into_response();
    }
    next.run(req).await
}
