//! Validated domain types. Each has a private field and a `parse` that is the only way in, so
//! storage and handlers never see an unchecked value. The error messages name the field and the
//! rule, and are sent to clients as they are.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A value was refused; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub &'static str);

/// Why a character may not appear in a username, if it may not: the PRECIS IdentifierClass
/// (RFC 8264 §4.2, as used by RFC 8265's UsernameCaseMapped), computed from the Unicode
/// properties of ICU4X (`icu_properties`, the Unicode Consortium's own data) rather than from
/// hand-kept tables.
///
/// Allowed: printable ASCII (`!`..=`~`) and the letters, digits and combining marks of any
/// script (LetterDigits: Ll, Lu, Lo, Lm, Mn, Mc, Nd; Lt is case-mapped away before the check),
/// plus RFC 5892's PVALID exceptions. Everything else is refused, and in particular, whatever
/// its category: every Default_Ignorable_Code_Point (Hangul fillers, variation selectors, tag
/// characters, U+17B4, ...), every Bidi_Control, and every Cc, Cf, Co, Cs and Cn code point
/// (RFC 8264 §9: Controls, PrecisIgnorableProperties, Unassigned); spaces, symbols and non-ASCII
/// punctuation (Spaces, Symbols, Punctuation: U+2800 BRAILLE PATTERN BLANK is a symbol that
/// draws nothing). Conjoining jamo are refused as typed, see [`is_conjoining_jamo`].
fn refusal(c: char) -> Option<Refusal> {
    use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory};
    use icu_properties::{CodePointMapData, CodePointSetData};

    if matches!(c, '!'..='~') {
        return None;
    }
    if c.is_whitespace()
        || is_bidi_control(c)
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || CodePointSetData::new::<BidiControl>().contains(c)
    {
        return Some(Refusal::Invisible);
    }
    // RFC 5892 §2.6 exceptions: PVALID despite their category, or DISALLOWED despite it.
    if matches!(c, '\u{06FD}' | '\u{06FE}' | '\u{0F0B}' | '\u{3007}') {
        return None;
    }
    if matches!(c, '\u{0640}' | '\u{07FA}' | '\u{302E}' | '\u{302F}' | '\u{3031}'..='\u{3035}' | '\u{303B}') {
        return Some(Refusal::NotInClass);
    }
    match CodePointMapData::<GeneralCategory>::new().get(c) {
        GeneralCategory::LowercaseLetter
        | GeneralCategory::UppercaseLetter
        | GeneralCategory::OtherLetter
        | GeneralCategory::ModifierLetter
        | GeneralCategory::NonspacingMark
        | GeneralCategory::SpacingMark
        | GeneralCategory::DecimalNumber => None,
        GeneralCategory::Control
        | GeneralCategory::Format
        | GeneralCategory::PrivateUse
        | GeneralCategory::Surrogate
        | GeneralCategory::Unassigned
        | GeneralCategory::SpaceSeparator
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => Some(Refusal::Invisible),
        // U+2800 BRAILLE PATTERN BLANK is a symbol that draws nothing.
        _ if c == '\u{2800}' => Some(Refusal::Invisible),
        _ => Some(Refusal::NotInClass),
    }
}

/// Conjoining Hangul jamo (Hangul_Syllable_Type L, V or T: RFC 5892 §2.9 OldHangulJamo),
/// refused as typed. Not in the key: NFKC maps the everyday compatibility jamo (ㄱ, U+3131) to
/// conjoining ones, and those are fine there.
fn is_conjoining_jamo(c: char) -> bool {
    use icu_properties::CodePointMapData;
    use icu_properties::props::HangulSyllableType;
    matches!(
        CodePointMapData::<HangulSyllableType>::new().get(c),
        HangulSyllableType::LeadingJamo | HangulSyllableType::VowelJamo | HangulSyllableType::TrailingJamo
    )
}

/// Why [`refusal`] refuses a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Whitespace, control, format, default-ignorable, bidi control, unassigned, private use.
    Invisible,
    /// Visible, but outside the IdentifierClass (symbols, non-ASCII punctuation, ...).
    NotInClass,
}

/// The bidirectional controls, named explicitly (all are Cf and Bidi_Control, so already
/// refused; this keeps the rule readable): ALM, LRM, RLM, LRE..RLO, LRI..PDI.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The canonical key of a username: NFKC (which also maps fullwidth to ASCII), lower case,
/// NFKC again.
fn canonical_key(s: &str) -> String {
    s.nfkc().collect::<String>().to_lowercase().nfkc().collect()
}

/// An account name: 1 to 64 characters from the PRECIS IdentifierClass (letters, digits and
/// combining marks of any script, and printable ASCII; see [`Username::parse`]).
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

    /// Checks `s` against the username rules, for a **new** name (registration, `user add`).
    ///
    /// Both the name as typed and its canonical key must consist of PRECIS IdentifierClass
    /// characters only (the key after width/compatibility mapping and case folding, so
    /// fullwidth `＠` is fine), which refuses every invisible character: default-ignorable code
    /// points, format and control characters, bidi controls, unassigned and private-use code
    /// points, Hangul fillers, spaces and blank symbols. A name that renders exactly like
    /// another account's therefore cannot be registered.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        const INVISIBLE: &str = "username must not contain whitespace, control or invisible characters";
        const CLASS: &str = "username may contain only letters, digits and combining marks of any script, \
                             and printable ASCII (no spaces, symbols, invisible or format characters)";
        let name = Self::existing(s)?;
        // The name as typed may hold fullwidth forms that the key maps to ASCII: only invisible
        // characters are refused in it; the key is held to the whole class.
        if s.chars().any(|c| refusal(c) == Some(Refusal::Invisible)) {
            return Err(ValidationError(INVISIBLE));
        }
        if s.chars().any(is_conjoining_jamo) {
            return Err(ValidationError(CLASS));
        }
        match name.key.chars().filter_map(refusal).min_by_key(|r| *r != Refusal::Invisible) {
            Some(Refusal::Invisible) => Err(ValidationError(INVISIBLE)),
            Some(Refusal::NotInClass) => Err(ValidationError(CLASS)),
            None => Ok(name),
        }
    }

    /// A name to **look up** (login, admin actions, the subject of a token): only the length
    /// rule, so an account registered under an older, looser character rule keeps logging in
    /// and can still be managed. Never use this to create or rename an account: that is
    /// [`Username::parse`].
    pub fn existing(s: &str) -> Result<Self, ValidationError> {
        let key = canonical_key(s);
        let chars = key.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || s.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError("username must be 1 to 64 characters long"));
        }
        Ok(Self { display: s.to_owned(), key })
    }

    /// Whether this name, accepted by [`Username::existing`], would be refused by today's
    /// [`Username::parse`] (an account registered under an older rule).
    pub fn is_legacy(&self) -> bool {
        Self::parse(&self.display).is_err()
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

/// The role that may use keycard's `/admin/*` endpoints. An account that is active and has it
/// is an *active admin*; the store refuses to remove the last one.
pub const ADMIN_ROLE: &str = "admin";

impl Role {
    /// Longest role name, in bytes (all ASCII).
    pub const MAX_LEN: usize = 64;

    /// Checks `s` against the role rules.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
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

/// The roles of one account: at most [`Roles::MAX`] distinct [`Role`]s, sorted. The bounds keep
/// every token keycard issues well inside what its verifier accepts (see `MAX_TOKEN_LEN` in
/// keycard-token): 32 roles of 64 bytes are about 2 KiB of a token's 8 KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(Vec<Role>);

impl Roles {
    /// Most roles one account may hold.
    pub const MAX: usize = 32;

    /// Checks every name against the role rules and their number (after removing duplicates)
    /// against [`Roles::MAX`].
    pub fn parse<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self, ValidationError> {
        let mut roles = names.into_iter().map(|name| Role::parse(name.as_ref())).collect::<Result<Vec<_>, _>>()?;
        roles.sort();
        roles.dedup();
        if roles.len() > Self::MAX {
            return Err(ValidationError(TOO_MANY_ROLES));
        }
        Ok(Self(roles))
    }

    /// The roles, sorted.
    pub fn as_slice(&self) -> &[Role] {
        &self.0
    }

    /// Whether `name` is one of them.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|r| r.as_str() == name)
    }
}

impl<'a> IntoIterator for &'a Roles {
    type Item = &'a Role;
    type IntoIter = std::slice::Iter<'a, Role>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The message for a role list over [`Roles::MAX`] (also the store's, for a grant).
pub const TOO_MANY_ROLES: &str = "roles must be at most 32 per account";

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
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    fn refused_code_points_cached() -> &'static [char] {
        static SET: OnceLock<Vec<char>> = OnceLock::new();
        SET.get_or_init(refused_code_points)
    }

    fn letters_and_digits_cached() -> &'static [char] {
        static SET: OnceLock<Vec<char>> = OnceLock::new();
        SET.get_or_init(letters_and_digits)
    }

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

    /// Issue 11: each of these made a second account that displays exactly like `alice`.
    #[test]
    fn invisible_characters_that_once_cloned_an_account_are_refused() {
        let invisible = [
            '\u{3164}',
            '\u{115F}',
            '\u{1160}',
            '\u{FFA0}',
            '\u{2800}',
            '\u{E0001}',
            '\u{E0020}',
            '\u{E007F}',
            '\u{FE00}',
            '\u{FE0F}',
            '\u{061C}',
            '\u{1D173}',
            '\u{FFF9}',
            '\u{17B4}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{00AD}',
            '\u{034F}',
            '\u{180E}',
            '\u{2060}',
        ];
        for c in invisible {
            for name in [format!("alice{c}"), format!("{c}alice"), format!("al{c}ice"), c.to_string()] {
                let err = Username::parse(&name).unwrap_err();
                assert!(err.0.contains("invisible"), "U+{:04X}: {err}", u32::from(c));
            }
        }
    }

    #[test]
    fn symbols_and_non_ascii_punctuation_are_outside_the_identifier_class() {
        for bad in ["a\u{1F600}", "a\u{2022}b", "a\u{00B7}b", "a\u{0640}b", "a\u{2460}\u{20DD}", "\u{2603}"] {
            let err = Username::parse(bad).unwrap_err();
            assert!(err.0.contains("letters, digits"), "{bad:?}: {err}");
        }
        // Fullwidth punctuation maps to ASCII in the key: allowed, as before.
        assert_eq!(Username::parse("ａｌｉｃｅ＠ｅｘ").unwrap().key(), "alice@ex");
    }

    #[test]
    fn names_registered_under_the_old_rule_can_still_be_looked_up() {
        let legacy = "alice\u{3164}";
        assert!(Username::parse(legacy).is_err());
        let found = Username::existing(legacy).unwrap();
        assert!(found.is_legacy());
        assert_eq!(found.key(), canonical_key(legacy));
        assert!(!Username::existing("alice").unwrap().is_legacy());
        assert!(Username::existing("").is_err() && Username::existing(&"x".repeat(65)).is_err());
        assert_eq!(Username::existing("Alice").unwrap().key(), Username::parse("alice").unwrap().key());
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

    /// Every code point of the categories and properties PRECIS refuses, by scanning the whole
    /// code space with ICU4X's data (not a list of examples): Cc, Cf, Co, Cn (Cs cannot be a
    /// `char`), Zs/Zl/Zp, Default_Ignorable_Code_Point, Bidi_Control.
    fn refused_code_points() -> Vec<char> {
        use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory};
        use icu_properties::{CodePointMapData, CodePointSetData};
        let gc = CodePointMapData::<GeneralCategory>::new();
        let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
        let bidi = CodePointSetData::new::<BidiControl>();
        (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| {
                matches!(
                    gc.get(c),
                    GeneralCategory::Control
                        | GeneralCategory::Format
                        | GeneralCategory::PrivateUse
                        | GeneralCategory::Unassigned
                        | GeneralCategory::SpaceSeparator
                        | GeneralCategory::LineSeparator
                        | GeneralCategory::ParagraphSeparator
                ) || ignorable.contains(c)
                    || bidi.contains(c)
            })
            .collect()
    }

    /// Letters and digits of many scripts, as whole categories (Ll, Lu, Lo, Nd) minus what the
    /// class refuses anyway.
    fn letters_and_digits() -> Vec<char> {
        use icu_properties::CodePointMapData;
        use icu_properties::props::GeneralCategory;
        let gc = CodePointMapData::<GeneralCategory>::new();
        (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| {
                matches!(
                    gc.get(c),
                    GeneralCategory::LowercaseLetter
                        | GeneralCategory::UppercaseLetter
                        | GeneralCategory::OtherLetter
                        | GeneralCategory::DecimalNumber
                ) && refusal(c).is_none()
                    && !is_conjoining_jamo(c)
                    // Letters whose compatibility form leaves the class (U+FDFA has spaces).
                    && canonical_key(&c.to_string()).chars().all(|k| refusal(k).is_none())
            })
            .collect()
    }

    #[test]
    fn the_refused_sets_are_whole_categories() {
        let refused = refused_code_points();
        // Unicode 16/17: about 830,000 unassigned, 137,468 private use, 65 Cc, ~170 Cf.
        assert!(refused.len() > 900_000, "{}", refused.len());
        for c in ['\u{3164}', '\u{115F}', '\u{1160}', '\u{FFA0}', '\u{E0001}', '\u{FE0F}', '\u{061C}', '\u{17B4}'] {
            assert!(refused.contains(&c), "U+{:04X}", u32::from(c));
        }
        // Every refused code point, alone, is refused (the exhaustive check behind the proptest).
        for &c in &refused {
            assert!(Username::parse(&format!("a{c}b")).is_err(), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn role_lists_are_bounded_in_number_and_deduplicated() {
        let many: Vec<String> = (0..Roles::MAX).map(|i| format!("role{i}")).collect();
        assert_eq!(Roles::parse(&many).unwrap().as_slice().len(), Roles::MAX);
        let mut too_many = many.clone();
        too_many.push("one-more".into());
        assert_eq!(Roles::parse(&too_many).unwrap_err().0, TOO_MANY_ROLES);
        let twice = Roles::parse(["b", "a", "b"]).unwrap();
        assert_eq!(twice.as_slice(), [Role::parse("a").unwrap(), Role::parse("b").unwrap()]);
        assert!(twice.contains("a") && !twice.contains("c"));
        assert!(Roles::parse(["ok", "Not ok"]).is_err());
        assert!(Role::parse(&"r".repeat(Role::MAX_LEN)).is_ok());
    }

    proptest! {
        #[test]
        fn any_refused_code_point_anywhere_in_a_name_is_refused(
            prefix in "[a-z0-9]{0,20}",
            suffix in "[a-z0-9]{0,20}",
            index in any::<proptest::sample::Index>(),
        ) {
            let refused = refused_code_points_cached();
            let c = refused[index.index(refused.len())];
            let name = format!("{prefix}{c}{suffix}");
            prop_assert!(Username::parse(&name).is_err(), "U+{:04X} in {:?}", u32::from(c), name);
            // ... but a name registered with it before keeps being found.
            prop_assert!(Username::existing(&name).is_ok());
        }

        #[test]
        fn letters_and_digits_of_every_script_are_accepted(
            picks in proptest::collection::vec(any::<proptest::sample::Index>(), 1..=16),
        ) {
            let letters = letters_and_digits_cached();
            let name: String = picks.iter().map(|i| letters[i.index(letters.len())]).collect();
            // NFKC may expand a character (U+FDFA is 18 letters): stay within the length rule.
            prop_assume!(canonical_key(&name).chars().count() <= Username::MAX_CHARS);
            let parsed = Username::parse(&name);
            prop_assert!(parsed.is_ok(), "{:?} ({:?}): {:?}", name, name.chars().map(u32::from).collect::<Vec<_>>(), parsed);
        }

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
