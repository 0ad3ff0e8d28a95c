//! Form tokens of the browser pages (CSRF protection, OWASP's "signed double-submit
//! cookie"): an HMAC-SHA256 of what the form is for, keyed with a secret the
//! browser holds only in an `HttpOnly` cookie — the pre-login cookie on the login
//! page, the session cookie on the consent and logout pages. Another site can make
//! the browser send the cookie, but can neither read it nor compute a token for
//! it; and since the token covers the pending request and the time the page was
//! shown, a token cannot be moved to another request or kept for later.
//!
//! No server secret is involved, so that every instance accepts the forms of every
//! other one without sharing a key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The token for a form: `purpose` (which page), when it was shown, and the
/// pending request it carries, under `key`.
pub fn token(key: &str, purpose: &str, issued: i64, request: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, purpose, issued, request).finalize().into_bytes())
}

/// Whether `presented` is the token of this form, compared in constant time.
pub fn verify(key: &str, purpose: &str, issued: i64, request: &str, presented: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else {
        return false;
    };
    mac(key, purpose, issued, request)
        .verify_slice(&tag)
        .is_ok()
}

fn mac(key: &str, purpose: &str, issued: i64, request: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts every key length");
    // Lengths first, so that no two inputs share an encoding.
    for part in [
        purpose.as_bytes(),
        &issued.to_be_bytes(),
        request.as_bytes(),
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_key_purpose_time_and_request() {
        let t = token("cookie", "login", 100, "client_id=a");
        assert!(verify("cookie", "login", 100, "client_id=a", &t));
        assert!(!verify("other", "login", 100, "client_id=a", &t));
        assert!(!verify("cookie", "consent", 100, "client_id=a", &t));
        assert!(!verify("cookie", "login", 101, "client_id=a", &t));
        assert!(!verify("cookie", "login", 100, "client_id=b", &t));
        assert!(!verify(
            "cookie",
            "login",
            100,
            "client_id=a",
            "not base64!"
        ));
        assert!(!verify("cookie", "login", 100, "client_id=a", ""));
    }
}
