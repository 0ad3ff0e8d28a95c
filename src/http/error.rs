//! The only place that turns errors into HTTP: RFC 6749 §5.2 JSON bodies, status
//! codes and the headers that go with them.

use axum::{
    Json,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::oauth::{OAuthError, bearer::BearerError, request::syntax};

/// The RFC 6749 §5.2 error body.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: String,
}

/// RFC 9449 §8: the `DPoP-Nonce` response header.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Sets the one `DPoP-Nonce` header of an answer, and lets scripts of other
/// origins read it (a single-page app's DPoP library must see it to retry).
pub fn insert_nonce(headers: &mut HeaderMap, nonce: &str) {
    if let Ok(value) = HeaderValue::from_str(nonce) {
        headers.insert(DPOP_NONCE, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce"),
        );
    }
}

/// The status code of each error.
pub fn status_of(error: &OAuthError) -> StatusCode {
    match error {
        OAuthError::InvalidRequest(_)
        | OAuthError::InvalidGrant(_)
        | OAuthError::UnauthorizedClient(_)
        | OAuthError::UnsupportedGrantType(_)
        | OAuthError::InvalidScope(_)
        | OAuthError::UnsupportedTokenType(_)
        | OAuthError::UnsupportedResponseType(_)
        | OAuthError::AccessDenied(_)
        | OAuthError::LoginRequired(_)
        | OAuthError::ConsentRequired(_)
        | OAuthError::InvalidDpopProof(_)
        | OAuthError::UseDpopNonce { .. } => StatusCode::BAD_REQUEST,
        OAuthError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        OAuthError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        OAuthError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        OAuthError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        OAuthError::NotFound => StatusCode::NOT_FOUND,
        // RFC 6749 §5.2: "If the client attempted to authenticate via the
        // "Authorization" request header field, the authorization server MUST
        // respond with an HTTP 401 (Unauthorized) status code and include the
        // "WWW-Authenticate" response header field". Otherwise 400: RFC 9110
        // §15.5.2 allows no 401 without that header, and a Basic challenge sent to a
        // browser that did not use Basic would open its credential dialog.
        OAuthError::InvalidClient {
            basic_attempted: true,
            ..
        } => StatusCode::UNAUTHORIZED,
        OAuthError::InvalidClient {
            basic_attempted: false,
            ..
        } => StatusCode::BAD_REQUEST,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        match &self {
            OAuthError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed")
            }
            OAuthError::InvalidClient {
                basic_attempted, ..
            } => {
                tracing::info!(basic_attempted, "client authentication failed");
            }
            other => tracing::debug!(error = other.code(), "request refused"),
        }
        let body = ErrorBody {
            error: self.code(),
            error_description: self.description(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            // RFC 6749 §5.2 and RFC 9110 §15.5.2: a 401 names the scheme to use.
            OAuthError::InvalidClient {
                basic_attempted: true,
                ..
            } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="rotor", charset="UTF-8""#),
                );
            }
            OAuthError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            OAuthError::TemporarilyUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // RFC 9449 §8: exactly one nonce, for the client to retry with.
            OAuthError::UseDpopNonce { nonce } => insert_nonce(headers, nonce),
            // RFC 9110 §15.5.9: the server closes a connection it timed out.
            OAuthError::RequestTimeout => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        // RFC 6750 §3: the challenge carries the error; 503/500 go through the OAuth
        // mapping. Its error_description and scope values "MUST NOT include
        // characters outside the set %x20-21 / %x23-5B / %x5D-7E" (scope: %x21 /
        // %x23-5B / %x5D-7E and spaces), the set of RFC 6749 §5.2 as well.
        let error = match self {
            BearerError::Server(inner) => return inner.into_response(),
            other => other,
        };
        let (status, challenge) = match &error {
            BearerError::Server(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
            BearerError::Missing => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="rotor""#.to_owned(),
            ),
            BearerError::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                format!(
                    r#"Bearer realm="rotor", error="invalid_request", error_description="{}""#,
                    syntax::error_text(d)
                ),
            ),
            BearerError::InvalidToken(d) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    r#"Bearer realm="rotor", error="invalid_token", error_description="{}""#,
                    syntax::error_text(d)
                ),
            ),
            BearerError::InsufficientScope { required } => (
                StatusCode::FORBIDDEN,
                format!(
                    r#"Bearer realm="rotor", error="insufficient_scope", scope="{}""#,
                    syntax::error_text(required)
                ),
            ),
            // RFC 9449 §7.1: the DPoP scheme's challenge names the algorithms.
            BearerError::Dpop {
                code,
                description,
                algs,
                ..
            } => (
                StatusCode::UNAUTHORIZED,
                format!(
                    r#"DPoP error="{code}", error_description="{}", algs="{}""#,
                    syntax::error_text(description),
                    syntax::error_text(algs)
                ),
            ),
        };
        let body = match &error {
            BearerError::Missing => serde_json::json!({
                "error": "invalid_token", "error_description": "send an access token as Authorization: Bearer"
            }),
            other => serde_json::json!({
                "error": other.code().unwrap_or("invalid_request"),
                "error_description": syntax::error_text(&other.to_string()),
            }),
        };
        let mut response = (status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let BearerError::Dpop {
            nonce: Some(nonce), ..
        } = &error
        {
            insert_nonce(response.headers_mut(), nonce);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(e: OAuthError) -> (u16, &'static str) {
        (status_of(&e).as_u16(), e.code())
    }

    #[test]
    fn every_error_maps_to_its_rfc_status() {
        let s = || String::from("x");
        assert_eq!(
            status_and_code(OAuthError::InvalidRequest(s())),
            (400, "invalid_request")
        );
        assert_eq!(
            status_and_code(OAuthError::PayloadTooLarge),
            (413, "invalid_request")
        );
        assert_eq!(
            status_and_code(OAuthError::HeadersTooLarge),
            (431, "invalid_request")
        );
        assert_eq!(
            status_and_code(OAuthError::RequestTimeout),
            (408, "invalid_request")
        );
        assert_eq!(
            status_and_code(OAuthError::MethodNotAllowed { allow: "POST" }),
            (405, "invalid_request")
        );
        assert_eq!(
            status_and_code(OAuthError::NotFound),
            (404, "invalid_request")
        );
        assert_eq!(
            status_and_code(OAuthError::invalid_client("x", true)),
            (401, "invalid_client")
        );
        assert_eq!(
            status_and_code(OAuthError::invalid_client("x", false)),
            (400, "invalid_client")
        );
        assert_eq!(
            status_and_code(OAuthError::InvalidGrant(s())),
            (400, "invalid_grant")
        );
        assert_eq!(
            status_and_code(OAuthError::UnauthorizedClient(s())),
            (400, "unauthorized_client")
        );
        assert_eq!(
            status_and_code(OAuthError::UnsupportedGrantType(s())),
            (400, "unsupported_grant_type")
        );
        assert_eq!(
            status_and_code(OAuthError::InvalidScope(s())),
            (400, "invalid_scope")
        );
        assert_eq!(
            status_and_code(OAuthError::UnsupportedTokenType(s())),
            (400, "unsupported_token_type")
        );
        assert_eq!(
            status_and_code(OAuthError::TemporarilyUnavailable(s())),
            (503, "temporarily_unavailable")
        );
        assert_eq!(
            status_and_code(OAuthError::InvalidDpopProof(s())),
            (400, "invalid_dpop_proof")
        );
        assert_eq!(
            status_and_code(OAuthError::UseDpopNonce { nonce: s() }),
            (400, "use_dpop_nonce")
        );
        assert_eq!(
            status_and_code(OAuthError::Internal(anyhow::anyhow!("boom"))),
            (500, "server_error")
        );
    }

    #[test]
    fn invalid_client_after_basic_answers_401_with_www_authenticate_basic() {
        let response = OAuthError::invalid_client("x", true).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let value = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(value.starts_with("Basic "));
    }

    #[test]
    fn use_dpop_nonce_answers_with_exactly_one_nonce_that_scripts_may_read() {
        let response = OAuthError::UseDpopNonce {
            nonce: "n0nce".into(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let nonces: Vec<_> = response.headers().get_all(DPOP_NONCE).iter().collect();
        assert_eq!(nonces, ["n0nce"]);
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "DPoP-Nonce"
        );
    }

    #[test]
    fn invalid_client_without_basic_answers_400_without_a_challenge() {
        let response = OAuthError::invalid_client("x", false).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    const HOSTILE: &str = "a \"quoted\" back\\slash \0 \u{a7} caf\u{e9}";

    #[tokio::test]
    async fn every_error_body_keeps_to_the_rfc_6749_character_set() {
        let errors = [
            OAuthError::InvalidRequest(HOSTILE.into()),
            OAuthError::invalid_client(HOSTILE, true),
            OAuthError::invalid_client(HOSTILE, false),
            OAuthError::InvalidGrant(HOSTILE.into()),
            OAuthError::TemporarilyUnavailable(HOSTILE.into()),
            OAuthError::Internal(anyhow::anyhow!("{HOSTILE}")),
        ];
        for e in errors {
            let body = body_of(e.into_response()).await;
            let description = body["error_description"].as_str().unwrap();
            assert!(
                description.chars().all(syntax::is_nqschar),
                "{description:?}"
            );
        }
    }

    #[tokio::test]
    async fn bearer_challenges_and_bodies_keep_to_the_rfc_6750_character_set() {
        let errors = [
            BearerError::Missing,
            BearerError::InvalidRequest(HOSTILE.into()),
            BearerError::InvalidToken(HOSTILE.into()),
            BearerError::InsufficientScope {
                required: HOSTILE.into(),
            },
        ];
        for e in errors {
            let response = e.into_response();
            let challenge = response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .to_owned();
            // Each quoted value, between the quotes that delimit it.
            for value in challenge.split('"').skip(1).step_by(2) {
                assert!(value.chars().all(syntax::is_nqschar), "{challenge}");
            }
            let body = body_of(response).await;
            let description = body["error_description"].as_str().unwrap();
            assert!(
                description.chars().all(syntax::is_nqschar),
                "{description:?}"
            );
        }
    }

    #[test]
    fn internal_error_body_says_nothing_of_the_cause() {
        let e = OAuthError::Internal(anyhow::anyhow!("secret detail"));
        assert_eq!(e.description(), "internal error");
    }
}
