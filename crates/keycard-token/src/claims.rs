//! The claims of a token: the registered ones in Flask-JWT-Extended's format, and the
//! application's own, flattened beside them.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Whether a token grants access to resources or only the right to get a new access token.
///
/// ```
/// use keycard_token::TokenType;
/// assert_eq!(TokenType::default(), TokenType::Access);
/// assert_eq!(serde_json::to_string(&TokenType::Refresh).unwrap(), r#""refresh""#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Presented to protected routes. A token without a `type` claim is an access token, as in
    /// Flask-JWT-Extended.
    #[default]
    Access,
    /// Presented only to the refresh endpoint.
    Refresh,
}

impl TokenType {
    /// The value of the `type` claim.
    ///
    /// ```
    /// assert_eq!(keycard_token::TokenType::Refresh.as_str(), "refresh");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// The `fresh` claim: `true` for a token issued by a password login, or (Flask-JWT-Extended's
/// time-limited freshness) the time until which the token counts as fresh.
///
/// ```
/// use keycard_token::Fresh;
/// assert!(Fresh::Bool(true).is_fresh_at(1_000));
/// assert!(Fresh::Until(1_000.0).is_fresh_at(1_000));
/// assert!(!Fresh::Until(999.5).is_fresh_at(1_000));
/// assert!(!Fresh::default().is_fresh_at(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fresh {
    /// Fresh or not, forever.
    Bool(bool),
    /// Fresh until this time (seconds since the epoch; FJE writes a float).
    Until(f64),
}

impl Default for Fresh {
    fn default() -> Self {
        Fresh::Bool(false)
    }
}

impl Fresh {
    /// Whether the token is fresh at `now` (seconds since the epoch). No leeway, as in FJE.
    ///
    /// ```
    /// use keycard_token::Fresh;
    /// assert!(Fresh::Until(1_000.0).is_fresh_at(999));
    /// assert!(!Fresh::Bool(false).is_fresh_at(0));
    /// ```
    pub fn is_fresh_at(self, now: i64) -> bool {
        match self {
            Fresh::Bool(fresh) => fresh,
            // Timestamps are below 2^53, so the conversion is exact.
            Fresh::Until(until) => until >= now as f64,
        }
    }
}

impl Serialize for Fresh {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Fresh::Bool(b) => s.serialize_bool(b),
            // A whole number of seconds is written as an integer (what keycard issues).
            Fresh::Until(t) if t.fract() == 0.0 && t.abs() < 9.0e15 => s.serialize_i64(t as i64),
            Fresh::Until(t) => s.serialize_f64(t),
        }
    }
}

impl<'de> Deserialize<'de> for Fresh {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Fresh;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean or a timestamp")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Fresh, E> {
                Ok(Fresh::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Fresh, E> {
                Ok(Fresh::Until(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Fresh, E> {
                Ok(Fresh::Until(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Fresh, E> {
                if v.is_finite() { Ok(Fresh::Until(v)) } else { Err(E::custom("fresh is not a finite number")) }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
///
/// ```
/// use keycard_token::Audience;
/// assert_eq!(Audience::from("mobile"), Audience::One("mobile".into()));
/// assert_eq!(serde_json::to_string(&Audience::Many(vec!["a".into(), "b".into()])).unwrap(), r#"["a","b"]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, written as a string.
    One(String),
    /// Several audiences, written as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is one of the audiences.
    ///
    /// ```
    /// use keycard_token::Audience;
    /// assert!(Audience::Many(vec!["a".into(), "b".into()]).contains("b"));
    /// assert!(!Audience::One("a".into()).contains("b"));
    /// ```
    pub fn contains(&self, aud: &str) -> bool {
        self.iter().any(|a| a == aud)
    }

    /// The audiences.
    ///
    /// ```
    /// use keycard_token::Audience;
    /// let aud = Audience::Many(vec!["web".into(), "mobile".into()]);
    /// assert_eq!(aud.iter().collect::<Vec<_>>(), ["web", "mobile"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(list) => list,
        };
        slice.iter().map(String::as_str)
    }
}

impl From<&str> for Audience {
    fn from(aud: &str) -> Self {
        Audience::One(aud.to_owned())
    }
}

impl From<String> for Audience {
    fn from(aud: String) -> Self {
        Audience::One(aud)
    }
}

impl From<Vec<String>> for Audience {
    fn from(list: Vec<String>) -> Self {
        Audience::Many(list)
    }
}

/// Claim names keycard writes itself; an application's claims type may not use them.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// use keycard_token::{RESERVED_CLAIMS, TokenError};
/// assert!(RESERVED_CLAIMS.contains(&"exp"));
/// let err = tokens.access("alice").claims(serde_json::json!({"exp": 0})).sign().unwrap_err();
/// assert_eq!(err, TokenError::Reserved);
/// ```
pub const RESERVED_CLAIMS: [&str; 10] = ["sub", "iat", "nbf", "exp", "jti", "type", "fresh", "csrf", "iss", "aud"];

/// The claims of a token: the registered claims in Flask-JWT-Extended 4's format, and `C`, the
/// application's own claims, flattened beside them (any serde type; `()` for none).
///
/// `Claims<C>` dereferences to `C`, so an application claim reads as `claims.is_admin`.
/// Claims a token carries that neither keycard nor `C` knows are ignored (so a token from a
/// Flask service that adds claims of its own is still accepted), unless `C` refuses them.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use keycard_token::Claims;
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// struct Mine { is_admin: bool }
///
/// let json = r#"{"sub":"42","iat":1,"nbf":1,"exp":2,"jti":"0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e",
///                "type":"access","fresh":false,"is_admin":true,"unknown":"ignored"}"#;
/// let claims: Claims<Mine> = serde_json::from_str(json).unwrap();
/// assert!(claims.is_admin);
/// assert_eq!(claims.identity::<u64>().unwrap(), 42);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims<C = ()> {
    /// Subject: the identity, as text. [`Claims::identity`] parses it back.
    #[serde(deserialize_with = "subject")]
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not valid before, seconds since the epoch (written by default, like FJE's `JWT_ENCODE_NBF`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub nbf: Option<i64>,
    /// Expires at, seconds since the epoch. Always required.
    pub exp: i64,
    /// Unique token id: the key for revoking this one token. keycard and FJE write a UUID
    /// ([`Claims::jti_uuid`]); tokens of other issuers may carry any string, or none.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub jti: Option<String>,
    /// Access or refresh; `access` when absent.
    #[serde(rename = "type", default)]
    pub token_type: TokenType,
    /// Freshness; `false` when absent.
    #[serde(default)]
    pub fresh: Fresh,
    /// The double-submit CSRF value, compared with the `X-CSRF-TOKEN` header in cookie mode.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub csrf: Option<String>,
    /// Issuer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub iss: Option<String>,
    /// Audience, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub aud: Option<Audience>,
    /// The application's claims.
    #[serde(flatten)]
    pub extra: C,
}

impl<C> Claims<C> {
    /// The identity parsed from `sub`: any type with [`FromStr`], such as an integer user id.
    ///
    /// ```
    /// # let claims: keycard_token::Claims = serde_json::from_str(
    /// #   r#"{"sub":"7","iat":1,"exp":2,"jti":"0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e"}"#).unwrap();
    /// let id: i64 = claims.identity().unwrap();
    /// assert_eq!(id, 7);
    /// ```
    pub fn identity<I: FromStr>(&self) -> Result<I, I::Err> {
        self.sub.parse()
    }

    /// The `jti` as a UUID (what keycard and FJE write); `None` when the token has no `jti` or
    /// one of another form.
    ///
    /// ```
    /// # let claims: keycard_token::Claims = serde_json::from_str(
    /// #   r#"{"sub":"7","iat":1,"exp":2,"jti":"0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e"}"#).unwrap();
    /// assert_eq!(claims.jti_uuid().unwrap().to_string(), "0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e");
    /// let foreign: keycard_token::Claims = serde_json::from_str(r#"{"sub":"7","iat":1,"exp":2,"jti":"AT.x1"}"#).unwrap();
    /// assert_eq!(foreign.jti_uuid(), None);
    /// ```
    pub fn jti_uuid(&self) -> Option<Uuid> {
        self.jti.as_deref().and_then(|jti| Uuid::try_parse(jti).ok())
    }

    /// Whether the token is fresh at `now` (see [`Fresh`]).
    ///
    /// ```
    /// # let claims: keycard_token::Claims = serde_json::from_str(
    /// #   r#"{"sub":"7","iat":1,"exp":2,"jti":"0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e","fresh":100}"#).unwrap();
    /// // `"fresh": 100`: fresh until that time, no leeway.
    /// assert!(claims.is_fresh_at(100));
    /// assert!(!claims.is_fresh_at(101));
    /// ```
    pub fn is_fresh_at(&self, now: i64) -> bool {
        self.fresh.is_fresh_at(now)
    }

    /// The same registered claims with other application claims.
    ///
    /// ```
    /// # let claims: keycard_token::Claims = serde_json::from_str(
    /// #   r#"{"sub":"7","iat":1,"exp":2,"jti":"0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e","fresh":100}"#).unwrap();
    /// let tagged = claims.map_extra(|()| "tag");
    /// assert_eq!(*tagged, "tag");
    /// assert_eq!(tagged.sub, "7");
    /// ```
    pub fn map_extra<D>(self, f: impl FnOnce(C) -> D) -> Claims<D> {
        Claims {
            sub: self.sub,
            iat: self.iat,
            nbf: self.nbf,
            exp: self.exp,
            jti: self.jti,
            token_type: self.token_type,
            fresh: self.fresh,
            csrf: self.csrf,
            iss: self.iss,
            aud: self.aud,
            extra: f(self.extra),
        }
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.extra
    }
}

impl<C> DerefMut for Claims<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.extra
    }
}

/// Message of a non-string `sub`, PyJWT's wording (read back by the verifier).
pub(crate) const SUBJECT_NOT_STRING: &str = "Subject must be a string";

fn subject<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess};
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        // Any other JSON value is "not a string" (PyJWT's message); a syntax error stays one.
        fn visit_bool<E: Error>(self, _: bool) -> Result<String, E> {
            Err(E::custom(SUBJECT_NOT_STRING))
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<String, E> {
            Err(E::custom(SUBJECT_NOT_STRING))
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<String, E> {
            Err(E::custom(SUBJECT_NOT_STRING))
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<String, E> {
            Err(E::custom(SUBJECT_NOT_STRING))
        }
        fn visit_unit<E: Error>(self) -> Result<String, E> {
            Err(E::custom(SUBJECT_NOT_STRING))
        }
        fn visit_none<E: Error>(self) -> Result<String, E> {
            Err(E::custom(SUBJECT_NOT_STRING))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Err(A::Error::custom(SUBJECT_NOT_STRING))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Err(A::Error::custom(SUBJECT_NOT_STRING))
        }
    }
    d.deserialize_any(Visitor)
}

/// A claim that is there must have a value: `null` is not "absent".
fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
