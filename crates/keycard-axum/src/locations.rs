//! Finding the token in a request: the four places Flask-JWT-Extended (FJE) 4.7 looks, with its
//! exact messages and fall-through rules, plus a few refusals of keycard's own.
//!
//! Each `from_*` function answers a [`Lookup`]: [`Lookup::Found`], [`Lookup::Missing`] (the caller
//! may try the next configured location) or [`Lookup::Malformed`] (the search stops with that
//! message). The semantics are those of FJE's `view_decorators._decode_jwt_from_headers`,
//! `_decode_jwt_from_cookies`, `_decode_jwt_from_query_string` and `_decode_jwt_from_json`
//! (werkzeug 3.1 parsing the cookies, the query string and the content type), checked against
//! them on tens of thousands of generated inputs, with these differences (mostly refusals where
//! FJE would hand a hopeless value to the decoder, or answer 500):
//!
//! - a value longer than [`keycard_token::MAX_TOKEN_LEN`] (plus room for the header type or the
//!   query prefix) is `Malformed("Token is too large")` before it is parsed;
//! - several header lines of the configured name, and a header value that is not visible ASCII,
//!   are `Malformed` (FJE sees the lines joined with commas);
//! - several cookies of the configured name are `Malformed` (a cookie-tossing attacker on a
//!   sibling domain can plant a second one; werkzeug would take the first);
//! - a found token is never empty and never holds whitespace or a comma: a cookie, query or
//!   JSON value that does is `Malformed` (FJE would hand it to the decoder, which refuses it);
//! - a header list entry that is empty (`Basic a,,Bearer t`) is skipped (FJE answers 500);
//! - a JSON body that is not valid JSON counts as missing the key, as in FJE (which catches
//!   Flask's `BadRequest`), so the search falls through; one that is not
//!   an object, a duplicate key, or a value that is neither a string nor `null` is `Malformed`
//!   (FJE answers 500, takes the last duplicate, or answers `Missing` for `false`, `0`, `[]`,
//!   `{}` and 422 for other values);
//! - invalid UTF-8 after percent-decoding a query value becomes U+FFFD (werkzeug keeps it
//!   percent-encoded); such a token cannot verify either way.
//!
//! Kept from FJE although surprising: the header type is compared case-sensitively
//! ([`is_header_type`], the one place to change it), and a header with two entries of the type
//! (`Bearer a, Bearer b`) counts as *missing*, so it falls through to the next location.

// The extractors (being rewritten beside this module) call these; until then only the tests do.

use std::borrow::Cow;

use axum::http::{
    HeaderMap, HeaderName,
    header::{CONTENT_TYPE, COOKIE},
};
use keycard_token::MAX_TOKEN_LEN;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use subtle::ConstantTimeEq;

/// Outcome of looking for a token in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    /// The encoded token: not empty, no whitespace, no comma, at most `MAX_TOKEN_LEN` bytes.
    Found(Cow<'a, str>),
    /// Not there: the caller may fall through to the next location. FJE's exact message.
    Missing(String),
    /// There but malformed: stops the search. FJE's exact message where FJE has one.
    Malformed(String),
}

/// The message of every value refused for its size, whatever the location (the same text as
/// `keycard_token::TokenError::TooLarge`).
pub(crate) const TOO_LARGE: &str = "Token is too large";

/// Room in a token header beyond the type word and the token: other comma-separated
/// credentials (`Basic dXNlcjpwYXNz, Bearer <JWT>`, which FJE accepts) and spaces.
const HEADER_EXTRA_ROOM: usize = 512;

/// The longest token header value looked at for header type `kind`; longer ones are
/// [`TOO_LARGE`] before any parsing. Every token keycard-token can issue fits.
pub(crate) fn max_header_len(kind: &str) -> usize {
    MAX_TOKEN_LEN + kind.len() + 1 + HEADER_EXTRA_ROOM
}

/// Whether the first word of a header list entry names the configured header type. FJE
/// compares case-sensitively (`bearer x` is not a `Bearer` credential); RFC 9110 §11.1 says
/// schemes are case-insensitive. This is the one place that decides.
fn is_header_type(word: &str, kind: &str) -> bool {
    word == kind
}

/// Python's `str.isspace()`: what `str.strip()`, `str.split()` and the regex `\s` treat as
/// whitespace. Unicode `White_Space` plus the four ASCII separators U+001C..=U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()`: the runs of non-whitespace.
fn py_words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

/// Whether a value handed on as a token would be a well-formed candidate: whitespace and
/// commas never occur in a JWS compact serialisation.
fn has_space_or_comma(s: &str) -> bool {
    s.chars().any(|c| c == ',' || is_py_space(c))
}

/// The token in header `name` (`display_name` is how the application spelled it, for the
/// messages: [`HeaderName`] is always lower case), of type `kind` (`Bearer`; empty for a bare
/// token). FJE's `_decode_jwt_from_headers`:
///
/// - the value is `strip().strip(",")`; empty: `Missing "Missing {name} Header"`;
/// - with a type, the value is split on `,\s*` and exactly one entry must have the type as its
///   first word, else `Missing` (so `Basic x` falls through); that entry must be exactly two
///   words, else `Malformed("Bad {name} header. Expected '{name}: {kind} <JWT>'")`;
/// - without a type, the value must be one word, else
///   `Malformed("Bad {name} header. Expected '{name}: <JWT>'")` (a comma in it too).
///
/// Several lines of the header, and a value that is not visible ASCII, get that same
/// `Malformed` message; a value longer than [`max_header_len`] is [`TOO_LARGE`].
pub(crate) fn from_header<'a>(headers: &'a HeaderMap, name: &HeaderName, display_name: &str, kind: &str) -> Lookup<'a> {
    let bad = || bad_header(display_name, kind);
    let missing = || Lookup::Missing(format!("Missing {display_name} Header"));

    let mut lines = headers.get_all(name).iter();
    let Some(value) = lines.next() else {
        return missing();
    };
    if lines.next().is_some() {
        return bad();
    }
    if value.len() > max_header_len(kind) {
        return Lookup::Malformed(TOO_LARGE.to_owned());
    }
    let Ok(value) = value.to_str() else {
        return bad();
    };
    header_value(value, display_name, kind)
}

/// FJE's `Bad ... header` message.
fn bad_header(display_name: &str, kind: &str) -> Lookup<'static> {
    Lookup::Malformed(if kind.is_empty() {
        format!("Bad {display_name} header. Expected '{display_name}: <JWT>'")
    } else {
        format!("Bad {display_name} header. Expected '{display_name}: {kind} <JWT>'")
    })
}

/// FJE's reading of one header value (visible ASCII, spaces and tabs only), the common case
/// first: `Bearer <token>` (or the bare token) with no surrounding space and no comma, which
/// FJE's steps leave as it is (one entry of two words). The tests check that the shortcut
/// agrees with [`header_value_slow`].
fn header_value<'a>(value: &'a str, display_name: &str, kind: &str) -> Lookup<'a> {
    if kind.is_empty() {
        if is_plain_word(value) {
            return found(value);
        }
    } else if let Some((word, token)) = value.split_once(' ')
        && is_header_type(word, kind)
        && is_plain_word(word)
        && is_plain_word(token)
    {
        return found(token);
    }
    header_value_slow(value, display_name, kind)
}

/// Not empty, and no space, tab or comma: in a visible-ASCII value, no Python whitespace and
/// no list separator. Branch-free so that it vectorises over a ~350-byte token.
fn is_plain_word(s: &str) -> bool {
    let mut bad = false;
    for &b in s.as_bytes() {
        bad |= (b == b' ') | (b == b'\t') | (b == b',');
    }
    !s.is_empty() && !bad
}

/// FJE's `_decode_jwt_from_headers` step by step.
fn header_value_slow<'a>(value: &'a str, display_name: &str, kind: &str) -> Lookup<'a> {
    let bad = || bad_header(display_name, kind);
    let value = value.trim_matches(is_py_space).trim_matches(',');
    if value.is_empty() {
        return Lookup::Missing(format!("Missing {display_name} Header"));
    }

    if kind.is_empty() {
        let mut words = py_words(value);
        return match (words.next(), words.next()) {
            (Some(token), None) if !token.contains(',') => found(token),
            _ => bad(),
        };
    }

    // re.split(r",\s*", value): every entry after a comma loses its leading whitespace.
    let entries = value.split(',').enumerate().map(|(i, e)| if i == 0 { e } else { e.trim_start_matches(is_py_space) });
    let mut typed = entries.filter(|e| py_words(e).next().is_some_and(|w| is_header_type(w, kind)));
    let (Some(entry), None) = (typed.next(), typed.next()) else {
        return Lookup::Missing(format!(
            "Missing '{kind}' type in '{display_name}' header. Expected '{display_name}: {kind} <JWT>'"
        ));
    };
    let mut words = py_words(entry);
    match (words.next(), words.next(), words.next()) {
        (Some(_), Some(token), None) => found(token),
        _ => bad(),
    }
}

/// A token borrowed from a header, already checked for whitespace and commas.
fn found(token: &str) -> Lookup<'_> {
    if token.len() > MAX_TOKEN_LEN {
        return Lookup::Malformed(TOO_LARGE.to_owned());
    }
    Lookup::Found(Cow::Borrowed(token))
}

/// The token in cookie `cookie_name`, from every `Cookie` header line (HTTP/2 may split the
/// cookies over several), each parsed as werkzeug 3.1's `parse_cookie` does: `name=value`
/// pairs separated by `;`, spaces and tabs around them ignored, a pair that does not parse
/// skipped, a value in double quotes unquoted (backslash and `\ooo` octal escapes).
///
/// - absent or empty: `Missing("Missing cookie \"{name}\"")`;
/// - sent more than once: `Malformed` (werkzeug would take the first);
/// - longer than [`keycard_token::MAX_TOKEN_LEN`] (plus its quotes): [`TOO_LARGE`];
/// - not UTF-8 once unquoted, or holding whitespace or a comma: `Malformed`.
pub(crate) fn from_cookie<'a>(headers: &'a HeaderMap, cookie_name: &str) -> Lookup<'a> {
    let mut value: Option<&'a [u8]> = None;
    for line in headers.get_all(COOKIE) {
        for (name, v) in CookiePairs::new(line.as_bytes()) {
            if name != cookie_name.as_bytes() {
                continue;
            }
            if value.is_some() {
                return Lookup::Malformed(format!(
                    "Several cookies named \"{cookie_name}\" were sent; expected one (clear the stale ones)"
                ));
            }
            value = Some(v);
        }
    }
    let missing = || Lookup::Missing(format!("Missing cookie \"{cookie_name}\""));
    let Some(raw) = value else {
        return missing();
    };
    if raw.len() > MAX_TOKEN_LEN + 2 {
        return Lookup::Malformed(TOO_LARGE.to_owned());
    }
    let value: Cow<'a, [u8]> = match raw {
        [b'"', inner @ .., b'"'] => unslash(inner),
        _ => Cow::Borrowed(raw),
    };
    if value.is_empty() {
        return missing();
    }
    let value = match value {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed).ok(),
        Cow::Owned(b) => String::from_utf8(b).map(Cow::Owned).ok(),
    };
    let Some(value) = value else {
        return Lookup::Malformed(format!("Bad cookie \"{cookie_name}\": the value is not UTF-8"));
    };
    if value.len() > MAX_TOKEN_LEN {
        return Lookup::Malformed(TOO_LARGE.to_owned());
    }
    if has_space_or_comma(&value) {
        return Lookup::Malformed(format!("Bad cookie \"{cookie_name}\": a JWT has no whitespace or commas"));
    }
    Lookup::Found(value)
}

/// The `(name, raw value)` pairs of one `Cookie` header line, exactly as werkzeug 3.1's
/// `_cookie_re` finds them (the raw value keeps its double quotes).
struct CookiePairs<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> CookiePairs<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, pos: 0 }
    }

    /// `[ \t]*` from `i`.
    fn skip_blank(&self, mut i: usize) -> usize {
        while self.s.get(i).is_some_and(|&b| b == b' ' || b == b'\t') {
            i += 1;
        }
        i
    }

    /// `[ \t]*(?:;|\Z)` from `i`: where the next pair starts, if the pair ends here.
    fn pair_end(&self, i: usize) -> Option<usize> {
        let i = self.skip_blank(i);
        match self.s.get(i) {
            None => Some(i),
            Some(b';') => Some(i + 1),
            Some(_) => None,
        }
    }

    /// `"(?:[^\\"]|\\.)*"` from `i` (at the opening quote): the index after the closing quote.
    fn quoted_end(&self, mut i: usize) -> Option<usize> {
        i += 1;
        loop {
            match *self.s.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => match self.s.get(i + 1) {
                    Some(&b) if b != b'\n' => i += 2,
                    _ => return None,
                },
                _ => i += 1,
            }
        }
    }

    /// The regex anchored at `pos`: `(name, value, next pos)`.
    fn match_at(&self, pos: usize) -> Option<(&'a [u8], &'a [u8], usize)> {
        let s = self.s;
        let start = self.skip_blank(pos);
        let mut i = start;
        while s.get(i).is_some_and(|&b| !matches!(b, b' ' | b'\t' | b'=' | b'"' | b';')) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let name = &s[start..i];
        let eq = self.skip_blank(i);
        if s.get(eq) == Some(&b'=') {
            let v = self.skip_blank(eq + 1);
            if s.get(v) == Some(&b'"')
                && let Some(q) = self.quoted_end(v)
                && let Some(next) = self.pair_end(q)
            {
                return Some((name, &s[v..q], next));
            }
            let mut t = v;
            while s.get(t).is_some_and(|&b| !matches!(b, b' ' | b'\t' | b'"' | b';')) {
                t += 1;
            }
            if let Some(next) = self.pair_end(t) {
                return Some((name, &s[v..t], next));
            }
        }
        // The `=value` group is optional: a bare name is a cookie with an empty value.
        self.pair_end(i).map(|next| (name, &s[i..i], next))
    }
}

impl<'a> Iterator for CookiePairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((name, value, next)) = self.match_at(self.pos) {
                self.pos = next;
                return Some((name, value));
            }
            // werkzeug: skip invalid characters up to the next semicolon.
            let semi = self.s.get(self.pos..)?.iter().position(|&b| b == b';')?;
            self.pos += semi + 1;
        }
    }
}

/// werkzeug's `_cookie_unslash_re`: `\ooo` (first digit 0-3) is that byte, `\x` is `x`.
fn unslash(inner: &[u8]) -> Cow<'_, [u8]> {
    if !inner.contains(&b'\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while let Some(&b) = inner.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match inner.get(i + 1..i + 4) {
            Some(&[a @ b'0'..=b'3', m @ b'0'..=b'7', l @ b'0'..=b'7']) => {
                out.push(((a - b'0') << 6) | ((m - b'0') << 3) | (l - b'0'));
                i += 4;
            }
            _ => match inner.get(i + 1) {
                Some(&next) if next != b'\n' => {
                    out.push(next);
                    i += 2;
                }
                _ => {
                    out.push(b);
                    i += 1;
                }
            },
        }
    }
    Cow::Owned(out)
}

/// The token in query parameter `param` of the request's query string, which must start with
/// `prefix` (FJE's `JWT_QUERY_STRING_VALUE_PREFIX`, usually empty). Names and values are
/// decoded as `application/x-www-form-urlencoded` (`+` is a space; `;` separates nothing), as
/// werkzeug's `request.args`; of several `param`s the first counts (`MultiDict.get`). Invalid
/// UTF-8 after percent-decoding becomes U+FFFD (werkzeug keeps such bytes percent-encoded;
/// either way the token cannot verify).
///
/// - absent or empty: `Missing("Missing '{param}' query paramater")` (sic, FJE's spelling);
/// - not starting with the prefix: `Malformed("Invalid value for query parameter '{param}'.
///   Expected the value to start with '{prefix}'")`;
/// - longer than [`keycard_token::MAX_TOKEN_LEN`] plus the prefix: [`TOO_LARGE`];
/// - nothing after the prefix, or whitespace or a comma in the token: `Malformed`.
pub(crate) fn from_query<'a>(query: Option<&'a str>, param: &str, prefix: &str) -> Lookup<'a> {
    let missing = || Lookup::Missing(format!("Missing '{param}' query paramater"));
    let Some(query) = query else {
        return missing();
    };
    let Some((_, value)) = form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == param) else {
        return missing();
    };
    if value.is_empty() {
        return missing();
    }
    if value.len() > MAX_TOKEN_LEN + prefix.len() {
        return Lookup::Malformed(TOO_LARGE.to_owned());
    }
    if !value.starts_with(prefix) {
        return Lookup::Malformed(format!(
            "Invalid value for query parameter '{param}'. Expected the value to start with '{prefix}'"
        ));
    }
    let token: Cow<'a, str> = match value {
        Cow::Borrowed(v) => Cow::Borrowed(&v[prefix.len()..]),
        Cow::Owned(mut v) => {
            v.drain(..prefix.len());
            Cow::Owned(v)
        }
    };
    if token.is_empty() {
        return Lookup::Malformed(format!(
            "Invalid value for query parameter '{param}'. Expected a JWT after '{prefix}'"
        ));
    }
    if has_space_or_comma(&token) {
        return Lookup::Malformed(format!(
            "Invalid value for query parameter '{param}'. A JWT has no whitespace or commas"
        ));
    }
    Lookup::Found(token)
}

/// Whether the request's `Content-Type` is JSON as werkzeug's `Request.is_json` decides: the
/// media type (before any `;`, spaces and tabs trimmed, any case) is `application/json` or
/// `application/*+json`.
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let media = value.as_bytes().split(|&b| b == b';').next().unwrap_or_default();
    let media = media.trim_ascii_start().trim_ascii_end();
    let starts = |p: &[u8]| media.get(..p.len()).is_some_and(|m| m.eq_ignore_ascii_case(p));
    let ends = |p: &[u8]| media.len() >= p.len() && media[media.len() - p.len()..].eq_ignore_ascii_case(p);
    media.eq_ignore_ascii_case(b"application/json") || (starts(b"application/") && ends(b"+json"))
}

/// The token under `key` in a JSON request body (`body` is the raw body, `is_json` what
/// [`is_json_content_type`] said). FJE's `_decode_jwt_from_json` with clearer refusals:
///
/// - not JSON content: `Missing("Invalid content-type. Must be application/json.")`;
/// - an empty (or all-whitespace) body, no such key, `null` or `""`:
///   `Missing("Missing \"{key}\" key in json data.")`;
/// - invalid JSON: the same `Missing` (FJE's behaviour);
/// - not an object, the key twice, a value that is not a string: `Malformed`;
/// - a string longer than [`keycard_token::MAX_TOKEN_LEN`]: [`TOO_LARGE`] (not copied); one
///   holding whitespace or a comma: `Malformed`.
///
/// Only the one key's value is kept; everything else is skipped without being built.
pub(crate) fn from_json(body: &[u8], is_json: bool, key: &str) -> Lookup<'static> {
    if !is_json {
        return Lookup::Missing("Invalid content-type. Must be application/json.".to_owned());
    }
    let missing = || Lookup::Missing(format!("Missing \"{key}\" key in json data."));
    if body.trim_ascii().is_empty() {
        return missing();
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let outcome = de.deserialize_any(BodyVisitor { key }).and_then(|outcome| de.end().map(|()| outcome));
    match outcome {
        // FJE (Flask's get_json(silent=True)) treats a body that is not JSON as one without the
        // key, so the search goes on to the next location.
        Err(_) => missing(),
        Ok(Body::NotObject) => Lookup::Malformed("Invalid JSON body: expected an object".to_owned()),
        Ok(Body::Duplicate) => Lookup::Malformed(format!("Duplicate \"{key}\" key in json data.")),
        Ok(Body::Value(None | Some(Value::Null))) => missing(),
        Ok(Body::Value(Some(Value::Str(s)))) if s.is_empty() => missing(),
        Ok(Body::Value(Some(Value::Str(s)))) if has_space_or_comma(&s) => {
            Lookup::Malformed(format!("Invalid \"{key}\" value in json data: a JWT has no whitespace or commas"))
        }
        Ok(Body::Value(Some(Value::Str(s)))) => Lookup::Found(Cow::Owned(s)),
        Ok(Body::Value(Some(Value::TooLarge))) => Lookup::Malformed(TOO_LARGE.to_owned()),
        Ok(Body::Value(Some(Value::Other(kind)))) => {
            Lookup::Malformed(format!("Invalid \"{key}\" value in json data: expected a string, found {kind}"))
        }
    }
}

/// What a JSON body said about the key.
enum Body {
    NotObject,
    Duplicate,
    Value(Option<Value>),
}

/// The key's value.
enum Value {
    Null,
    Str(String),
    TooLarge,
    Other(&'static str),
}

struct BodyVisitor<'k> {
    key: &'k str,
}

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = Body;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut value = None;
        let mut duplicate = false;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.key))? {
            if !is_key {
                map.next_value::<IgnoredAny>()?;
            } else if value.is_some() {
                duplicate = true;
                map.next_value::<IgnoredAny>()?;
            } else {
                value = Some(map.next_value_seed(ValueSeed)?);
            }
        }
        Ok(if duplicate { Body::Duplicate } else { Body::Value(value) })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Body::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Body, E> {
        Ok(Body::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Body, E> {
        Ok(Body::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Body, E> {
        Ok(Body::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Body, E> {
        Ok(Body::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Body, E> {
        Ok(Body::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
        Ok(Body::NotObject)
    }
}

/// Deserialises an object key into "is it the one we look for", without allocating.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Deserialises the key's value: a string is kept (unless too large), anything else named.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(if v.len() > MAX_TOKEN_LEN { Value::TooLarge } else { Value::Str(v.to_owned()) })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an object"))
    }
}

/// The double-submit CSRF value in header `name`. `Ok(None)` when the header is absent or
/// empty (FJE: "Missing CSRF token", which does not fall through to another location);
/// `Err(message)` when it is sent more than once or is not visible ASCII (FJE would compare the
/// joined or latin-1-decoded value and answer "CSRF double submit tokens do not match").
pub(crate) fn csrf_from_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, String> {
    let mut lines = headers.get_all(name).iter();
    let Some(value) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err("Bad CSRF token: the CSRF header was sent more than once".to_owned());
    }
    let Ok(value) = value.to_str() else {
        return Err("Bad CSRF token: the CSRF header is not visible ASCII".to_owned());
    };
    Ok((!value.is_empty()).then_some(value))
}

/// Constant-time (subtle) equality of the token's csrf claim and the presented value, as FJE's
/// `hmac.compare_digest`: the time depends on the lengths only.
pub(crate) fn csrf_matches(claim: &str, presented: &str) -> bool {
    claim.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// FJE's combined message when no location had a token: given
/// `[("cookies", msg1), ("headers", msg2)]`,
/// `Missing JWT in cookies or headers (Missing cookie "access_token_cookie"; Missing Authorization Header)`
/// (the names joined with ", " but the last with " or ", the messages with "; "). A single
/// location gives just its message; none gives "Missing JWT".
pub(crate) fn missing_message(tried: &[(&str, String)]) -> String {
    match tried {
        [] => "Missing JWT".to_owned(),
        [(_, only)] => only.clone(),
        [first @ .., (last, _)] => {
            let names: Vec<&str> = first.iter().map(|(name, _)| *name).collect();
            let details: Vec<&str> = tried.iter().map(|(_, msg)| msg.as_str()).collect();
            format!("Missing JWT in {} or {last} ({})", names.join(", "), details.join("; "))
        }
    }
}

#[cfg(test)]
mod tests;
