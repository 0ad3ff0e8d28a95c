//! DPoP nonces (RFC 9449 §8): an HMAC-SHA256 of the current time step under a key
//! every instance reads from the store, so that a nonce made by one instance is
//! recognised by all of them and nothing is written per request. No store, no I/O
//! here.

use std::{fmt, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// How long one nonce is handed out. A nonce is accepted in its own step and the
/// next, so it lives between one and two steps.
pub const NONCE_STEP: Duration = Duration::from_secs(60);

/// Bytes of the MAC a nonce carries: 192 bits, 32 base64url characters (§8 asks
/// for an unpredictable value; rotor promises at least 128 bits).
const NONCE_BYTES: usize = 24;

/// The key nonces are made under.
#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey([redacted])")
    }
}

impl NonceKey {
    /// A fresh random key, offered to the store at first start.
    pub fn generate() -> NonceKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        NonceKey(key)
    }

    /// The key as kept in the store (sealed by the caller).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key read back from the store.
    ///
    /// # Errors
    /// The stored value is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> anyhow::Result<NonceKey> {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored DPoP nonce key is damaged"))?;
        Ok(NonceKey(key))
    }

    /// The nonce of the step `now` falls in.
    pub fn issue(&self, now: OffsetDateTime) -> String {
        self.for_step(step(now))
    }

    /// Whether `nonce` is the nonce of the current step or of the previous one,
    /// compared in constant time.
    pub fn accepts(&self, nonce: &str, now: OffsetDateTime) -> bool {
        let current = step(now);
        [current, current - 1].into_iter().any(|s| {
            let expected = self.for_step(s);
            bool::from(expected.as_bytes().ct_eq(nonce.as_bytes()))
        })
    }

    fn for_step(&self, step: i64) -> String {
        // HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts every key length");
        mac.update(b"rotor dpop nonce v1");
        mac.update(&step.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..NONCE_BYTES])
    }
}

fn step(now: OffsetDateTime) -> i64 {
    let secs = i64::try_from(NONCE_STEP.as_secs()).unwrap_or(60);
    now.unix_timestamp().div_euclid(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_nonce_is_accepted_in_its_step_and_the_next_only() {
        let key = NonceKey::generate();
        // 1_800_000_000 is a multiple of 60: at(0) starts a step.
        let nonce = key.issue(at(0));
        assert!(nonce.len() >= 22);
        assert!(key.accepts(&nonce, at(0)));
        assert!(key.accepts(&nonce, at(59)));
        assert!(key.accepts(&nonce, at(119)));
        assert!(!key.accepts(&nonce, at(120)));
        assert!(!key.accepts(&nonce, at(-1)));
        assert_eq!(key.issue(at(30)), nonce);
        assert_ne!(key.issue(at(60)), nonce);
    }

    #[test]
    fn a_nonce_of_another_key_or_a_guess_is_refused() {
        let key = NonceKey::generate();
        let other = NonceKey::generate();
        assert!(!key.accepts(&other.issue(at(0)), at(0)));
        assert!(!key.accepts("", at(0)));
        assert!(!key.accepts("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", at(0)));
        let stored = NonceKey::from_slice(key.as_bytes()).unwrap();
        assert!(stored.accepts(&key.issue(at(0)), at(0)));
        assert!(NonceKey::from_slice(&[0; 16]).is_err());
    }
}
