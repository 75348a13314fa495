//! Cookie mode (`KEYCARD_TOKEN_LOCATIONS=headers,cookies`): the token and CSRF cookies set by
//! `/login` and `/token/refresh`, double-submit CSRF on unsafe methods, `/logout` expiring the
//! cookies, bearer headers unchanged, and the `/demo` page. Cookies are read from `Set-Cookie`
//! and sent back by hand (a tiny jar honouring `Path` and `Max-Age=0`), so every attribute is
//! asserted as the server wrote it.

use std::collections::BTreeMap;
use std::time::Duration;

use keycard_axum::SameSite;
use keycard_server::settings::{TokenLocations, Transport};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const ACCESS: &str = "access_token_cookie";
const REFRESH: &str = "refresh_token_cookie";
const CSRF_ACCESS: &str = "csrf_access_token";
const CSRF_REFRESH: &str = "csrf_refresh_token";

fn transport(locations: &str) -> Transport {
    Transport { locations: locations.parse::<TokenLocations>().unwrap(), ..Transport::default() }
}

async fn spawn_cookie_app() -> TestApp {
    spawn_app_with(|s| s.transport = transport("headers,cookies")).await
}

/// One `Set-Cookie` line, split into its parts.
#[derive(Debug, Clone)]
struct SetCookie {
    value: String,
    /// Attribute names (lower case) and values, in order.
    attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_deref())
    }

    fn has(&self, flag: &str) -> bool {
        self.attribute(flag).is_some()
    }

    fn path(&self) -> &str {
        self.attribute("path").flatten().unwrap_or("/")
    }

    fn max_age(&self) -> Option<i64> {
        self.attribute("max-age").flatten().map(|v| v.parse().unwrap())
    }

    fn same_site(&self) -> Option<&str> {
        self.attribute("samesite").flatten()
    }
}

/// Every `Set-Cookie` of a response, by cookie name (a name set twice fails the test).
fn set_cookies(response: &Response) -> BTreeMap<String, SetCookie> {
    let mut out = BTreeMap::new();
    for line in response.headers().get_all("set-cookie") {
        let line = line.to_str().unwrap();
        let mut parts = line.split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        let attributes = parts
            .map(|a| match a.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_owned())),
                None => (a.to_ascii_lowercase(), None),
            })
            .collect();
        let previous = out.insert(name.to_owned(), SetCookie { value: value.to_owned(), attributes });
        assert!(previous.is_none(), "{name} set twice in one response");
    }
    out
}

/// What a browser keeps: name -> (value, path).
#[derive(Debug, Default, Clone)]
struct Jar(BTreeMap<String, (String, String)>);

impl Jar {
    /// Takes in a response's cookies: a `Max-Age=0` one is dropped.
    fn update(&mut self, set: &BTreeMap<String, SetCookie>) {
        for (name, cookie) in set {
            if cookie.max_age() == Some(0) {
                self.0.remove(name);
            } else {
                self.0.insert(name.clone(), (cookie.value.clone(), cookie.path().to_owned()));
            }
        }
    }

    fn get(&self, name: &str) -> &str {
        &self.0.get(name).unwrap_or_else(|| panic!("no cookie {name} in {self:?}")).0
    }

    /// The `Cookie` header a browser sends to `path` (RFC 6265 §5.1.4 path match, simplified).
    fn header_for(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap_or_default();
        self.0
            .iter()
            .filter(|(_, (_, p))| p == "/" || path == p || path.starts_with(&format!("{p}/")))
            .map(|(n, (v, _))| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A request as the demo page sends it: the jar's cookies for the path, the CSRF header if given.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    jar: &Jar,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path));
    let cookies = jar.header_for(path);
    if !cookies.is_empty() {
        request = request.header("cookie", cookies);
    }
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Registers `username` and logs in; the jar holds the four cookies.
async fn cookie_login(app: &TestApp, username: &str) -> (Jar, Response) {
    assert_eq!(app.register(username, PASSWORD).await.status(), StatusCode::CREATED);
    let response = app.login(username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut jar = Jar::default();
    jar.update(&set_cookies(&response));
    (jar, response)
}

async fn session_ids(app: &TestApp, jar: &Jar) -> Vec<(String, bool)> {
    let response = send(app, Method::GET, "/user/sessions", jar, None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let sessions: Vec<Value> = response.json().await.unwrap();
    sessions.iter().map(|s| (s["id"].as_str().unwrap().to_owned(), s["current"].as_bool().unwrap())).collect()
}

#[tokio::test]
async fn login_in_cookie_mode_sets_the_four_cookies_with_their_attributes() {
    let app = spawn_cookie_app().await;
    assert_eq!(app.register("alice", PASSWORD).await.status(), StatusCode::CREATED);

    let response = app.login("alice", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let set = set_cookies(&response);
    assert_eq!(set.keys().collect::<Vec<_>>(), [ACCESS, CSRF_ACCESS, CSRF_REFRESH, REFRESH], "{set:?}");
    let body: Value = response.json().await.unwrap();
    let pair = TokenPair::from_body(&body);
    // The cookies hold the very tokens of the body, and the CSRF cookies their csrf claims.
    assert_eq!(set[ACCESS].value, pair.access);
    assert_eq!(set[REFRESH].value, pair.refresh);
    let (access_claims, refresh_claims) = (claims_of(&pair.access), claims_of(&pair.refresh));
    assert_eq!(set[CSRF_ACCESS].value, access_claims["csrf"].as_str().unwrap());
    assert_eq!(set[CSRF_REFRESH].value, refresh_claims["csrf"].as_str().unwrap());
    assert_ne!(set[CSRF_ACCESS].value, set[CSRF_REFRESH].value);
    for (name, cookie) in &set {
        let token_cookie = name == ACCESS || name == REFRESH;
        assert_eq!(cookie.has("httponly"), token_cookie, "{name}: HttpOnly on token cookies only");
        assert!(cookie.has("secure"), "{name}: Secure by default");
        assert_eq!(cookie.same_site(), Some("Lax"), "{name}");
        assert!(!cookie.has("domain"), "{name}: host-only");
        let expected_path = if name == REFRESH { "/token/refresh" } else { "/" };
        assert_eq!(cookie.path(), expected_path, "{name}");
    }
    // Max-Age is each token's lifetime (the test clock does not move).
    for name in [ACCESS, CSRF_ACCESS] {
        assert_eq!(set[name].max_age(), Some(15 * 60), "{name}");
    }
    for name in [REFRESH, CSRF_REFRESH] {
        assert_eq!(set[name].max_age(), Some(30 * 86_400), "{name}");
    }
}

#[tokio::test]
async fn a_cookie_authenticated_get_needs_no_csrf_header() {
    let app = spawn_cookie_app().await;
    let (jar, _) = cookie_login(&app, "alice").await;

    let response = send(&app, Method::GET, "/user", &jar, None, None).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["username"], "alice");
    let response = send(&app, Method::GET, "/protected", &jar, None, None).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"logged_in_as": "alice"}));
}

#[tokio::test]
async fn a_cookie_authenticated_delete_needs_the_matching_csrf_header() {
    let app = spawn_cookie_app().await;
    let (jar, _) = cookie_login(&app, "alice").await;
    let other = app.login_tokens("alice", PASSWORD).await;
    let (other_sid, _) = session_ids(&app, &jar).await.into_iter().find(|(_, current)| !current).unwrap();
    let path = format!("/user/sessions/{other_sid}");

    assert_401(send(&app, Method::DELETE, &path, &jar, None, None).await, "Missing CSRF token").await;
    let wrong = jar.get(CSRF_REFRESH).to_owned();
    let mismatch = send(&app, Method::DELETE, &path, &jar, Some(&wrong), None).await;
    assert_401(mismatch, "CSRF double submit tokens do not match").await;
    assert_eq!(app.get("/protected", Some(&other.access)).await.status(), StatusCode::OK, "nothing was ended");

    let response = send(&app, Method::DELETE, &path, &jar, Some(jar.get(CSRF_ACCESS)), None).await;

    assert_eq!(msg_of(response).await, (StatusCode::OK, "Session revoked".to_owned()));
    assert_401(app.get("/protected", Some(&other.access)).await, "Token has been revoked").await;
}

#[tokio::test]
async fn a_cookie_authenticated_password_change_needs_the_csrf_header() {
    let app = spawn_cookie_app().await;
    let (jar, _) = cookie_login(&app, "alice").await;
    let change = json!({ "current_password": PASSWORD, "new_password": "another long passphrase" });

    let refused = send(&app, Method::PUT, "/user/password", &jar, None, Some(change.clone())).await;
    assert_401(refused, "Missing CSRF token").await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK, "the password is unchanged");

    let response = send(&app, Method::PUT, "/user/password", &jar, Some(jar.get(CSRF_ACCESS)), Some(change)).await;

    assert_eq!(msg_of(response).await, (StatusCode::OK, "Password changed".to_owned()));
    assert_eq!(app.login("alice", "another long passphrase").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_by_cookie_rotates_and_sets_new_cookies() {
    let app = spawn_cookie_app().await;
    let (mut jar, _) = cookie_login(&app, "alice").await;
    let old = jar.clone();
    // The refresh cookie is not sent anywhere else.
    assert!(!jar.header_for("/user").contains(REFRESH));
    assert!(jar.header_for("/token/refresh").contains(REFRESH));

    let refused = send(&app, Method::POST, "/token/refresh", &jar, None, None).await;
    assert_401(refused, "Missing CSRF token").await;
    let with_access_csrf = send(&app, Method::POST, "/token/refresh", &jar, Some(jar.get(CSRF_ACCESS)), None).await;
    assert_401(with_access_csrf, "CSRF double submit tokens do not match").await;

    let response = send(&app, Method::POST, "/token/refresh", &jar, Some(jar.get(CSRF_REFRESH)), None).await;

    assert_eq!(response.status(), StatusCode::OK);
    let set = set_cookies(&response);
    assert_eq!(set.len(), 4, "{set:?}");
    assert_eq!(set[REFRESH].path(), "/token/refresh");
    assert!(set[ACCESS].has("httponly") && set[REFRESH].has("httponly"));
    let pair = TokenPair::from_body(&response.json().await.unwrap());
    assert_eq!(
        (set[ACCESS].value.as_str(), set[REFRESH].value.as_str()),
        (pair.access.as_str(), pair.refresh.as_str())
    );
    jar.update(&set);
    for name in [ACCESS, REFRESH, CSRF_ACCESS, CSRF_REFRESH] {
        assert_ne!(jar.get(name), old.get(name), "{name} was not replaced");
    }
    assert_eq!(claims_of(jar.get(ACCESS))["fresh"], false);
    let user = send(&app, Method::GET, "/user", &jar, None, None).await;
    assert_eq!(user.status(), StatusCode::OK);
    // The rotated-away refresh cookie is a reuse: the session ends.
    let reused = send(&app, Method::POST, "/token/refresh", &old, Some(old.get(CSRF_REFRESH)), None).await;
    assert_401(reused, "Refresh token reused: the session has been ended").await;
    assert_401(send(&app, Method::GET, "/user", &jar, None, None).await, "Token has been revoked").await;
}

#[tokio::test]
async fn logout_unsets_the_cookies_and_the_old_access_cookie_stops_working() {
    let app = spawn_cookie_app().await;
    let (mut jar, _) = cookie_login(&app, "alice").await;
    let old = jar.clone();

    let without_csrf = send(&app, Method::DELETE, "/logout", &jar, None, None).await;
    assert!(set_cookies(&without_csrf).is_empty(), "a request failing CSRF changes nothing");
    assert_401(without_csrf, "Missing CSRF token").await;

    let response = send(&app, Method::DELETE, "/logout", &jar, Some(jar.get(CSRF_ACCESS)), None).await;

    assert_eq!(response.status(), StatusCode::OK);
    let set = set_cookies(&response);
    assert_eq!(set.len(), 4, "{set:?}");
    for (name, cookie) in &set {
        assert_eq!((cookie.value.as_str(), cookie.max_age()), ("", Some(0)), "{name}");
        let expected_path = if name == REFRESH { "/token/refresh" } else { "/" };
        assert_eq!(cookie.path(), expected_path, "{name}: deleted where it was set");
    }
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"msg": "Token revoked"}));
    jar.update(&set);
    assert!(jar.0.is_empty(), "{jar:?}");
    assert_401(send(&app, Method::GET, "/user", &old, None, None).await, "Token has been revoked").await;
    let refresh = send(&app, Method::POST, "/token/refresh", &old, Some(old.get(CSRF_REFRESH)), None).await;
    assert_401(refresh, "Token has been revoked").await;
}

#[tokio::test]
async fn logout_with_a_refused_token_still_unsets_the_cookies() {
    let app = spawn_cookie_app().await;
    let (jar, _) = cookie_login(&app, "alice").await;
    let first = send(&app, Method::DELETE, "/logout", &jar, Some(jar.get(CSRF_ACCESS)), None).await;
    assert_eq!(first.status(), StatusCode::OK);

    // A browser still holding the revoked cookies (another tab) logs out again.
    let again = send(&app, Method::DELETE, "/logout", &jar, Some(jar.get(CSRF_ACCESS)), None).await;

    let set = set_cookies(&again);
    assert_eq!(set.len(), 4, "{set:?}");
    assert!(set.values().all(|c| c.max_age() == Some(0)));
    assert_401(again, "Token has been revoked").await;
    // And one whose access cookie is gone (expired) gets its other cookies cleared.
    app.clock.advance(16 * 60);
    let expired = send(&app, Method::DELETE, "/logout", &jar, Some(jar.get(CSRF_ACCESS)), None).await;
    assert_eq!(set_cookies(&expired).len(), 4);
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_headers_work_exactly_as_before_in_cookie_mode() {
    let app = spawn_cookie_app().await;
    let tokens = app.user_with_tokens("alice").await;

    assert_eq!(app.get("/user", Some(&tokens.access)).await.status(), StatusCode::OK);
    // A header-borne token needs no CSRF header, on any method.
    let (sid, _) = {
        let response = app.get("/user/sessions", Some(&tokens.access)).await;
        let sessions: Vec<Value> = response.json().await.unwrap();
        (sessions[0]["id"].as_str().unwrap().to_owned(), ())
    };
    let refreshed = app.refresh(&tokens.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let pair = TokenPair::from_body(&refreshed.json().await.unwrap());
    let other = app.login_tokens("alice", PASSWORD).await;
    let ended =
        app.client.delete(app.url(&format!("/user/sessions/{sid}"))).bearer_auth(&other.access).send().await.unwrap();
    assert_eq!(msg_of(ended).await, (StatusCode::OK, "Session revoked".to_owned()));
    assert_401(app.get("/protected", Some(&pair.access)).await, "Token has been revoked").await;
    let logout = app.logout(&other.access).await;
    assert_eq!(logout.status(), StatusCode::OK);
    assert_401(app.get("/protected", Some(&other.access)).await, "Token has been revoked").await;
    // A bearer header wins over cookies (headers come first in headers,cookies).
    let third = app.login_tokens("alice", PASSWORD).await;
    let mut jar = Jar::default();
    jar.0.insert(ACCESS.to_owned(), ("not-a-token".to_owned(), "/".to_owned()));
    let response =
        app.client.get(app.url("/user")).bearer_auth(&third.access).header("cookie", jar.header_for("/user")).send();
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn headers_only_mode_sets_no_cookies_and_reads_none() {
    let app = spawn_app().await;
    assert_eq!(app.register("alice", PASSWORD).await.status(), StatusCode::CREATED);

    let response = app.login("alice", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_none());
    let pair = TokenPair::from_body(&response.json().await.unwrap());
    assert!(claims_of(&pair.access).get("csrf").is_none(), "no csrf claim outside cookie mode");
    let refreshed = app.refresh(&pair.refresh).await;
    assert!(refreshed.headers().get("set-cookie").is_none());
    let mut jar = Jar::default();
    jar.0.insert(ACCESS.to_owned(), (pair.access.clone(), "/".to_owned()));
    assert_401(send(&app, Method::GET, "/user", &jar, None, None).await, "Missing Authorization Header").await;
    let logout = app.logout(&TokenPair::from_body(&refreshed.json().await.unwrap()).access).await;
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(logout.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn cookies_alone_keep_tokens_out_of_bodies_and_refuse_bearer_headers() {
    let app = spawn_app_with(|s| s.transport = transport("cookies")).await;
    let (jar, response) = cookie_login(&app, "alice").await;

    let body: Value = response.json().await.unwrap();
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["expires_in"], 900);
    let user = send(&app, Method::GET, "/user", &jar, None, None).await;
    assert_eq!(user.status(), StatusCode::OK);
    let bearer = app.get("/user", Some(jar.get(ACCESS))).await;
    assert_401(bearer, "Missing cookie \"access_token_cookie\"").await;
}

#[tokio::test]
async fn cookie_attributes_follow_secure_and_samesite_settings() {
    let app = spawn_app_with(|s| {
        s.transport =
            Transport { cookie_secure: false, cookie_same_site: SameSite::Strict, ..transport("headers,cookies") }
    })
    .await;

    let (_, response) = cookie_login(&app, "alice").await;

    let set = set_cookies(&response);
    assert_eq!(set.len(), 4);
    for (name, cookie) in &set {
        assert!(!cookie.has("secure"), "{name}: KEYCARD_COOKIE_SECURE=false drops Secure");
        assert_eq!(cookie.same_site(), Some("Strict"), "{name}");
    }
}

#[tokio::test]
async fn the_demo_is_served_in_cookie_mode_with_a_strict_content_security_policy() {
    let app = spawn_cookie_app().await;

    let page = app.get("/demo", None).await;

    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
    let html = page.text().await.unwrap();
    // No inline script or style, nothing from elsewhere: every script has a same-origin src.
    assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/demo/").count(), "{html}");
    assert!(!html.contains("<style") && !html.contains(" style=") && !html.contains("//"), "{html}");
    for field in ["register-username", "register-password", "login-username", "login-password"] {
        assert!(html.contains(&format!("<label for=\"{field}\">")), "{field}");
    }
    let script = app.get("/demo/app.js", None).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.headers().contains_key("content-security-policy"));
    let js = script.text().await.unwrap();
    assert!(js.contains("X-CSRF-TOKEN") && js.contains("credentials: \"same-origin\""));
    let css = app.get("/demo/app.css", None).await;
    assert_eq!(
        (css.status(), css.headers()["content-type"].to_str().unwrap()),
        (StatusCode::OK, "text/css; charset=utf-8")
    );
}

#[tokio::test]
async fn the_demo_is_not_found_outside_cookie_mode() {
    let app = spawn_app().await;
    for path in ["/demo", "/demo/app.js", "/demo/app.css"] {
        let (status, msg) = msg_of(app.get(path, None).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(msg.contains("KEYCARD_TOKEN_LOCATIONS=headers,cookies"), "{path}: {msg}");
    }
}

#[test]
fn bad_cookie_settings_stop_the_binary_at_start() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("KEYCARD_TOKEN_LOCATIONS", "query_string")], "is not a token location keycard serves"),
        (&[("KEYCARD_TOKEN_LOCATIONS", "headers,headers")], "KEYCARD_TOKEN_LOCATIONS lists `headers` twice"),
        (&[("KEYCARD_COOKIE_SECURE", "maybe")], "is not true or false (KEYCARD_COOKIE_SECURE)"),
        (
            &[("KEYCARD_TOKEN_LOCATIONS", "cookies"), ("KEYCARD_COOKIE_SAMESITE", "sometimes")],
            "is not a SameSite value",
        ),
        (
            &[
                ("KEYCARD_TOKEN_LOCATIONS", "cookies"),
                ("KEYCARD_COOKIE_SAMESITE", "None"),
                ("KEYCARD_COOKIE_SECURE", "false"),
            ],
            "KEYCARD_COOKIE_SAMESITE=None needs KEYCARD_COOKIE_SECURE=true",
        ),
    ];
    for (envs, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("keycard.db").display());
        let mut all = vec![("KEYCARD_JWT_SECRET", SECRET), ("KEYCARD_DATABASE_URL", database.as_str())];
        all.extend_from_slice(envs);
        let out = serve_until_exit(dir.path(), &all, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{envs:?} started");
        assert!(stderr.contains(expected), "{envs:?}: {stderr}");
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}

/// The binary at debug level through a whole cookie flow: no token, CSRF value or password in
/// its logs (`Cookie` is a sensitive header, `Set-Cookie` is never logged).
#[tokio::test]
async fn cookie_mode_logs_neither_tokens_nor_csrf_values() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("keycard.db").display());
    let envs = [
        ("KEYCARD_JWT_SECRET", SECRET),
        ("KEYCARD_DATABASE_URL", database.as_str()),
        ("KEYCARD_TOKEN_LOCATIONS", "headers,cookies"),
        ("KEYCARD_COOKIE_SECURE", "false"),
        ("RUST_LOG", "debug"),
    ];
    let server = Process::serve(dir.path(), &envs);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.address);
    let credentials = json!({ "username": "alice", "password": PASSWORD });
    assert_eq!(client.post(url("/register")).json(&credentials).send().await.unwrap().status(), StatusCode::CREATED);
    let login = client.post(url("/login")).json(&credentials).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let mut jar = Jar::default();
    jar.update(&set_cookies(&login));
    let mut seen: Vec<String> = jar.0.values().map(|(v, _)| v.clone()).collect();
    let user = client.get(url("/user")).header("cookie", jar.header_for("/user")).send().await.unwrap();
    assert_eq!(user.status(), StatusCode::OK);
    let refresh = client
        .post(url("/token/refresh"))
        .header("cookie", jar.header_for("/token/refresh"))
        .header("x-csrf-token", jar.get(CSRF_REFRESH))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::OK);
    jar.update(&set_cookies(&refresh));
    seen.extend(jar.0.values().map(|(v, _)| v.clone()));
    let logout = client
        .delete(url("/logout"))
        .header("cookie", jar.header_for("/logout"))
        .header("x-csrf-token", jar.get(CSRF_ACCESS))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);

    let (status, logs) = server.terminate();

    assert!(status.success());
    assert!(logs.contains("/token/refresh") && logs.contains("token_locations=headers,cookies"), "{logs}");
    assert!(logs.contains("KEYCARD_COOKIE_SECURE=false"), "a warning names the insecure setting: {logs}");
    let signatures = seen.iter().filter_map(|v| v.split('.').nth(2).map(str::to_owned)).collect::<Vec<_>>();
    assert_eq!(signatures.len(), 4, "two token pairs");
    for leaked in seen.iter().chain(&signatures).map(String::as_str).chain([PASSWORD, SECRET]) {
        assert!(!logs.contains(leaked), "the logs contain {leaked:?}");
    }
}
