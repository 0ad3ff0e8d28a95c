//! Access tokens as JWTs (RFC 9068): their claims, the set of keys in force that
//! signs and verifies them, and the one expiry rule. No store, no I/O here.

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    seal::KeyCipher,
    signing_key::{LoadedKey, StoredKey, algorithm},
};
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
    /// RFC 9449 §6.1: the key a DPoP-bound token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The confirmation claim of a DPoP-bound access token (RFC 7800 §3.1, RFC 9449
/// §6.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint of the client's key.
    pub jkt: String,
}

impl AccessClaims {
    /// The thumbprint of the key the token is bound to, if it is DPoP-bound.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }
}

/// RFC 9068 §2.1: access tokens carry `typ: at+jwt`.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

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

/// Why a presented access token was refused; `Display` is the reason.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    /// Signed by a key this set does not hold, perhaps one made since it was read.
    #[error("unknown kid")]
    UnknownKid,
    /// Past `exp` plus the leeway (see [`is_expired`]).
    #[error("the token has expired")]
    Expired,
    /// Malformed, wrongly signed, or of the wrong type, issuer or audience.
    #[error("{0}")]
    Invalid(String),
}

impl KeySet {
    /// Builds the set from stored keys; the newest key of `alg` signs.
    ///
    /// # Errors
    /// No key of `alg` is present, or a stored key cannot be decoded.
    pub fn new(
        stored: &[StoredKey],
        alg: SigningAlg,
        cipher: &KeyCipher,
    ) -> anyhow::Result<KeySet> {
        let all: Vec<Arc<LoadedKey>> = stored
            .iter()
            .map(|k| LoadedKey::load(k, cipher).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        KeySet::from_loaded(stored, all, alg)
    }

    /// As [`KeySet::new`], taking the keys `known` already holds from it by kid
    /// instead of opening and parsing them again: a reload costs nothing for keys
    /// that did not change (a kid is the key's thumbprint).
    ///
    /// # Errors
    /// No key of `alg` is present, or a new stored key cannot be decoded.
    pub fn with_known(
        stored: &[StoredKey],
        alg: SigningAlg,
        cipher: &KeyCipher,
        known: &KeySet,
    ) -> anyhow::Result<KeySet> {
        let all: Vec<Arc<LoadedKey>> = stored
            .iter()
            .map(|k| {
                let held = known.all.iter().find(|h| h.kid == k.kid && h.alg == k.alg);
                match held {
                    Some(held) => Ok(held.clone()),
                    None => LoadedKey::load(k, cipher).map(Arc::new),
                }
            })
            .collect::<anyhow::Result<_>>()?;
        KeySet::from_loaded(stored, all, alg)
    }

    fn from_loaded(
        stored: &[StoredKey],
        all: Vec<Arc<LoadedKey>>,
        alg: SigningAlg,
    ) -> anyhow::Result<KeySet> {
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
        let signature = key.sign(jwt.as_bytes())?;
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

    /// Validates an access token: signature by `kid`, `typ`, `iss`, `aud`, and `exp`
    /// against `now` with [`is_expired`].
    ///
    /// # Errors
    /// Any check failed; the message says which.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: OffsetDateTime,
        leeway: Duration,
    ) -> Result<AccessClaims, TokenRejected> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenRejected::Invalid(e.to_string()))?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(TokenRejected::Invalid("not an at+jwt token".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenRejected::Invalid("no kid".into()))?;
        let key = self
            .all
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenRejected::UnknownKid)?;
        let mut validation = Validation::new(algorithm(key.alg));
        // jsonwebtoken would check `exp` against the wall clock in whole seconds;
        // the server's clock decides, below.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenRejected::Invalid(e.to_string()))?;
        if is_expired(claims.exp, now, leeway) {
            return Err(TokenRejected::Expired);
        }
        Ok(claims)
    }
}

/// Whether an access token whose `exp` claim is `exp` has expired at `now`.
///
/// RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time
/// listed in the "exp" claim. Implementers MAY provide for some small leeway,
/// usually no more than a few minutes, to account for clock skew." So a token is
/// refused from `exp + leeway` on, to the nanosecond of `now` (`exp` itself is in
/// whole seconds). This is the one expiry rule of access tokens: the bearer guard,
/// introspection and revocation all reach it through [`KeySet::verify`].
pub fn is_expired(exp: i64, now: OffsetDateTime, leeway: Duration) -> bool {
    const NANOS_PER_SECOND: i128 = 1_000_000_000;
    let leeway = i128::try_from(leeway.as_nanos()).unwrap_or(i128::MAX);
    let refused_from = i128::from(exp)
        .saturating_mul(NANOS_PER_SECOND)
        .saturating_add(leeway);
    now.unix_timestamp_nanos() >= refused_from
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Header};

    use super::*;
    use crate::crypto::signing_key::encoding_key;

    const LEEWAY: Duration = Duration::from_secs(1);

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
            cnf: None,
        }
    }

    #[test]
    fn signed_tokens_verify_with_both_algorithms() {
        let now = time::OffsetDateTime::now_utc();
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let key = StoredKey::generate(alg, now, &KeyCipher::default()).unwrap();
            let set = KeySet::new(&[key], alg, &KeyCipher::default()).unwrap();
            let c = claims(now.unix_timestamp());
            let jwt = set.sign(&c).unwrap();
            let header = jsonwebtoken::decode_header(&jwt).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(set.active_kid()));
            assert_eq!(
                set.verify(&jwt, "https://issuer", "api", now, LEEWAY)
                    .unwrap(),
                c
            );
            assert!(
                set.verify(&jwt, "https://other", "api", now, LEEWAY)
                    .is_err()
            );
            assert!(
                set.verify(&jwt, "https://issuer", "other", now, LEEWAY)
                    .is_err()
            );
            assert_eq!(set.jwks().keys.len(), 1);
        }
    }

    #[test]
    fn tokens_signed_with_ring_are_what_jsonwebtoken_makes_and_checks() {
        let now = time::OffsetDateTime::now_utc();
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let key = StoredKey::generate(alg, now, &KeyCipher::default()).unwrap();
            let set = KeySet::new(std::slice::from_ref(&key), alg, &KeyCipher::default()).unwrap();
            let c = claims(now.unix_timestamp());
            let mut header = Header::new(algorithm(alg));
            header.typ = Some(ACCESS_TOKEN_TYP.into());
            header.kid = Some(key.kid.clone());
            let expected =
                jsonwebtoken::encode(&header, &c, &encoding_key(alg, &key.private_key)).unwrap();
            let ours = set.sign(&c).unwrap();
            // The same header and claims; the signature verifies with the public key
            // alone, and a changed claim does not.
            let (signed, _) = ours.rsplit_once('.').unwrap();
            assert_eq!(signed, expected.rsplit_once('.').unwrap().0);
            let public = DecodingKey::from_jwk(&set.jwks().keys[0]).unwrap();
            let mut validation = Validation::new(algorithm(alg));
            validation.set_audience(&["api"]);
            let decoded = jsonwebtoken::decode::<AccessClaims>(&ours, &public, &validation);
            assert_eq!(decoded.unwrap().claims, c);
            let forged = format!("{}.{}", &expected[..expected.find('.').unwrap()], {
                let mut other = c.clone();
                other.sub = "mallory".into();
                let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
                format!("{body}.{}", ours.rsplit_once('.').unwrap().1)
            });
            assert!(jsonwebtoken::decode::<AccessClaims>(&forged, &public, &validation).is_err());
            // PKCS#1 v1.5 is deterministic: RS256 agrees byte for byte.
            if alg == SigningAlg::RS256 {
                assert_eq!(ours, expected);
            }
        }
    }

    #[test]
    fn newest_key_of_the_configured_algorithm_signs() {
        let t0 = time::OffsetDateTime::now_utc();
        let old = StoredKey::generate(SigningAlg::ES256, t0, &KeyCipher::default()).unwrap();
        let new = StoredKey::generate(
            SigningAlg::ES256,
            t0 + time::Duration::seconds(5),
            &KeyCipher::default(),
        )
        .unwrap();
        let set = KeySet::new(
            &[old.clone(), new.clone()],
            SigningAlg::ES256,
            &KeyCipher::default(),
        )
        .unwrap();
        assert_eq!(set.active_kid(), new.kid);
        // A token of the old key still verifies.
        let old_only = KeySet::new(&[old], SigningAlg::ES256, &KeyCipher::default()).unwrap();
        let jwt = old_only.sign(&claims(t0.unix_timestamp())).unwrap();
        assert!(
            set.verify(&jwt, "https://issuer", "api", t0, LEEWAY)
                .is_ok()
        );
    }

    #[test]
    fn a_token_is_refused_from_exp_plus_leeway_on_to_the_nanosecond() {
        let exp = 1_700_000_000;
        let at = |nanos: i128| {
            time::OffsetDateTime::from_unix_timestamp_nanos(nanos + i128::from(exp) * 1_000_000_000)
                .unwrap()
        };
        assert!(!is_expired(exp, at(999_999_999), LEEWAY));
        assert!(is_expired(exp, at(1_000_000_000), LEEWAY));
        assert!(is_expired(exp, at(1_000_000_001), LEEWAY));
        // Without leeway `exp` itself is too late, and a sub-second leeway counts.
        assert!(!is_expired(exp, at(-1), Duration::ZERO));
        assert!(is_expired(exp, at(0), Duration::ZERO));
        assert!(!is_expired(
            exp,
            at(499_999_999),
            Duration::from_millis(500)
        ));
        assert!(is_expired(exp, at(500_000_000), Duration::from_millis(500)));
        // Extreme values neither overflow nor panic.
        assert!(is_expired(i64::MIN, at(0), Duration::ZERO));
        assert!(!is_expired(i64::MAX, at(0), Duration::MAX));
    }

    #[test]
    fn the_given_now_decides_expiry_and_not_the_wall_clock() {
        let wall = time::OffsetDateTime::now_utc();
        let key = StoredKey::generate(SigningAlg::ES256, wall, &KeyCipher::default()).unwrap();
        let set = KeySet::new(&[key], SigningAlg::ES256, &KeyCipher::default()).unwrap();
        // Expired by the wall clock an hour ago, but not by a server clock two hours back.
        let mut past = claims(wall.unix_timestamp() - 7200);
        past.exp = wall.unix_timestamp() - 3600;
        let jwt = set.sign(&past).unwrap();
        let two_hours_back = wall - time::Duration::hours(2);
        assert_eq!(
            set.verify(&jwt, "https://issuer", "api", two_hours_back, LEEWAY)
                .unwrap(),
            past
        );
        // Valid by the wall clock, but expired by a server clock moved past it.
        let fresh = claims(wall.unix_timestamp());
        let jwt = set.sign(&fresh).unwrap();
        let later = time::OffsetDateTime::from_unix_timestamp(fresh.exp).unwrap() + LEEWAY;
        assert!(matches!(
            set.verify(&jwt, "https://issuer", "api", later, LEEWAY),
            Err(TokenRejected::Expired)
        ));
    }

    #[test]
    fn a_rebuilt_set_takes_the_keys_it_holds_without_opening_them_again() {
        let t0 = time::OffsetDateTime::now_utc();
        let sealing = KeyCipher::new(Some("a-long-enough-secret"), &[]);
        let old = StoredKey::generate(SigningAlg::ES256, t0, &sealing).unwrap();
        let known = KeySet::new(std::slice::from_ref(&old), SigningAlg::ES256, &sealing).unwrap();
        let new = StoredKey::generate(
            SigningAlg::ES256,
            t0 + time::Duration::seconds(5),
            &KeyCipher::default(),
        )
        .unwrap();
        // A cipher that cannot open the old key: only reuse can bring it in.
        let stored = [old.clone(), new.clone()];
        let plain = KeyCipher::default();
        assert!(KeySet::new(&stored, SigningAlg::ES256, &plain).is_err());
        let rebuilt = KeySet::with_known(&stored, SigningAlg::ES256, &plain, &known).unwrap();
        assert_eq!(rebuilt.active_kid(), new.kid);
        assert!(Arc::ptr_eq(&rebuilt.all[0], &known.all[0]));
        let jwt = known.sign(&claims(t0.unix_timestamp())).unwrap();
        assert!(
            rebuilt
                .verify(&jwt, "https://issuer", "api", t0, LEEWAY)
                .is_ok()
        );
    }
}
