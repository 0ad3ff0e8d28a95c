//! Redirect URIs: which may be registered, which presented one matches a
//! registered one, and how an answer is added to one.
//!
//! Matching is exact string comparison (RFC 9700 §2.1, OAuth 2.1 §2.3.1) with one
//! exception: a loopback IP redirect URI (`http://127.0.0.1/…`, `http://[::1]/…`)
//! matches on any port (RFC 8252 §7.3), because a native app gets its port from
//! the operating system when it starts listening. No wildcards, no normalisation.

use url::Url;

/// The hosts of loopback IP redirect URIs, as they are written after `http://`.
const LOOPBACK_HOSTS: [&str; 2] = ["127.0.0.1", "[::1]"];

/// Schemes a redirect must never lead to: they run or read something in the
/// browser instead of reaching an application.
const FORBIDDEN_SCHEMES: [&str; 4] = ["javascript", "data", "file", "vbscript"];

/// Checks a redirect URI an operator registers.
///
/// # Errors
/// Why the URI cannot be registered: not absolute, with a fragment (RFC 6749
/// §3.1.2), with a space, `http` to a host that is not the loopback interface
/// (RFC 9700 §2.6, RFC 8252 §8.3), or a scheme that runs code in the browser.
pub fn check_registration(uri: &str) -> Result<(), String> {
    if uri.is_empty() || !uri.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "redirect URI {uri:?} must be printable ASCII without spaces"
        ));
    }
    if uri.contains('#') {
        return Err(format!(
            "redirect URI {uri:?} must not have a fragment (RFC 6749 section 3.1.2)"
        ));
    }
    let parsed =
        Url::parse(uri).map_err(|e| format!("redirect URI {uri:?} is not absolute: {e}"))?;
    let scheme = parsed.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(format!("redirect URI {uri:?} has a forbidden scheme"));
    }
    if scheme == "http" {
        let host = parsed.host_str().unwrap_or_default();
        if !(LOOPBACK_HOSTS.contains(&host) || host == "localhost") {
            return Err(format!(
                "redirect URI {uri:?} uses http to a host that is not the loopback interface; use https"
            ));
        }
    }
    if matches!(scheme, "http" | "https") && parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("redirect URI {uri:?} has no host"));
    }
    Ok(())
}

/// Whether `presented` matches the registered URI `registered`.
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let Some((host, rest)) = loopback_parts(registered) else {
        return false;
    };
    loopback_parts(presented).is_some_and(|(h, r)| h == host && r == rest)
}

/// A loopback IP redirect URI split into its host and what follows the port:
/// `http://127.0.0.1:8000/cb?x` → (`127.0.0.1`, `/cb?x`).
fn loopback_parts(uri: &str) -> Option<(&'static str, &str)> {
    let after_scheme = uri.strip_prefix("http://")?;
    let host = LOOPBACK_HOSTS
        .into_iter()
        .find(|h| after_scheme.starts_with(h))?;
    let after_host = &after_scheme[host.len()..];
    let rest = match after_host.strip_prefix(':') {
        Some(port_and_rest) => {
            let digits = port_and_rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(port_and_rest.len());
            let port = &port_and_rest[..digits];
            if port.is_empty() || port.len() > 5 || port.parse::<u16>().is_err() {
                return None;
            }
            &port_and_rest[digits..]
        }
        None => after_host,
    };
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((host, rest))
}

/// `uri` with `params` added to its query, keeping the query it has (RFC 6749
/// §3.1.2: the endpoint URI "MAY include a query component ... which MUST be
/// retained when adding additional query parameters").
pub fn with_params<'a>(uri: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        // Registered URIs parse (see `check_registration`); keep any other as it is.
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_exact_except_for_the_port_of_a_loopback_ip() {
        let app = "https://app.example.com/callback";
        assert!(matches(app, app));
        assert!(!matches(app, "https://app.example.com/callback/"));
        assert!(!matches(app, "https://APP.example.com/callback"));
        assert!(!matches(app, "https://app.example.com:443/callback"));
        assert!(!matches(app, "https://app.example.com/callback?x=1"));

        let native = "http://127.0.0.1/callback";
        assert!(matches(native, "http://127.0.0.1:51234/callback"));
        assert!(matches(native, "http://127.0.0.1/callback"));
        assert!(!matches(native, "http://127.0.0.1:51234/callback/x"));
        assert!(!matches(native, "http://127.0.0.1:99999/callback"));
        assert!(!matches(native, "http://127.0.0.1:/callback"));
        assert!(!matches(native, "http://127.0.0.10/callback"));
        assert!(!matches(native, "http://127.0.0.1.evil.example/callback"));
        assert!(!matches(native, "http://127.0.0.1@evil.example/callback"));
        assert!(matches("http://[::1]/cb", "http://[::1]:8080/cb"));
        assert!(!matches("http://[::1]/cb", "http://127.0.0.1:8080/cb"));
        // localhost is a name, not the loopback IP: exact match only.
        assert!(!matches("http://localhost/cb", "http://localhost:8080/cb"));
    }

    #[test]
    fn registration_refuses_fragments_plain_http_and_script_schemes() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1/callback",
            "http://[::1]/callback",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            check_registration(ok).unwrap();
        }
        for bad in [
            "https://app.example.com/cb#x",
            "http://app.example.com/cb",
            "/relative",
            "javascript:alert(1)",
            "https://app.example.com/a b",
            "",
        ] {
            assert!(check_registration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parameters_join_the_query_the_uri_has() {
        assert_eq!(
            with_params(
                "https://a.example/cb?x=1",
                [("code", "c"), ("state", "s t")]
            ),
            "https://a.example/cb?x=1&code=c&state=s+t"
        );
    }
}
