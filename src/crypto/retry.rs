//! Sealing the answer of a refresh so that a retried request with the same, now
//! spent, refresh token can be answered with exactly the same tokens — while the
//! database never holds a usable token.
//!
//! Construction: the answer is encrypted with XChaCha20-Poly1305 under a key
//! derived from the *presented* refresh token with HKDF-SHA256 and a label of its
//! own. The store keeps only SHA-256(token) for lookup; HKDF's extract step is an
//! HMAC under a distinct salt, so its output is unrelated to the lookup hash and
//! the hash alone yields no key. Only a holder of the old refresh token — the
//! client that is retrying — can open the answer. The token hash is the
//! associated data, binding the ciphertext to its row.

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

use super::token::{RefreshToken, TokenHash};

/// Distinguishes this key derivation from every other use of the token.
const SALT: &[u8] = b"rotor retry-answer v1";
const INFO: &[u8] = b"xchacha20poly1305 key";
const NONCE_LEN: usize = 24;

fn cipher(token: &RefreshToken) -> XChaCha20Poly1305 {
    let hk = Hkdf::<Sha256>::new(Some(SALT), token.expose().as_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = hk.expand(INFO, &mut key);
    XChaCha20Poly1305::new(&key.into())
}

/// Encrypts `plaintext` for whoever holds `token`: nonce ‖ ciphertext.
pub fn seal(token: &RefreshToken, hash: &TokenHash, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(token)
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: hash.as_bytes(),
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Decrypts what [`seal`] made; `None` when the token or the row does not match.
pub fn open(token: &RefreshToken, hash: &TokenHash, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() <= NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    cipher(token)
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: hash.as_bytes(),
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_of_the_token_opens_the_answer() {
        let token = RefreshToken::generate();
        let hash = token.hash();
        let sealed = seal(&token, &hash, b"the answer");
        assert_eq!(
            open(&token, &hash, &sealed).as_deref(),
            Some(&b"the answer"[..])
        );
        assert!(open(&RefreshToken::generate(), &hash, &sealed).is_none());
        assert!(open(&token, &TokenHash::of("other row"), &sealed).is_none());
        assert!(!sealed.windows(10).any(|w| w == b"the answer"));
    }

    #[test]
    fn the_key_is_not_the_lookup_hash() {
        let token = RefreshToken::generate();
        let hash = token.hash();
        // Sealing under a "token" equal to the hash's hex gives a different key.
        let pretend =
            RefreshToken::parse(hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect());
        let sealed = seal(&token, &hash, b"x");
        assert!(open(&pretend, &hash, &sealed).is_none());
    }
}
