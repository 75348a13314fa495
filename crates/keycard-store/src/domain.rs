//! Validated domain types. Each has a private field and a `parse` that is the only way in, so
//! storage and handlers never see an unchecked value. The error messages name the field and the
//! rule, and are sent to clients as they are.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A value was refused; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub &'static str);

/// Characters that render as nothing and would let two different usernames look the same.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// An account name: 1 to 64 characters, no whitespace, control or invisible characters.
/// [`Username::key`] is the canonical form used for uniqueness and login, in the spirit of
/// RFC 8265 (UsernameCaseMapped): NFKC (which also maps fullwidth to ASCII), lower case, NFKC
/// again; so `alice`, `Alice` and `ａｌｉｃｅ` are one account. [`Username::as_str`] is the
/// form shown back, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Longest username, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Checks `s` against the username rules.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let refused = |c: char| c.is_whitespace() || c.is_control() || is_invisible(c);
        if s.chars().any(refused) {
            return Err(ValidationError("username must not contain whitespace, control or invisible characters"));
        }
        let key: String = s.nfkc().collect::<String>().to_lowercase().nfkc().collect();
        let chars = key.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || s.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError("username must be 1 to 64 characters long"));
        }
        if key.chars().any(refused) {
            return Err(ValidationError("username must not contain whitespace, control or invisible characters"));
        }
        Ok(Self { display: s.to_owned(), key })
    }

    /// The username as registered.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The canonical (case-folded) form: what uniqueness and login compare.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// A password: NFKC-normalised (NIST SP 800-63B §5.1.1.2, so the same password typed on another
/// keyboard or OS still matches), then 8 to 128 characters, any characters including spaces and
/// emoji, never truncated. Its `Debug` output is redacted so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest password, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest password, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks `s` against the password rules.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let normalized = Self::normalize(s);
        let chars = normalized.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ValidationError("password must be at least 8 characters long"));
        }
        if chars > Self::MAX_CHARS {
            return Err(ValidationError("password must be at most 128 characters long"));
        }
        Ok(Self(normalized))
    }

    /// The NFKC form a password is hashed and checked in (also for login attempts, which are not
    /// held to the length rules).
    pub fn normalize(s: &str) -> String {
        s.nfkc().collect()
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An email address that looks like one: `local@domain.tld`, at most 254 characters, no
/// whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks `s` against the email rules.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        const MSG: &str = "email must be a valid email address (name@example.com)";
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError(MSG));
        }
        let (local, domain) = s.rsplit_once('@').ok_or(ValidationError(MSG))?;
        let labels_ok = domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain.contains('.') || !labels_ok {
            return Err(ValidationError(MSG));
        }
        Ok(Self(s.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role name: 1 to 64 characters of `a-z`, `0-9`, `_`, `-`, `.`, `:`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

impl Role {
    /// Checks `s` against the role rules.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:".contains(&b));
        if !ok {
            return Err(ValidationError(
                "role must be 1 to 64 characters of a-z, 0-9, '_', '-', '.', ':' and start with a letter",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// May log in.
    Active,
    /// Refused at login.
    Disabled,
}

impl UserStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for UserStatus {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err(ValidationError("status must be 'active' or 'disabled'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        for ok in ["a", "alice", "Alice_99", "ünïcødé", "user@example.com", &"x".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", " ", "al ice", "alice\n", "bob\t", "a\u{0}b", "zero\u{200B}width", "\u{FEFF}bom", &"x".repeat(65)]
        {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_compare_case_insensitively_and_keep_their_display_form() {
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse("aLiCe").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Alice");
    }

    #[test]
    fn usernames_are_canonicalised_with_nfkc_and_case_folding() {
        let key = |s: &str| Username::parse(s).unwrap().key().to_owned();
        assert_eq!(key("alice"), key("Alice"));
        assert_eq!(key("alice"), key("ａｌｉｃｅ"));
        assert_eq!(key("ÅNGSTRÖM"), key("a\u{30a}ngstro\u{308}m"));
        assert_eq!(Username::parse("ａｌｉｃｅ").unwrap().as_str(), "ａｌｉｃｅ");
        assert!(Username::parse("ali\u{200D}ce").is_err());
        assert!(Username::parse("a\u{3000}b").is_err(), "ideographic space");
    }

    #[test]
    fn passwords_are_nfkc_normalised() {
        let composed = Password::parse("caf\u{e9} au lait").unwrap();
        let decomposed = Password::parse("cafe\u{301} au lait").unwrap();
        assert_eq!(composed.expose(), decomposed.expose());
        assert_eq!(Password::parse("ｐａｓｓｗｏｒｄ１２").unwrap().expose(), "password12");
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("ééééééé").is_err());
        assert!(Password::parse("correct horse battery").is_ok());
        assert!(Password::parse(&"🔑".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn emails_must_look_like_emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@b..c", "a@-b.c", "a@b.c.", "a@b@c.de"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_follow_the_rules() {
        for ok in ["admin", "billing:read", "a1_-."] {
            assert!(Role::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Admin", "1admin", "ad min", "ad\"min", &"r".repeat(65)] {
            assert!(Role::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_accepted_usernames_hold_the_invariants(s in "\\PC{0,80}|.{0,80}") {
            let _ = Password::parse(&s);
            let _ = Email::parse(&s);
            let _ = Role::parse(&s);
            if let Ok(u) = Username::parse(&s) {
                let n = u.as_str().chars().count();
                prop_assert!((1..=64).contains(&n));
                prop_assert!(!u.as_str().chars().any(char::is_whitespace));
                if u.as_str().is_ascii() {
                    let upper = Username::parse(&u.as_str().to_uppercase()).unwrap();
                    prop_assert_eq!(upper.key(), u.key());
                }
            }
        }
    }
}
