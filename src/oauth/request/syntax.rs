//! The character classes of RFC 6749 Appendix A, and which one each request
//! parameter must keep to. Every check of what characters a value may hold lives
//! here: request parameters, the id and secret inside a Basic header, client ids
//! registered by the CLI, and the `error_description` the server sends back.
//!
//! A value that breaks its class never reaches the store: PostgreSQL refuses
//! U+0000 in `text`, and a control character has no business in a log line either.

/// RFC 6749 Appendix A: `VSCHAR = %x20-7E`, the printable ASCII characters and the
/// space (`client_id` A.1, `client_secret` A.2, `code` A.11, access tokens A.12,
/// `refresh_token` A.17).
pub fn is_vschar(c: char) -> bool {
    matches!(c, '\x20'..='\x7E')
}

/// RFC 6749 Appendix A: `NQCHAR = %x21 / %x23-5B / %x5D-7E`, VSCHAR without the
/// space, `"` and `\` (the characters of a scope token, §3.3).
pub fn is_nqchar(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// RFC 6749 Appendix A: `NQSCHAR = %x20-21 / %x23-5B / %x5D-7E`, VSCHAR without
/// `"` and `\` (the characters of `error_description`, §5.2).
pub fn is_nqschar(c: char) -> bool {
    c == ' ' || is_nqchar(c)
}

/// RFC 6749 Appendix A: `UNICODECHARNOCRLF = %x09 / %x20-7E / %x80-D7FF /
/// %xE000-FFFD / %x10000-10FFFF` (`username` A.15, `password` A.16). A Rust `char`
/// is never a surrogate, so %xD800-DFFF needs no test of its own.
pub fn is_unicode_char_no_crlf(c: char) -> bool {
    matches!(c, '\x09' | '\x20'..='\x7E' | '\u{80}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// A control character: `%x00-1F / %x7F` (RFC 5234 `CTL`). No parameter may hold
/// one, whatever its class, except the tab that A.15 and A.16 allow.
pub fn is_control(c: char) -> bool {
    matches!(c, '\x00'..='\x1F' | '\x7F')
}

/// RFC 6749 Appendix A.10: `grant-type = grant-name / URI-reference`, where
/// `grant-name = 1*name-char` and `name-char = "-" / "." / "_" / DIGIT / ALPHA`.
/// A URI reference is made of RFC 3986 §2 characters (unreserved, reserved and `%`),
/// which include every name-char; its finer grammar is not checked, since a grant
/// type rotor does not know is `unsupported_grant_type` anyway.
pub fn is_grant_type_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// The character rule one parameter keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `*VSCHAR`.
    Visible,
    /// `*UNICODECHARNOCRLF`.
    UnicodeNoCrLf,
    /// `scope` (§3.3): only control characters are refused here, as
    /// `invalid_request`; any other character outside a scope token is the
    /// scope parser's `invalid_scope`.
    Scope,
    /// `grant_type` (A.10).
    GrantType,
    /// A parameter RFC 6749 gives no narrower rule, or one rotor does not use: no
    /// control character.
    NoControl,
}

/// The parameters rotor reads (or that RFC 6749 defines as tokens), with their
/// rules. Their names are also the only ones an error description may repeat.
const PARAMETERS: &[(&str, Charset)] = &[
    ("grant_type", Charset::GrantType),
    ("client_id", Charset::Visible),
    ("client_secret", Charset::Visible),
    ("username", Charset::UnicodeNoCrLf),
    ("password", Charset::UnicodeNoCrLf),
    ("scope", Charset::Scope),
    ("refresh_token", Charset::Visible),
    ("code", Charset::Visible),
    // RFC 6749 A.6 (a URI reference: a subset of VSCHAR without the space, which
    // the registration and the exact comparison check).
    ("redirect_uri", Charset::Visible),
    // RFC 7636 §4.1-4.2; their finer rules are the PKCE module's.
    ("code_verifier", Charset::Visible),
    ("code_challenge", Charset::Visible),
    ("code_challenge_method", Charset::Visible),
    // RFC 6749 A.3, A.5.
    ("response_type", Charset::Visible),
    ("state", Charset::Visible),
    ("prompt", Charset::Visible),
    ("login_hint", Charset::UnicodeNoCrLf),
    // RFC 7009 §2.1 and RFC 7662 §2.1: an access token (A.12) or refresh token (A.17).
    ("token", Charset::Visible),
    ("token_type_hint", Charset::Visible),
];

/// A parameter name rotor knows, as a string of its own: safe to put in an error
/// description, where a name the client made up must never appear.
pub fn known_name(name: &str) -> Option<&'static str> {
    PARAMETERS.iter().find(|(n, _)| *n == name).map(|(n, _)| *n)
}

/// What is wrong with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It holds a control character (`invalid_request` wherever it is).
    Control,
    /// It holds a character its class does not allow.
    Outside,
}

impl Charset {
    /// The rule of the parameter `name`.
    pub fn of_parameter(name: &str) -> Charset {
        PARAMETERS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Charset::NoControl, |(_, charset)| *charset)
    }

    /// Whether the class allows `c`.
    pub fn allows(self, c: char) -> bool {
        match self {
            Charset::Visible => is_vschar(c),
            Charset::UnicodeNoCrLf => is_unicode_char_no_crlf(c),
            Charset::GrantType => is_grant_type_char(c),
            Charset::Scope | Charset::NoControl => !is_control(c),
        }
    }

    /// Checks every character of `value`.
    ///
    /// # Errors
    /// [`Fault::Control`] when any character is a control character the class does
    /// not allow, else [`Fault::Outside`] when any other character is outside it.
    pub fn check(self, value: &str) -> Result<(), Fault> {
        let mut fault = None;
        for c in value.chars().filter(|&c| !self.allows(c)) {
            if is_control(c) {
                return Err(Fault::Control);
            }
            fault = Some(Fault::Outside);
        }
        fault.map_or(Ok(()), Err)
    }
}

/// `text` as an RFC 6749 §5.2 `error_description` may carry it: every character
/// outside NQSCHAR becomes `?`. The last line of defence; descriptions are written
/// without such characters in the first place.
pub fn error_text(text: &str) -> String {
    text.chars()
        .map(|c| if is_nqschar(c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character up to U+FFFF, the edge of the supplementary planes and the
    /// last code point.
    fn all_chars() -> impl Iterator<Item = char> {
        (0..=0x1_0100u32)
            .chain([0x10_FFFF])
            .filter_map(char::from_u32)
    }

    #[test]
    fn vschar_is_exactly_printable_ascii_and_space() {
        for c in all_chars() {
            assert_eq!(is_vschar(c), (0x20..=0x7E).contains(&(c as u32)), "{c:?}");
        }
    }

    #[test]
    fn nqchar_is_vschar_without_space_quote_and_backslash() {
        for c in all_chars() {
            let expected = is_vschar(c) && !matches!(c, ' ' | '"' | '\\');
            assert_eq!(is_nqchar(c), expected, "{c:?}");
        }
    }

    #[test]
    fn nqschar_is_vschar_without_quote_and_backslash() {
        for c in all_chars() {
            let expected = is_vschar(c) && !matches!(c, '"' | '\\');
            assert_eq!(is_nqschar(c), expected, "{c:?}");
        }
    }

    #[test]
    fn unicode_char_no_crlf_allows_tab_and_refuses_other_controls_and_nonchars() {
        for c in all_chars() {
            let n = c as u32;
            let expected = n == 0x09
                || (0x20..=0x7E).contains(&n)
                || (0x80..=0xD7FF).contains(&n)
                || (0xE000..=0xFFFD).contains(&n)
                || n >= 0x1_0000;
            assert_eq!(is_unicode_char_no_crlf(c), expected, "{c:?}");
        }
        assert!(is_unicode_char_no_crlf('é'));
        assert!(is_unicode_char_no_crlf('\u{1F600}'));
        assert!(!is_unicode_char_no_crlf('\u{FFFE}'));
    }

    #[test]
    fn control_characters_are_c0_and_del() {
        for c in all_chars() {
            let n = c as u32;
            assert_eq!(is_control(c), n <= 0x1F || n == 0x7F, "{c:?}");
        }
    }

    #[test]
    fn grant_type_chars_cover_grant_names_and_uris_only() {
        for name in ["password", "refresh_token", "client-credentials.v2"] {
            assert!(Charset::GrantType.check(name).is_ok(), "{name}");
        }
        assert!(
            Charset::GrantType
                .check("urn:ietf:params:oauth:grant-type:jwt-bearer")
                .is_ok()
        );
        for bad in ["pass word", "a\"b", "a\\b", "é", "a<b>"] {
            assert_eq!(Charset::GrantType.check(bad), Err(Fault::Outside), "{bad}");
        }
        assert_eq!(Charset::GrantType.check("pass\0"), Err(Fault::Control));
    }

    #[test]
    fn each_parameter_has_its_appendix_a_class() {
        assert_eq!(Charset::of_parameter("client_id"), Charset::Visible);
        assert_eq!(Charset::of_parameter("client_secret"), Charset::Visible);
        assert_eq!(Charset::of_parameter("username"), Charset::UnicodeNoCrLf);
        assert_eq!(Charset::of_parameter("password"), Charset::UnicodeNoCrLf);
        assert_eq!(Charset::of_parameter("scope"), Charset::Scope);
        assert_eq!(Charset::of_parameter("grant_type"), Charset::GrantType);
        for token in ["refresh_token", "token", "code", "token_type_hint"] {
            assert_eq!(Charset::of_parameter(token), Charset::Visible, "{token}");
        }
        assert_eq!(
            Charset::of_parameter("favourite_colour"),
            Charset::NoControl
        );
    }

    #[test]
    fn a_control_character_is_a_control_fault_in_every_class() {
        for charset in [
            Charset::Visible,
            Charset::UnicodeNoCrLf,
            Charset::Scope,
            Charset::GrantType,
            Charset::NoControl,
        ] {
            for c in ['\0', '\x01', '\n', '\r', '\x1F', '\x7F'] {
                assert_eq!(
                    charset.check(&format!("a{c}b")),
                    Err(Fault::Control),
                    "{charset:?} {c:?}"
                );
            }
        }
    }

    #[test]
    fn a_control_character_wins_over_another_fault_wherever_it_is() {
        assert_eq!(Charset::Visible.check("é\0"), Err(Fault::Control));
        assert_eq!(Charset::Visible.check("\0é"), Err(Fault::Control));
        assert_eq!(Charset::Visible.check("é"), Err(Fault::Outside));
    }

    #[test]
    fn tab_is_allowed_in_username_and_password_only() {
        assert!(Charset::UnicodeNoCrLf.check("a\tb").is_ok());
        assert_eq!(Charset::Visible.check("a\tb"), Err(Fault::Control));
        assert_eq!(Charset::NoControl.check("a\tb"), Err(Fault::Control));
    }

    #[test]
    fn visible_values_may_hold_spaces_and_any_printable_ascii() {
        assert!(Charset::Visible.check("my client:1 %+/\"\\~").is_ok());
    }

    #[test]
    fn scope_refuses_control_characters_and_leaves_the_rest_to_the_scope_parser() {
        assert!(Charset::Scope.check("read \"write\" é").is_ok());
        assert_eq!(Charset::Scope.check("read\0"), Err(Fault::Control));
    }

    #[test]
    fn only_known_parameter_names_are_repeated() {
        assert_eq!(known_name("username"), Some("username"));
        assert_eq!(known_name("user\"name"), None);
        assert_eq!(known_name("favourite_colour"), None);
    }

    #[test]
    fn error_text_keeps_nqschar_and_replaces_everything_else() {
        assert_eq!(
            error_text("grant \"x\\y\" \0§é\n ok"),
            "grant ?x?y? ???? ok"
        );
        let every: String = all_chars().collect();
        assert!(error_text(&every).chars().all(is_nqschar));
    }
}
