//! Sealing signing keys at rest under `keys.secret`. No store, no I/O here.

use std::fmt;

use anyhow::Context;

/// Seals signing keys at rest under `keys.secret`, so that a database dump alone
/// cannot mint tokens. XChaCha20-Poly1305 under HKDF-SHA256(secret) with the kid as
/// associated data. Older secrets (`keys.previous_secrets`) still open keys sealed
/// before a secret rotation; `rotor keys reseal` moves them to the current one.
#[derive(Clone, Default)]
pub struct KeyCipher {
    current: Option<[u8; 32]>,
    previous: Vec<[u8; 32]>,
}

impl fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCipher")
            .field("sealing", &self.current.is_some())
            .finish()
    }
}

/// Marks a sealed key; plain DER starts with 0x30 (an ASN.1 SEQUENCE).
const SEALED_PREFIX: &[u8] = b"rotor-sealed-key-v1:";
const SEAL_NONCE_LEN: usize = 24;

impl KeyCipher {
    /// A cipher for `secret` (none: keys are kept as plain DER) that also opens keys
    /// sealed under `previous` secrets.
    pub fn new(secret: Option<&str>, previous: &[&str]) -> KeyCipher {
        KeyCipher {
            current: secret.map(derive_key),
            previous: previous.iter().map(|s| derive_key(s)).collect(),
        }
    }

    /// Whether new keys are sealed.
    pub fn is_sealing(&self) -> bool {
        self.current.is_some()
    }

    /// Seals DER for the store (or passes it through without a secret).
    pub fn seal(&self, kid: &str, der: &[u8]) -> Vec<u8> {
        use chacha20poly1305::{
            KeyInit, XChaCha20Poly1305, XNonce,
            aead::{Aead, Payload},
        };
        use rand::RngCore;
        let Some(key) = &self.current else {
            return der.to_vec();
        };
        let mut nonce = [0u8; SEAL_NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = XChaCha20Poly1305::new(key.into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: der,
                    aad: kid.as_bytes(),
                },
            )
            .unwrap_or_default();
        [SEALED_PREFIX, &nonce, &sealed].concat()
    }

    /// Opens what the store keeps.
    ///
    /// # Errors
    /// The key is sealed under a secret this instance does not have.
    pub fn open(&self, kid: &str, stored: &[u8]) -> anyhow::Result<Vec<u8>> {
        use chacha20poly1305::{
            KeyInit, XChaCha20Poly1305, XNonce,
            aead::{Aead, Payload},
        };
        let Some(body) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_vec());
        };
        if body.len() <= SEAL_NONCE_LEN {
            anyhow::bail!("signing key {kid} is damaged");
        }
        let (nonce, ciphertext) = body.split_at(SEAL_NONCE_LEN);
        let nonce: [u8; SEAL_NONCE_LEN] = nonce.try_into().context("nonce length")?;
        self.current
            .iter()
            .chain(&self.previous)
            .find_map(|key| {
                XChaCha20Poly1305::new(key.into())
                    .decrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: kid.as_bytes(),
                        },
                    )
                    .ok()
            })
            .with_context(|| {
                format!(
                    "signing key {kid} is sealed under a keys.secret this instance does not have"
                )
            })
    }
}

fn derive_key(secret: &str) -> [u8; 32] {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"rotor signing-key seal v1"), secret.as_bytes());
    let mut key = [0u8; 32];
    let _ = hk.expand(b"xchacha20poly1305 key", &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::SigningAlg,
        crypto::{jwt::KeySet, signing_key::StoredKey},
    };

    #[test]
    fn sealed_keys_open_only_with_the_secret() {
        let now = time::OffsetDateTime::now_utc();
        let cipher = KeyCipher::new(Some("a-long-enough-secret"), &[]);
        let key = StoredKey::generate(SigningAlg::ES256, now, &cipher).unwrap();
        assert!(key.private_key.starts_with(SEALED_PREFIX));
        assert!(KeySet::new(std::slice::from_ref(&key), SigningAlg::ES256, &cipher).is_ok());
        assert!(
            KeySet::new(
                std::slice::from_ref(&key),
                SigningAlg::ES256,
                &KeyCipher::default()
            )
            .is_err()
        );
        let other = KeyCipher::new(Some("another-secret-entirely"), &[]);
        assert!(KeySet::new(std::slice::from_ref(&key), SigningAlg::ES256, &other).is_err());
        // After a secret rotation the old secret still opens it.
        let rotated = KeyCipher::new(Some("another-secret-entirely"), &["a-long-enough-secret"]);
        assert!(KeySet::new(&[key], SigningAlg::ES256, &rotated).is_ok());
    }
}
