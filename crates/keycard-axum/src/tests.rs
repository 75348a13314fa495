//! Extractor behaviour driven through a router with `oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header::WWW_AUTHENTICATE};
use axum::routing::get;
use axum::{Json, Router};
use keycard_token::{Keys, ManualClock, NewSession, RevocationList, TokenSettings, Tokens};
use tower::ServiceExt;

use super::*;

#[derive(Clone)]
struct State {
    auth: JwtAuth,
}

impl FromRef<State> for JwtAuth {
    fn from_ref(state: &State) -> JwtAuth {
        state.auth.clone()
    }
}

struct Admin;
impl Role for Admin {
    const NAME: &'static str = "admin";
    const FORBIDDEN: &'static str = "Admins only";
}

fn app() -> (Router, JwtAuth, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let keys = Keys::hmac_sha256(&[5u8; 32]).unwrap();
    let tokens = Arc::new(Tokens::new(keys, TokenSettings::default(), clock.clone()));
    let auth = JwtAuth::new(tokens, Arc::new(RevocationList::new()));
    let router = Router::new()
        .route("/access", get(|AccessToken(c): AccessToken| async move { Json(c.sub) }))
        .route("/fresh", get(|FreshAccessToken(c): FreshAccessToken| async move { Json(c.sub) }))
        .route("/refresh", get(|RefreshToken(c): RefreshToken| async move { Json(c.sub) }))
        .route("/admin", get(|RequireRole(c, _): RequireRole<Admin>| async move { Json(c.sub) }))
        .route("/optional", get(|t: Option<AccessToken>| async move { Json(t.map(|AccessToken(c)| c.sub)) }))
        .with_state(State { auth: auth.clone() });
    (router, auth, clock)
}

async fn call(router: &Router, path: &str, auth: Option<&str>) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut request = Request::get(path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let challenge = response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, challenge, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn each_extractor_accepts_exactly_its_token() {
    let (router, auth, _) = app();
    let pair = auth.tokens().issue_pair(&NewSession::login("alice", vec![])).unwrap();
    let access = format!("Bearer {}", pair.access_token);
    let refresh = format!("bearer {}", pair.refresh_token);

    assert_eq!(call(&router, "/access", Some(&access)).await.2, "alice");
    assert_eq!(call(&router, "/fresh", Some(&access)).await.2, "alice");
    assert_eq!(call(&router, "/refresh", Some(&refresh)).await.2, "alice");

    let (status, challenge, body) = call(&router, "/access", Some(&refresh)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["msg"], "Only access tokens are allowed");
    assert!(challenge.unwrap().starts_with("Bearer error=\"invalid_token\""));
    let (status, _, body) = call(&router, "/refresh", Some(&access)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["msg"], "Only refresh tokens are allowed");
}

#[tokio::test]
async fn missing_and_malformed_headers_are_401_with_a_challenge() {
    let (router, _, _) = app();
    let (status, challenge, body) = call(&router, "/access", None).await;
    assert_eq!((status, challenge.as_deref()), (StatusCode::UNAUTHORIZED, Some("Bearer")));
    assert_eq!(body["msg"], "Missing Authorization Header");
    for bad in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "Token x.y.z"] {
        let (status, challenge, _) = call(&router, "/access", Some(bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(challenge.unwrap().contains("invalid_request"), "{bad}");
    }
    let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
    assert_eq!(call(&router, "/access", Some(&huge)).await.2["msg"], "Authorization header is too large");
}

#[tokio::test]
async fn revocation_expiry_freshness_and_roles_are_enforced() {
    let (router, auth, clock) = app();
    let admin = auth.tokens().issue_pair(&NewSession::login("root", vec!["admin".into()])).unwrap();
    let user = auth.tokens().issue_pair(&NewSession::refresh("bob", vec![], keycard_token::Uuid::now_v7())).unwrap();
    let bearer = |t: &str| format!("Bearer {t}");

    assert_eq!(call(&router, "/admin", Some(&bearer(&admin.access_token))).await.0, StatusCode::OK);
    let (status, challenge, body) = call(&router, "/admin", Some(&bearer(&user.access_token))).await;
    assert_eq!((status, body["msg"].as_str()), (StatusCode::FORBIDDEN, Some("Admins only")));
    assert!(challenge.unwrap().contains("insufficient_scope"));

    let (status, _, body) = call(&router, "/fresh", Some(&bearer(&user.access_token))).await;
    assert_eq!((status, body["msg"].as_str()), (StatusCode::UNAUTHORIZED, Some("Fresh token required")));

    auth.revoke_token(&admin.access);
    let (status, _, body) = call(&router, "/access", Some(&bearer(&admin.access_token))).await;
    assert_eq!((status, body["msg"].as_str()), (StatusCode::UNAUTHORIZED, Some("Token has been revoked")));

    clock.advance(15 * 60);
    let (status, _, body) = call(&router, "/access", Some(&bearer(&user.access_token))).await;
    assert_eq!((status, body["msg"].as_str()), (StatusCode::UNAUTHORIZED, Some("Token has expired")));
}

#[tokio::test]
async fn optional_access_token_is_none_only_without_a_header() {
    let (router, auth, _) = app();
    let pair = auth.tokens().issue_pair(&NewSession::login("alice", vec![])).unwrap();
    assert_eq!(call(&router, "/optional", None).await.2, serde_json::Value::Null);
    assert_eq!(call(&router, "/optional", Some(&format!("Bearer {}", pair.access_token))).await.2, "alice");
    assert_eq!(call(&router, "/optional", Some("Bearer x.y.z")).await.0, StatusCode::UNAUTHORIZED);
}
