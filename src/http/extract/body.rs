//! The request body's parameters, read under a size limit and a time limit.

use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, Request},
    http::{HeaderValue, StatusCode, header},
};

use crate::{
    http::AppState,
    oauth::{OAuthError, Params},
};

/// The largest accepted body. Token requests are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The body's parameters, from a form, a JSON object, or a form under a JSON label.
#[derive(Debug)]
pub struct OAuthParams(pub Params);

impl<S> FromRequest<S> for OAuthParams
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        let timeout = AppState::from_ref(state).settings().server.request_timeout;
        // A client that sends its headers and then stalls the body must not hold the
        // connection for ever: RFC 9110 §15.5.9, 408 Request Timeout.
        let body = tokio::time::timeout(timeout, Bytes::from_request(req, state))
            .await
            .map_err(|_| OAuthError::RequestTimeout)?
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    OAuthError::PayloadTooLarge
                } else {
                    OAuthError::InvalidRequest("the request body could not be read".into())
                }
            })?;
        parse_body(content_type.as_ref(), &body).map(OAuthParams)
    }
}

/// Parses a request body by its `Content-Type`: a form, a JSON object, or a form
/// under a JSON label. The token, revocation and introspection endpoints all read
/// their bodies through this function (and so do the fuzz targets).
///
/// # Errors
/// `invalid_request` for an unsupported content type or a body that breaks the
/// rules of [`Params`].
pub fn parse_body(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<Params, OAuthError> {
    let essence = content_type.map(|v| {
        v.to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match essence.as_deref() {
        Some("application/x-www-form-urlencoded") => Params::from_form(body),
        // PowerShell's Invoke-RestMethod sends a hashtable form-encoded even under
        // a JSON content type; a body without a type is sniffed the same way.
        Some("application/json") | None => Params::from_json_or_form(body),
        Some(t) if t.ends_with("+json") => Params::from_json_or_form(body),
        Some(_) => Err(OAuthError::InvalidRequest(
            "send the parameters as application/x-www-form-urlencoded or application/json".into(),
        )),
    }
}
