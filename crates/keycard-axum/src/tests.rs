//! Extractor behaviour driven through a router with `oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json as AxumJson, Router};
use keycard_token::{Keys, ManualClock, RevocationList, TokenError, TokenSettings, Tokens};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

const NOW: i64 = 1_800_000_000;

fn tokens() -> (Arc<Tokens>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let keys = Keys::hmac_sha256(&[5u8; 32]).unwrap();
    (Arc::new(Tokens::new(keys, TokenSettings::default(), clock.clone())), clock)
}

fn routes() -> Router {
    Router::new()
        .route("/access", get(|jwt: Jwt| async move { AxumJson(json!({"sub": jwt.sub, "at": jwt.location.as_str()})) }))
        .route("/access", post(|jwt: Jwt| async move { AxumJson(json!({"sub": jwt.sub})) }))
        .route("/optional", get(|jwt: Option<Jwt>| async move { AxumJson(json!(jwt.map(|j| j.sub.clone()))) }))
        .route("/fresh", get(|jwt: FreshJwt| async move { AxumJson(json!(jwt.sub)) }))
        .route("/refresh", post(|jwt: RefreshJwt| async move { AxumJson(json!(jwt.sub)) }))
        .route("/any", get(|jwt: AnyJwt| async move { AxumJson(json!(jwt.token_type.as_str())) }))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers)
}

fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn required_optional_fresh_refresh_and_any() {
    let (tokens, _) = tokens();
    let app = routes().layer(JwtConfig::<()>::builder(tokens.clone()).build().unwrap().layer());
    let access = tokens.access("alice").sign().unwrap().token;
    let fresh = tokens.access("alice").fresh(true).sign().unwrap().token;
    let refresh = tokens.refresh("alice").sign().unwrap().token;

    let (status, body, headers) = send(&app, get_with("/access", &[])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Missing Authorization Header"})));
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &bearer(&access))])).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"sub": "alice", "at": "headers"})));
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &bearer(&refresh))])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Only non-refresh tokens are allowed"})));

    assert_eq!(send(&app, get_with("/optional", &[])).await.1, Value::Null);
    assert_eq!(send(&app, get_with("/optional", &[("authorization", &bearer(&access))])).await.1, json!("alice"));
    let (status, body, _) = send(&app, get_with("/optional", &[("authorization", "Bearer a.b.c")])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an invalid token is refused even where optional: {body}");

    let (status, body, _) = send(&app, get_with("/fresh", &[("authorization", &bearer(&access))])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Fresh token required"})));
    assert_eq!(send(&app, get_with("/fresh", &[("authorization", &bearer(&fresh))])).await.0, StatusCode::OK);

    let post_refresh =
        |token: &str| Request::post("/refresh").header("authorization", bearer(token)).body(Body::empty()).unwrap();
    assert_eq!(send(&app, post_refresh(&refresh)).await.0, StatusCode::OK);
    let (status, body, _) = send(&app, post_refresh(&access)).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Only refresh tokens are allowed"})));

    assert_eq!(send(&app, get_with("/any", &[("authorization", &bearer(&refresh))])).await.1, json!("refresh"));
}

#[tokio::test]
async fn an_extractor_without_its_layer_is_a_loud_500_not_a_bypass() {
    let app = routes();
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", "Bearer x")])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
}

#[tokio::test]
async fn only_a_missing_token_falls_through_to_the_next_location() {
    let (tokens, _) = tokens();
    let config = JwtConfig::<()>::builder(tokens.clone())
        .locations([Location::Headers, Location::Cookies, Location::QueryString, Location::Json])
        .build()
        .unwrap();
    let app = routes().layer(config.layer());
    let access = tokens.access("alice").sign().unwrap().token;

    let (status, body, _) = send(&app, get_with("/access", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["msg"].as_str().unwrap().starts_with("Missing JWT in headers, cookies, query_string or json ("),
        "{body}"
    );

    let cookie = format!("access_token_cookie={access}");
    let (status, body, _) = send(&app, get_with("/access", &[("cookie", &cookie)])).await;
    assert_eq!((status, body["at"].clone()), (StatusCode::OK, json!("cookies")));
    let (status, body, _) = send(&app, get_with(&format!("/access?jwt={access}"), &[])).await;
    assert_eq!((status, body["at"].clone()), (StatusCode::OK, json!("query_string")));
    // An invalid header stops the search even with a valid cookie behind it.
    let (status, _, _) =
        send(&app, get_with("/access", &[("authorization", "Bearer a.b.c"), ("cookie", &cookie)])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let json_body = json!({"access_token": access}).to_string();
    let req = Request::post("/access").header("content-type", "application/json").body(Body::from(json_body)).unwrap();
    let (status, body, _) = send(&app, req).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"sub": "alice"})));
}

#[tokio::test]
async fn cookies_need_the_double_submit_header_on_state_changing_methods() {
    let (tokens, _) = tokens();
    let config = JwtConfig::<()>::builder(tokens.clone()).locations([Location::Cookies]).build().unwrap();
    let app = routes().layer(config.layer());
    let signed = tokens.access("alice").sign().unwrap();
    let set = config.access_cookies(&signed).0;
    assert_eq!(set.len(), 2, "the token cookie and the CSRF cookie");
    let csrf = signed.claims.csrf.clone().unwrap();
    let cookie = format!("access_token_cookie={}; csrf_access_token={csrf}", signed.token);

    assert_eq!(send(&app, get_with("/access", &[("cookie", &cookie)])).await.0, StatusCode::OK, "GET is not checked");
    let post = |csrf: Option<&str>| {
        let mut req = Request::post("/access").header("cookie", &cookie);
        if let Some(value) = csrf {
            req = req.header("x-csrf-token", value);
        }
        req.body(Body::empty()).unwrap()
    };
    let (status, body, _) = send(&app, post(None)).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Missing CSRF token"})));
    let (status, body, _) = send(&app, post(Some("wrong"))).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "CSRF double submit tokens do not match"})));
    assert_eq!(send(&app, post(Some(&csrf))).await.0, StatusCode::OK);
}

#[derive(Clone)]
struct Flaky(Arc<std::sync::atomic::AtomicBool>);

impl Revocation<()> for Flaky {
    async fn is_revoked(&self, _token: &keycard_token::Decoded<()>) -> Result<bool, BoxError> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) { Err("redis is down".into()) } else { Ok(false) }
    }
}

#[tokio::test]
async fn revocation_hooks_refuse_revoked_tokens_and_fail_closed() {
    let (tokens, _) = tokens();
    let list = Arc::new(RevocationList::new());
    let app =
        routes().layer(JwtConfig::<()>::builder(tokens.clone()).revocation(list.clone()).build().unwrap().layer());
    let signed = tokens.access("alice").sign().unwrap();
    let auth = bearer(&signed.token);
    assert_eq!(send(&app, get_with("/access", &[("authorization", &auth)])).await.0, StatusCode::OK);
    list.revoke_token(&signed.claims);
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &auth)])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Token has been revoked"})));

    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app = routes()
        .layer(JwtConfig::<()>::builder(tokens.clone()).revocation(Flaky(down.clone())).build().unwrap().layer());
    assert_eq!(send(&app, get_with("/access", &[("authorization", &auth)])).await.0, StatusCode::SERVICE_UNAVAILABLE);
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(send(&app, get_with("/access", &[("authorization", &auth)])).await.0, StatusCode::OK);
}

#[tokio::test]
async fn claims_checks_and_error_overrides() {
    let (tokens, clock) = tokens();
    let config = JwtConfig::<()>::builder(tokens.clone())
        .claims_check_fn(|token| token.claims.sub != "mallory")
        .on_error(|e: &AuthError| {
            e.is_expired().then(|| (StatusCode::UNAUTHORIZED, AxumJson(json!({"code": "dave"}))).into_response())
        })
        .error_key("error")
        .build()
        .unwrap();
    let app = routes().layer(config.layer());
    let mallory = bearer(&tokens.access("mallory").sign().unwrap().token);
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &mallory)])).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"error": "User claims verification failed"})));
    let alice = bearer(&tokens.access("alice").sign().unwrap().token);
    clock.advance(3600);
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &alice)])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"code": "dave"})));
    assert_eq!(AuthError::InvalidToken(TokenError::Expired).message(), "Token has expired");
}

#[derive(Debug, Clone)]
struct User(i64);

impl LoadUser<()> for User {
    async fn load(jwt: &Jwt, _state: &()) -> Result<Option<Self>, BoxError> {
        let id: i64 = jwt.identity()?;
        Ok((id == 1).then_some(User(id)))
    }
}

#[tokio::test]
async fn the_current_user_is_loaded_and_a_missing_user_is_a_401() {
    let (tokens, _) = tokens();
    let app = Router::new()
        .route("/me", get(|CurrentUser(user, _): CurrentUser<User>| async move { AxumJson(json!(user.0)) }))
        .layer(JwtConfig::<()>::builder(tokens.clone()).build().unwrap().layer());
    let one = bearer(&tokens.access(1).sign().unwrap().token);
    assert_eq!(send(&app, get_with("/me", &[("authorization", &one)])).await.1, json!(1));
    let two = bearer(&tokens.access(2).sign().unwrap().token);
    let (status, body, _) = send(&app, get_with("/me", &[("authorization", &two)])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Error loading the user 2"})));
    let text = bearer(&tokens.access("x").sign().unwrap().token);
    assert_eq!(send(&app, get_with("/me", &[("authorization", &text)])).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct AdminClaims {
    is_administrator: bool,
}

struct Admin;

impl Guard for Admin {
    type Claims = AdminClaims;
    fn check(jwt: &Jwt<AdminClaims>) -> Result<(), AuthError> {
        if jwt.is_administrator { Ok(()) } else { Err(AuthError::Forbidden("Admins only!".into())) }
    }
}

#[tokio::test]
async fn guards_answer_with_their_own_body_and_two_configurations_live_in_one_app() {
    let (tokens, _) = tokens();
    let api = JwtConfig::<AdminClaims>::builder(tokens.clone()).build().unwrap();
    let spa = JwtConfig::<()>::builder(tokens.clone()).locations([Location::Cookies]).build().unwrap();
    let app = Router::new()
        .route("/api/admin", get(|_: Require<Admin>| async { AxumJson(json!({"foo": "bar"})) }))
        .layer(api.layer())
        .merge(
            Router::new().route("/spa/me", get(|jwt: Jwt| async move { AxumJson(json!(jwt.sub)) })).layer(spa.layer()),
        );
    let admin = tokens.access("root").claims(AdminClaims { is_administrator: true }).sign().unwrap().token;
    let user = tokens.access("bob").claims(AdminClaims { is_administrator: false }).sign().unwrap().token;
    assert_eq!(send(&app, get_with("/api/admin", &[("authorization", &bearer(&admin))])).await.0, StatusCode::OK);
    let (status, body, _) = send(&app, get_with("/api/admin", &[("authorization", &bearer(&user))])).await;
    assert_eq!((status, body), (StatusCode::FORBIDDEN, json!({"msg": "Admins only!"})));
    // The SPA router reads cookies only: a bearer header there counts as no token.
    let (status, body, _) = send(&app, get_with("/spa/me", &[("authorization", &bearer(&user))])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Missing cookie \"access_token_cookie\""})));
    let cookie = format!("access_token_cookie={user}");
    assert_eq!(send(&app, get_with("/spa/me", &[("cookie", &cookie)])).await.1, json!("bob"));
}

#[tokio::test]
async fn implicit_refresh_reissues_the_access_cookie_close_to_expiry() {
    let (tokens, clock) = tokens();
    let config = JwtConfig::<()>::builder(tokens.clone())
        .locations([Location::Cookies])
        .implicit_refresh(Duration::from_secs(30 * 60))
        .build()
        .unwrap();
    let app = routes().layer(config.layer());
    let long = tokens.access("alice").expires_in(Duration::from_secs(3600)).sign().unwrap().token;
    let cookie = format!("access_token_cookie={long}");
    let (status, _, headers) = send(&app, get_with("/access", &[("cookie", &cookie)])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::SET_COOKIE).is_none(), "an hour left: no refresh");
    clock.advance(40 * 60);
    let (status, _, headers) = send(&app, get_with("/access", &[("cookie", &cookie)])).await;
    assert_eq!(status, StatusCode::OK);
    let set: Vec<&str> = headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert!(set.iter().any(|c| c.starts_with("access_token_cookie=")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("csrf_access_token=")), "{set:?}");
}

#[test]
fn the_configured_locations_can_be_read_back_in_order() {
    let (tokens, _) = tokens();
    let default = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
    assert_eq!(default.locations(), [Location::Headers]);
    let both = JwtConfig::<()>::builder(tokens).locations([Location::Cookies, Location::Headers]).build().unwrap();
    assert_eq!(both.locations(), [Location::Cookies, Location::Headers]);
    assert_eq!(both.with_locations([Location::QueryString]).unwrap().locations(), [Location::QueryString]);
}

#[test]
fn bad_configurations_are_refused_when_built() {
    let (tokens, _) = tokens();
    let build = |b: JwtConfigBuilder| b.build().err();
    assert!(build(JwtConfig::builder(tokens.clone()).locations([])).is_some());
    assert!(build(JwtConfig::builder(tokens.clone()).locations([Location::Headers, Location::Headers])).is_some());
    assert!(build(JwtConfig::builder(tokens.clone()).header_name("bad header")).is_some());
    assert!(build(JwtConfig::builder(tokens.clone()).header_type("Two words")).is_some());
    assert!(build(JwtConfig::builder(tokens.clone()).implicit_refresh(Duration::from_secs(1))).is_some());
    assert!(build(JwtConfig::builder(tokens.clone()).error_key("")).is_some());
    let no_csrf = Arc::new(Tokens::new(
        Keys::hmac_sha256(&[5u8; 32]).unwrap(),
        TokenSettings { csrf_claim: false, ..TokenSettings::default() },
        Arc::new(ManualClock::new(NOW)),
    ));
    assert!(build(JwtConfig::builder(no_csrf).locations([Location::Cookies])).is_some());
}

/// A key source that installs `next` (once) when asked, counting the calls.
struct Rotating {
    verifier: Arc<Tokens>,
    next: parking_lot::Mutex<Option<Keys>>,
    asked: std::sync::atomic::AtomicUsize,
}

impl keycard_token::KeySource for Rotating {
    fn unknown_key<'a>(
        &'a self,
        _kid: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let next = self.next.lock().take();
        Box::pin(async move {
            match next {
                Some(keys) => {
                    self.verifier.set_keys(keys);
                    true
                }
                None => false,
            }
        })
    }
}

#[tokio::test]
async fn an_unknown_kid_asks_the_key_source_once_and_retries_when_the_keys_changed() {
    use keycard_token::{Algorithm, SigningKey};
    let clock = Arc::new(ManualClock::new(NOW));
    let (old, new) = (SigningKey::generate(Algorithm::ES256).unwrap(), SigningKey::generate(Algorithm::ES256).unwrap());
    let issuer = Tokens::new(Keys::signing(new.clone()), TokenSettings::default(), clock.clone());
    let verifier = Arc::new(Tokens::new(
        Keys::verify_only().with_verification_key(&old).unwrap(),
        TokenSettings::default(),
        clock.clone(),
    ));
    let source = Arc::new(Rotating {
        verifier: verifier.clone(),
        next: parking_lot::Mutex::new(Some(Keys::verify_only().with_verification_key(&new).unwrap())),
        asked: Default::default(),
    });
    let config = JwtConfig::<()>::builder(verifier.clone()).key_source(source.clone()).build().unwrap();
    let app = routes().layer(config.layer());
    let token = issuer.access("alice").sign().unwrap().token;
    let auth = bearer(&token);
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &auth)])).await;
    assert_eq!((status, body["sub"].clone()), (StatusCode::OK, json!("alice")));
    assert_eq!(source.asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Known now: the source is not asked again.
    assert_eq!(send(&app, get_with("/access", &[("authorization", &auth)])).await.0, StatusCode::OK);
    assert_eq!(source.asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A kid nobody has: asked once, nothing changed, 401 Unknown key id.
    let stranger =
        Tokens::new(Keys::signing(SigningKey::generate(Algorithm::ES256).unwrap()), TokenSettings::default(), clock);
    let auth = bearer(&stranger.access("mallory").sign().unwrap().token);
    let (status, body, _) = send(&app, get_with("/access", &[("authorization", &auth)])).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"msg": "Unknown key id"})));
    assert_eq!(source.asked.load(std::sync::atomic::Ordering::SeqCst), 2);
}
