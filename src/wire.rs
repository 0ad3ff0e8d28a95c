//! Closed sets of names that the RFCs put on the wire: grant types and token types.
//! A leaf module (it imports nothing of the crate), so that the protocol, the store
//! and the CLI can all name them without importing each other.

use std::fmt;

/// An OAuth grant type (RFC 6749 §4, §6). Adding a grant is one variant here and
/// one file under `oauth/grant/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// RFC 6749 §4.3: the resource owner's password.
    Password,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4: the client on its own behalf.
    ClientCredentials,
    /// RFC 6749 §4.1 with PKCE (RFC 7636): a person signs in at rotor's login page.
    AuthorizationCode,
}

impl GrantType {
    /// Every grant type rotor implements, in the order the metadata lists them.
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    /// The `grant_type` value (RFC 6749 Appendix A.10).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
        }
    }

    /// The grant type named `name`, if rotor implements it.
    pub fn parse(name: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The names of every grant type, for messages.
    pub fn names() -> String {
        GrantType::ALL.map(GrantType::as_str).join(", ")
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `token_type` of an issued access token (RFC 6749 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// RFC 6750.
    Bearer,
    /// RFC 9449 §5: bound to the key of the client's DPoP proof.
    DPoP,
}

impl TokenType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "Bearer",
            TokenType::DPoP => "DPoP",
        }
    }
}

impl serde::Serialize for TokenType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_type_parses_from_its_own_name() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::parse("implicit"), None);
        assert_eq!(GrantType::parse("Password"), None);
    }

    #[test]
    fn token_type_serializes_as_its_wire_value() {
        assert_eq!(
            serde_json::to_string(&TokenType::Bearer).unwrap(),
            r#""Bearer""#
        );
        assert_eq!(
            serde_json::to_string(&TokenType::DPoP).unwrap(),
            r#""DPoP""#
        );
    }
}
