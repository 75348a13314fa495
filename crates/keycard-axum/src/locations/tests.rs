//! The locations, case by case: FJE 4.7.1's tests (test_headers.py, test_cookies.py,
//! test_query_string.py, test_json.py, test_multiple_token_locations.py) as lookups, what FJE
//! and werkzeug 3.1 were seen to do on odd input, keycard's own refusals, and properties.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header::AUTHORIZATION};
use proptest::prelude::*;

use super::*;
use crate::cookies::CookieSettings;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VybmFtZSJ9.c2ln";

fn headers<'a>(lines: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(HeaderName::try_from(name).unwrap(), HeaderValue::from_bytes(value).unwrap());
    }
    map
}

fn found(s: &str) -> Lookup<'static> {
    Lookup::Found(Cow::Owned(s.to_owned()))
}

fn missing(s: &str) -> Lookup<'static> {
    Lookup::Missing(s.to_owned())
}

fn malformed(s: &str) -> Lookup<'static> {
    Lookup::Malformed(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Headers

/// `from_header` on one `Authorization` line with the given type.
fn auth(value: &str, kind: &str) -> Lookup<'static> {
    let map = headers([("authorization", value.as_bytes())]);
    owned(from_header(&map, &AUTHORIZATION, "Authorization", kind))
}

fn owned(l: Lookup<'_>) -> Lookup<'static> {
    match l {
        Lookup::Found(t) => Lookup::Found(Cow::Owned(t.into_owned())),
        Lookup::Missing(m) => Lookup::Missing(m),
        Lookup::Malformed(m) => Lookup::Malformed(m),
    }
}

const MISSING_BEARER: &str = "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'";
const BAD_BEARER: &str = "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'";
const BAD_BARE: &str = "Bad Authorization header. Expected 'Authorization: <JWT>'";

#[test]
fn fje_test_default_headers() {
    assert_eq!(auth("Basic basiccreds", "Bearer"), missing(MISSING_BEARER));
    assert_eq!(auth(&format!("Bearer {TOKEN}"), "Bearer"), found(TOKEN));
    assert_eq!(auth(&format!("Bearer {TOKEN}, Basic creds"), "Bearer"), found(TOKEN));
    assert_eq!(auth(&format!("Basic creds, Bearer {TOKEN}"), "Bearer"), found(TOKEN));
}

#[test]
fn fje_test_header_with_trailing_spaces_and_commas() {
    assert_eq!(auth(&format!("Bearer {TOKEN},   "), "Bearer"), found(TOKEN));
}

#[test]
fn fje_test_custom_header_name() {
    let foo = HeaderName::from_static("foo");
    let only_auth = headers([("authorization", format!("Bearer {TOKEN}").as_bytes())]);
    assert_eq!(from_header(&only_auth, &foo, "Foo", "Bearer"), missing("Missing Foo Header"));
    for value in [
        format!("Bearer {TOKEN}"),
        format!("Bearer {TOKEN}, Basic randomcredshere"),
        format!("Basic randomcredshere, Bearer {TOKEN}"),
    ] {
        let map = headers([("foo", value.as_bytes())]);
        assert_eq!(from_header(&map, &foo, "Foo", "Bearer"), found(TOKEN), "{value}");
    }
    let map = headers([("foo", b"Basic x".as_slice())]);
    assert_eq!(
        from_header(&map, &foo, "Foo", "Bearer"),
        missing("Missing 'Bearer' type in 'Foo' header. Expected 'Foo: Bearer <JWT>'")
    );
    let map = headers([("foo", b"Bearer".as_slice())]);
    assert_eq!(from_header(&map, &foo, "Foo", "Bearer"), malformed("Bad Foo header. Expected 'Foo: Bearer <JWT>'"));
}

#[test]
fn fje_test_custom_header_type() {
    assert_eq!(
        auth(&format!("Bearer {TOKEN}"), "JWT"),
        missing("Missing 'JWT' type in 'Authorization' header. Expected 'Authorization: JWT <JWT>'")
    );
    assert_eq!(auth(&format!("JWT {TOKEN}"), "JWT"), found(TOKEN));
    assert_eq!(auth(&format!("JWT {TOKEN}, Basic creds"), "JWT"), found(TOKEN));
    assert_eq!(auth(&format!("Basic creds, JWT {TOKEN}"), "JWT"), found(TOKEN));
    // No type: the bare token, and nothing more.
    assert_eq!(auth(TOKEN, ""), found(TOKEN));
    assert_eq!(auth(&format!("Bearer {TOKEN}"), ""), malformed(BAD_BARE));
}

#[test]
fn fje_test_missing_headers() {
    let map = HeaderMap::new();
    assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", "Bearer"), missing("Missing Authorization Header"));
    assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", ""), missing("Missing Authorization Header"));
}

#[test]
fn fje_test_header_without_jwt() {
    assert_eq!(auth("Bearer ", "Bearer"), malformed(BAD_BEARER));
    assert_eq!(auth("Bearer", "Bearer"), malformed(BAD_BEARER));
}

/// What FJE 4.7.1 was seen to answer (in a Flask test client) for odd values, and ours.
#[test]
fn header_values_as_fje_splits_them() {
    let cases: &[(&str, Lookup<'static>)] = &[
        // `strip().strip(",")` leaves nothing: absent.
        ("", missing("Missing Authorization Header")),
        ("  ,  ", missing("Missing Authorization Header")),
        (",", missing("Missing Authorization Header")),
        (",,,", missing("Missing Authorization Header")),
        // FJE compares the type case-sensitively, and falls through.
        ("bearer x", missing(MISSING_BEARER)),
        ("BEARER x", missing(MISSING_BEARER)),
        ("Bearerx y", missing(MISSING_BEARER)),
        // Two Bearer entries in one value: not exactly one, so "missing" (FJE falls through).
        ("Bearer a, Bearer b", missing(MISSING_BEARER)),
        ("Bearer a b", malformed(BAD_BEARER)),
        // FJE: the leading and trailing commas go, then "Not enough segments" from the decoder.
        (",,Bearer x,, ", found("x")),
        ("Bearer x\t", found("x")),
        ("Bearer\tx", found("x")),
        ("  Bearer   x  ", found("x")),
        ("Basic a,Bearer x", found("x")),
        ("Basic a ,Bearer x , Digest y", found("x")),
        // FJE answers 500 (IndexError on an empty entry); we skip empty entries.
        ("Basic c,,Bearer x", found("x")),
        ("Bearer ,,0", malformed(BAD_BEARER)),
        (", ,", missing(MISSING_BEARER)),
        ("Bearer a,,", found("a")),
    ];
    for (value, want) in cases {
        assert_eq!(&auth(value, "Bearer"), want, "{value:?}");
    }
    let bare: &[(&str, Lookup<'static>)] = &[
        ("x", found("x")),
        (" x ", found("x")),
        (",x,", found("x")),
        (", x ,", found("x")),
        ("a b", malformed(BAD_BARE)),
        // A comma inside the only word: a list, not a JWT (FJE hands "a,b" to the decoder).
        ("a,b", malformed(BAD_BARE)),
        ("  ,  ", missing("Missing Authorization Header")),
    ];
    for (value, want) in bare {
        assert_eq!(&auth(value, ""), want, "{value:?}");
    }
}

#[test]
fn several_header_lines_are_malformed() {
    let map = headers([("authorization", b"Bearer a".as_slice()), ("authorization", b"Bearer b".as_slice())]);
    assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", "Bearer"), malformed(BAD_BEARER));
    let map = headers([("authorization", b"Basic a".as_slice()), ("authorization", b"Bearer b".as_slice())]);
    assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", "Bearer"), malformed(BAD_BEARER));
    let map = headers([("authorization", b"a".as_slice()), ("authorization", b"b".as_slice())]);
    assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", ""), malformed(BAD_BARE));
}

#[test]
fn obs_text_header_values_are_malformed() {
    for value in [b"Bearer a\x80b".as_slice(), b"Bearer \xff", b"\xc3\xa9 Bearer x", b"Basic \xe9, Bearer x"] {
        let map = headers([("authorization", value)]);
        assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", "Bearer"), malformed(BAD_BEARER));
        assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", ""), malformed(BAD_BARE));
    }
}

#[test]
fn oversized_header_values_are_refused_before_parsing() {
    let longest = "a".repeat(MAX_TOKEN_LEN);
    assert_eq!(auth(&format!("Bearer {longest}"), "Bearer"), Lookup::Found(Cow::Owned(longest.clone())));
    // Room for other credentials beside the longest token.
    let basic = format!("Basic {}", "b".repeat(300));
    assert_eq!(auth(&format!("{basic}, Bearer {longest}"), "Bearer"), Lookup::Found(Cow::Owned(longest.clone())));
    let at_limit = format!("Bearer {}", "a".repeat(max_header_len("Bearer") - "Bearer ".len()));
    assert_eq!(at_limit.len(), max_header_len("Bearer"));
    // At the header limit but over the token limit: the token is refused on its own.
    assert_eq!(auth(&at_limit, "Bearer"), malformed(TOO_LARGE));
    assert_eq!(auth(&format!("{at_limit}a"), "Bearer"), malformed(TOO_LARGE));
    // Too large wins even over "not ASCII": nothing is parsed.
    let mut big = b"Bearer ".to_vec();
    big.resize(max_header_len("Bearer") + 1, 0xff);
    let map = headers([("authorization", big.as_slice())]);
    assert_eq!(from_header(&map, &AUTHORIZATION, "Authorization", "Bearer"), malformed(TOO_LARGE));
    assert_eq!(auth(&"a".repeat(MAX_TOKEN_LEN + 1), ""), malformed(TOO_LARGE));
}

#[test]
fn header_shortcut_agrees_on_common_values() {
    for value in [
        format!("Bearer {TOKEN}"),
        TOKEN.to_owned(),
        "Bearer a,b".into(),
        "Bearer  a".into(),
        "Bearer a ".into(),
        "Bearer,a".into(),
        " Bearer a".into(),
        "x".into(),
        ",".into(),
        "Bearer Bearer".into(),
    ] {
        for kind in ["Bearer", "JWT", ""] {
            assert_eq!(
                header_value(&value, "Authorization", kind),
                header_value_slow(&value, "Authorization", kind),
                "{value:?} {kind:?}"
            );
        }
    }
}

#[test]
fn found_header_tokens_are_borrowed() {
    let map = headers([("authorization", format!("Bearer {TOKEN}").as_bytes())]);
    assert!(matches!(from_header(&map, &AUTHORIZATION, "Authorization", "Bearer"), Lookup::Found(Cow::Borrowed(_))));
}

// ---------------------------------------------------------------------------------------------
// Cookies

fn cookie(lines: &[&[u8]], name: &str) -> Lookup<'static> {
    let map = headers(lines.iter().map(|l| ("cookie", *l)));
    owned(from_cookie(&map, name))
}

const MISSING_ACCESS: &str = "Missing cookie \"access_token_cookie\"";

#[test]
fn fje_test_jwt_refresh_required_with_cookies() {
    assert_eq!(cookie(&[], "access_token_cookie"), missing(MISSING_ACCESS));
    assert_eq!(cookie(&[], "refresh_token_cookie"), missing("Missing cookie \"refresh_token_cookie\""));
    // After unset_jwt_cookies the browser sends nothing; an empty value counts as absent too.
    assert_eq!(cookie(&[b"access_token_cookie="], "access_token_cookie"), missing(MISSING_ACCESS));
    assert_eq!(cookie(&[b"refresh_token_cookie=x"], "access_token_cookie"), missing(MISSING_ACCESS));
    assert_eq!(cookie(&[format!("access_token_cookie={TOKEN}").as_bytes()], "access_token_cookie"), found(TOKEN));
}

/// werkzeug 3.1.9's `parse_cookie` on these headers, then FJE's `cookies.get(name)`.
#[test]
fn cookie_headers_as_werkzeug_parses_them() {
    let name = "access_token_cookie";
    let cases: &[(&[u8], Lookup<'static>)] = &[
        (b"access_token_cookie", missing(MISSING_ACCESS)),
        (b"access_token_cookie=\"\"", missing(MISSING_ACCESS)),
        (b"a=b; access_token_cookie=tok; c=d", found("tok")),
        (b" access_token_cookie = v ", found("v")),
        (b"access_token_cookie=\"a.b.c\"", found("a.b.c")),
        (b"access_token_cookie=\"a\\.b\\056c\"", found("a.b.c")),
        (b"a=b;;access_token_cookie=z", found("z")),
        (b"a=b;access_token_cookie=z;", found("z")),
        // A pair with a space in its value does not parse and is skipped.
        (b"access_token_cookie=a b", missing(MISSING_ACCESS)),
        (b"x=a b; access_token_cookie=k", found("k")),
        // A quoted value may hold a semicolon: no cookie is hidden in it.
        (b"x=\"a;access_token_cookie=q\"", missing(MISSING_ACCESS)),
        (b"access_token_cookie=\"a", missing(MISSING_ACCESS)),
        (b"access_token_cookie=a\"b", missing(MISSING_ACCESS)),
        (b"access_token_cookie=\"a\"b", missing(MISSING_ACCESS)),
        (b"access_token_cookie=\"a\\\"", missing(MISSING_ACCESS)),
        // Names are compared exactly.
        (b"Access_Token_Cookie=t", missing(MISSING_ACCESS)),
        (b"access_token_cookie2=t", missing(MISSING_ACCESS)),
        (b"xaccess_token_cookie=t", missing(MISSING_ACCESS)),
        // Bytes outside ASCII elsewhere in the header are no concern of ours.
        (b"x=\xff\xfe; access_token_cookie=t", found("t")),
        (b"access_token_cookie=\xc3\xa9", found("\u{e9}")),
        (b"=v; access_token_cookie=t", found("t")),
        (b"access_token_cookie==t", found("=t")),
    ];
    for (line, want) in cases {
        assert_eq!(&cookie(&[line], name), want, "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn cookie_values_fje_would_hand_to_the_decoder_are_malformed() {
    let name = "access_token_cookie";
    let comma = malformed("Bad cookie \"access_token_cookie\": a JWT has no whitespace or commas");
    assert_eq!(cookie(&[b"access_token_cookie=a,b"], name), comma);
    assert_eq!(cookie(&[b"access_token_cookie=\"a\\054b\""], name), comma);
    assert_eq!(cookie(&[b"access_token_cookie=\"a b\""], name), comma);
    assert_eq!(cookie(&[b"access_token_cookie=\"a\\011b\""], name), comma);
    let utf8 = malformed("Bad cookie \"access_token_cookie\": the value is not UTF-8");
    assert_eq!(cookie(&[b"access_token_cookie=\xff"], name), utf8);
    assert_eq!(cookie(&[b"access_token_cookie=\"\\377\""], name), utf8);
}

#[test]
fn a_second_cookie_of_the_name_is_malformed() {
    let name = "access_token_cookie";
    let twice =
        malformed("Several cookies named \"access_token_cookie\" were sent; expected one (clear the stale ones)");
    assert_eq!(cookie(&[b"access_token_cookie=x; access_token_cookie=y"], name), twice);
    assert_eq!(cookie(&[b"access_token_cookie=x; access_token_cookie=x"], name), twice);
    assert_eq!(cookie(&[b"access_token_cookie=; access_token_cookie=y"], name), twice);
    // Over two header lines (HTTP/2 splits cookies) too.
    assert_eq!(cookie(&[b"access_token_cookie=x", b"a=b; access_token_cookie=y"], name), twice);
    assert_eq!(cookie(&[b"a=b", b"access_token_cookie=t"], name), found("t"));
}

#[test]
fn oversized_cookies_are_refused() {
    let name = "access_token_cookie";
    let longest = "a".repeat(MAX_TOKEN_LEN);
    assert_eq!(cookie(&[format!("access_token_cookie={longest}").as_bytes()], name), found(&longest));
    assert_eq!(cookie(&[format!("access_token_cookie=\"{longest}\"").as_bytes()], name), found(&longest));
    let over = format!("access_token_cookie={longest}a");
    assert_eq!(cookie(&[over.as_bytes()], name), malformed(TOO_LARGE));
    let over_quoted = format!("access_token_cookie=\"{longest}\\056\"");
    assert_eq!(cookie(&[over_quoted.as_bytes()], name), malformed(TOO_LARGE));
}

#[test]
fn unslash_matches_werkzeug() {
    assert_eq!(&*unslash(b"plain"), b"plain");
    assert_eq!(&*unslash(b"a\\054b"), b"a,b");
    assert_eq!(&*unslash(b"\\303\\251"), "\u{e9}".as_bytes());
    assert_eq!(&*unslash(b"\\\"q\\\\"), b"\"q\\");
    // Only \[0-3][0-7][0-7] is octal; otherwise the next character stands for itself.
    assert_eq!(&*unslash(b"\\400"), b"400");
    assert_eq!(&*unslash(b"\\08"), b"08");
    assert_eq!(&*unslash(b"\\x"), b"x");
    assert_eq!(&*unslash(b"end\\"), b"end\\");
}

// ---------------------------------------------------------------------------------------------
// CSRF

#[test]
fn fje_csrf_header_cases() {
    let x_csrf = HeaderName::from_static("x-csrf-token");
    // test_default_access_csrf_protection: no header, then the cookie's value.
    assert_eq!(csrf_from_header(&HeaderMap::new(), &x_csrf), Ok(None));
    assert_eq!(csrf_from_header(&headers([("x-csrf-token", b"".as_slice())]), &x_csrf), Ok(None));
    let map = headers([("x-csrf-token", b"0c5a-uuid".as_slice())]);
    assert_eq!(csrf_from_header(&map, &x_csrf), Ok(Some("0c5a-uuid")));
    assert!(csrf_matches("0c5a-uuid", "0c5a-uuid"));
    // test_non_matching_csrf_token
    assert!(!csrf_matches("0c5a-uuid", "totally_wrong_token"));
    // test_csrf_with_custom_header_names
    let foo = HeaderName::from_static("foo");
    let map = headers([("foo", b"v".as_slice())]);
    assert_eq!(csrf_from_header(&map, &foo), Ok(Some("v")));
    assert_eq!(csrf_from_header(&map, &x_csrf), Ok(None));
    assert_eq!(crate::AuthError::CsrfMissing.message(), "Missing CSRF token");
}

#[test]
fn odd_csrf_headers_are_refused_with_a_reason() {
    let x_csrf = HeaderName::from_static("x-csrf-token");
    let twice = headers([("x-csrf-token", b"a".as_slice()), ("x-csrf-token", b"a".as_slice())]);
    assert_eq!(
        csrf_from_header(&twice, &x_csrf),
        Err("Bad CSRF token: the CSRF header was sent more than once".to_owned())
    );
    let obs = headers([("x-csrf-token", b"a\xffb".as_slice())]);
    assert_eq!(csrf_from_header(&obs, &x_csrf), Err("Bad CSRF token: the CSRF header is not visible ASCII".to_owned()));
}

#[test]
fn csrf_comparison_edge_cases() {
    assert!(csrf_matches("", ""));
    assert!(!csrf_matches("abc", "ab"));
    assert!(!csrf_matches("ab", "abc"));
    assert!(!csrf_matches("abc", "ABC"));
    assert!(!csrf_matches("", "a"));
}

// ---------------------------------------------------------------------------------------------
// Query string

const MISSING_JWT_PARAM: &str = "Missing 'jwt' query paramater";

#[test]
fn fje_test_default_query_paramater() {
    assert_eq!(owned(from_query(Some(&format!("jwt={TOKEN}")), "jwt", "")), found(TOKEN));
}

#[test]
fn fje_test_query_string_value_prefix() {
    for query in [format!("jwt=bearer%20{TOKEN}"), format!("jwt=bearer+{TOKEN}")] {
        assert_eq!(owned(from_query(Some(&query), "jwt", "bearer ")), found(TOKEN), "{query}");
    }
    assert_eq!(
        owned(from_query(Some(&format!("jwt={TOKEN}")), "jwt", "bearer ")),
        malformed("Invalid value for query parameter 'jwt'. Expected the value to start with 'bearer '")
    );
}

#[test]
fn fje_test_custom_query_paramater() {
    let query = format!("jwt={TOKEN}");
    assert_eq!(from_query(Some(&query), "foo", ""), missing("Missing 'foo' query paramater"));
    assert_eq!(owned(from_query(Some(&format!("foo={TOKEN}")), "foo", "")), found(TOKEN));
}

#[test]
fn fje_test_missing_query_paramater() {
    assert_eq!(from_query(None, "jwt", ""), missing(MISSING_JWT_PARAM));
    assert_eq!(from_query(Some(""), "jwt", ""), missing(MISSING_JWT_PARAM));
}

/// werkzeug's `request.args.get("jwt")` on these query strings (FJE then strips the prefix).
#[test]
fn query_strings_as_werkzeug_decodes_them() {
    let cases: &[(&str, Lookup<'static>)] = &[
        ("jwt=", missing(MISSING_JWT_PARAM)),
        ("jwt", missing(MISSING_JWT_PARAM)),
        ("a=1&&jwt&b=2", missing(MISSING_JWT_PARAM)),
        // `;` separates nothing (Python 3.10+, werkzeug 3).
        ("x=1;jwt=2", missing(MISSING_JWT_PARAM)),
        ("JWT=t", missing(MISSING_JWT_PARAM)),
        // The first of several wins, as MultiDict.get.
        ("jwt=x&jwt=y", found("x")),
        ("jwt=&jwt=y", missing(MISSING_JWT_PARAM)),
        // Names are decoded too.
        ("j%77t=z", found("z")),
        ("a=b&jwt=t&c=d", found("t")),
        ("jwt=a.b%2Ec", found("a.b.c")),
        // `=` inside the value is kept (base64 padding).
        ("jwt=a=b", found("a=b")),
        // Invalid escapes stay as they are.
        ("jwt=%ZZ", found("%ZZ")),
        ("jwt=%", found("%")),
        // Invalid UTF-8 becomes U+FFFD (werkzeug keeps "%FF"); the token cannot verify either way.
        ("jwt=%FF", found("\u{fffd}")),
        // Whitespace or commas: FJE hands them to the decoder ("Not enough segments").
        ("jwt=a+b", malformed("Invalid value for query parameter 'jwt'. A JWT has no whitespace or commas")),
        ("jwt=a%2Cb", malformed("Invalid value for query parameter 'jwt'. A JWT has no whitespace or commas")),
        ("jwt=a%09", malformed("Invalid value for query parameter 'jwt'. A JWT has no whitespace or commas")),
    ];
    for (query, want) in cases {
        assert_eq!(&owned(from_query(Some(query), "jwt", "")), want, "{query}");
    }
    assert_eq!(
        owned(from_query(Some("jwt=bearer+"), "jwt", "bearer ")),
        malformed("Invalid value for query parameter 'jwt'. Expected a JWT after 'bearer '")
    );
    assert!(matches!(from_query(Some("jwt=a.b.c"), "jwt", ""), Lookup::Found(Cow::Borrowed("a.b.c"))));
    assert!(matches!(from_query(Some("jwt=Bearer+a.b.c"), "jwt", "Bearer "), Lookup::Found(Cow::Owned(_))));
}

#[test]
fn oversized_query_values_are_refused() {
    let longest = "a".repeat(MAX_TOKEN_LEN);
    assert_eq!(owned(from_query(Some(&format!("jwt={longest}")), "jwt", "")), found(&longest));
    assert_eq!(owned(from_query(Some(&format!("jwt=p+{longest}")), "jwt", "p ")), found(&longest));
    assert_eq!(from_query(Some(&format!("jwt={longest}a")), "jwt", ""), malformed(TOO_LARGE));
    assert_eq!(from_query(Some(&format!("jwt=p+{longest}a")), "jwt", "p "), malformed(TOO_LARGE));
}

// ---------------------------------------------------------------------------------------------
// JSON body

const NOT_JSON: &str = "Invalid content-type. Must be application/json.";
const MISSING_KEY: &str = "Missing \"access_token\" key in json data.";

fn json(body: &str) -> Lookup<'static> {
    from_json(body.as_bytes(), true, "access_token")
}

fn content_type(value: &[u8]) -> bool {
    is_json_content_type(&headers([("content-type", value)]))
}

#[test]
fn fje_test_content_type() {
    // A form post: not JSON, and FJE falls through.
    assert!(!content_type(b"application/x-www-form-urlencoded"));
    let body = format!("access_token={TOKEN}");
    assert_eq!(from_json(body.as_bytes(), false, "access_token"), missing(NOT_JSON));
    assert_eq!(from_json(body.as_bytes(), false, "refresh_token"), missing(NOT_JSON));
    assert!(!is_json_content_type(&HeaderMap::new()));
}

#[test]
fn fje_test_custom_body_key() {
    let body = format!(r#"{{"access_token": "{TOKEN}"}}"#);
    assert_eq!(from_json(body.as_bytes(), true, "Foo"), missing("Missing \"Foo\" key in json data."));
    let body = format!(r#"{{"refresh_token": "{TOKEN}"}}"#);
    assert_eq!(from_json(body.as_bytes(), true, "Bar"), missing("Missing \"Bar\" key in json data."));
    assert_eq!(from_json(format!(r#"{{"Foo": "{TOKEN}"}}"#).as_bytes(), true, "Foo"), found(TOKEN));
    assert_eq!(from_json(format!(r#"{{"Bar": "{TOKEN}"}}"#).as_bytes(), true, "Bar"), found(TOKEN));
}

#[test]
fn fje_test_missing_keys() {
    // A JSON content type and no body at all.
    assert_eq!(json(""), missing(MISSING_KEY));
}

#[test]
fn fje_test_defaults_and_custom_content_type() {
    assert_eq!(json(&format!(r#"{{"access_token": "{TOKEN}"}}"#)), found(TOKEN));
    let body = format!(r#"{{"refresh_token": "{TOKEN}"}}"#);
    assert_eq!(from_json(body.as_bytes(), true, "refresh_token"), found(TOKEN));
    assert!(content_type(b"application/json;charset=UTF-8"));
}

/// werkzeug's `Request.is_json` on these `Content-Type` values.
#[test]
fn json_content_types_as_werkzeug_sees_them() {
    for yes in [
        b"application/json".as_slice(),
        b"application/JSON",
        b"Application/Json; charset=utf-8",
        b"application/vnd.api+json",
        b"application/x+json; a=b",
        b"application/+json",
        b" application/json",
        b"application/json ;",
        b"\tapplication/json\t;x",
        // werkzeug decodes latin-1: "application/\u{ff}+json" is a +json type.
        b"application/\xff+json",
    ] {
        assert!(content_type(yes), "{:?}", String::from_utf8_lossy(yes));
    }
    for no in [
        b"text/json".as_slice(),
        b"application/jsonx",
        b"application/json+xml",
        b"application json",
        b"text/plain+json",
        b"",
        b";application/json",
        b"application/\xffjson",
    ] {
        assert!(!content_type(no), "{:?}", String::from_utf8_lossy(no));
    }
}

/// FJE/Flask on these bodies (see the module doc for where keycard differs, and why).
#[test]
fn json_bodies() {
    let cases: &[(&str, Lookup<'static>)] = &[
        ("   \n", missing(MISSING_KEY)),
        ("{}", missing(MISSING_KEY)),
        (r#"{"other": "x"}"#, missing(MISSING_KEY)),
        (r#"{"access_token": null}"#, missing(MISSING_KEY)),
        (r#"{"access_token": ""}"#, missing(MISSING_KEY)),
        (r#" {"a": [1, {"b": null}], "access_token": "t", "c": 1.5e3} "#, found("t")),
        (r#"{"acc\u0065ss_token": "t"}"#, found("t")),
        // Skipped values are not converted: Python reads 1e999 as inf, serde_json would refuse it.
        (r#"{"a": 1e999, "access_token": "t"}"#, found("t")),
        (r#"{"access_token": "a\u002eb"}"#, found("a.b")),
        // FJE: 500 (AttributeError) or "missing" for the falsy ones; ours says what is wrong.
        ("null", malformed("Invalid JSON body: expected an object")),
        ("[]", malformed("Invalid JSON body: expected an object")),
        ("[1, [2]]", malformed("Invalid JSON body: expected an object")),
        ("\"s\"", malformed("Invalid JSON body: expected an object")),
        ("5", malformed("Invalid JSON body: expected an object")),
        ("-5", malformed("Invalid JSON body: expected an object")),
        ("5.5", malformed("Invalid JSON body: expected an object")),
        ("true", malformed("Invalid JSON body: expected an object")),
        // FJE: 422 "Invalid token type. Token must be a <class 'bytes'>", or "missing" if falsy.
        (
            r#"{"access_token": 5}"#,
            malformed("Invalid \"access_token\" value in json data: expected a string, found a number"),
        ),
        (
            r#"{"access_token": -5}"#,
            malformed("Invalid \"access_token\" value in json data: expected a string, found a number"),
        ),
        (
            r#"{"access_token": 0.5}"#,
            malformed("Invalid \"access_token\" value in json data: expected a string, found a number"),
        ),
        (
            r#"{"access_token": false}"#,
            malformed("Invalid \"access_token\" value in json data: expected a string, found a boolean"),
        ),
        (
            r#"{"access_token": ["t"]}"#,
            malformed("Invalid \"access_token\" value in json data: expected a string, found an array"),
        ),
        (
            r#"{"access_token": {"t": 1}}"#,
            malformed("Invalid \"access_token\" value in json data: expected a string, found an object"),
        ),
        // FJE: "Not enough segments" from the decoder.
        (
            r#"{"access_token": "a b"}"#,
            malformed("Invalid \"access_token\" value in json data: a JWT has no whitespace or commas"),
        ),
        (
            r#"{"access_token": "a,b"}"#,
            malformed("Invalid \"access_token\" value in json data: a JWT has no whitespace or commas"),
        ),
        (
            r#"{"access_token": "a\u2028b"}"#,
            malformed("Invalid \"access_token\" value in json data: a JWT has no whitespace or commas"),
        ),
        // FJE: Python's dict keeps the last.
        (r#"{"access_token": "x", "access_token": "y"}"#, malformed("Duplicate \"access_token\" key in json data.")),
        (r#"{"access_token": "x", "access_token": 5}"#, malformed("Duplicate \"access_token\" key in json data.")),
    ];
    for (body, want) in cases {
        assert_eq!(&json(body), want, "{body}");
    }
}

/// FJE catches Flask's BadRequest and says the key is missing; so do we.
#[test]
fn invalid_json_bodies_count_as_missing_as_in_fje() {
    for body in
        ["{", "{\"access_token\": \"t\"", "{\"access_token\": \"t\"} x", "{'access_token': 't'}", "nul", "\u{feff}{}"]
    {
        assert_eq!(json(body), Lookup::Missing("Missing \"access_token\" key in json data.".into()), "{body}");
    }
    let invalid_utf8 = b"{\"access_token\": \"\xff\"}";
    assert!(matches!(from_json(invalid_utf8, true, "access_token"), Lookup::Missing(_)));
    // Deep nesting is skipped without recursion (serde_json ignores values iteratively): no
    // stack overflow, wherever it is.
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(json(&format!(r#"{{"x": {}, "access_token": "t"}}"#, deep(100_000))), found("t"));
    assert_eq!(
        json(&format!(r#"{{"access_token": {}}}"#, deep(100_000))),
        malformed("Invalid \"access_token\" value in json data: expected a string, found an array")
    );
    assert_eq!(json(&deep(100_000)), malformed("Invalid JSON body: expected an object"));
    assert!(matches!(json(&format!("{}]", deep(1000))), Lookup::Missing(_)));
}

#[test]
fn oversized_json_values_are_refused() {
    let longest = "a".repeat(MAX_TOKEN_LEN);
    assert_eq!(json(&format!(r#"{{"access_token": "{longest}"}}"#)), found(&longest));
    assert_eq!(json(&format!(r#"{{"access_token": "{longest}a"}}"#)), malformed(TOO_LARGE));
    // Large other values are skipped, not refused.
    let other = "b".repeat(4 * MAX_TOKEN_LEN);
    assert_eq!(json(&format!(r#"{{"other": "{other}", "access_token": "t"}}"#)), found("t"));
}

// ---------------------------------------------------------------------------------------------
// Several locations

#[test]
fn fje_test_no_jwt_in_request() {
    let tried = [
        ("cookies", "Missing cookie \"access_token_cookie\"".to_owned()),
        ("headers", "Missing Authorization Header".to_owned()),
    ];
    assert_eq!(
        missing_message(&tried),
        "Missing JWT in cookies or headers (Missing cookie \"access_token_cookie\"; Missing Authorization Header)"
    );
    let tried = [("json", NOT_JSON.to_owned()), ("query_string", MISSING_JWT_PARAM.to_owned())];
    assert_eq!(
        missing_message(&tried),
        "Missing JWT in json or query_string (Invalid content-type. Must be application/json.; Missing 'jwt' query paramater)"
    );
    assert_eq!(missing_message(&tried[..1]), NOT_JSON);
    assert_eq!(missing_message(&[]), "Missing JWT");
    let four = [
        ("headers", "h".to_owned()),
        ("cookies", "c".to_owned()),
        ("query_string", "q".to_owned()),
        ("json", "j".to_owned()),
    ];
    assert_eq!(missing_message(&four), "Missing JWT in headers, cookies, query_string or json (h; c; q; j)");
}

/// The extractor's loop as FJE's `_decode_jwt_from_request` runs it: the first location that
/// is not `Missing` decides; if all are missing, the combined message.
fn search<'a>(
    order: &[&'static str],
    map: &'a HeaderMap,
    query: Option<&'a str>,
    body: &[u8],
) -> Result<(&'static str, String), String> {
    let mut tried = Vec::new();
    for &location in order {
        let lookup = match location {
            "headers" => owned(from_header(map, &AUTHORIZATION, "Authorization", "Bearer")),
            "cookies" => owned(from_cookie(map, "access_token_cookie")),
            "query_string" => owned(from_query(query, "jwt", "")),
            _ => from_json(body, is_json_content_type(map), "access_token"),
        };
        match lookup {
            Lookup::Found(token) => return Ok((location, token.into_owned())),
            Lookup::Malformed(msg) => return Err(msg),
            Lookup::Missing(msg) => tried.push((location, msg)),
        }
    }
    Err(missing_message(&tried))
}

const ALL: [&str; 4] = ["headers", "cookies", "query_string", "json"];

#[test]
fn fje_test_each_location_alone_among_all() {
    let map = headers([("authorization", format!("Bearer {TOKEN}").as_bytes())]);
    assert_eq!(search(&ALL, &map, None, b""), Ok(("headers", TOKEN.to_owned())));
    let map = headers([("cookie", format!("access_token_cookie={TOKEN}").as_bytes())]);
    assert_eq!(search(&ALL, &map, None, b""), Ok(("cookies", TOKEN.to_owned())));
    let query = format!("jwt={TOKEN}");
    assert_eq!(search(&ALL, &HeaderMap::new(), Some(&query), b""), Ok(("query_string", TOKEN.to_owned())));
    let map = headers([("content-type", b"application/json".as_slice())]);
    let body = format!(r#"{{"access_token": "{TOKEN}"}}"#);
    assert_eq!(search(&ALL, &map, None, body.as_bytes()), Ok(("json", TOKEN.to_owned())));
}

#[test]
fn fje_test_order_of_jwt_locations() {
    // A valid cookie and no header: found in cookies whatever the order.
    let map = headers([("cookie", format!("access_token_cookie={TOKEN}").as_bytes())]);
    assert_eq!(search(&["cookies", "headers"], &map, None, b""), Ok(("cookies", TOKEN.to_owned())));
    assert_eq!(search(&["headers", "cookies"], &map, None, b""), Ok(("cookies", TOKEN.to_owned())));
    // A garbage header token beside the valid cookie: the first location decides. (FJE answers
    // "Invalid header padding" when the header comes first: the decoder's verdict on it.)
    let garbage = format!("000000{}", &TOKEN[5..]);
    let map = headers([
        ("cookie", format!("access_token_cookie={TOKEN}").as_bytes()),
        ("authorization", format!("Bearer {garbage}").as_bytes()),
    ]);
    assert_eq!(search(&["cookies", "headers"], &map, None, b""), Ok(("cookies", TOKEN.to_owned())));
    assert_eq!(search(&["headers", "cookies"], &map, None, b""), Ok(("headers", garbage.clone())));
    // Only "missing" falls through: a malformed header stops the search.
    let map = headers([
        ("authorization", b"Bearer a b".as_slice()),
        ("cookie", format!("access_token_cookie={TOKEN}").as_bytes()),
    ]);
    assert_eq!(search(&["headers", "cookies"], &map, None, b""), Err(BAD_BEARER.to_owned()));
    // A wrong scheme falls through (FJE's NoAuthorizationError), and so does a non-JSON body.
    let map = headers([
        ("authorization", b"Basic dXNlcjpwYXNz".as_slice()),
        ("cookie", format!("access_token_cookie={TOKEN}").as_bytes()),
    ]);
    assert_eq!(search(&["headers", "json", "cookies"], &map, None, b"a=b"), Ok(("cookies", TOKEN.to_owned())));
    assert_eq!(
        search(&["cookies", "headers"], &HeaderMap::new(), None, b""),
        Err("Missing JWT in cookies or headers (Missing cookie \"access_token_cookie\"; Missing Authorization Header)"
            .to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

/// The invariants of every outcome: a found token is not empty, has no whitespace or comma and
/// fits the token limit; messages are not empty.
fn check(lookup: &Lookup<'_>) -> Result<(), TestCaseError> {
    match lookup {
        Lookup::Found(t) => {
            prop_assert!(!t.is_empty());
            prop_assert!(!t.chars().any(|c| c == ',' || c.is_whitespace()), "{t:?}");
            prop_assert!(!t.chars().any(|c| ('\u{1c}'..='\u{1f}').contains(&c)), "{t:?}");
            prop_assert!(t.len() <= MAX_TOKEN_LEN);
        }
        Lookup::Missing(m) | Lookup::Malformed(m) => prop_assert!(!m.is_empty()),
    }
    Ok(())
}

/// Bytes a header value may hold: visible ASCII, space, tab and obs-text.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b" \t,;=\"\\Bearer JWTBasicx.y".to_vec()),
        2 => 0x21u8..=0x7e,
        1 => 0x80u8..=0xff,
    ];
    prop::collection::vec(byte, 0..64)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| serde_json::json!(f)),
        "[ -~\u{a0}\u{2028}]{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((prop_oneof!["access_token", "[a-z]{1,3}"], inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_header_lookups_are_total(lines in prop::collection::vec(header_bytes(), 0..3), kind in prop_oneof!["Bearer", "JWT", ""]) {
        let map = headers(lines.iter().map(|l| ("authorization", l.as_slice())));
        check(&from_header(&map, &AUTHORIZATION, "Authorization", &kind))?;
    }

    /// The `Bearer <token>` shortcut answers what FJE's full procedure answers.
    #[test]
    fn prop_header_shortcut_agrees_with_the_full_parse(value in "(Bearer |JWT |bearer )?[ \t,a-zA-Z.=]{0,24}", kind in prop_oneof!["Bearer", "JWT", ""]) {
        prop_assert_eq!(header_value(&value, "Authorization", &kind), header_value_slow(&value, "Authorization", &kind));
    }

    #[test]
    fn prop_cookie_lookups_are_total(lines in prop::collection::vec(header_bytes(), 0..3), name in prop_oneof!["access_token_cookie", "x", "Bearer"]) {
        let mut lines = lines;
        // Make the name likely to occur.
        if let Some(first) = lines.first_mut() {
            first.splice(0..0, format!("{name}=").into_bytes());
        }
        let map = headers(lines.iter().map(|l| ("cookie", l.as_slice())));
        check(&from_cookie(&map, &name))?;
    }

    #[test]
    fn prop_cookie_pairs_never_overlap(line in header_bytes()) {
        // Every pair the parser yields lies inside the line, in order.
        let mut last_end = 0usize;
        let base = line.as_ptr() as usize;
        for (name, value) in CookiePairs::new(&line) {
            let start = name.as_ptr() as usize - base;
            prop_assert!(start >= last_end);
            prop_assert!(!name.is_empty());
            last_end = value.as_ptr() as usize - base + value.len();
            prop_assert!(last_end <= line.len());
        }
    }

    #[test]
    fn prop_query_lookups_are_total(query in "[a-z=&+%0-9A-F;,. \u{e9}]{0,40}", prefix in prop_oneof!["", "Bearer ", "%"]) {
        let query = format!("jwt={query}");
        check(&from_query(Some(&query), "jwt", &prefix))?;
        check(&from_query(Some(&query[4..]), "jwt", &prefix))?;
    }

    #[test]
    fn prop_json_lookups_are_total_on_bytes(body in prop::collection::vec(any::<u8>(), 0..64), is_json in any::<bool>()) {
        check(&from_json(&body, is_json, "access_token"))?;
    }

    #[test]
    fn prop_json_lookups_agree_with_serde_json_value(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        let lookup = from_json(&body, true, "access_token");
        check(&lookup)?;
        // Compare with the obvious reading through serde_json::Value (which keeps the last
        // duplicate; to_vec never writes duplicates).
        let want = match &value {
            serde_json::Value::Object(map) => match map.get("access_token") {
                None | Some(serde_json::Value::Null) => missing(MISSING_KEY),
                Some(serde_json::Value::String(s)) if s.is_empty() => missing(MISSING_KEY),
                Some(serde_json::Value::String(s)) if s.chars().any(|c| c == ',' || c.is_whitespace()) => {
                    malformed("Invalid \"access_token\" value in json data: a JWT has no whitespace or commas")
                }
                Some(serde_json::Value::String(s)) => found(s),
                Some(_) => {
                    prop_assert!(matches!(&lookup, Lookup::Malformed(m) if m.contains("expected a string")));
                    return Ok(());
                }
            },
            _ => malformed("Invalid JSON body: expected an object"),
        };
        prop_assert_eq!(lookup, want);
    }

    #[test]
    fn prop_csrf_matches_agrees_with_eq(a in ".{0,40}", b in ".{0,40}") {
        prop_assert_eq!(csrf_matches(&a, &b), a == b);
        prop_assert!(csrf_matches(&a, &a.clone()));
    }

    #[test]
    fn prop_csrf_headers_are_total(lines in prop::collection::vec(header_bytes(), 0..3)) {
        let name = HeaderName::from_static("x-csrf-token");
        let map = headers(lines.iter().map(|l| ("x-csrf-token", l.as_slice())));
        match csrf_from_header(&map, &name) {
            Ok(Some(v)) => prop_assert!(!v.is_empty() && lines.len() == 1),
            Ok(None) => prop_assert!(lines.is_empty() || (lines.len() == 1 && lines[0].is_empty())),
            Err(m) => prop_assert!(!m.is_empty() && !lines.is_empty()),
        }
    }

    /// What `access_cookies` and `refresh_cookies` write, the cookie location reads back,
    /// among other cookies and however odd (but JWT-like: no whitespace, no comma) the value.
    #[test]
    fn prop_cookies_round_trip(token in "[!-+\\--~\u{e9}\u{20ac}]{1,60}", csrf in "[0-9a-f-]{1,36}", refresh in any::<bool>()) {
        let settings = CookieSettings::default();
        let set = if refresh {
            settings.refresh_cookies(&token, Some(&csrf), Some(60))
        } else {
            settings.access_cookies(&token, Some(&csrf), Some(60))
        };
        prop_assert_eq!(set.len(), 2);
        // What a browser sends back: each cookie's `name=value`, before the first attribute.
        let pairs: Vec<&str> = set.iter().map(|v| v.to_str().unwrap().split("; ").next().unwrap()).collect();
        let line = format!("theme=dark; {}; lang=\"en\"", pairs.join("; "));
        let map = headers([("cookie", line.as_bytes())]);
        let (token_name, csrf_name) = if refresh {
            (&settings.refresh_cookie_name, &settings.refresh_csrf_cookie_name)
        } else {
            (&settings.access_cookie_name, &settings.access_csrf_cookie_name)
        };
        prop_assert_eq!(owned(from_cookie(&map, token_name)), found(&token));
        prop_assert_eq!(owned(from_cookie(&map, csrf_name)), found(&csrf));
    }

    /// A token put in the query string with form-urlencoding (and any prefix) is found again.
    #[test]
    fn prop_query_values_round_trip(token in "[!-+\\--~\u{e9}\u{20ac}]{1,60}", prefix in prop_oneof!["", "Bearer ", "a&b=c+%"], param in prop_oneof!["jwt", "a b", "t=1&"]) {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let query = format!("x=1&{}={}&{}=other", enc(&param), enc(&format!("{prefix}{token}")), enc(&param));
        prop_assert_eq!(owned(from_query(Some(&query), &param, &prefix)), found(&token));
    }
}
