//! What the fuzz targets run on each input. Shared with `tests/api/fuzz_regressions.rs`,
//! which replays `fuzz/regressions/` through the same code in a normal `cargo test`.
//!
//! The properties: parsing never panics, every refusal is an RFC 6749 §5.2 error
//! answered with a 4xx (never 500), accepted parameters obey the length limit, and
//! no `Debug` output shows a password or client secret.

use axum::http::HeaderValue;
use base64::{Engine, engine::general_purpose::STANDARD};
use rotor::{
    http::{
        error::status_of,
        extract::{BasicAuth, parse_body},
    },
    oauth::{
        GrantRequest, OAuthError, PresentedClient,
        request::{MAX_PARAM_LEN, syntax},
        revoke,
    },
};

/// The content types a request may carry; the first input byte picks one.
const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/x-www-form-urlencoded"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/vnd.rotor+json"),
    None,
    Some("text/plain"),
];

/// Splits a request input: `[content type selector] [header length n] [n header
/// bytes] [body]` into the content type, the Authorization header bytes and the
/// body. `tests/api/fuzz_regressions.rs` sends the same parts to a real server.
pub fn split_request(data: &[u8]) -> Option<(Option<&'static str>, &[u8], &[u8])> {
    let (&selector, rest) = data.split_first()?;
    let (&header_len, rest) = rest.split_first()?;
    let (header, body) = rest.split_at(usize::from(header_len).min(rest.len()));
    Some((
        CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()],
        header,
        body,
    ))
}

/// Input layout: see [`split_request`].
pub fn request(data: &[u8]) {
    let Some((content_type, header, body)) = split_request(data) else {
        return;
    };
    let content_type = content_type.map(HeaderValue::from_static);
    let basic = match HeaderValue::from_bytes(header).map(|v| BasicAuth::from_header(&v)) {
        Ok(Ok(basic)) => basic,
        // A refused header: the body is still checked, as if no header were sent.
        Ok(Err(e)) => {
            assert_refusal(&e);
            BasicAuth::default()
        }
        Err(_) => BasicAuth::default(),
    };

    // The token endpoint.
    let mut params = match parse_body(content_type.as_ref(), body) {
        Ok(params) => params,
        Err(e) => return assert_refusal(&e),
    };
    for name in [
        "grant_type",
        "username",
        "password",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "token",
        "token_type_hint",
    ] {
        assert!(
            params
                .get(name)
                .is_none_or(|v| !v.is_empty() && v.len() <= MAX_PARAM_LEN)
        );
        // Nothing that reaches a store holds a control character (PostgreSQL
        // refuses U+0000); only username and password may hold a tab.
        let tab_allowed = matches!(name, "username" | "password");
        assert!(params.get(name).is_none_or(|v| {
            v.chars()
                .all(|c| !syntax::is_control(c) || (tab_allowed && c == '\t'))
        }));
    }
    let password = params.get("password").map(str::to_owned);
    let username = params.get("username").map(str::to_owned);
    let presented = PresentedClient::new(basic.credentials.clone(), basic.malformed, &mut params);
    if let Some(secret) = &presented.body_secret {
        assert_hidden(
            &format!("{presented:?}"),
            secret,
            presented.body_id.as_deref(),
        );
    }
    match GrantRequest::try_from(params) {
        Ok(grant) => {
            if let Some(password) = &password {
                assert_hidden(&format!("{grant:?}"), password, username.as_deref());
            }
        }
        Err(e) => assert_refusal(&e),
    }

    // The revocation endpoint, on the same body.
    let Ok(mut params) = parse_body(content_type.as_ref(), body) else {
        unreachable!("parsing is deterministic");
    };
    let _ = PresentedClient::new(basic.credentials, basic.malformed, &mut params);
    if let Err(e) = revoke::token_and_hint(&mut params) {
        assert_refusal(&e);
    }
}

/// Input: the raw bytes of an `Authorization` header value.
pub fn basic_header(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let auth = match BasicAuth::from_header(&value) {
        Ok(auth) => auth,
        Err(e) => return assert_refusal(&e),
    };
    let Some(credentials) = auth.credentials else {
        return;
    };
    assert!(!auth.malformed);
    assert!(!credentials.client_id.is_empty());
    // RFC 6749 Appendix A.1, A.2: what is accepted is VSCHAR.
    assert!(credentials.client_id.chars().all(syntax::is_vschar));
    assert!(credentials.client_secret.chars().all(syntax::is_vschar));
    assert_hidden(
        &format!("{credentials:?}"),
        &credentials.client_secret,
        Some(&credentials.client_id),
    );
    // RFC 6749 §2.3.1 encoding of what was decoded decodes to the same credentials.
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let again = HeaderValue::from_str(&format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            encode(&credentials.client_id),
            encode(&credentials.client_secret)
        ))
    ))
    .map(|v| BasicAuth::from_header(&v));
    let again = again.ok().and_then(Result::ok).and_then(|a| a.credentials);
    let again = again
        .as_ref()
        .map(|c| (c.client_id.as_str(), c.client_secret.as_str()));
    assert_eq!(
        again,
        Some((
            credentials.client_id.as_str(),
            credentials.client_secret.as_str()
        ))
    );
}

/// A refused request is answered with a 4xx and an RFC 6749 §5.2 code.
fn assert_refusal(e: &OAuthError) {
    let status = status_of(e);
    assert!(status.is_client_error(), "{e:?} would answer {status}");
    assert_ne!(e.code(), "server_error");
}

/// A secret of some length does not show in `debug`, unless a value that may be
/// shown contains it anyway, as it is or as `Debug` escapes it (a NUL byte before
/// `1t_secret…` in a client id reads `\01t_secret…`).
fn assert_hidden(debug: &str, secret: &str, shown: Option<&str>) {
    let long_enough = secret.chars().count() >= 12;
    let shown_anyway = shown
        .is_some_and(|s| s.contains(secret) || format!("{s:?}").contains(secret))
        || secret.contains('"');
    if long_enough && !shown_anyway {
        assert!(!debug.contains(secret), "secret in Debug output: {debug}");
    }
}
