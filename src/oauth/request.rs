//! Request bodies to flat parameters, and parameters to typed grant requests.
//!
//! RFC 6749 §3.1/§3.2: parameters sent without a value are treated as omitted,
//! unrecognised parameters are ignored, and parameters must not be repeated.
//! Besides the form body the RFC prescribes, a JSON object is accepted, and so is
//! a form body sent under a JSON content type (what PowerShell's
//! `Invoke-RestMethod -Body $hashtable -ContentType "application/json"` does).
//!
//! Every name and value is checked against the character rules of RFC 6749
//! Appendix A here, at parse time (see [`syntax`]), so that no endpoint sees a
//! value its class does not allow.

use std::collections::BTreeMap;

use serde::de::{Deserializer, MapAccess, Visitor};

use super::{GrantType, OAuthError, scope::Scope};
use crate::crypto::{
    password::Password,
    token::{AuthorizationCode, RefreshToken},
};

pub mod syntax;

use syntax::{Charset, Fault};

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
    /// Builds parameters from name/value pairs, enforcing the RFC 6749 §3.1 rules
    /// and the character class of each parameter (Appendix A).
    ///
    /// # Errors
    /// `invalid_request` on a repeated parameter, an over-long value, a control
    /// character in a name or value, or a value outside its class (`scope` aside,
    /// whose other characters are the scope parser's `invalid_scope`).
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, OAuthError> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            // A name the client chose is never echoed, and one with a control
            // character is refused like such a value.
            if name.chars().any(syntax::is_control) {
                return Err(OAuthError::InvalidRequest(
                    "a parameter name contains a control character".into(),
                ));
            }
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
                    "{} is too long",
                    described(&name)
                )));
            }
            check_value(&name, &value)?;
            // RFC 6749 §3.1: "Request and response parameters MUST NOT be included
            // more than once."
            if map.contains_key(&name) {
                return Err(OAuthError::InvalidRequest(format!(
                    "{} is repeated",
                    described(&name)
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
        let members = de
            .deserialize_map(MembersVisitor)
            .and_then(|members| de.end().map(|()| members))
            .map_err(|_| OAuthError::InvalidRequest("the body is not valid JSON".into()))?;
        let mut pairs = Vec::with_capacity(members.len());
        for (name, value) in members {
            match value {
                Member::Text(text) => pairs.push((name, text)),
                Member::Other => {
                    return Err(OAuthError::InvalidRequest(format!(
                        "{} must be a string",
                        described(&name)
                    )));
                }
            }
        }
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

/// How a parameter is named in an error description: by its name when rotor knows
/// it, else generically, so that a name the client chose is never echoed.
fn described(name: &str) -> String {
    syntax::known_name(name).map_or_else(
        || "a parameter rotor does not use".to_owned(),
        |known| format!("parameter {known}"),
    )
}

/// Checks a parameter's value against its character class (RFC 6749 Appendix A).
///
/// # Errors
/// `invalid_request` on a control character, or on a character outside the class
/// of a parameter other than `scope`.
pub fn check_value(name: &str, value: &str) -> Result<(), OAuthError> {
    let charset = Charset::of_parameter(name);
    match charset.check(value) {
        Ok(()) => Ok(()),
        Err(Fault::Control) => Err(OAuthError::InvalidRequest(format!(
            "{} contains a control character",
            described(name)
        ))),
        // RFC 6749 §3.3: a scope outside scope-token is `invalid_scope`, which the
        // scope parser decides.
        Err(Fault::Outside) if charset == Charset::Scope => Ok(()),
        Err(Fault::Outside) => Err(OAuthError::InvalidRequest(format!(
            "{} contains a character RFC 6749 Appendix A does not allow in it",
            described(name)
        ))),
    }
}

/// A member of a JSON body: a string (null counts as an empty one, so as absent),
/// or anything else, which is refused once the body is known to be valid JSON.
enum Member {
    Text(String),
    Other,
}

/// Collects a JSON object as its members in order, keeping repeated keys so that
/// they can be refused.
struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(String, Member)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let member = match map.next_value::<serde_json::Value>()? {
                serde_json::Value::String(s) => Member::Text(s),
                serde_json::Value::Null => Member::Text(String::new()),
                _ => Member::Other,
            };
            members.push((key, member));
        }
        Ok(members)
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
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<Scope> },
    /// RFC 6749 §4.1.3 with RFC 7636 §4.5.
    AuthorizationCode {
        code: AuthorizationCode,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
}

impl GrantRequest {
    /// The grant type, for logs, metrics and policy checks.
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::Password { .. } => GrantType::Password,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            GrantRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
        }
    }
}

impl TryFrom<Params> for GrantRequest {
    type Error = OAuthError;

    fn try_from(mut params: Params) -> Result<Self, OAuthError> {
        let grant_type = params.require("grant_type")?;
        let scope = params.take("scope").map(|s| Scope::parse(&s)).transpose()?;
        match GrantType::parse(&grant_type) {
            Some(GrantType::Password) => Ok(GrantRequest::Password {
                username: params.require("username")?,
                password: Password::new(params.require("password")?),
                scope,
            }),
            Some(GrantType::RefreshToken) => Ok(GrantRequest::RefreshToken {
                refresh_token: RefreshToken::parse(params.require("refresh_token")?),
                scope,
            }),
            Some(GrantType::ClientCredentials) => Ok(GrantRequest::ClientCredentials { scope }),
            Some(GrantType::AuthorizationCode) => Ok(GrantRequest::AuthorizationCode {
                code: AuthorizationCode::parse(params.require("code")?),
                redirect_uri: params.take("redirect_uri"),
                code_verifier: params.take("code_verifier"),
            }),
            None => Err(OAuthError::UnsupportedGrantType(format!(
                "this grant type is not supported; use one of {}",
                GrantType::names()
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
        let p =
            Params::from_form(b"grant_type=urn:ietf:params:oauth:grant-type:device_code").unwrap();
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
    fn unsupported_grant_type_description_repeats_nothing_of_the_request() {
        let p = Params::from_form(b"grant_type=urn%3Aevil%3Ahello-world").unwrap();
        let err = GrantRequest::try_from(p).unwrap_err();
        assert_eq!(err.code(), "unsupported_grant_type");
        assert!(!err.description().contains("evil"), "{}", err.description());
    }

    /// A form body and a JSON body with one parameter set to `value`.
    fn bodies(name: &str, value: &str) -> [Result<Params, OAuthError>; 2] {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        let mut object = serde_json::Map::new();
        object.insert(name.to_owned(), value.into());
        let json = serde_json::Value::Object(object).to_string();
        [
            Params::from_form(form.as_bytes()),
            Params::from_json_or_form(json.as_bytes()),
        ]
    }

    const EVERY_PARAMETER: [&str; 11] = [
        "grant_type",
        "client_id",
        "client_secret",
        "username",
        "password",
        "scope",
        "refresh_token",
        "code",
        "token",
        "token_type_hint",
        "favourite_colour",
    ];

    #[test]
    fn a_control_character_in_any_parameter_is_invalid_request() {
        for name in EVERY_PARAMETER {
            for c in ['\0', '\x01', '\n', '\r', '\x1b', '\x7f'] {
                for parsed in bodies(name, &format!("a{c}b")) {
                    let err = parsed.unwrap_err();
                    assert_eq!(err.code(), "invalid_request", "{name} {c:?}");
                }
            }
        }
    }

    #[test]
    fn tab_is_allowed_in_username_and_password_only() {
        for name in EVERY_PARAMETER {
            for parsed in bodies(name, "a\tb") {
                let allowed = matches!(name, "username" | "password");
                assert_eq!(parsed.is_ok(), allowed, "{name}");
            }
        }
    }

    #[test]
    fn client_credentials_and_tokens_are_vschar_and_credentials_of_users_are_unicode() {
        for name in [
            "client_id",
            "client_secret",
            "refresh_token",
            "token",
            "code",
        ] {
            for parsed in bodies(name, "caf\u{e9}") {
                assert_eq!(parsed.unwrap_err().code(), "invalid_request", "{name}");
            }
            for parsed in bodies(name, "any printable: %+/\"\\~") {
                assert!(parsed.is_ok(), "{name}");
            }
        }
        for name in ["username", "password"] {
            for parsed in bodies(name, "J\u{f6}rg \u{1F600}") {
                assert!(parsed.is_ok(), "{name}");
            }
            for parsed in bodies(name, "a\u{FFFF}") {
                assert_eq!(parsed.unwrap_err().code(), "invalid_request", "{name}");
            }
        }
    }

    #[test]
    fn a_grant_type_outside_grant_name_and_uri_is_invalid_request() {
        for parsed in bodies("grant_type", "pass word") {
            assert_eq!(parsed.unwrap_err().code(), "invalid_request");
        }
    }

    #[test]
    fn a_quote_in_scope_passes_the_parameter_rules_and_is_invalid_scope() {
        let p =
            Params::from_form(b"grant_type=password&username=a&password=b&scope=%22x%22").unwrap();
        assert_eq!(
            GrantRequest::try_from(p).unwrap_err().code(),
            "invalid_scope"
        );
    }

    #[test]
    fn a_control_character_in_a_parameter_name_is_invalid_request() {
        let err = Params::from_form(b"user%00name=a").unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        let err = Params::from_json_or_form(br#"{"x\u0001":""}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn names_the_client_made_up_are_never_echoed() {
        let repeated = Params::from_form(b"%22evil%5C=1&%22evil%5C=2").unwrap_err();
        let too_long =
            Params::from_form(format!("evil={}", "a".repeat(MAX_PARAM_LEN + 1)).as_bytes())
                .unwrap_err();
        let not_a_string = Params::from_json_or_form(br#"{"evil\"":1}"#).unwrap_err();
        for err in [repeated, too_long, not_a_string] {
            assert_eq!(err.code(), "invalid_request");
            assert!(!err.description().contains("evil"), "{}", err.description());
        }
    }

    #[test]
    fn known_names_are_named_in_descriptions() {
        let err = Params::from_json_or_form(br#"{"username":["a"]}"#).unwrap_err();
        assert!(
            err.description().contains("username"),
            "{}",
            err.description()
        );
        let err = Params::from_form(b"client_id=%00").unwrap_err();
        assert!(
            err.description().contains("client_id"),
            "{}",
            err.description()
        );
    }

    #[test]
    fn debug_of_params_shows_names_only() {
        let p = Params::from_form(b"password=hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
