//! Scopes (RFC 6749 §3.3): a space-delimited set of case-sensitive tokens.

use std::fmt;

use super::{OAuthError, request::syntax};

/// A validated, de-duplicated scope set, kept in the order first given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Parses a `scope` parameter.
    ///
    /// # Errors
    /// `invalid_request` when it holds a control character, which makes the request
    /// malformed whatever the parameter; `invalid_scope` when a token has another
    /// character RFC 6749 §3.3 does not allow.
    pub fn parse(text: &str) -> Result<Scope, OAuthError> {
        if text.chars().any(syntax::is_control) {
            return Err(OAuthError::InvalidRequest(
                "scope contains a control character".into(),
            ));
        }
        let mut tokens: Vec<String> = Vec::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token.chars().all(syntax::is_nqchar) {
                return Err(OAuthError::InvalidScope(
                    "scope contains a character RFC 6749 section 3.3 does not allow".into(),
                ));
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Scope(tokens))
    }

    /// Builds a scope from stored values, which were validated when stored.
    pub fn from_stored(values: &[String]) -> Scope {
        let mut tokens: Vec<String> = Vec::new();
        for v in values {
            if !tokens.contains(v) {
                tokens.push(v.clone());
            }
        }
        Scope(tokens)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.0.contains(t))
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens.
    pub fn tokens(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Chooses the scope of a grant: the requested one when it is within `allowed`,
/// else all of `allowed` when none was requested.
///
/// # Errors
/// `invalid_scope` when the request asks for a token outside `allowed`.
pub fn narrow(requested: Option<Scope>, allowed: &Scope) -> Result<Scope, OAuthError> {
    match requested {
        None => Ok(allowed.clone()),
        Some(s) if s.is_empty() => Ok(allowed.clone()),
        Some(s) if s.is_subset_of(allowed) => Ok(s),
        Some(_) => Err(OAuthError::InvalidScope(
            "the requested scope exceeds the scope granted".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parsing_drops_duplicates_and_extra_spaces() {
        let s = Scope::parse("read  write read").unwrap();
        assert_eq!(s.to_string(), "read write");
    }

    #[test]
    fn scope_with_a_quote_or_backslash_is_invalid_scope() {
        assert!(matches!(
            Scope::parse("re\"ad"),
            Err(OAuthError::InvalidScope(_))
        ));
        assert!(matches!(
            Scope::parse("a\\b"),
            Err(OAuthError::InvalidScope(_))
        ));
    }

    #[test]
    fn scope_with_a_non_ascii_character_is_invalid_scope() {
        assert!(matches!(
            Scope::parse("caf\u{e9}"),
            Err(OAuthError::InvalidScope(_))
        ));
    }

    #[test]
    fn scope_with_a_control_character_is_invalid_request() {
        for text in ["read\0", "read\twrite", "read\nwrite", "\x7f"] {
            assert!(
                matches!(Scope::parse(text), Err(OAuthError::InvalidRequest(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn narrowing_within_the_grant_keeps_the_request() {
        let allowed = Scope::parse("read write").unwrap();
        let got = narrow(Some(Scope::parse("read").unwrap()), &allowed).unwrap();
        assert_eq!(got.to_string(), "read");
    }

    #[test]
    fn no_requested_scope_means_the_whole_grant() {
        let allowed = Scope::parse("read write").unwrap();
        assert_eq!(narrow(None, &allowed).unwrap(), allowed);
    }

    fn scope_tokens() -> impl proptest::strategy::Strategy<Value = Vec<String>> {
        proptest::collection::vec("[a-e]{1,2}", 0..6)
    }

    proptest::proptest! {
        #[test]
        fn narrowing_never_widens(requested in scope_tokens(), allowed in scope_tokens()) {
            let allowed = Scope::parse(&allowed.join(" ")).unwrap();
            let requested = Scope::parse(&requested.join(" ")).unwrap();
            match narrow(Some(requested.clone()), &allowed) {
                Ok(granted) => {
                    proptest::prop_assert!(granted.is_subset_of(&allowed));
                    if !requested.is_empty() {
                        proptest::prop_assert_eq!(granted, requested);
                    }
                }
                Err(e) => {
                    proptest::prop_assert_eq!(e.code(), "invalid_scope");
                    proptest::prop_assert!(!requested.is_subset_of(&allowed));
                }
            }
            proptest::prop_assert_eq!(narrow(None, &allowed).unwrap(), allowed);
        }

        #[test]
        fn parsed_scopes_print_back_to_themselves(tokens in scope_tokens()) {
            let scope = Scope::parse(&tokens.join(" ")).unwrap();
            proptest::prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope);
        }
    }

    #[test]
    fn refresh_with_wider_scope_is_invalid_scope() {
        let allowed = Scope::parse("read").unwrap();
        let err = narrow(Some(Scope::parse("read admin").unwrap()), &allowed).unwrap_err();
        assert_eq!(err.code(), "invalid_scope");
    }
}
