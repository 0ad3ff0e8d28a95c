//! The one error type of the protocol layer: one variant per RFC 6749 §5.2 code.
//! Its mapping to HTTP status codes and headers lives in `http::error`, nowhere else.

use crate::crypto::password::VerifyError;

/// An OAuth error answer. Every variant carries the `error_description` sent to the
/// client; it never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2: malformed, missing or repeated parameter, or two client
    /// authentication methods.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// The body exceeds the size limit: `invalid_request`, answered with 413.
    #[error("invalid_request: request body too large")]
    PayloadTooLarge,
    /// The request headers exceed the size limit: `invalid_request`, answered with 431.
    #[error("invalid_request: request headers too large")]
    HeadersTooLarge,
    /// The body did not arrive in time: `invalid_request`, answered with 408.
    #[error("invalid_request: request timeout")]
    RequestTimeout,
    /// The request uses a method the endpoint does not serve: `invalid_request`,
    /// answered with 405.
    #[error("invalid_request: method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// No endpoint at this path: `invalid_request`, answered with 404.
    #[error("invalid_request: no such endpoint")]
    NotFound,
    /// RFC 6749 §5.2: client authentication failed. `basic_attempted` makes the HTTP
    /// layer add `WWW-Authenticate: Basic`.
    #[error("invalid_client: {description}")]
    InvalidClient {
        description: String,
        basic_attempted: bool,
    },
    /// RFC 6749 §5.2: the grant (credentials, refresh token) is invalid, expired,
    /// revoked or was issued to another client.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// RFC 6749 §5.2: this client may not use this grant type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// RFC 6749 §5.2: the server does not support this grant type.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// RFC 6749 §5.2: the requested scope is invalid, unknown or exceeds what was granted.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// RFC 7009 §2.2.1: the `token_type_hint` names a type this server does not know.
    #[error("unsupported_token_type: {0}")]
    UnsupportedTokenType(String),
    /// RFC 6749 §4.1.2.1: the store cannot be reached; the client may retry.
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// Anything the client did not cause. The source is logged, never sent.
    #[error("server_error")]
    Internal(#[from] anyhow::Error),
}

impl OAuthError {
    /// The wire value of `error`.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_)
            | OAuthError::PayloadTooLarge
            | OAuthError::HeadersTooLarge
            | OAuthError::RequestTimeout
            | OAuthError::MethodNotAllowed { .. }
            | OAuthError::NotFound => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnsupportedTokenType(_) => "unsupported_token_type",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::Internal(_) => "server_error",
        }
    }

    /// The wire value of `error_description`.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::UnsupportedTokenType(d)
            | OAuthError::TemporarilyUnavailable(d) => d.clone(),
            OAuthError::InvalidClient { description, .. } => description.clone(),
            OAuthError::PayloadTooLarge => "request body too large".into(),
            OAuthError::HeadersTooLarge => "request headers too large".into(),
            OAuthError::RequestTimeout => "the request body did not arrive in time".into(),
            OAuthError::MethodNotAllowed { allow } => format!("this endpoint accepts only {allow}"),
            OAuthError::NotFound => "no such endpoint".into(),
            OAuthError::Internal(_) => "internal error".into(),
        }
    }

    /// Shorthand for a failed client authentication.
    pub fn invalid_client(description: impl Into<String>, basic_attempted: bool) -> Self {
        OAuthError::InvalidClient {
            description: description.into(),
            basic_attempted,
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "store unavailable");
                OAuthError::TemporarilyUnavailable(
                    "the token store is unavailable, retry shortly".into(),
                )
            }
            other => OAuthError::Internal(anyhow::Error::new(other).context("store operation")),
        }
    }
}

impl From<VerifyError> for OAuthError {
    fn from(e: VerifyError) -> Self {
        match e {
            // RFC 6749 §4.1.2.1 temporarily_unavailable: "The authorization server is
            // currently unable to handle the request due to a temporary overloading".
            VerifyError::QueueFull => {
                OAuthError::TemporarilyUnavailable("too many logins at once, retry shortly".into())
            }
            VerifyError::Stopped => OAuthError::Internal(anyhow::Error::new(e)),
        }
    }
}

#[cfg(test)]
mod verify_error_tests {
    use super::*;

    #[test]
    fn a_full_queue_is_temporarily_unavailable_and_stopped_threads_a_server_error() {
        assert_eq!(
            OAuthError::from(VerifyError::QueueFull).code(),
            "temporarily_unavailable"
        );
        assert_eq!(
            OAuthError::from(VerifyError::Stopped).code(),
            "server_error"
        );
    }
}
