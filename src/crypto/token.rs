//! Random secrets (refresh tokens, client secrets) and the SHA-256 hashes that are
//! all the store ever sees of them.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of every refresh token, so that secret scanners can spot a leaked one.
pub const REFRESH_TOKEN_PREFIX: &str = "rotor_rt_";

/// 32 random bytes (256 bits) as unpadded base64url: URL-safe characters only, so the
/// value can be pasted into `curl -d` or a PowerShell string unescaped.
fn random_urlsafe() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random bearer secret in clear, with its prefix: it exists only in a request,
/// a response or a cookie, the store knows it by its [`TokenHash`], and `Debug`
/// never prints it.
macro_rules! bearer_secret {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// A fresh value with 256 bits of randomness.
            pub fn generate() -> Self {
                $name(format!("{}{}", $prefix, random_urlsafe()))
            }

            /// Accepts any presented value: an unknown one is looked up and not
            /// found, so that every wrong value answers the same way.
            pub fn parse(value: String) -> Self {
                $name(value)
            }

            /// The clear value, for the response only.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The hash under which the store keeps it.
            pub fn hash(&self) -> TokenHash {
                TokenHash::of(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

bearer_secret!(
    /// A refresh token in clear.
    RefreshToken,
    REFRESH_TOKEN_PREFIX
);

bearer_secret!(
    /// An authorization code in clear (RFC 6749 §4.1.2): 256 bits of randomness
    /// (RFC 9700 §4.8 asks for at least 128).
    AuthorizationCode,
    AUTHORIZATION_CODE_PREFIX
);

bearer_secret!(
    /// A browser session's cookie value in clear.
    SessionToken,
    ""
);

/// A fresh key for the login page's form token (see `crypto::csrf`): 256 bits.
pub fn generate_form_key() -> String {
    random_urlsafe()
}

/// The prefix of every authorization code.
pub const AUTHORIZATION_CODE_PREFIX: &str = "rotor_ac_";

/// SHA-256 of a secret. A refresh token or client secret has 256 bits of
/// randomness, so a fast hash is as safe as a slow one and costs microseconds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a secret.
    pub fn of(secret: &str) -> Self {
        TokenHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Rebuilds a hash read from the store.
    ///
    /// # Errors
    /// The stored value is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, std::array::TryFromSliceError> {
        Ok(TokenHash(bytes.try_into()?))
    }

    /// The 32 bytes, for binding into SQL.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality, for comparing a presented secret with a stored hash.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits identify a row in logs without helping anyone.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A client secret in clear: generated once and printed, or read from stdin.
#[derive(Clone)]
pub struct ClientSecret(String);

/// Shortest client secret accepted from an operator. Together with the
/// generated ones' 256 bits, this is what makes SHA-256 storage safe.
pub const MIN_CLIENT_SECRET_LEN: usize = 32;

impl ClientSecret {
    /// A fresh secret with 256 bits of randomness.
    pub fn generate() -> Self {
        ClientSecret(random_urlsafe())
    }

    /// An operator-chosen secret.
    ///
    /// # Errors
    /// Shorter than [`MIN_CLIENT_SECRET_LEN`] characters.
    pub fn parse(value: String) -> Result<Self, String> {
        if value.chars().count() < MIN_CLIENT_SECRET_LEN {
            return Err(format!(
                "a client secret must be at least {MIN_CLIENT_SECRET_LEN} characters long"
            ));
        }
        Ok(ClientSecret(value))
    }

    /// The clear value, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// A random password for the demo user and `rotor user add` without `--password-stdin`.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_prefixed_urlsafe_and_unique() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(REFRESH_TOKEN_PREFIX));
        assert_eq!(a.expose().len(), REFRESH_TOKEN_PREFIX.len() + 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let t = RefreshToken::generate();
        assert!(!format!("{t:?}").contains(t.expose()));
        let s = ClientSecret::generate();
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn hashes_compare_by_value() {
        assert!(TokenHash::of("x").ct_eq(&TokenHash::of("x")));
        assert!(!TokenHash::of("x").ct_eq(&TokenHash::of("y")));
    }

    #[test]
    fn short_client_secrets_are_refused() {
        assert!(ClientSecret::parse("short".into()).is_err());
        assert!(ClientSecret::parse("x".repeat(32)).is_ok());
    }
}
