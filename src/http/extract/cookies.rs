//! The cookies of a request (RFC 6265 §5.4), and the two rotor sets: the browser
//! session, and the pre-login key of the login page's form token.

use std::collections::BTreeMap;

use axum::{extract::FromRequestParts, http::request::Parts};

/// Cookies beyond this many are ignored: rotor reads two.
const MAX_COOKIES: usize = 64;

/// The cookies a request sent, by name (the first of a repeated name wins).
#[derive(Default)]
pub struct Cookies(BTreeMap<String, String>);

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are session secrets: names only.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Cookies {
    /// Parses every `Cookie` header.
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Cookies {
        let mut cookies = BTreeMap::new();
        let pairs = headers
            .into_iter()
            .flat_map(|h| h.split(';'))
            .take(MAX_COOKIES);
        for pair in pairs {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies
                    .entry(name.trim().to_owned())
                    .or_insert_with(|| value.trim().trim_matches('"').to_owned());
            }
        }
        Cookies(cookies)
    }

    /// The value of `name`, when it holds only base64url characters (every value
    /// rotor sets does): anything else was not set by rotor.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }
}

impl Cookies {
    /// The value of `name` when it looks like a token rotor set: base64url and
    /// dots (a JWT), up to 4096 bytes.
    pub fn get_token(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 4096)
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Cookies {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Cookies::parse(
            parts
                .headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ))
    }
}

/// Which cookie holds what, and how it is set: over https `Secure` with the
/// `__Host-` prefix (RFC 6265bis §4.1.3.2: host-only, path `/`, secure), over http
/// plain names (a test or a loopback setup).
#[derive(Debug, Clone, Copy)]
pub struct CookieJar {
    secure: bool,
}

impl CookieJar {
    /// Cookies for a server whose public URL is `issuer`.
    pub fn for_issuer(issuer: &str) -> CookieJar {
        CookieJar {
            secure: issuer.starts_with("https://"),
        }
    }

    /// The browser session's cookie name.
    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-rotor_session"
        } else {
            "rotor_session"
        }
    }

    /// The login page form key's cookie name.
    pub fn form_key_name(self) -> &'static str {
        if self.secure {
            "__Host-rotor_form"
        } else {
            "rotor_form"
        }
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax` (the redirect back from the
    /// client's site is a top-level navigation, which Lax lets through for single
    /// sign-on; a cross-site POST does not carry it), path `/`, and `Secure` over
    /// https. `max_age` `None` is a cookie for the browser's session.
    pub fn set(self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        cookie
    }

    /// The console session's cookie name. Its path is `/admin`, which the
    /// `__Host-` prefix forbids; over https it takes `__Secure-` instead.
    pub fn console_session_name(self) -> &'static str {
        if self.secure {
            "__Secure-rotor_console"
        } else {
            "rotor_console"
        }
    }

    /// The cookie holding the console's pending login (state and PKCE verifier).
    pub fn console_login_name(self) -> &'static str {
        if self.secure {
            "__Secure-rotor_console_login"
        } else {
            "rotor_console_login"
        }
    }

    /// A console `Set-Cookie` value: `HttpOnly`, path `/admin`, `SameSite`
    /// `same_site`, and `Secure` over https.
    pub fn set_console(
        self,
        name: &str,
        value: &str,
        same_site: &str,
        max_age: Option<u64>,
    ) -> String {
        let mut cookie = format!("{name}={value}; Path=/admin; HttpOnly; SameSite={same_site}");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        cookie
    }

    /// A `Set-Cookie` value that removes `name`.
    pub fn clear(self, name: &str) -> String {
        self.set(name, "", Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_and_foreign_values_ignored() {
        let c = Cookies::parse([
            "a=1; rotor_session=abc-_9",
            "b=\"x y\"; rotor_session=second",
        ]);
        assert_eq!(c.get("rotor_session"), Some("abc-_9"));
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("missing"), None);
    }

    #[test]
    fn https_cookies_are_secure_host_cookies() {
        let jar = CookieJar::for_issuer("https://auth.example.com");
        assert_eq!(jar.session_name(), "__Host-rotor_session");
        let set = jar.set(jar.session_name(), "v", Some(60));
        assert_eq!(
            set,
            "__Host-rotor_session=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
        let plain = CookieJar::for_issuer("http://127.0.0.1:8080");
        assert!(!plain.set("rotor_session", "v", None).contains("Secure"));
    }
}
