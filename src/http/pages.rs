//! The browser pages — login, consent, logout and their error pages — and what
//! every one of them is sent with: a strict Content-Security-Policy without any
//! script, `frame-ancestors 'none'` (no clickjacking), `nosniff` and
//! `no-referrer` (the query string of an authorization request never leaks to
//! another site). Templates are askama's, checked at compile time and compiled
//! into the binary, like the one stylesheet.
//!
//! A page answers with HTML, never JSON, and an error page never redirects: where
//! an error may go back to the client, the handler has verified the redirect URI.

use askama::Template;
use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::Routes;

/// Every page's Content-Security-Policy: nothing but the stylesheet loads, no
/// script runs, no site may frame it. `form-action` is left out on purpose: the
/// forms post to rotor, which then redirects to the client's registered URI, and
/// browsers apply `form-action` to that redirect too.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The stylesheet of every page.
const STYLESHEET: &str = include_str!("../../assets/rotor.css");

/// The stylesheet's route.
pub fn router() -> Routes {
    Routes::new().get("/oauth2/assets/rotor.css", stylesheet)
}

async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    secure(headers);
    response
}

/// When a form's page was shown (its `issued` input), if that is within
/// `authorize.page_ttl` and not in the future beyond a minute of clock skew between
/// instances: the freshness rule of every form of the login, consent, logout and
/// console pages.
pub fn fresh_issue_time(
    settings: &crate::config::Settings,
    issued: Option<&str>,
    now: time::OffsetDateTime,
) -> Option<i64> {
    let issued: i64 = issued?.parse().ok()?;
    let now = now.unix_timestamp();
    let ttl = i64::try_from(settings.authorize.page_ttl.as_secs()).unwrap_or(i64::MAX);
    (issued <= now + 60 && now - issued <= ttl).then_some(issued)
}

/// Adds the security headers of every page to `headers`.
pub fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_id: &'a str,
    pub request: &'a str,
    pub issued: i64,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    pub scopes: &'a [String],
    pub request: &'a str,
    pub issued: i64,
    pub csrf_token: &'a str,
}

/// The logout confirmation.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub username: &'a str,
    pub issued: i64,
    pub csrf_token: &'a str,
}

/// A page with a title and one message: errors and confirmations.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
}

/// A rendered page with its status and the cookies it sets.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub html: String,
    pub cookies: Vec<String>,
}

impl Page {
    /// Renders `template` with `status`.
    pub fn render(status: StatusCode, template: &impl Template) -> Page {
        match template.render() {
            Ok(html) => Page {
                status,
                html,
                cookies: Vec::new(),
            },
            Err(e) => {
                tracing::error!(error = %e, "a page failed to render");
                WebError::internal().page()
            }
        }
    }

    /// The page, setting `cookie` too.
    pub fn with_cookie(mut self, cookie: String) -> Page {
        self.cookies.push(cookie);
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure(headers);
        set_cookies(headers, self.cookies);
        response
    }
}

/// A redirect to the client (or back to rotor), with the page headers and cookies.
#[derive(Debug)]
pub struct Redirect {
    pub status: StatusCode,
    pub location: String,
    pub cookies: Vec<String>,
}

impl Redirect {
    /// `302 Found` (RFC 6749 §4.1.2's example), for an answer to a GET.
    pub fn found(location: String) -> Redirect {
        Redirect {
            status: StatusCode::FOUND,
            location,
            cookies: Vec::new(),
        }
    }

    /// `303 See Other`, for an answer to a form POST, so that the browser follows
    /// it with a GET and never re-posts the password (OAuth 2.1 §7.5.1).
    pub fn see_other(location: String) -> Redirect {
        Redirect {
            status: StatusCode::SEE_OTHER,
            location,
            cookies: Vec::new(),
        }
    }

    /// The redirect, setting `cookie` too.
    pub fn with_cookie(mut self, cookie: String) -> Redirect {
        self.cookies.push(cookie);
        self
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        let Ok(location) = HeaderValue::from_str(&self.location) else {
            tracing::error!("a redirect location is not a valid header value");
            return WebError::internal().into_response();
        };
        let mut response = self.status.into_response();
        let headers = response.headers_mut();
        headers.insert(header::LOCATION, location);
        secure(headers);
        set_cookies(headers, self.cookies);
        response
    }
}

fn set_cookies(headers: &mut HeaderMap, cookies: Vec<String>) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

/// The error type of the browser pages (beside `OAuthError` for the JSON
/// endpoints): an HTML page with a status and a message safe to show, never a
/// redirect.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    /// A request the page cannot act on.
    pub fn bad_request(message: impl Into<String>) -> WebError {
        WebError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A form whose token is missing, wrong or too old.
    pub fn stale_form() -> WebError {
        WebError::bad_request(
            "This form has expired or did not come from this site. \
             Go back to the application and start again.",
        )
    }

    /// A page for admins only.
    pub fn forbidden(message: impl Into<String>) -> WebError {
        WebError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// Nothing by that name.
    pub fn not_found(message: impl Into<String>) -> WebError {
        WebError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// Something on the server's side.
    pub fn internal() -> WebError {
        WebError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Something went wrong on the server. Try again later.".into(),
        }
    }

    /// The store or the hashing pool is saturated or unreachable.
    pub fn unavailable() -> WebError {
        WebError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The server is busy. Try again in a moment.".into(),
        }
    }

    /// The error as a page.
    pub fn page(&self) -> Page {
        let template = MessagePage {
            title: "Error",
            message: &self.message,
            is_error: true,
        };
        match template.render() {
            Ok(html) => Page {
                status: self.status,
                html,
                cookies: Vec::new(),
            },
            // The message page has no fallible part; plain text as a last resort.
            Err(_) => Page {
                status: self.status,
                html: "Error".into(),
                cookies: Vec::new(),
            },
        }
    }
}

impl From<crate::oauth::OAuthError> for WebError {
    fn from(e: crate::oauth::OAuthError) -> WebError {
        use crate::oauth::OAuthError;
        match e {
            OAuthError::TemporarilyUnavailable(_) => WebError::unavailable(),
            OAuthError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "page request failed");
                WebError::internal()
            }
            other => WebError::bad_request(other.description()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = self.page().into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_what_they_show() {
        let page = LoginPage {
            client_id: "<script>x</script>",
            request: "a=\"b\"&c=<d>",
            issued: 1,
            csrf_token: "t",
            username: "",
            error: None,
        }
        .render()
        .unwrap();
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&#60;script&#62;"));
        assert!(!page.contains("a=\"b\""));
        assert!(page.contains("<title>Sign in</title>"));
        assert_eq!(page.matches("<form method=\"post\"").count(), 1);
    }

    #[test]
    fn the_policy_allows_no_script_and_no_framing() {
        assert!(!CONTENT_SECURITY_POLICY.contains("script-src"));
        assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    }
}
