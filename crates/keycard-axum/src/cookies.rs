//! Cookie mode: the `Set-Cookie` values that put tokens (and their double-submit CSRF values)
//! into the browser and take them out again, as Flask-JWT-Extended's `set_access_cookies`,
//! `set_refresh_cookies`, `unset_access_cookies`, `unset_refresh_cookies` and
//! `unset_jwt_cookies` write them (werkzeug's `dump_cookie`), with safer defaults.

use axum::http::{HeaderName, HeaderValue, Method};

/// The `SameSite` attribute of every cookie written ([RFC 6265bis §4.1.2.7]).
///
/// [RFC 6265bis §4.1.2.7]: https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1.2.7
///
/// ```
/// use keycard_axum::{CookieSettings, SameSite};
/// let settings = CookieSettings { same_site: Some(SameSite::Strict), ..CookieSettings::default() };
/// assert_eq!(SameSite::Strict.as_str(), "Strict");
/// # let _ = settings;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent on same-site requests only, not even when following a link from another site.
    Strict,
    /// Sent on same-site requests and on top-level navigations (following a link) from other
    /// sites: the browsers' default, and keycard's.
    Lax,
    /// Sent on every request, cross-site ones included; browsers require `Secure` with it.
    None,
}

impl SameSite {
    /// The attribute value: `Strict`, `Lax` or `None`.
    ///
    /// ```
    /// assert_eq!(keycard_axum::SameSite::None.as_str(), "None");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// Cookie names, paths and attributes for cookie mode, and the CSRF double-submit settings
/// the extractors apply to cookie-borne tokens.
///
/// The defaults are FJE's names and paths (`access_token_cookie`, `refresh_token_cookie`,
/// `csrf_access_token`, `csrf_refresh_token`, header `X-CSRF-TOKEN`, CSRF checked on `POST`,
/// `PUT`, `PATCH` and `DELETE`, every path `/`, no `Domain`), and safer than FJE's attributes:
/// `Secure` and `SameSite=Lax` (FJE: neither). Token cookies are always `HttpOnly`; the CSRF
/// cookies never are (the page's script reads them to send the header).
///
/// Check a customised value with [`CookieSettings::validate`] at start (the config builder
/// does): the `Set-Cookie` helpers leave out a cookie whose header could not be written.
///
/// ```
/// use keycard_axum::CookieSettings;
/// let settings = CookieSettings {
///     refresh_cookie_path: "/token/refresh".into(),
///     secure: false, // plain-HTTP development server
///     ..CookieSettings::default()
/// };
/// settings.validate().unwrap();
/// let set_cookies = settings.refresh_cookies("eyJ.x.y", Some("a-csrf-uuid"), Some(30 * 24 * 3600));
/// assert_eq!(
///     set_cookies[0],
///     "refresh_token_cookie=eyJ.x.y; Max-Age=2592000; HttpOnly; Path=/token/refresh; SameSite=Lax"
/// );
/// assert_eq!(set_cookies[1], "csrf_refresh_token=a-csrf-uuid; Max-Age=2592000; Path=/; SameSite=Lax");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// Name of the cookie holding the access token (FJE `JWT_ACCESS_COOKIE_NAME`, default
    /// `access_token_cookie`).
    pub access_cookie_name: String,
    /// Name of the cookie holding the refresh token (FJE `JWT_REFRESH_COOKIE_NAME`, default
    /// `refresh_token_cookie`).
    pub refresh_cookie_name: String,
    /// Name of the readable cookie holding the access token's CSRF value (FJE
    /// `JWT_ACCESS_CSRF_COOKIE_NAME`, default `csrf_access_token`).
    pub access_csrf_cookie_name: String,
    /// Name of the readable cookie holding the refresh token's CSRF value (FJE
    /// `JWT_REFRESH_CSRF_COOKIE_NAME`, default `csrf_refresh_token`).
    pub refresh_csrf_cookie_name: String,
    /// Header that must echo the access token's CSRF value (FJE `JWT_ACCESS_CSRF_HEADER_NAME`,
    /// default `X-CSRF-TOKEN`).
    pub access_csrf_header: HeaderName,
    /// Header that must echo the refresh token's CSRF value (FJE
    /// `JWT_REFRESH_CSRF_HEADER_NAME`, default `X-CSRF-TOKEN`).
    pub refresh_csrf_header: HeaderName,
    /// Methods on which a cookie-borne token needs the CSRF header (FJE `JWT_CSRF_METHODS`,
    /// default `POST`, `PUT`, `PATCH`, `DELETE`).
    pub csrf_methods: Vec<Method>,
    /// `Path` of the access token cookie (FJE `JWT_ACCESS_COOKIE_PATH`, default `/`).
    pub access_cookie_path: String,
    /// `Path` of the refresh token cookie (FJE `JWT_REFRESH_COOKIE_PATH`, default `/`). Set it
    /// to the refresh route (e.g. `/token/refresh`) so the browser sends the long-lived token
    /// nowhere else.
    pub refresh_cookie_path: String,
    /// `Path` of the access CSRF cookie (FJE `JWT_ACCESS_CSRF_COOKIE_PATH`, default `/`): it
    /// must cover the pages whose script sends the header.
    pub access_csrf_cookie_path: String,
    /// `Path` of the refresh CSRF cookie (FJE `JWT_REFRESH_CSRF_COOKIE_PATH`, default `/`).
    pub refresh_csrf_cookie_path: String,
    /// `Domain` of every cookie (FJE `JWT_COOKIE_DOMAIN`, default none: host-only cookies,
    /// which sibling subdomains can neither read nor overwrite).
    pub domain: Option<String>,
    /// Whether cookie-borne tokens need the CSRF header on [`csrf_methods`](Self::csrf_methods)
    /// (FJE `JWT_COOKIE_CSRF_PROTECT`, default true).
    pub csrf_protect: bool,
    /// Whether the CSRF values are also sent as readable cookies (FJE `JWT_CSRF_IN_COOKIES`,
    /// default true); with false the application hands them to its script another way.
    pub csrf_in_cookies: bool,
    /// Whether every cookie is `Secure` (HTTPS only). FJE `JWT_COOKIE_SECURE` defaults to
    /// false; keycard to true: turn it off only for a plain-HTTP development server.
    pub secure: bool,
    /// The `SameSite` attribute of every cookie. FJE `JWT_COOKIE_SAMESITE` defaults to none
    /// (no attribute); keycard to `Some(SameSite::Lax)`. `None` writes no attribute.
    pub same_site: Option<SameSite>,
}

impl Default for CookieSettings {
    fn default() -> Self {
        let csrf_header = HeaderName::from_static("x-csrf-token");
        Self {
            access_cookie_name: "access_token_cookie".to_owned(),
            refresh_cookie_name: "refresh_token_cookie".to_owned(),
            access_csrf_cookie_name: "csrf_access_token".to_owned(),
            refresh_csrf_cookie_name: "csrf_refresh_token".to_owned(),
            access_csrf_header: csrf_header.clone(),
            refresh_csrf_header: csrf_header,
            csrf_methods: vec![Method::POST, Method::PUT, Method::PATCH, Method::DELETE],
            access_cookie_path: "/".to_owned(),
            refresh_cookie_path: "/".to_owned(),
            access_csrf_cookie_path: "/".to_owned(),
            refresh_csrf_cookie_path: "/".to_owned(),
            domain: None,
            csrf_protect: true,
            csrf_in_cookies: true,
            secure: true,
            same_site: Some(SameSite::Lax),
        }
    }
}

/// What one `Set-Cookie` writes: the value, or the deletion.
#[derive(Clone, Copy)]
enum Life<'a> {
    /// A value, kept `max_age` seconds (a session cookie when `None`).
    Set(&'a str, Option<i64>),
    /// Empty, `Max-Age=0` and an `Expires` in 1970: the browser drops it.
    Unset,
}

impl CookieSettings {
    /// Whether a token read from a cookie on a `method` request must be confirmed by the CSRF
    /// header: [`csrf_protect`](Self::csrf_protect) and the method is one of
    /// [`csrf_methods`](Self::csrf_methods).
    ///
    /// ```
    /// use axum::http::Method;
    /// let settings = keycard_axum::CookieSettings::default();
    /// assert!(settings.needs_csrf(&Method::POST));
    /// assert!(!settings.needs_csrf(&Method::GET));
    /// ```
    pub fn needs_csrf(&self, method: &Method) -> bool {
        self.csrf_protect && self.csrf_methods.contains(method)
    }

    /// Whether the CSRF cookies are written (and deleted): FJE writes them when both
    /// [`csrf_protect`](Self::csrf_protect) and [`csrf_in_cookies`](Self::csrf_in_cookies).
    fn csrf_cookies(&self) -> bool {
        self.csrf_protect && self.csrf_in_cookies
    }

    /// `Set-Cookie` values for an access token: the `HttpOnly` token cookie and, when
    /// [`csrf_protect`](Self::csrf_protect) and [`csrf_in_cookies`](Self::csrf_in_cookies) and
    /// `csrf` is given, the readable CSRF cookie holding `csrf` (the token's `csrf` claim).
    /// `max_age`: seconds the browser keeps them, normally the token's remaining lifetime
    /// (negative counts as 0); `None` makes session cookies, dropped when the browser closes.
    ///
    /// Like werkzeug, a value outside RFC 6265's cookie octets is sent in double quotes with
    /// backslash and `\ooo` escapes, which the cookie location reads back; a JWT or a UUID never
    /// needs it. No `Expires` is written beside `Max-Age` (werkzeug adds one; every browser in
    /// use honours `Max-Age`).
    ///
    /// ```
    /// let settings = keycard_axum::CookieSettings::default();
    /// let set_cookies = settings.access_cookies("eyJ.x.y", Some("a-csrf-uuid"), Some(900));
    /// assert_eq!(set_cookies[0], "access_token_cookie=eyJ.x.y; Max-Age=900; Secure; HttpOnly; Path=/; SameSite=Lax");
    /// assert_eq!(set_cookies[1], "csrf_access_token=a-csrf-uuid; Max-Age=900; Secure; Path=/; SameSite=Lax");
    /// ```
    pub fn access_cookies(&self, token: &str, csrf: Option<&str>, max_age: Option<i64>) -> Vec<HeaderValue> {
        self.pair(
            (&self.access_cookie_name, &self.access_cookie_path, Life::Set(token, max_age)),
            csrf.map(|csrf| (&*self.access_csrf_cookie_name, &*self.access_csrf_cookie_path, Life::Set(csrf, max_age))),
        )
    }

    /// `Set-Cookie` values for a refresh token: the same as [`access_cookies`](Self::access_cookies)
    /// with the refresh names and paths.
    ///
    /// ```
    /// let settings = keycard_axum::CookieSettings::default();
    /// let set_cookies = settings.refresh_cookies("eyJ.x.y", None, None);
    /// assert_eq!(set_cookies, ["refresh_token_cookie=eyJ.x.y; Secure; HttpOnly; Path=/; SameSite=Lax"]);
    /// ```
    pub fn refresh_cookies(&self, token: &str, csrf: Option<&str>, max_age: Option<i64>) -> Vec<HeaderValue> {
        self.pair(
            (&self.refresh_cookie_name, &self.refresh_cookie_path, Life::Set(token, max_age)),
            csrf.map(|csrf| {
                (&*self.refresh_csrf_cookie_name, &*self.refresh_csrf_cookie_path, Life::Set(csrf, max_age))
            }),
        )
    }

    /// Expiring cookies for the access token and (when the CSRF cookies are written at all)
    /// its CSRF cookie: empty value, `Max-Age=0` and `Expires` in 1970, with the same `Path`,
    /// `Domain` and attributes as they were set with (FJE's `unset_access_cookies`).
    ///
    /// ```
    /// let settings = keycard_axum::CookieSettings::default();
    /// assert_eq!(
    ///     settings.unset_access_cookies()[0],
    ///     "access_token_cookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/; SameSite=Lax"
    /// );
    /// ```
    pub fn unset_access_cookies(&self) -> Vec<HeaderValue> {
        self.pair(
            (&self.access_cookie_name, &self.access_cookie_path, Life::Unset),
            Some((&*self.access_csrf_cookie_name, &*self.access_csrf_cookie_path, Life::Unset)),
        )
    }

    /// Expiring cookies for the refresh token and its CSRF cookie (FJE's
    /// `unset_refresh_cookies`); see [`unset_access_cookies`](Self::unset_access_cookies).
    ///
    /// ```
    /// let settings = keycard_axum::CookieSettings::default();
    /// assert_eq!(settings.unset_refresh_cookies().len(), 2);
    /// ```
    pub fn unset_refresh_cookies(&self) -> Vec<HeaderValue> {
        self.pair(
            (&self.refresh_cookie_name, &self.refresh_cookie_path, Life::Unset),
            Some((&*self.refresh_csrf_cookie_name, &*self.refresh_csrf_cookie_path, Life::Unset)),
        )
    }

    /// Expiring cookies for both tokens and their CSRF cookies, access first (FJE's
    /// `unset_jwt_cookies`): what a logout answer sends.
    ///
    /// ```
    /// let settings = keycard_axum::CookieSettings::default();
    /// assert_eq!(settings.unset_jwt_cookies().len(), 4);
    /// ```
    pub fn unset_jwt_cookies(&self) -> Vec<HeaderValue> {
        let mut all = self.unset_access_cookies();
        all.extend(self.unset_refresh_cookies());
        all
    }

    /// The token cookie and, if the CSRF cookies are written, the CSRF cookie.
    fn pair(&self, token: (&str, &str, Life<'_>), csrf: Option<(&str, &str, Life<'_>)>) -> Vec<HeaderValue> {
        let csrf = csrf.filter(|_| self.csrf_cookies());
        let token = self.set_cookie(token.0, token.1, token.2, true);
        let csrf = csrf.and_then(|(name, path, life)| self.set_cookie(name, path, life, false));
        token.into_iter().chain(csrf).collect()
    }

    /// One `Set-Cookie` value, its attributes in werkzeug's order (`Domain`, `Expires`,
    /// `Max-Age`, `Secure`, `HttpOnly`, `Path`, `SameSite`). `None` only if a setting that
    /// [`validate`](Self::validate) refuses made the header invalid.
    fn set_cookie(&self, name: &str, path: &str, life: Life<'_>, http_only: bool) -> Option<HeaderValue> {
        let mut out = String::with_capacity(name.len() + 160);
        out.push_str(name);
        out.push('=');
        if let Life::Set(value, _) = life {
            push_cookie_value(&mut out, value);
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        match life {
            Life::Unset => out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"),
            Life::Set(_, Some(max_age)) => {
                out.push_str("; Max-Age=");
                out.push_str(&max_age.max(0).to_string());
            }
            Life::Set(_, None) => {}
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if http_only {
            out.push_str("; HttpOnly");
        }
        out.push_str("; Path=");
        out.push_str(path);
        if let Some(same_site) = self.same_site {
            out.push_str("; SameSite=");
            out.push_str(same_site.as_str());
        }
        HeaderValue::try_from(out).ok()
    }

    /// Problems to report at start, all of them (one per line): a cookie name that is not an
    /// RFC 6265 token, two cookies with the same name, a path not starting with `/` or holding
    /// characters that would need escaping, a domain that is not a host name, `SameSite=None`
    /// without `Secure`, and a `__Secure-` or `__Host-` name whose rules the settings break
    /// (browsers would drop such cookies silently).
    ///
    /// ```
    /// use keycard_axum::{CookieSettings, SameSite};
    /// assert!(CookieSettings::default().validate().is_ok());
    /// let bad = CookieSettings { secure: false, same_site: Some(SameSite::None), ..CookieSettings::default() };
    /// assert!(bad.validate().unwrap_err().contains("SameSite=None"));
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let cookies = [
            ("access_cookie_name", &self.access_cookie_name, "access_cookie_path", &self.access_cookie_path),
            ("refresh_cookie_name", &self.refresh_cookie_name, "refresh_cookie_path", &self.refresh_cookie_path),
            (
                "access_csrf_cookie_name",
                &self.access_csrf_cookie_name,
                "access_csrf_cookie_path",
                &self.access_csrf_cookie_path,
            ),
            (
                "refresh_csrf_cookie_name",
                &self.refresh_csrf_cookie_name,
                "refresh_csrf_cookie_path",
                &self.refresh_csrf_cookie_path,
            ),
        ];
        for (i, (field, name, path_field, path)) in cookies.iter().enumerate() {
            if !is_cookie_name(name) {
                problems
                    .push(format!("{field} {name:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"));
            }
            if let Some((other, _, _, _)) = cookies[..i].iter().find(|(_, n, _, _)| n == name) {
                problems.push(format!("{field} and {other} are both {name:?}: each cookie needs its own name"));
            }
            if !path.starts_with('/') {
                problems.push(format!("{path_field} {path:?} must start with '/'"));
            } else if !path.bytes().all(is_path_byte) {
                problems.push(format!(
                    "{path_field} {path:?} may hold only letters, digits and -._~%!$&'()*+,/:=@ (percent-encode the rest)"
                ));
            }
            if name.starts_with("__Secure-") && !self.secure {
                problems.push(format!("{field} {name:?}: browsers refuse a __Secure- cookie without secure = true"));
            }
            if name.starts_with("__Host-") && (!self.secure || self.domain.is_some() || path.as_str() != "/") {
                problems.push(format!(
                    "{field} {name:?}: browsers refuse a __Host- cookie unless secure = true, domain = None and {path_field} = \"/\""
                ));
            }
        }
        if let Some(domain) = &self.domain
            && !is_domain(domain)
        {
            problems.push(format!(
                "domain {domain:?} is not a host name (letters, digits, '-' and '.'; no port, no scheme)"
            ));
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            problems.push("same_site SameSite=None needs secure = true: browsers refuse it otherwise".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }
}

/// An RFC 6265 `cookie-name`: an RFC 9110 token (visible ASCII but separators).
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A byte werkzeug writes in a cookie `Path` as it is (`quote(path, safe="%!$&'()*+,/:=@")`).
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,/:=@".contains(&b)
}

/// A host name for `Domain`: dot-separated labels of letters, digits and hyphens (a leading
/// dot is allowed; browsers ignore it).
fn is_domain(domain: &str) -> bool {
    let host = domain.strip_prefix('.').unwrap_or(domain);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// werkzeug's `dump_cookie` value: as it is when every character is one of
/// `[A-Za-z0-9_!#$%&'()*+\-./:<=>?@\[\]^`{|}~]`, else in double quotes with `"` and `\`
/// backslash-escaped and every other byte outside printable ASCII, `,` and `;` written as
/// `\ooo` (werkzeug leaves U+001A..=U+001F raw, which no header may carry; they are escaped
/// here too).
fn push_cookie_value(out: &mut String, value: &str) {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_!#$%&'()*+-./:<=>?@[]^`{|}~".contains(&b);
    if value.bytes().all(plain) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for b in value.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b',' | b';' | 0x00..=0x1f | 0x7f..=0xff => out.push_str(&format!("\\{b:03o}")),
            _ => out.push(char::from(b)),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
