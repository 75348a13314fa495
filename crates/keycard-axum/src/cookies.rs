//! Cookie names and attributes (placeholder: replaced by the full implementation).

use axum::http::HeaderValue;

/// SameSite attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Strict.
    Strict,
    /// Lax.
    Lax,
    /// None.
    None,
}

/// Cookie names, paths and attributes.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    /// Access cookie name.
    pub access_cookie_name: String,
    /// Refresh cookie name.
    pub refresh_cookie_name: String,
    /// Access CSRF cookie name.
    pub access_csrf_cookie_name: String,
    /// Refresh CSRF cookie name.
    pub refresh_csrf_cookie_name: String,
    /// Access CSRF header.
    pub access_csrf_header_name: String,
    /// Refresh CSRF header.
    pub refresh_csrf_header_name: String,
    /// CSRF methods.
    pub csrf_methods: Vec<axum::http::Method>,
    /// CSRF protect.
    pub csrf_protect: bool,
    /// CSRF in cookies.
    pub csrf_in_cookies: bool,
    /// Secure.
    pub secure: bool,
    /// SameSite.
    pub same_site: Option<SameSite>,
    /// Access path.
    pub access_cookie_path: String,
    /// Refresh path.
    pub refresh_cookie_path: String,
    /// Domain.
    pub domain: Option<String>,
}

impl Default for CookieSettings {
    fn default() -> Self {
        use axum::http::Method;
        Self {
            access_cookie_name: "access_token_cookie".into(),
            refresh_cookie_name: "refresh_token_cookie".into(),
            access_csrf_cookie_name: "csrf_access_token".into(),
            refresh_csrf_cookie_name: "csrf_refresh_token".into(),
            access_csrf_header_name: "X-CSRF-TOKEN".into(),
            refresh_csrf_header_name: "X-CSRF-TOKEN".into(),
            csrf_methods: vec![Method::POST, Method::PUT, Method::PATCH, Method::DELETE],
            csrf_protect: true,
            csrf_in_cookies: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            access_cookie_path: "/".into(),
            refresh_cookie_path: "/".into(),
            domain: None,
        }
    }
}

impl CookieSettings {
    fn cookie(&self, name: &str, value: &str, path: &str, max_age: Option<i64>, http_only: bool) -> Option<HeaderValue> {
        let mut s = format!("{name}={value}; Path={path}");
        if let Some(m) = max_age {
            s.push_str(&format!("; Max-Age={m}"));
        }
        if http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        HeaderValue::from_str(&s).ok()
    }

    /// Access cookies.
    pub fn access_cookies(&self, token: &str, csrf: Option<&str>, max_age: Option<i64>) -> Vec<HeaderValue> {
        let mut v: Vec<HeaderValue> =
            self.cookie(&self.access_cookie_name, token, &self.access_cookie_path, max_age, true).into_iter().collect();
        if let (true, true, Some(c)) = (self.csrf_protect, self.csrf_in_cookies, csrf) {
            v.extend(self.cookie(&self.access_csrf_cookie_name, c, "/", max_age, false));
        }
        v
    }

    /// Refresh cookies.
    pub fn refresh_cookies(&self, token: &str, csrf: Option<&str>, max_age: Option<i64>) -> Vec<HeaderValue> {
        let mut v: Vec<HeaderValue> =
            self.cookie(&self.refresh_cookie_name, token, &self.refresh_cookie_path, max_age, true).into_iter().collect();
        if let (true, true, Some(c)) = (self.csrf_protect, self.csrf_in_cookies, csrf) {
            v.extend(self.cookie(&self.refresh_csrf_cookie_name, c, "/", max_age, false));
        }
        v
    }

    /// Unset access.
    pub fn unset_access_cookies(&self) -> Vec<HeaderValue> {
        self.access_cookies("", Some(""), Some(0))
    }

    /// Unset refresh.
    pub fn unset_refresh_cookies(&self) -> Vec<HeaderValue> {
        self.refresh_cookies("", Some(""), Some(0))
    }

    /// Unset both.
    pub fn unset_jwt_cookies(&self) -> Vec<HeaderValue> {
        let mut v = self.unset_access_cookies();
        v.extend(self.unset_refresh_cookies());
        v
    }

    /// Validate.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
