//! Request bodies to flat parameters, and parameters to typed grant requests.
//!
//! RFC 6749 §3.1/§3.2: parameters sent without a value are treated as omitted,
//! unrecognised parameters are ignored, and parameters must not be repeated.
//! Besides the form body the RFC prescribes, a JSON object is accepted, and so is
//! a form body sent under a JSON content type (what PowerShell's
//! `Invoke-RestMethod -Body $hashtable -ContentType "application/json"` does).

use std::collections::BTreeMap;

use serde::de::{Deserializer, MapAccess, Visitor};

use super::{OAuthError, scope::Scope};
use crate::crypto::{password::Password, token::RefreshToken};

/// The largest parameter value accepted; a refresh token is 52 characters and a
/// JWT access token well under 2 KiB.
pub const MAX_PARAM_LEN: usize = 4096;

/// The longest username accepted, in bytes: as long as `rotor user add` allows, so
/// no longer one can name a user. Failed logins are counted under the username,
/// before anyone is authenticated, and PostgreSQL refuses an index entry over
/// about 2.7 KB: a longer, incompressible name would answer 500.
pub const MAX_USERNAME_LEN: usize = 255;

/// Flat request parameters: each name at most once, empty values dropped.
#[derive(Default)]
pub struct Params(BTreeMap<String, String>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values hold credentials: show names only.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Builds parameters from name/value pairs, enforcing the RFC 6749 §3.1 rules.
    ///
    /// # Errors
    /// `invalid_request` on a repeated parameter or an over-long value.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, OAuthError> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            // RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if
            // they were omitted from the request."
            if value.is_empty() {
                continue;
            }
            let max_len = if name == "username" {
                MAX_USERNAME_LEN
            } else {
                MAX_PARAM_LEN
            };
            if value.len() > max_len {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {name} is too long"
                )));
            }
            // RFC 6749 §3.1: "Request and response parameters MUST NOT be included
            // more than once."
            if map.contains_key(&name) {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {name} is repeated"
                )));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    ///
    /// # Errors
    /// `invalid_request` on a body that is not UTF-8 or breaks the parameter rules.
    pub fn from_form(body: &[u8]) -> Result<Self, OAuthError> {
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::InvalidRequest("the body is not UTF-8".into()));
        }
        Params::from_pairs(
            form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Parses a JSON object of string values. A JSON body that does not start with
    /// `{` is taken as a form body (PowerShell's hashtable under a JSON label).
    ///
    /// # Errors
    /// `invalid_request` on malformed JSON, non-string values, a repeated key, or a
    /// body that is neither.
    pub fn from_json_or_form(body: &[u8]) -> Result<Self, OAuthError> {
        let trimmed = body.trim_ascii_start();
        if !trimmed.starts_with(b"{") {
            return Params::from_form(trimmed);
        }
        let mut de = serde_json::Deserializer::from_slice(trimmed);
        let pairs = de
            .deserialize_map(PairsVisitor)
            .and_then(|pairs| de.end().map(|()| pairs))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => OAuthError::InvalidRequest(e.to_string()),
                _ => OAuthError::InvalidRequest("the body is not valid JSON".into()),
            })?;
        Params::from_pairs(pairs)
    }

    /// A parameter's value, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Removes and returns a parameter's value.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    fn require(&mut self, name: &str) -> Result<String, OAuthError> {
        self.take(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing parameter: {name}")))
    }
}

/// Collects a JSON object as (key, string) pairs, keeping repeated keys so that they
/// can be refused, and refusing values that are not strings (null counts as absent).
struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value::<serde_json::Value>()? {
                serde_json::Value::String(s) => pairs.push((key, s)),
                serde_json::Value::Null => pairs.push((key, String::new())),
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "parameter {key} must be a string"
                    )));
                }
            }
        }
        Ok(pairs)
    }
}

/// A token request, after client authentication parameters were taken out.
#[derive(Debug)]
pub enum GrantRequest {
    /// RFC 6749 §4.3.2.
    Password {
        username: String,
        password: Password,
        scope: Option<Scope>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: RefreshToken,
        scope: Option<Scope>,
    },
}

impl GrantRequest {
    /// The grant type name, for logs and policy checks.
    pub fn grant_type(&self) -> &'static str {
        match self {
            GrantRequest::Password { .. } => "password",
            GrantRequest::RefreshToken { .. } => "refresh_token",
        }
    }
}

impl TryFrom<Params> for GrantRequest {
    type Error = OAuthError;

    fn try_from(mut params: Params) -> Result<Self, OAuthError> {
        let grant_type = params.require("grant_type")?;
        let scope = params.take("scope").map(|s| Scope::parse(&s)).transpose()?;
        match grant_type.as_str() {
            "password" => Ok(GrantRequest::Password {
                username: params.require("username")?,
                password: Password::new(params.require("password")?),
                scope,
            }),
            "refresh_token" => Ok(GrantRequest::RefreshToken {
                refresh_token: RefreshToken::parse(params.require("refresh_token")?),
                scope,
            }),
            other => Err(OAuthError::UnsupportedGrantType(format!(
                "grant type {:?} is not supported; use password or refresh_token",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::from_form(b"grant_type=password&scope=&username=a").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("username"), Some("a"));
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let err = Params::from_form(b"grant_type=password&grant_type=password").unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn json_bodies_give_the_same_params_as_forms() {
        let p =
            Params::from_json_or_form(br#"{"grant_type":"password","username":"a b"}"#).unwrap();
        assert_eq!(p.get("username"), Some("a b"));
    }

    #[test]
    fn form_under_a_json_label_is_parsed_as_form() {
        let p = Params::from_json_or_form(b"username=a%2Bb&grant_type=password").unwrap();
        assert_eq!(p.get("username"), Some("a+b"));
    }

    #[test]
    fn json_number_value_is_invalid_request() {
        let err = Params::from_json_or_form(br#"{"grant_type":1}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn json_key_given_twice_is_invalid_request() {
        let err = Params::from_json_or_form(br#"{"a":"1","a":"2"}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn malformed_json_is_invalid_request() {
        for body in [&b"{\"a\":"[..], b"{\"a\":\"1\"} trailing", b"{}}"] {
            assert_eq!(
                Params::from_json_or_form(body).unwrap_err().code(),
                "invalid_request"
            );
        }
    }

    #[test]
    fn unknown_grant_type_is_unsupported_grant_type() {
        let p = Params::from_form(b"grant_type=client_credentials").unwrap();
        assert_eq!(
            GrantRequest::try_from(p).unwrap_err().code(),
            "unsupported_grant_type"
        );
    }

    #[test]
    fn missing_password_is_invalid_request() {
        let p = Params::from_form(b"grant_type=password&username=a").unwrap();
        assert_eq!(
            GrantRequest::try_from(p).unwrap_err().code(),
            "invalid_request"
        );
    }

    #[test]
    fn debug_of_params_shows_names_only() {
        let p = Params::from_form(b"password=hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
