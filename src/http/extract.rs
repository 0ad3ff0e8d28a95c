//! Extractors whose rejection is an [`OAuthError`], so that even a malformed
//! request is answered with RFC 6749 JSON.

use std::net::IpAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};

use super::AppState;
use crate::oauth::{
    BasicCredentials, OAuthError, Params,
    request::syntax::{self, Fault},
};

/// The largest accepted body. Token requests are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

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
        let timeout = AppState::from_ref(state).settings.server.request_timeout;
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

/// The client's address: the TCP peer, or — only when the peer is one of
/// `server.trusted_proxies` — the nearest untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    super::AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = super::AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<crate::server::PeerAddr>>()
            .map(|ConnectInfo(p)| p.0.ip());
        Ok(ClientIp(peer.map(|peer| {
            forwarded_client(peer, &parts.headers, &state.settings.server.trusted_proxies)
        })))
    }
}

/// Walks `X-Forwarded-For` from the right while the hops are trusted proxies; the
/// first untrusted address is the client. A malformed entry ends the walk there.
fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
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
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let lb: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        // Untrusted peer: its own address, whatever the header says.
        assert_eq!(forwarded_client(lb, &headers, &[]), lb);
        // Trusted peer: the nearest untrusted hop.
        assert_eq!(
            forwarded_client(lb, &headers, &[lb]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // A spoofed left-most entry does not win over the nearest hop.
        headers.insert("x-forwarded-for", "garbage, 203.0.113.9".parse().unwrap());
        assert_eq!(
            forwarded_client(lb, &headers, &[lb]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn scheme_name_is_case_insensitive() {
        assert_eq!(strip_basic("basic abc"), Some("abc"));
        assert_eq!(strip_basic("Bearer abc"), None);
    }
}
