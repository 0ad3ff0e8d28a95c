//! JWT signing keys (RFC 9068 access tokens). Keys live in the store so that every
//! instance sharing a database signs with the same key and publishes the same set.

use std::{fmt, sync::Arc};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash},
};
use serde::{Deserialize, Serialize};

use crate::config::SigningAlg;

/// The claims of an access token, RFC 9068 §2.2.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// RFC 9068 §2.1: access tokens carry `typ: at+jwt`.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// A private key as the store keeps it: PKCS#8 DER for ES256, PKCS#1 DER for RS256.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_der: Vec<u8>,
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
    /// A new random key. RS256 keys are 2048 bits.
    ///
    /// # Errors
    /// Key generation or encoding failed.
    pub fn generate(alg: SigningAlg, now: time::OffsetDateTime) -> anyhow::Result<StoredKey> {
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
        Ok(StoredKey {
            kid,
            alg,
            private_der,
            created_at: now,
        })
    }
}

fn algorithm(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
    }
}

fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::ES256 => EncodingKey::from_ec_der(der),
        SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
    }
}

/// A private key parsed once. `jsonwebtoken::encode` re-parses the DER key on
/// every call, which costs more than the ES256 signature itself.
enum Signer {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>),
}

impl Signer {
    fn load(alg: SigningAlg, der: &[u8]) -> anyhow::Result<Signer> {
        Ok(match alg {
            SigningAlg::ES256 => {
                use p256::pkcs8::DecodePrivateKey;
                Signer::Es256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).context("decoding ES256 key")?,
                )
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::from_pkcs1_der(der).context("decoding RS256 key")?;
                Signer::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
        })
    }

    /// The JWS signature of `message` (RFC 7518 §3.3, §3.4): ECDSA as the fixed
    /// 64-byte `R || S`, RSA as PKCS#1 v1.5 with SHA-256.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Signer::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Signer::Rs256(key) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                key.sign_with_rng(&mut rand::rngs::OsRng, message).to_vec()
            }
        }
    }
}

/// A key ready to sign and verify.
struct LoadedKey {
    kid: String,
    alg: SigningAlg,
    signer: Signer,
    /// The base64url JOSE header of every token this key signs, built once.
    header: String,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl LoadedKey {
    fn load(stored: &StoredKey) -> anyhow::Result<LoadedKey> {
        let encoding = encoding_key(stored.alg, &stored.private_der);
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
            signer: Signer::load(stored.alg, &stored.private_der)
                .with_context(|| format!("loading signing key {}", stored.kid))?,
            header,
            decoding,
            jwk,
        })
    }
}

/// The keys in force: the newest of the configured algorithm signs; all verify and
/// are published.
#[derive(Clone)]
pub struct KeySet {
    active: Arc<LoadedKey>,
    all: Arc<Vec<Arc<LoadedKey>>>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("active", &self.active.kid)
            .finish()
    }
}

/// Why a presented access token was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct TokenRejected(pub String);

impl KeySet {
    /// Builds the set from stored keys; the newest key of `alg` signs.
    ///
    /// # Errors
    /// No key of `alg` is present, or a stored key cannot be decoded.
    pub fn new(stored: &[StoredKey], alg: SigningAlg) -> anyhow::Result<KeySet> {
        let all: Vec<Arc<LoadedKey>> = stored
            .iter()
            .map(|k| LoadedKey::load(k).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        let active = stored
            .iter()
            .zip(&all)
            .filter(|(k, _)| k.alg == alg)
            .max_by_key(|(k, _)| (k.created_at, k.kid.clone()))
            .map(|(_, loaded)| loaded.clone())
            .with_context(|| format!("no {} signing key in the store", alg.as_str()))?;
        Ok(KeySet {
            active,
            all: Arc::new(all),
        })
    }

    /// The kid of the signing key.
    pub fn active_kid(&self) -> &str {
        &self.active.kid
    }

    /// Signs access-token claims as an RFC 9068 JWT (RFC 7515 compact
    /// serialization: header, claims and signature, each base64url, joined by dots).
    ///
    /// # Errors
    /// The claims cannot be serialized, which their types rule out.
    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let claims = serde_json::to_vec(claims).context("encoding access-token claims")?;
        let key = &self.active;
        let mut jwt = String::with_capacity(key.header.len() + claims.len() * 4 / 3 + 100);
        jwt.push_str(&key.header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jwt);
        let signature = key.signer.sign(jwt.as_bytes());
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(jwt)
    }

    /// The public keys, for `/oauth2/jwks`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.all.iter().map(|k| k.jwk.clone()).collect(),
        }
    }

    /// Validates an access token: signature by `kid`, `typ`, `iss`, `aud`, `exp`.
    ///
    /// # Errors
    /// Any check failed; the message says which.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
    ) -> Result<AccessClaims, TokenRejected> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenRejected(e.to_string()))?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(TokenRejected("not an at+jwt token".into()));
        }
        let kid = header.kid.ok_or_else(|| TokenRejected("no kid".into()))?;
        let key = self
            .all
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| TokenRejected("unknown kid".into()))?;
        let mut validation = Validation::new(algorithm(key.alg));
        validation.leeway = leeway_secs;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenRejected(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer".into(),
            sub: "u1".into(),
            aud: "api".into(),
            exp: now + 60,
            iat: now,
            jti: "j1".into(),
            client_id: "c1".into(),
            scope: "read".into(),
        }
    }

    #[test]
    fn signed_tokens_verify_with_both_algorithms() {
        let now = time::OffsetDateTime::now_utc();
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let key = StoredKey::generate(alg, now).unwrap();
            let set = KeySet::new(&[key], alg).unwrap();
            let c = claims(now.unix_timestamp());
            let jwt = set.sign(&c).unwrap();
            let header = jsonwebtoken::decode_header(&jwt).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(set.active_kid()));
            assert_eq!(set.verify(&jwt, "https://issuer", "api", 1).unwrap(), c);
            assert!(set.verify(&jwt, "https://other", "api", 1).is_err());
            assert!(set.verify(&jwt, "https://issuer", "other", 1).is_err());
            assert_eq!(set.jwks().keys.len(), 1);
        }
    }

    #[test]
    fn cached_signer_makes_the_same_token_as_jsonwebtoken() {
        // ES256 (RFC 6979) and RS256 (PKCS#1 v1.5) are deterministic, so the two
        // signers must agree byte for byte.
        let now = time::OffsetDateTime::now_utc();
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let key = StoredKey::generate(alg, now).unwrap();
            let set = KeySet::new(std::slice::from_ref(&key), alg).unwrap();
            let c = claims(now.unix_timestamp());
            let mut header = Header::new(algorithm(alg));
            header.typ = Some(ACCESS_TOKEN_TYP.into());
            header.kid = Some(key.kid.clone());
            let expected =
                jsonwebtoken::encode(&header, &c, &encoding_key(alg, &key.private_der)).unwrap();
            assert_eq!(set.sign(&c).unwrap(), expected);
        }
    }

    #[test]
    fn newest_key_of_the_configured_algorithm_signs() {
        let t0 = time::OffsetDateTime::now_utc();
        let old = StoredKey::generate(SigningAlg::ES256, t0).unwrap();
        let new = StoredKey::generate(SigningAlg::ES256, t0 + time::Duration::seconds(5)).unwrap();
        let set = KeySet::new(&[old.clone(), new.clone()], SigningAlg::ES256).unwrap();
        assert_eq!(set.active_kid(), new.kid);
        // A token of the old key still verifies.
        let old_only = KeySet::new(&[old], SigningAlg::ES256).unwrap();
        let jwt = old_only.sign(&claims(t0.unix_timestamp())).unwrap();
        assert!(set.verify(&jwt, "https://issuer", "api", 1).is_ok());
    }
}
