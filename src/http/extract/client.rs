//! Client authentication by `Authorization: Basic` (RFC 6749 §2.3.1).

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, header, request::Parts},
};
use base64::{Engine, engine::general_purpose::STANDARD};

use crate::oauth::{
    BasicCredentials, OAuthError,
    request::syntax::{self, Fault},
};

/// `Authorization: Basic` client credentials, if sent.
#[derive(Debug, Default)]
pub struct BasicAuth {
    pub credentials: Option<BasicCredentials>,
    /// A Basic header was sent but could not be decoded.
    pub malformed: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for BasicAuth {
    type Rejection = OAuthError;

    #[tracing::instrument(name = "basic_auth", skip_all)]
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, OAuthError> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .map_or_else(|| Ok(BasicAuth::default()), BasicAuth::from_header)
    }
}

impl BasicAuth {
    /// Reads client credentials from an `Authorization` header value. Another
    /// scheme (e.g. Bearer) is not client authentication here and counts as none; a
    /// Basic value that does not decode is `malformed`.
    ///
    /// # Errors
    /// `invalid_request` when the decoded id or secret holds a character outside
    /// VSCHAR (RFC 6749 Appendix A.1, A.2), as the same value in the body would be:
    /// the request is malformed, whoever the client is.
    pub fn from_header(value: &HeaderValue) -> Result<BasicAuth, OAuthError> {
        let Some(encoded) = value.to_str().ok().and_then(strip_basic) else {
            return Ok(BasicAuth::default());
        };
        let Some(credentials) = decode_basic(encoded) else {
            return Ok(BasicAuth {
                credentials: None,
                malformed: true,
            });
        };
        for (what, value) in [
            ("client id", &credentials.client_id),
            ("client secret", &credentials.client_secret),
        ] {
            let fault = match syntax::Charset::Visible.check(value) {
                Ok(()) => continue,
                Err(Fault::Control) => "a control character",
                Err(Fault::Outside) => "a character RFC 6749 Appendix A does not allow in it",
            };
            return Err(OAuthError::InvalidRequest(format!(
                "the {what} in the Basic authorization header contains {fault}"
            )));
        }
        Ok(BasicAuth {
            credentials: Some(credentials),
            malformed: false,
        })
    }
}

fn strip_basic(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
}

/// RFC 6749 §2.3.1: the client id and secret are form-url-encoded, then joined with
/// a colon and base64-encoded (RFC 7617).
fn decode_basic(encoded: &str) -> Option<BasicCredentials> {
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let client_id = form_decode(id)?;
    if client_id.is_empty() {
        return None;
    }
    Some(BasicCredentials {
        client_id,
        client_secret: form_decode(secret)?,
    })
}

fn form_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_url_decoded() {
        let encoded = STANDARD.encode("my%20client:p%40ss+word");
        let c = decode_basic(&encoded).unwrap();
        assert_eq!(c.client_id, "my client");
        assert_eq!(c.client_secret, "p@ss word");
    }

    #[test]
    fn basic_credentials_may_hold_any_vschar_form_url_encoded() {
        let id = "my client:1 100% a+b/c";
        let secret = "s:e c%r+e/t \"quoted\" \\ ~ and more than 32 chars";
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let header = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        );
        let auth = BasicAuth::from_header(&HeaderValue::from_str(&header).unwrap()).unwrap();
        let c = auth.credentials.unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.client_secret.as_str()),
            (id, secret)
        );
    }

    #[test]
    fn basic_credentials_with_a_control_character_are_invalid_request() {
        for decoded in [
            "app%00:secret",
            "app:sec%00ret",
            "app%0A:secret",
            "app:secret%7F",
        ] {
            let header = format!("Basic {}", STANDARD.encode(decoded));
            let err = BasicAuth::from_header(&HeaderValue::from_str(&header).unwrap()).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{decoded}");
        }
        // Raw, not percent-encoded, a NUL inside the base64 text is refused alike.
        let header = format!("Basic {}", STANDARD.encode("app\0:secret"));
        let err = BasicAuth::from_header(&HeaderValue::from_str(&header).unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn basic_credentials_outside_vschar_are_invalid_request() {
        let header = format!("Basic {}", STANDARD.encode("caf%C3%A9:secret"));
        let err = BasicAuth::from_header(&HeaderValue::from_str(&header).unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn basic_without_colon_or_base64_is_malformed() {
        assert!(decode_basic(&STANDARD.encode("nocolon")).is_none());
        assert!(decode_basic("%%%").is_none());
    }

    #[test]
    fn scheme_name_is_case_insensitive() {
        assert_eq!(strip_basic("basic abc"), Some("abc"));
        assert_eq!(strip_basic("Bearer abc"), None);
    }
}
