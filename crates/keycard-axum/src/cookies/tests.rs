//! The `Set-Cookie` values against what Flask 3.1 / werkzeug 3.1.9 write for FJE 4.7.1
//! (FJE's tests/test_cookies.py, and a Flask app run beside), and the start-up checks.

use axum::http::{HeaderName, HeaderValue, Method};

use super::*;

/// A `Set-Cookie` value as `(name=value, attributes)`: attribute names lower-cased, as FJE's
/// `_get_cookie_from_response` reads them.
fn parse(v: &HeaderValue) -> (String, Vec<(String, Option<String>)>) {
    let s = v.to_str().unwrap();
    let mut parts = s.split("; ");
    let first = parts.next().unwrap().to_owned();
    let attrs = parts
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_owned())),
            None => (a.to_ascii_lowercase(), None),
        })
        .collect();
    (first, attrs)
}

fn attr(v: &HeaderValue, name: &str) -> Option<Option<String>> {
    parse(v).1.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn strs(values: &[HeaderValue]) -> Vec<&str> {
    values.iter().map(|v| v.to_str().unwrap()).collect()
}

/// Settings as FJE's defaults are (no Secure, no SameSite), to compare with FJE's output.
fn fje_defaults() -> CookieSettings {
    CookieSettings { secure: false, same_site: None, ..CookieSettings::default() }
}

#[test]
fn defaults_are_fjes_names_and_keycards_safer_attributes() {
    let s = CookieSettings::default();
    assert_eq!(s.access_cookie_name, "access_token_cookie");
    assert_eq!(s.refresh_cookie_name, "refresh_token_cookie");
    assert_eq!(s.access_csrf_cookie_name, "csrf_access_token");
    assert_eq!(s.refresh_csrf_cookie_name, "csrf_refresh_token");
    assert_eq!(s.access_csrf_header, HeaderName::from_static("x-csrf-token"));
    assert_eq!(s.refresh_csrf_header, HeaderName::from_static("x-csrf-token"));
    assert_eq!(s.csrf_methods, [Method::POST, Method::PUT, Method::PATCH, Method::DELETE]);
    for path in [&s.access_cookie_path, &s.refresh_cookie_path, &s.access_csrf_cookie_path, &s.refresh_csrf_cookie_path]
    {
        assert_eq!(path, "/");
    }
    assert_eq!(s.domain, None);
    assert!(s.csrf_protect && s.csrf_in_cookies && s.secure);
    assert_eq!(s.same_site, Some(SameSite::Lax));
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn needs_csrf_on_the_configured_methods_only() {
    let s = CookieSettings::default();
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        assert!(s.needs_csrf(&m), "{m}");
    }
    for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
        assert!(!s.needs_csrf(&m), "{m}");
    }
    // FJE's test_custom_csrf_methods: JWT_CSRF_METHODS = ["GET"].
    let get_only = CookieSettings { csrf_methods: vec![Method::GET], ..CookieSettings::default() };
    assert!(get_only.needs_csrf(&Method::GET) && !get_only.needs_csrf(&Method::POST));
    // FJE's test_csrf_disabled.
    let off = CookieSettings { csrf_protect: false, ..CookieSettings::default() };
    assert!(!off.needs_csrf(&Method::POST));
}

/// FJE's test_default_cookie_options, on FJE's default attributes.
#[test]
fn fje_test_default_cookie_options() {
    let s = fje_defaults();
    for set in [s.access_cookies("tok", Some("csrf"), None), s.refresh_cookies("tok", Some("csrf"), None)] {
        assert_eq!(set.len(), 2);
        assert_eq!(attr(&set[0], "path"), Some(Some("/".into())));
        assert_eq!(attr(&set[0], "httponly"), Some(None));
        assert_eq!(attr(&set[0], "samesite"), None);
        assert_eq!(attr(&set[1], "path"), Some(Some("/".into())));
        assert_eq!(attr(&set[1], "httponly"), None);
        assert_eq!(attr(&set[1], "samesite"), None);
    }
    // Byte for byte what werkzeug writes for FJE's defaults (JWT_SESSION_COOKIE: no Max-Age).
    assert_eq!(
        strs(&s.access_cookies("tok", Some("csrf"), None)),
        ["access_token_cookie=tok; HttpOnly; Path=/", "csrf_access_token=csrf; Path=/"]
    );
    assert_eq!(
        strs(&s.refresh_cookies("tok", Some("csrf"), None)),
        ["refresh_token_cookie=tok; HttpOnly; Path=/", "csrf_refresh_token=csrf; Path=/"]
    );
}

/// FJE's test_custom_cookie_options (Secure, domain test.com, SameSite=Strict, a max age).
#[test]
fn fje_test_custom_cookie_options() {
    let s = CookieSettings {
        secure: true,
        domain: Some("test.com".into()),
        same_site: Some(SameSite::Strict),
        ..CookieSettings::default()
    };
    for set in [s.access_cookies("tok", Some("csrf"), Some(900)), s.refresh_cookies("tok", Some("csrf"), Some(900))] {
        assert_eq!(set.len(), 2);
        for (i, c) in set.iter().enumerate() {
            assert_eq!(attr(c, "domain"), Some(Some("test.com".into())));
            assert_eq!(attr(c, "path"), Some(Some("/".into())));
            assert_eq!(attr(c, "max-age"), Some(Some("900".into())));
            assert_eq!(attr(c, "secure"), Some(None));
            assert_eq!(attr(c, "samesite"), Some(Some("Strict".into())));
            assert_eq!(attr(c, "httponly").is_some(), i == 0);
        }
    }
}

/// What Flask printed for FJE with JWT_COOKIE_SECURE, JWT_COOKIE_SAMESITE="Lax",
/// JWT_COOKIE_DOMAIN="example.com", JWT_REFRESH_COOKIE_PATH="/token/refresh" and
/// `set_access_cookies(resp, token, max_age=900)`, less werkzeug's `Expires` beside `Max-Age`.
#[test]
fn byte_for_byte_as_flask_wrote_them() {
    let s = CookieSettings {
        domain: Some("example.com".into()),
        refresh_cookie_path: "/token/refresh".into(),
        ..CookieSettings::default()
    };
    assert_eq!(
        strs(&s.access_cookies("eyJ.a.b", Some("06aeaaed-efe9"), Some(900))),
        [
            "access_token_cookie=eyJ.a.b; Domain=example.com; Max-Age=900; Secure; HttpOnly; Path=/; SameSite=Lax",
            "csrf_access_token=06aeaaed-efe9; Domain=example.com; Max-Age=900; Secure; Path=/; SameSite=Lax",
        ]
    );
    assert_eq!(
        strs(&s.refresh_cookies("eyJ.c.d", Some("48ed19ad-8893"), None)),
        [
            "refresh_token_cookie=eyJ.c.d; Domain=example.com; Secure; HttpOnly; Path=/token/refresh; SameSite=Lax",
            "csrf_refresh_token=48ed19ad-8893; Domain=example.com; Secure; Path=/; SameSite=Lax",
        ]
    );
    // unset_jwt_cookies: werkzeug's form plus Max-Age=0.
    assert_eq!(
        strs(&s.unset_jwt_cookies()),
        [
            "access_token_cookie=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/; SameSite=Lax",
            "csrf_access_token=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; Path=/; SameSite=Lax",
            "refresh_token_cookie=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/token/refresh; SameSite=Lax",
            "csrf_refresh_token=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; Path=/; SameSite=Lax",
        ]
    );
}

#[test]
fn fje_test_custom_cookie_names_and_paths() {
    let s = CookieSettings {
        access_csrf_cookie_name: "access_foo_csrf".into(),
        refresh_csrf_cookie_name: "refresh_foo_csrf".into(),
        access_csrf_cookie_path: "/protected".into(),
        refresh_csrf_cookie_path: "/refresh_protected".into(),
        access_cookie_name: "access_foo".into(),
        refresh_cookie_name: "refresh_foo".into(),
        access_cookie_path: "/protected".into(),
        refresh_cookie_path: "/refresh_protected".into(),
        ..fje_defaults()
    };
    assert_eq!(s.validate(), Ok(()));
    assert_eq!(
        strs(&s.access_cookies("t", Some("c"), None)),
        ["access_foo=t; HttpOnly; Path=/protected", "access_foo_csrf=c; Path=/protected"]
    );
    assert_eq!(
        strs(&s.refresh_cookies("t", Some("c"), None)),
        ["refresh_foo=t; HttpOnly; Path=/refresh_protected", "refresh_foo_csrf=c; Path=/refresh_protected"]
    );
    assert_eq!(
        strs(&s.unset_refresh_cookies()),
        [
            "refresh_foo=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/refresh_protected",
            "refresh_foo_csrf=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/refresh_protected",
        ]
    );
}

/// FJE's test_csrf_token_not_in_cookie and test_cookies_without_csrf: the token cookie only.
#[test]
fn fje_csrf_cookie_only_when_protected_and_in_cookies() {
    for s in [
        CookieSettings { csrf_in_cookies: false, ..CookieSettings::default() },
        CookieSettings { csrf_protect: false, ..CookieSettings::default() },
    ] {
        assert_eq!(s.access_cookies("t", Some("c"), None).len(), 1);
        assert_eq!(s.refresh_cookies("t", Some("c"), None).len(), 1);
        assert_eq!(strs(&s.unset_access_cookies()).len(), 1);
        assert_eq!(strs(&s.unset_refresh_cookies()).len(), 1);
        assert_eq!(s.unset_jwt_cookies().len(), 2);
        assert!(s.unset_jwt_cookies().iter().all(|c| attr(c, "httponly").is_some()));
    }
    // No CSRF value to write (a token without a csrf claim): the token cookie alone.
    let s = CookieSettings::default();
    assert_eq!(
        strs(&s.access_cookies("t", None, Some(5))),
        ["access_token_cookie=t; Max-Age=5; Secure; HttpOnly; Path=/; SameSite=Lax"]
    );
}

#[test]
fn max_age_is_never_negative_and_none_is_a_session_cookie() {
    let s = CookieSettings::default();
    assert_eq!(attr(&s.access_cookies("t", None, Some(-30))[0], "max-age"), Some(Some("0".into())));
    assert_eq!(attr(&s.access_cookies("t", None, Some(0))[0], "max-age"), Some(Some("0".into())));
    assert_eq!(attr(&s.access_cookies("t", None, Some(i64::MAX))[0], "max-age"), Some(Some(i64::MAX.to_string())));
    let session = &s.access_cookies("t", None, None)[0];
    assert_eq!(attr(session, "max-age"), None);
    assert_eq!(attr(session, "expires"), None);
}

#[test]
fn same_site_values() {
    for (same_site, text) in [(SameSite::Strict, "Strict"), (SameSite::Lax, "Lax"), (SameSite::None, "None")] {
        assert_eq!(same_site.as_str(), text);
        let s = CookieSettings { same_site: Some(same_site), ..CookieSettings::default() };
        assert_eq!(attr(&s.access_cookies("t", None, None)[0], "samesite"), Some(Some(text.into())));
    }
}

/// werkzeug 3.1.9's `dump_cookie("c", value)` for values that need quoting.
#[test]
fn values_are_quoted_as_werkzeug_quotes_them() {
    let s = fje_defaults();
    let cases = [
        ("a b", r#""a b""#),
        ("a,b", r#""a\054b""#),
        ("a;b", r#""a\073b""#),
        ("q\"q", r#""q\"q""#),
        ("b\\s", r#""b\\s""#),
        ("\u{e9}", r#""\303\251""#),
        ("tab\tx", r#""tab\011x""#),
        ("ok.-_~!#$%&()*+/:<=>?@[]^`{|}", "ok.-_~!#$%&()*+/:<=>?@[]^`{|}"),
        ("'", "'"),
        // werkzeug leaves U+001A..=U+001F raw (no header could carry it); escaped here.
        ("\u{1f}", r#""\037""#),
        ("\u{7f}", r#""\177""#),
    ];
    for (value, written) in cases {
        let set = s.access_cookies(value, None, None);
        assert_eq!(set.len(), 1, "{value:?}");
        assert_eq!(parse(&set[0]).0, format!("access_token_cookie={written}"), "{value:?}");
    }
}

#[test]
fn validate_reports_every_problem() {
    let problems = |s: CookieSettings| s.validate().unwrap_err();
    let d = CookieSettings::default;

    let e = problems(CookieSettings { access_cookie_name: "".into(), ..d() });
    assert!(e.contains("access_cookie_name \"\" is not a cookie name"), "{e}");
    for bad in ["a b", "a=b", "a;b", "a,b", "a\"b", "(x)", "é", "a/b", "a\tb"] {
        let e = problems(CookieSettings { refresh_csrf_cookie_name: bad.into(), ..d() });
        assert!(e.contains("refresh_csrf_cookie_name"), "{bad}: {e}");
    }
    let e = problems(CookieSettings { refresh_cookie_name: "access_token_cookie".into(), ..d() });
    assert!(e.contains("refresh_cookie_name and access_cookie_name are both \"access_token_cookie\""), "{e}");
    let e = problems(CookieSettings { access_csrf_cookie_name: "access_token_cookie".into(), ..d() });
    assert!(e.contains("access_csrf_cookie_name and access_cookie_name"), "{e}");

    let e = problems(CookieSettings { refresh_cookie_path: "token/refresh".into(), ..d() });
    assert!(e.contains("refresh_cookie_path \"token/refresh\" must start with '/'"), "{e}");
    let e = problems(CookieSettings { access_csrf_cookie_path: "".into(), ..d() });
    assert!(e.contains("access_csrf_cookie_path \"\" must start with '/'"), "{e}");
    for bad in ["/a b", "/a;b", "/a\"b", "/é", "/a\\b", "/a?b", "/a#b"] {
        let e = problems(CookieSettings { access_cookie_path: bad.into(), ..d() });
        assert!(e.contains("access_cookie_path") && e.contains("percent-encode"), "{bad}: {e}");
    }
    assert_eq!(CookieSettings { access_cookie_path: "/api/v1/a%20b:c@d".into(), ..d() }.validate(), Ok(()));

    for bad in ["", ".", "example.com:443", "https://example.com", "a..b", "-a.com", "a-.com", "a b.com", "a;b"] {
        let e = problems(CookieSettings { domain: Some(bad.into()), ..d() });
        assert!(e.contains("is not a host name"), "{bad}: {e}");
    }
    for good in ["example.com", ".example.com", "localhost", "a-b.example.co.uk", "127.0.0.1"] {
        assert_eq!(CookieSettings { domain: Some(good.into()), ..d() }.validate(), Ok(()), "{good}");
    }

    let e = problems(CookieSettings { same_site: Some(SameSite::None), secure: false, ..d() });
    assert!(e.contains("SameSite=None needs secure = true"), "{e}");
    assert_eq!(CookieSettings { same_site: Some(SameSite::None), ..d() }.validate(), Ok(()));
    assert_eq!(CookieSettings { same_site: None, secure: false, ..d() }.validate(), Ok(()));

    let e = problems(CookieSettings { access_cookie_name: "__Secure-at".into(), secure: false, ..d() });
    assert!(e.contains("__Secure- cookie without secure = true"), "{e}");
    assert_eq!(CookieSettings { access_cookie_name: "__Secure-at".into(), ..d() }.validate(), Ok(()));
    let e = problems(CookieSettings {
        refresh_cookie_name: "__Host-rt".into(),
        refresh_cookie_path: "/token".into(),
        ..d()
    });
    assert!(e.contains("__Host- cookie unless"), "{e}");
    let e = problems(CookieSettings { refresh_cookie_name: "__Host-rt".into(), domain: Some("a.com".into()), ..d() });
    assert!(e.contains("__Host- cookie unless"), "{e}");
    assert_eq!(CookieSettings { refresh_cookie_name: "__Host-rt".into(), ..d() }.validate(), Ok(()));

    // All at once, one per line.
    let e = problems(CookieSettings {
        access_cookie_name: "a b".into(),
        refresh_cookie_path: "x".into(),
        same_site: Some(SameSite::None),
        secure: false,
        ..d()
    });
    assert_eq!(e.lines().count(), 3, "{e}");
}

/// Every setting `validate` accepts writes every cookie (the helpers never silently drop one).
#[test]
fn valid_settings_always_write_their_cookies() {
    let settings = [
        CookieSettings::default(),
        fje_defaults(),
        CookieSettings {
            domain: Some(".example.com".into()),
            access_cookie_path: "/api/v1/a%20b:c@d,e=f+g".into(),
            access_cookie_name: "!#$%&'*+-.^_`|~".into(),
            same_site: Some(SameSite::None),
            ..CookieSettings::default()
        },
    ];
    for s in settings {
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.access_cookies("t", Some("c"), Some(1)).len(), 2);
        assert_eq!(s.refresh_cookies("t", Some("c"), Some(1)).len(), 2);
        assert_eq!(s.unset_jwt_cookies().len(), 4);
        for weird in ["\u{0}\u{1f}\u{7f}", "\u{10ffff}", "\"\\;,"] {
            assert_eq!(s.access_cookies(weird, Some(weird), None).len(), 2, "{weird:?}");
        }
    }
}

/// The examples in the rustdoc (marked `ignore` until the crate root re-exports the type).
#[test]
fn rustdoc_examples() {
    let settings =
        CookieSettings { refresh_cookie_path: "/token/refresh".into(), secure: false, ..CookieSettings::default() };
    settings.validate().unwrap();
    let set_cookies = settings.refresh_cookies("eyJ.x.y", Some("a-csrf-uuid"), Some(30 * 24 * 3600));
    assert_eq!(
        set_cookies[0],
        "refresh_token_cookie=eyJ.x.y; Max-Age=2592000; HttpOnly; Path=/token/refresh; SameSite=Lax"
    );
    assert_eq!(set_cookies[1], "csrf_refresh_token=a-csrf-uuid; Max-Age=2592000; Path=/; SameSite=Lax");

    let settings = CookieSettings::default();
    assert!(settings.needs_csrf(&Method::POST));
    assert!(!settings.needs_csrf(&Method::GET));
    let set_cookies = settings.access_cookies("eyJ.x.y", Some("a-csrf-uuid"), Some(900));
    assert_eq!(set_cookies[0], "access_token_cookie=eyJ.x.y; Max-Age=900; Secure; HttpOnly; Path=/; SameSite=Lax");
    assert_eq!(set_cookies[1], "csrf_access_token=a-csrf-uuid; Max-Age=900; Secure; Path=/; SameSite=Lax");
    assert_eq!(
        settings.refresh_cookies("eyJ.x.y", None, None),
        ["refresh_token_cookie=eyJ.x.y; Secure; HttpOnly; Path=/; SameSite=Lax"]
    );
    assert_eq!(
        settings.unset_access_cookies()[0],
        "access_token_cookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/; SameSite=Lax"
    );
    assert_eq!(settings.unset_refresh_cookies().len(), 2);
    assert_eq!(settings.unset_jwt_cookies().len(), 4);

    assert_eq!(SameSite::Strict.as_str(), "Strict");
    let bad = CookieSettings { secure: false, same_site: Some(SameSite::None), ..CookieSettings::default() };
    assert!(bad.validate().unwrap_err().contains("SameSite=None"));
}
