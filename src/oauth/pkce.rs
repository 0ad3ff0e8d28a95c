//! Proof Key for Code Exchange (RFC 7636), the way OAuth 2.1 §4.1.1 and RFC 9700
//! §2.1.1 require it: `S256` only, a challenge required of every public client and,
//! unless the operator relaxed it, of confidential ones too.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::OAuthError;

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
const VERIFIER_LEN: std::ops::RangeInclusive<usize> = 43..=128;

/// RFC 7636 §4.1: `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// An `S256` code challenge as the authorization request sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Reads `code_challenge` and `code_challenge_method` of an authorization
    /// request.
    ///
    /// # Errors
    /// `invalid_request` for a method other than `S256` (RFC 9700 §2.1.1: `plain`
    /// is not used), a method without a challenge, or a challenge that is not the
    /// 43 base64url characters of a SHA-256.
    pub fn from_request(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Option<CodeChallenge>, OAuthError> {
        match (challenge, method) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(OAuthError::InvalidRequest(
                "code_challenge_method was sent without code_challenge".into(),
            )),
            // RFC 7636 §4.3: an absent method means plain, which rotor refuses.
            (Some(_), None | Some("plain")) => Err(OAuthError::InvalidRequest(
                "code_challenge_method must be S256; plain is not supported".into(),
            )),
            (Some(_), Some(m)) if m != "S256" => Err(OAuthError::InvalidRequest(
                "code_challenge_method must be S256".into(),
            )),
            (Some(c), Some(_)) => {
                if c.len() == 43 && c.chars().all(is_unreserved) {
                    Ok(Some(CodeChallenge(c.to_owned())))
                } else {
                    Err(OAuthError::InvalidRequest(
                        "code_challenge must be the base64url SHA-256 of the verifier".into(),
                    ))
                }
            }
        }
    }

    /// A challenge as stored with its code.
    pub fn from_stored(text: String) -> CodeChallenge {
        CodeChallenge(text)
    }

    /// The challenge text, to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) ==
    /// code_challenge`, compared in constant time.
    pub fn is_met_by(&self, verifier: &str) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// Checks the form of a `code_verifier` (RFC 7636 §4.1).
///
/// # Errors
/// `invalid_request` when it is not 43 to 128 unreserved characters.
pub fn check_verifier(verifier: &str) -> Result<(), OAuthError> {
    if VERIFIER_LEN.contains(&verifier.len()) && verifier.chars().all(is_unreserved) {
        Ok(())
    } else {
        Err(OAuthError::InvalidRequest(
            "code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        let challenge = CodeChallenge::from_request(Some(CHALLENGE), Some("S256"))
            .unwrap()
            .unwrap();
        assert!(challenge.is_met_by(VERIFIER));
        assert!(!challenge.is_met_by(&VERIFIER.replace('d', "e")));
        check_verifier(VERIFIER).unwrap();
    }

    #[test]
    fn plain_an_absent_method_and_odd_challenges_are_refused() {
        for (challenge, method) in [
            (Some(CHALLENGE), Some("plain")),
            (Some(CHALLENGE), None),
            (Some(CHALLENGE), Some("s256")),
            (None, Some("S256")),
            (Some("short"), Some("S256")),
            (Some(&*format!("{}=", &CHALLENGE[..42])), Some("S256")),
        ] {
            let err = CodeChallenge::from_request(challenge, method).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{challenge:?} {method:?}");
        }
        assert_eq!(CodeChallenge::from_request(None, None).unwrap(), None);
    }

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(check_verifier(&"a".repeat(42)).is_err());
        assert!(check_verifier(&"a".repeat(129)).is_err());
        assert!(check_verifier(&"a".repeat(128)).is_ok());
        assert!(check_verifier(&format!("{}+", "a".repeat(43))).is_err());
    }
}
