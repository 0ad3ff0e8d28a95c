//! The one error type of the protocol layer: one variant per RFC 6749 §5.2 code.
//! Its mapping to HTTP status codes and headers lives in `http::error`, nowhere else.
//!
//! RFC 6749 §5.2 limits `error_description` to %x20-21 / %x23-5B / %x5D-7E; it
//! limits `error_uri` to %x21 / %x23-5B / %x5D-7E too, but rotor sends no
//! `error_uri`, so only the description needs guarding.

use super::request::syntax;

use crate::crypto::password::VerifyError;

/// An OAuth error answer. Every variant carries the `error_description` sent to the
/// client; it never contains a credential, nor any other request input.
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
    /// RFC 6749 §5.2: client authentication failed. `basic_attempted` says whether
    /// the client tried the `Authorization` header: then the HTTP layer answers 401
    /// with `WWW-Authenticate: Basic`, as §5.2 requires; otherwise 400 without the
    /// header, since RFC 9110 §15.5.2 allows no 401 without a challenge and a
    /// challenge would make a browser ask its user for credentials.
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
    /// RFC 6749 §4.1.2.1: the authorization server does not support this
    /// `response_type`.
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    /// RFC 6749 §4.1.2.1: the resource owner denied the request.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and nobody is signed in.
    #[error("login_required: {0}")]
    LoginRequired(String),
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the person has not
    /// consented.
    #[error("consent_required: {0}")]
    ConsentRequired(String),
    /// RFC 7009 §2.2.1: the `token_type_hint` names a type this server does not know.
    #[error("unsupported_token_type: {0}")]
    UnsupportedTokenType(String),
    /// RFC 9449 §5: the DPoP proof is malformed, wrongly signed, stale, replayed
    /// or for another request.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// RFC 9449 §8: the proof lacks a current nonce of this server; the answer
    /// carries one in `DPoP-Nonce`, and the client retries with it.
    #[error("use_dpop_nonce")]
    UseDpopNonce { nonce: String },
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
            OAuthError::UnsupportedResponseType(_) => "unsupported_response_type",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::LoginRequired(_) => "login_required",
            OAuthError::ConsentRequired(_) => "consent_required",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::UseDpopNonce { .. } => "use_dpop_nonce",
            OAuthError::Internal(_) => "server_error",
        }
    }

    /// The wire value of `error_description`, within the RFC 6749 §5.2 character
    /// set whatever the variant carries: any other character becomes `?`.
    pub fn description(&self) -> String {
        syntax::error_text(&self.raw_description())
    }

    fn raw_description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::UnsupportedTokenType(d)
            | OAuthError::UnsupportedResponseType(d)
            | OAuthError::AccessDenied(d)
            | OAuthError::LoginRequired(d)
            | OAuthError::ConsentRequired(d)
            | OAuthError::TemporarilyUnavailable(d)
            | OAuthError::InvalidDpopProof(d) => d.clone(),
            OAuthError::UseDpopNonce { .. } => {
                "send the proof again with the nonce of the DPoP-Nonce header".into()
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of every variant, each carrying text no description may hold.
    fn every_variant(hostile: &str) -> Vec<OAuthError> {
        let d = || hostile.to_owned();
        let all = vec![
            OAuthError::InvalidRequest(d()),
            OAuthError::PayloadTooLarge,
            OAuthError::HeadersTooLarge,
            OAuthError::RequestTimeout,
            OAuthError::MethodNotAllowed { allow: "POST" },
            OAuthError::NotFound,
            OAuthError::invalid_client(d(), true),
            OAuthError::invalid_client(d(), false),
            OAuthError::InvalidGrant(d()),
            OAuthError::UnauthorizedClient(d()),
            OAuthError::UnsupportedGrantType(d()),
            OAuthError::InvalidScope(d()),
            OAuthError::UnsupportedTokenType(d()),
            OAuthError::UnsupportedResponseType(d()),
            OAuthError::AccessDenied(d()),
            OAuthError::LoginRequired(d()),
            OAuthError::ConsentRequired(d()),
            OAuthError::TemporarilyUnavailable(d()),
            OAuthError::InvalidDpopProof(d()),
            OAuthError::UseDpopNonce { nonce: d() },
            OAuthError::Internal(anyhow::anyhow!("{hostile}")),
        ];
        // No wildcard: a new variant does not compile until it is listed above.
        for e in &all {
            match e {
                OAuthError::InvalidRequest(_)
                | OAuthError::PayloadTooLarge
                | OAuthError::HeadersTooLarge
                | OAuthError::RequestTimeout
                | OAuthError::MethodNotAllowed { .. }
                | OAuthError::NotFound
                | OAuthError::InvalidClient { .. }
                | OAuthError::InvalidGrant(_)
                | OAuthError::UnauthorizedClient(_)
                | OAuthError::UnsupportedGrantType(_)
                | OAuthError::InvalidScope(_)
                | OAuthError::UnsupportedTokenType(_)
                | OAuthError::UnsupportedResponseType(_)
                | OAuthError::AccessDenied(_)
                | OAuthError::LoginRequired(_)
                | OAuthError::ConsentRequired(_)
                | OAuthError::TemporarilyUnavailable(_)
                | OAuthError::InvalidDpopProof(_)
                | OAuthError::UseDpopNonce { .. }
                | OAuthError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_description_keeps_to_the_rfc_6749_character_set() {
        for e in every_variant("a \"quoted\" back\\slash, \0 nul, \n, \u{a7}3.3, caf\u{e9}") {
            let description = e.description();
            assert!(!description.is_empty(), "{e:?}");
            assert!(
                description.chars().all(syntax::is_nqschar),
                "{e:?}: {description:?}"
            );
        }
    }

    #[test]
    fn a_clean_description_is_sent_as_written() {
        let e = OAuthError::InvalidGrant("the refresh token has expired".into());
        assert_eq!(e.description(), "the refresh token has expired");
    }

    #[test]
    fn every_code_is_an_rfc_error_code() {
        for e in every_variant("x") {
            assert!(
                e.code().chars().all(|c| c == '_' || c.is_ascii_lowercase()),
                "{e:?}"
            );
        }
    }
}
