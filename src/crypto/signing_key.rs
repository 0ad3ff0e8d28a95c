//! JWT signing keys: generated, kept in the store sealed by [`KeyCipher`], parsed
//! once to sign, and retired once no live token can carry them. Keys live in the
//! store so that every instance sharing a database signs with the same key and
//! publishes the same set; reading and writing them there is `crate::keyring`'s job.
//! No store, no I/O here.

use std::{fmt, time::Duration};

use anyhow::{Context, anyhow};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header,
    jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash},
};

use super::{jwt::ACCESS_TOKEN_TYP, seal::KeyCipher};
use crate::config::SigningAlg;

/// A private key as the store keeps it: PKCS#8 DER for ES256, PKCS#1 DER for RS256,
/// sealed by [`KeyCipher`] under `keys.secret` when one is configured.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_key: Vec<u8>,
    pub created_at: time::OffsetDateTime,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl StoredKey {
    /// A new random key, sealed by `cipher`. RS256 keys are 2048 bits.
    ///
    /// # Errors
    /// Key generation or encoding failed.
    pub fn generate(
        alg: SigningAlg,
        now: time::OffsetDateTime,
        cipher: &KeyCipher,
    ) -> anyhow::Result<StoredKey> {
        let private_der = match alg {
            SigningAlg::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
                key.to_pkcs8_der()
                    .context("encoding ES256 key")?
                    .as_bytes()
                    .to_vec()
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                    .context("generating RS256 key")?;
                key.to_pkcs1_der()
                    .context("encoding RS256 key")?
                    .as_bytes()
                    .to_vec()
            }
        };
        let encoding = encoding_key(alg, &private_der);
        // The kid is the key's RFC 7638 thumbprint: stable and collision-free.
        let kid = Jwk::from_encoding_key(&encoding, algorithm(alg))
            .context("deriving public key")?
            .thumbprint(ThumbprintHash::SHA256)
            .context("computing key thumbprint")?;
        let private_key = cipher.seal(&kid, &private_der);
        Ok(StoredKey {
            kid,
            alg,
            private_key,
            created_at: now,
        })
    }
}

pub(super) fn algorithm(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
    }
}

pub(super) fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::ES256 => EncodingKey::from_ec_der(der),
        SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
    }
}

/// A private key parsed once, signing with ring (already in the build for TLS).
///
/// Every access token is signed, so this is the grant's largest CPU cost: with the
/// pure-Rust p256 crate, ES256 signing took about a third of rotor's CPU time
/// under refresh load; ring's P-256 is several times faster. (`jsonwebtoken::encode`
/// would also re-parse the DER key on every call.) Keys are still generated and
/// stored by the p256 and rsa crates, and tokens verified by jsonwebtoken.
enum Signer {
    Es256(ring::signature::EcdsaKeyPair),
    Rs256(ring::signature::RsaKeyPair),
}

impl Signer {
    fn load(alg: SigningAlg, der: &[u8]) -> anyhow::Result<Signer> {
        let rejected =
            |what: &'static str| move |e: ring::error::KeyRejected| anyhow!("{what}: {e}");
        Ok(match alg {
            SigningAlg::ES256 => {
                use p256::pkcs8::DecodePrivateKey;
                let key =
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).context("decoding ES256 key")?;
                let public = key.verifying_key().to_encoded_point(false);
                Signer::Es256(
                    ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &key.to_bytes(),
                        public.as_bytes(),
                        &ring::rand::SystemRandom::new(),
                    )
                    .map_err(rejected("loading ES256 key"))?,
                )
            }
            SigningAlg::RS256 => Signer::Rs256(
                ring::signature::RsaKeyPair::from_der(der)
                    .map_err(rejected("loading RS256 key"))?,
            ),
        })
    }

    /// The JWS signature of `message` (RFC 7518 §3.3, §3.4): ECDSA as the fixed
    /// 64-byte `R || S`, RSA as PKCS#1 v1.5 with SHA-256.
    ///
    /// # Errors
    /// The system's random generator failed.
    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let rng = ring::rand::SystemRandom::new();
        let failed = |_| anyhow!("signing failed");
        match self {
            Signer::Es256(key) => Ok(key.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Signer::Rs256(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

/// A key ready to sign and verify.
pub(super) struct LoadedKey {
    pub(super) kid: String,
    pub(super) alg: SigningAlg,
    signer: Signer,
    /// The base64url JOSE header of every token this key signs, built once.
    pub(super) header: String,
    pub(super) decoding: DecodingKey,
    pub(super) jwk: Jwk,
}

impl LoadedKey {
    pub(super) fn load(stored: &StoredKey, cipher: &KeyCipher) -> anyhow::Result<LoadedKey> {
        let der = cipher.open(&stored.kid, &stored.private_key)?;
        let encoding = encoding_key(stored.alg, &der);
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm(stored.alg))
            .with_context(|| format!("loading signing key {}", stored.kid))?;
        jwk.common.key_id = Some(stored.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match stored.alg {
            SigningAlg::ES256 => KeyAlgorithm::ES256,
            SigningAlg::RS256 => KeyAlgorithm::RS256,
        });
        let decoding = DecodingKey::from_jwk(&jwk).context("building verification key")?;
        let mut header = Header::new(algorithm(stored.alg));
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(stored.kid.clone());
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).context("encoding the JWT header")?);
        Ok(LoadedKey {
            kid: stored.kid.clone(),
            alg: stored.alg,
            signer: Signer::load(stored.alg, &der)
                .with_context(|| format!("loading signing key {}", stored.kid))?,
            header,
            decoding,
            jwk,
        })
    }

    /// The JWS signature of `message` under this key (see [`Signer::sign`]).
    ///
    /// # Errors
    /// The system's random generator failed.
    pub(super) fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.signer.sign(message)
    }
}

/// When a key stops signing: when the next key was created. `None` for the newest.
fn superseded_at(key: &StoredKey, stored: &[StoredKey]) -> Option<time::OffsetDateTime> {
    stored
        .iter()
        .filter(|k| (k.created_at, &k.kid) > (key.created_at, &key.kid))
        .map(|k| k.created_at)
        .min()
}

/// Keys that no unexpired token can carry: superseded longer ago than the longest
/// access-token lifetime.
pub fn retired_keys(
    stored: &[StoredKey],
    now: time::OffsetDateTime,
    max_token_lifetime: Duration,
) -> Vec<StoredKey> {
    stored
        .iter()
        .filter(|k| superseded_at(k, stored).is_some_and(|t| t + max_token_lifetime < now))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superseded_key_retires_once_its_tokens_can_have_expired() {
        let t0 = time::OffsetDateTime::now_utc();
        let old = StoredKey::generate(SigningAlg::ES256, t0, &KeyCipher::default()).unwrap();
        let new = StoredKey::generate(
            SigningAlg::ES256,
            t0 + time::Duration::seconds(10),
            &KeyCipher::default(),
        )
        .unwrap();
        let both = [old.clone(), new.clone()];
        let lifetime = Duration::from_secs(60);
        assert!(retired_keys(&both, t0 + time::Duration::seconds(69), lifetime).is_empty());
        let retired = retired_keys(&both, t0 + time::Duration::seconds(71), lifetime);
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].kid, old.kid);
    }
}
