//! DPoP (RFC 9449): checking a proof of possession, the JWK thumbprint that names
//! the key (RFC 7638), and the rules of what a proof binds, for the token endpoint
//! and the resource side alike. No HTTP here: the caller hands over the `DPoP`
//! header values, the method, and the path of the endpoint.
//!
//! The expected `htu` is `tokens.issuer` followed by the endpoint's path
//! ([`endpoint_url`]), never a URL built from `Host`, so that it holds behind a
//! balancer and under a path prefix.
//!
//! A proof's `jti` is accepted once per key and URL within `dpop.proof_max_age`,
//! across instances: [`VerifiedProof::usage`] is what the store inserts under a
//! unique key — on the refresh path in the same step as the rotation.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{AuthenticatedClient, GrantContext, OAuthError, audit::Audit, metadata::endpoint_url};
use crate::{
    config::{DpopAlg, DpopSettings, Settings},
    crypto::{nonce::NonceKey, token::TokenHash},
    store::{AuditKind, Outcome, ProofUse},
};

/// RFC 9449 §4.2: the `typ` of a proof.
pub const PROOF_TYP: &str = "dpop+jwt";

/// The longest `jti` taken: the one value of a proof the store keeps (as a hash).
pub const MAX_JTI_LEN: usize = 256;

/// The longest proof read; an RSA-4096 key in the header fits with room to spare.
pub const MAX_PROOF_LEN: usize = 8192;

/// How far in the future a proof's `iat` may be: clocks of clients drift.
pub const IAT_FUTURE_LEEWAY: Duration = Duration::from_secs(5);

/// RSA keys of proofs: 2048 bits at least (RFC 7518 §3.3), 4096 at most, so that
/// nobody makes the server verify with a huge modulus.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Members of a JWK that belong to a private or symmetric key (RFC 7518 §6.2.2,
/// §6.3.2, §6.4, RFC 8037 §2): a proof's `jwk` MUST NOT hold any (RFC 9449 §4.3
/// step 7).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The path of the token endpoint, part of its `htu`.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// The `DPoP` header values of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedProof {
    /// No `DPoP` header.
    Absent,
    /// Exactly one.
    One(String),
    /// RFC 9449 §4.3 step 1: more than one, which no valid request has.
    Many,
}

impl PresentedProof {
    /// Whether any `DPoP` header came.
    pub fn is_present(&self) -> bool {
        !matches!(self, PresentedProof::Absent)
    }
}

/// What a proof must match: the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The HTTP method (§4.3 step 8).
    pub htm: &'a str,
    /// The endpoint's URL, from [`endpoint_url`] (§4.3 step 9).
    pub htu: &'a str,
    /// At a resource, the access token the proof must hash into `ath` (§4.3 step 12).
    pub access_token: Option<&'a str>,
    /// Whether a current nonce of this server is required (§8).
    pub nonce_required: bool,
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The JWK SHA-256 thumbprint of its key (RFC 7638), base64url: `cnf.jkt`.
    pub jkt: String,
    /// SHA-256 of its `jti`.
    pub jti: TokenHash,
    /// The normalised `htu`.
    pub htu: String,
}

impl VerifiedProof {
    /// The replay record of this proof: kept until no proof with its `iat` window
    /// can be accepted any more, so that a replay within the window meets it.
    pub fn usage(&self, settings: &DpopSettings, now: OffsetDateTime) -> ProofUse {
        ProofUse {
            jti_hash: self.jti,
            jkt: self.jkt.clone(),
            htu: self.htu.clone(),
            expires_at: now + settings.proof_max_age + IAT_FUTURE_LEEWAY,
        }
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// RFC 9449 §5 `invalid_dpop_proof`; the text says which check failed and
    /// never repeats the proof.
    #[error("{0}")]
    Invalid(&'static str),
    /// RFC 9449 §8 `use_dpop_nonce`: a nonce is required and the proof has none,
    /// or a stale one.
    #[error("a current nonce of this server is required")]
    NonceRequired,
}

/// The claims of a proof (RFC 9449 §4.2).
#[derive(Debug, Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks one proof, every step of RFC 9449 §4.3 in order: one well-formed JWT,
/// `typ`, an allowed asymmetric `alg`, a public `jwk` of that algorithm's kind,
/// the signature, `jti`, `htm`, `htu`, `iat`, `ath` and the nonce.
///
/// # Errors
/// [`ProofError::Invalid`] naming the failed check, or
/// [`ProofError::NonceRequired`] when all else is right but the nonce is missing
/// or stale.
pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    settings: &DpopSettings,
    nonces: &NonceKey,
    now: OffsetDateTime,
) -> Result<VerifiedProof, ProofError> {
    use ProofError::Invalid;
    // Step 2: one JWT in compact serialization.
    if proof.len() > MAX_PROOF_LEN {
        return Err(Invalid("the DPoP proof is too long"));
    }
    let parts: Vec<&str> = proof.split('.').collect();
    let [header_part, claims_part, signature_part] = parts.as_slice() else {
        return Err(Invalid("the DPoP header must hold one JWT"));
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header_part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(Invalid("the DPoP proof's header is not a JSON object"))?;
    // Step 4: `typ`. Media types compare case-insensitively (RFC 7515 §4.1.9).
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYP)) {
        return Err(Invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    // Step 5: an asymmetric algorithm this server accepts; `none` and HS* are no
    // `DpopAlg` at all.
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(DpopAlg::parse)
        .filter(|a| settings.allowed_algs.contains(a))
        .ok_or(Invalid(
            "the DPoP proof's alg is not one of dpop_signing_alg_values_supported",
        ))?;
    // Step 7: a public key, of the kind the algorithm needs.
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(Invalid("the DPoP proof's header carries no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(Invalid("the DPoP proof's jwk must not hold a private key"));
    }
    check_key_kind(alg, jwk)?;
    let jkt = thumbprint(jwk)?;
    // Step 6: the signature, with the header's own key.
    let signature = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| Invalid("the DPoP proof's signature does not verify"))?;
    let signing_input = &proof[..header_part.len() + 1 + claims_part.len()];
    if !signature_verifies(alg, jwk, signing_input.as_bytes(), &signature)? {
        return Err(Invalid("the DPoP proof's signature does not verify"));
    }
    let claims: ProofClaims = URL_SAFE_NO_PAD
        .decode(claims_part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(Invalid("the DPoP proof's claims are not a JSON object"))?;
    // Step 3: the claims.
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or(Invalid("the DPoP proof has no jti"))?;
    if jti.len() > MAX_JTI_LEN {
        return Err(Invalid("the DPoP proof's jti is too long"));
    }
    // Step 8.
    if claims.htm.as_deref() != Some(expected.htm) {
        return Err(Invalid("the DPoP proof's htm is not the request's method"));
    }
    // Step 9: "ignoring any query and fragment parts", after normalisation.
    let htu = claims
        .htu
        .as_deref()
        .and_then(normalised)
        .ok_or(Invalid("the DPoP proof has no valid htu"))?;
    let expected_htu = normalised(expected.htu).unwrap_or_default();
    if htu != expected_htu {
        return Err(Invalid("the DPoP proof's htu is not this endpoint's URL"));
    }
    // Step 11: created just now (§11.1: "a relatively brief period").
    let iat = claims
        .iat
        .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
        .ok_or(Invalid("the DPoP proof has no iat"))?;
    if !iat_acceptable(iat, settings.proof_max_age, now) {
        return Err(Invalid("the DPoP proof's iat is too old or in the future"));
    }
    // Step 12: at a resource, bound to the access token it comes with.
    if let Some(token) = expected.access_token {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims.ath.as_deref() != Some(ath.as_str()) {
            return Err(Invalid(
                "the DPoP proof's ath is not the access token's hash",
            ));
        }
    }
    // Step 10, last: a client without a nonce learns one and retries.
    if expected.nonce_required
        && !claims
            .nonce
            .as_deref()
            .is_some_and(|n| nonces.accepts(n, now))
    {
        return Err(ProofError::NonceRequired);
    }
    Ok(VerifiedProof {
        jkt,
        jti: TokenHash::of(&jti),
        htu,
    })
}

/// Whether a proof issued at `iat` (seconds) is fresh at `now`: at most `max_age`
/// old, and at most [`IAT_FUTURE_LEEWAY`] ahead.
pub fn iat_acceptable(iat: i64, max_age: Duration, now: OffsetDateTime) -> bool {
    let now = now.unix_timestamp();
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let ahead = i64::try_from(IAT_FUTURE_LEEWAY.as_secs()).unwrap_or(0);
    iat >= now.saturating_sub(max_age) && iat <= now.saturating_add(ahead)
}

/// Whether `signature` (JWS, RFC 7518 §3) signs `input` under the proof's `jwk`,
/// already checked to be a key of `alg` ([`check_key_kind`]). Verified with ring,
/// which every proof of a DPoP-bound refresh pays for: a P-256 verification there
/// is several times cheaper than in a portable implementation.
fn signature_verifies(
    alg: DpopAlg,
    jwk: &Map<String, Value>,
    input: &[u8],
    signature: &[u8],
) -> Result<bool, ProofError> {
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
        RsaPublicKeyComponents, UnparsedPublicKey,
    };
    let verified = match alg {
        DpopAlg::ES256 => {
            // SEC 1 §2.3.3: an uncompressed point, 0x04 || x || y.
            let mut point = vec![0x04];
            point.extend(decoded(jwk, "x")?);
            point.extend(decoded(jwk, "y")?);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(input, signature)
        }
        DpopAlg::EdDSA => {
            UnparsedPublicKey::new(&ED25519, decoded(jwk, "x")?).verify(input, signature)
        }
        DpopAlg::RS256 | DpopAlg::PS256 => {
            let (n, e) = (decoded(jwk, "n")?, decoded(jwk, "e")?);
            let key = RsaPublicKeyComponents {
                n: without_leading_zeros(&n),
                e: without_leading_zeros(&e),
            };
            let scheme = if alg == DpopAlg::RS256 {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &RSA_PSS_2048_8192_SHA256
            };
            key.verify(scheme, input, signature)
        }
    };
    Ok(verified.is_ok())
}

fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, ProofError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(ProofError::Invalid(
            "the DPoP proof's jwk lacks a member of its key type",
        ))
}

/// The decoded length of a base64url member, in bytes.
fn decoded(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, ProofError> {
    URL_SAFE_NO_PAD
        .decode(member(jwk, name)?)
        .map_err(|_| ProofError::Invalid("the DPoP proof's jwk is not base64url"))
}

/// The key type and curve each algorithm needs: EC P-256 for ES256, OKP Ed25519
/// for EdDSA, RSA of 2048 to 4096 bits for RS256 and PS256.
fn check_key_kind(alg: DpopAlg, jwk: &Map<String, Value>) -> Result<(), ProofError> {
    let wrong = ProofError::Invalid("the DPoP proof's jwk is not a key of its alg");
    let kty = member(jwk, "kty")?;
    match alg {
        DpopAlg::ES256 => {
            if kty != "EC" || member(jwk, "crv")? != "P-256" {
                return Err(wrong);
            }
            if decoded(jwk, "x")?.len() != 32 || decoded(jwk, "y")?.len() != 32 {
                return Err(wrong);
            }
        }
        DpopAlg::EdDSA => {
            if kty != "OKP" || member(jwk, "crv")? != "Ed25519" || decoded(jwk, "x")?.len() != 32 {
                return Err(wrong);
            }
        }
        DpopAlg::RS256 | DpopAlg::PS256 => {
            if kty != "RSA" {
                return Err(wrong);
            }
            let n = decoded(jwk, "n")?;
            decoded(jwk, "e")?;
            let significant: &[u8] = match n.iter().position(|b| *b != 0) {
                Some(i) => &n[i..],
                None => &[],
            };
            let bits = significant.first().map_or(0, |b| {
                (significant.len() - 1) * 8 + (8 - b.leading_zeros() as usize)
            });
            if !RSA_BITS.contains(&bits) {
                return Err(ProofError::Invalid(
                    "the DPoP proof's RSA key must have 2048 to 4096 bits",
                ));
            }
        }
    }
    Ok(())
}

/// The JWK SHA-256 thumbprint (RFC 7638 §3): the required members of the key type
/// in lexicographic order, without whitespace, hashed and base64url-encoded.
///
/// # Errors
/// A key type other than EC, OKP and RSA, or a required member missing.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, ProofError> {
    let required: &[&str] = match member(jwk, "kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => {
            return Err(ProofError::Invalid(
                "the DPoP proof's jwk has an unknown kty",
            ));
        }
    };
    let mut canonical = String::from("{");
    for (i, name) in required.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        let value = member(jwk, name)?;
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// Whether `text` has the form of a JWK SHA-256 thumbprint (43 base64url
/// characters), as `dpop_jkt` must (RFC 9449 §10).
pub fn is_thumbprint(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A URL after RFC 3986 normalisation (scheme and host lowercased, the default
/// port and dot segments removed), without query and fragment.
fn normalised(url: &str) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// Whether proofs of `client` must carry a nonce: its own setting, else the
/// server's `dpop.require_nonce`.
pub fn nonce_required(settings: &Settings, client: &AuthenticatedClient) -> bool {
    client
        .0
        .dpop
        .require_nonce
        .unwrap_or(settings.dpop.require_nonce)
}

/// The answer to a refused proof.
pub fn refusal(error: ProofError, nonces: &NonceKey, now: OffsetDateTime) -> OAuthError {
    match error {
        ProofError::Invalid(why) => OAuthError::InvalidDpopProof(why.into()),
        ProofError::NonceRequired => OAuthError::UseDpopNonce {
            nonce: nonces.issue(now),
        },
    }
}

/// Checks the proof of a token request, after the client authenticated (RFC
/// 9449 §5): none is fine unless the client registered
/// `dpop_bound_access_tokens` (§5.2), one must pass every check of [`verify`].
///
/// # Errors
/// `invalid_request` for a missing required proof, `invalid_dpop_proof` for a bad
/// one, `use_dpop_nonce` when a nonce is needed.
pub fn at_token_endpoint(
    ctx: &GrantContext<'_>,
    client: &AuthenticatedClient,
    presented: &PresentedProof,
    now: OffsetDateTime,
) -> Result<Option<VerifiedProof>, OAuthError> {
    let proof = match presented {
        PresentedProof::Absent if client.0.dpop.bound_access_tokens => {
            // RFC 9449 §5.2: with dpop_bound_access_tokens, the server must reject
            // the client's token requests that carry no DPoP header.
            return Err(OAuthError::InvalidRequest(
                "this client must send a DPoP proof".into(),
            ));
        }
        PresentedProof::Absent => return Ok(None),
        PresentedProof::Many => {
            return Err(OAuthError::InvalidDpopProof(
                "send exactly one DPoP header".into(),
            ));
        }
        PresentedProof::One(proof) => proof,
    };
    let htu = endpoint_url(ctx.settings, TOKEN_PATH);
    let expected = Expected {
        htm: "POST",
        htu: &htu,
        access_token: None,
        nonce_required: nonce_required(ctx.settings, client),
    };
    verify(proof, &expected, &ctx.settings.dpop, ctx.nonces, now)
        .map(Some)
        .map_err(|e| refusal(e, ctx.nonces, now))
}

/// The key a new family's refresh tokens are bound to: the proof's, for a public
/// client (RFC 9449 §5: a refresh token issued to a public client that presents
/// a valid DPoP proof "MUST be bound to the respective public key"); a
/// confidential client's refresh tokens are bound to its authentication instead.
pub fn family_binding(
    client: &AuthenticatedClient,
    proof: Option<&VerifiedProof>,
) -> Option<String> {
    proof
        .filter(|_| client.0.is_public())
        .map(|p| p.jkt.clone())
}

/// Whether a request with `proof` may use something bound to `bound`: anything
/// unbound, or bound to the proof's key.
pub fn matches_binding(bound: Option<&str>, proof: Option<&VerifiedProof>) -> bool {
    match bound {
        None => true,
        Some(jkt) => proof.is_some_and(|p| p.jkt == jkt),
    }
}

/// Records a proof as used (§11.1), for a grant whose own write does not include
/// it. A proof seen before is refused, and audited.
///
/// # Errors
/// `invalid_dpop_proof` for a replay; store failures.
pub async fn record_use(
    ctx: &GrantContext<'_>,
    client_id: &str,
    proof: &VerifiedProof,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    if ctx
        .store
        .record_dpop_proof(&proof.usage(&ctx.settings.dpop, now))
        .await?
    {
        return Ok(());
    }
    Err(replayed(ctx, client_id, now).await)
}

/// A replayed proof: audited and refused.
pub(crate) async fn replayed(
    ctx: &GrantContext<'_>,
    client_id: &str,
    now: OffsetDateTime,
) -> OAuthError {
    Audit::new(ctx, AuditKind::DpopReplay, Outcome::Refused, now)
        .client(client_id)
        .record(ctx)
        .await;
    OAuthError::InvalidDpopProof("the DPoP proof was used before".into())
}

#[cfg(test)]
mod tests {
    use ring::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair},
    };
    use serde_json::json;

    use super::*;

    const HTU: &str = "https://rotor.test/oauth2/token";

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn settings() -> DpopSettings {
        DpopSettings {
            require_nonce: false,
            proof_max_age: Duration::from_secs(60),
            allowed_algs: DpopAlg::ALL.to_vec(),
        }
    }

    /// A P-256 key, with its public JWK.
    struct Key {
        pair: EcdsaKeyPair,
        jwk: Value,
    }

    impl Key {
        fn new() -> Key {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            let point = pair.public_key().as_ref();
            let jwk = json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            Key { pair, jwk }
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn header(&self) -> Value {
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
        }

        fn proof(&self, claims: Value) -> String {
            self.sign(&self.header(), &claims)
        }
    }

    fn claims(iat: i64) -> Value {
        json!({"jti": "a-jti", "htm": "POST", "htu": HTU, "iat": iat})
    }

    fn expected() -> Expected<'static> {
        Expected {
            htm: "POST",
            htu: HTU,
            access_token: None,
            nonce_required: false,
        }
    }

    fn check(proof: &str) -> Result<VerifiedProof, ProofError> {
        verify(
            proof,
            &expected(),
            &settings(),
            &NonceKey::generate(),
            now(),
        )
    }

    #[test]
    fn a_well_formed_proof_verifies_and_names_its_key_by_thumbprint() {
        let key = Key::new();
        let proof = key.proof(claims(now().unix_timestamp()));
        let verified = check(&proof).unwrap();
        assert_eq!(
            verified.jkt,
            thumbprint(key.jwk.as_object().unwrap()).unwrap()
        );
        assert_eq!(verified.jti, TokenHash::of("a-jti"));
        assert_eq!(verified.htu, HTU);
    }

    #[test]
    fn the_thumbprint_of_rfc_7638s_example_key_is_its_published_value() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn an_ed25519_proof_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519",
                         "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims(now().unix_timestamp()).to_string())
        );
        let proof = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref())
        );
        assert!(check(&proof).is_ok());
    }

    #[test]
    fn rs256_and_ps256_proofs_verify_and_a_signature_of_other_claims_does_not() {
        use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
        let rng = SystemRandom::new();
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let der = key.to_pkcs1_der().unwrap();
        let pair = ring::signature::RsaKeyPair::from_der(der.as_bytes()).unwrap();
        let jwk = json!({"kty": "RSA",
                         "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                         "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())});
        for (alg, padding) in [
            (
                "RS256",
                &ring::signature::RSA_PKCS1_SHA256 as &dyn ring::signature::RsaEncoding,
            ),
            ("PS256", &ring::signature::RSA_PSS_SHA256),
        ] {
            let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
            let encoded = URL_SAFE_NO_PAD.encode(header.to_string());
            let sign = |claims: &Value| {
                let input = format!("{encoded}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, input.as_bytes(), &mut signature)
                    .unwrap();
                (input, URL_SAFE_NO_PAD.encode(signature))
            };
            let (input, signature) = sign(&claims(now().unix_timestamp()));
            assert!(check(&format!("{input}.{signature}")).is_ok(), "{alg}");
            let (other, _) = sign(&claims(now().unix_timestamp() - 1));
            assert!(
                matches!(check(&format!("{other}.{signature}")), Err(ProofError::Invalid(m)) if m.contains("signature")),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_wrong_method_or_url_is_refused_but_query_and_case_of_the_host_are_not() {
        let key = Key::new();
        let t = now().unix_timestamp();
        let mut c = claims(t);
        c["htm"] = json!("GET");
        assert!(matches!(check(&key.proof(c)), Err(ProofError::Invalid(_))));
        for wrong in [
            "https://rotor.test/oauth2/revoke",
            "https://evil.test/oauth2/token",
            "http://rotor.test/oauth2/token",
            "not a url",
        ] {
            let mut c = claims(t);
            c["htu"] = json!(wrong);
            assert!(check(&key.proof(c)).is_err(), "{wrong}");
        }
        for same in [
            "https://ROTOR.test:443/oauth2/token?x=1#f",
            "https://rotor.test/oauth2/../oauth2/token",
        ] {
            let mut c = claims(t);
            c["htu"] = json!(same);
            assert!(check(&key.proof(c)).is_ok(), "{same}");
        }
    }

    #[test]
    fn an_old_or_future_iat_is_refused_at_the_edges_of_the_window() {
        let key = Key::new();
        let t = now().unix_timestamp();
        assert!(check(&key.proof(claims(t - 60))).is_ok());
        assert!(check(&key.proof(claims(t - 61))).is_err());
        assert!(check(&key.proof(claims(t + 5))).is_ok());
        assert!(check(&key.proof(claims(t + 6))).is_err());
        let mut c = claims(t);
        c.as_object_mut().unwrap().remove("iat");
        assert!(check(&key.proof(c)).is_err());
    }

    #[test]
    fn none_symmetric_and_disallowed_algorithms_are_refused() {
        let key = Key::new();
        let body = URL_SAFE_NO_PAD.encode(claims(now().unix_timestamp()).to_string());
        for alg in ["none", "HS256", "ES384", "es256"] {
            let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.jwk});
            let unsigned = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(header.to_string()));
            assert_eq!(
                check(&unsigned),
                Err(ProofError::Invalid(
                    "the DPoP proof's alg is not one of dpop_signing_alg_values_supported"
                )),
                "{alg}"
            );
        }
        let only_eddsa = DpopSettings {
            allowed_algs: vec![DpopAlg::EdDSA],
            ..settings()
        };
        let proof = key.proof(claims(now().unix_timestamp()));
        assert!(
            verify(
                &proof,
                &expected(),
                &only_eddsa,
                &NonceKey::generate(),
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn a_private_key_in_the_header_a_wrong_typ_or_a_bad_signature_is_refused() {
        let key = Key::new();
        let c = claims(now().unix_timestamp());
        let mut header = key.header();
        header["jwk"]["d"] = json!("c2VjcmV0");
        assert_eq!(
            check(&key.sign(&header, &c)),
            Err(ProofError::Invalid(
                "the DPoP proof's jwk must not hold a private key"
            ))
        );
        let mut header = key.header();
        header["typ"] = json!("JWT");
        assert!(check(&key.sign(&header, &c)).is_err());
        // Signed by another key than the header's.
        let other = Key::new();
        assert!(check(&other.sign(&key.header(), &c)).is_err());
        // A header that is no JWT, or two of them joined.
        let proof = key.proof(c);
        assert!(check("abc").is_err());
        assert!(check(&format!("{proof}, {proof}")).is_err());
    }

    #[test]
    fn an_oversized_or_missing_jti_is_refused() {
        let key = Key::new();
        let mut c = claims(now().unix_timestamp());
        c["jti"] = json!("j".repeat(MAX_JTI_LEN + 1));
        assert_eq!(
            check(&key.proof(c.clone())),
            Err(ProofError::Invalid("the DPoP proof's jti is too long"))
        );
        c.as_object_mut().unwrap().remove("jti");
        assert!(check(&key.proof(c)).is_err());
    }

    #[test]
    fn at_a_resource_the_proof_must_hash_the_access_token() {
        let key = Key::new();
        let token = "eyJ.access.token";
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        let at_api = Expected {
            htm: "GET",
            htu: "https://rotor.test/api/v1/me",
            access_token: Some(token),
            nonce_required: false,
        };
        let c = |ath: Option<&str>| {
            let mut c = json!({"jti": "j", "htm": "GET", "htu": "https://rotor.test/api/v1/me",
                               "iat": now().unix_timestamp()});
            if let Some(a) = ath {
                c["ath"] = json!(a);
            }
            c
        };
        let nonces = NonceKey::generate();
        assert!(
            verify(
                &key.proof(c(Some(&ath))),
                &at_api,
                &settings(),
                &nonces,
                now()
            )
            .is_ok()
        );
        assert!(verify(&key.proof(c(None)), &at_api, &settings(), &nonces, now()).is_err());
        assert!(
            verify(
                &key.proof(c(Some("x"))),
                &at_api,
                &settings(),
                &nonces,
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn a_required_nonce_must_be_current_and_its_absence_asks_for_one() {
        let key = Key::new();
        let nonces = NonceKey::generate();
        let with_nonce = Expected {
            nonce_required: true,
            ..expected()
        };
        let t = now().unix_timestamp();
        let run = |c: Value| verify(&key.proof(c), &with_nonce, &settings(), &nonces, now());
        assert_eq!(run(claims(t)), Err(ProofError::NonceRequired));
        let mut c = claims(t);
        c["nonce"] = json!(nonces.issue(now()));
        assert!(run(c).is_ok());
        let mut stale = claims(t);
        stale["nonce"] = json!(nonces.issue(now() - Duration::from_secs(180)));
        assert_eq!(run(stale), Err(ProofError::NonceRequired));
        // A bad proof is a bad proof, nonce or not.
        let mut bad = claims(t);
        bad["htm"] = json!("PUT");
        assert!(matches!(run(bad), Err(ProofError::Invalid(_))));
    }

    #[test]
    fn a_binding_holds_only_for_the_proof_of_its_key() {
        let proof = VerifiedProof {
            jkt: "k1".into(),
            jti: TokenHash::of("j"),
            htu: HTU.into(),
        };
        assert!(matches_binding(None, None));
        assert!(matches_binding(None, Some(&proof)));
        assert!(matches_binding(Some("k1"), Some(&proof)));
        assert!(!matches_binding(Some("k2"), Some(&proof)));
        assert!(!matches_binding(Some("k1"), None));
        assert!(is_thumbprint("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
        assert!(!is_thumbprint(
            "NzbLsXh8uDCcd+6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        ));
        assert!(!is_thumbprint("short"));
    }

    #[test]
    fn the_replay_record_outlives_every_proof_its_jti_could_come_in() {
        let proof = VerifiedProof {
            jkt: "k1".into(),
            jti: TokenHash::of("j"),
            htu: HTU.into(),
        };
        let usage = proof.usage(&settings(), now());
        // A proof accepted now has iat ≤ now + 5 s; once the record is gone,
        // any proof must have iat ≥ expiry − 60 s > now + 5 s.
        assert_eq!(usage.expires_at, now() + Duration::from_secs(65));
        assert!(!iat_acceptable(
            now().unix_timestamp() + 5,
            Duration::from_secs(60),
            usage.expires_at + Duration::from_secs(1)
        ));
    }
}
