//! A keycard server as the OpenID issuer of FJE's `oidc.py`, ported (keycard-jwks's `oidc`
//! example): the example discovers keycard's keys, verifies its ES256 tokens, follows a rotation,
//! and guards a route on keycard's `roles` claim.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keycard_token::Algorithm;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::*;

#[allow(dead_code)]
#[path = "../../../keycard-jwks/examples/oidc.rs"]
mod oidc;

async fn call(app: &axum::Router, path: &str, token: &str) -> (StatusCode, Value) {
    let request = Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_oidc_example_accepts_a_keycard_servers_tokens_and_follows_its_key_rotation() {
    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::ES256;
        s.tokens.audience = Some(keycard_token::Audience::One("reporting-api".into()));
    })
    .await;
    let out = run_cli(
        &["user", "add", "carol", "--role", "api-access", "--database-url", app.database_url()],
        "carol password 123\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let member = app.login_tokens("carol", "carol password 123").await;
    let outsider = app.user_with_tokens("dave").await;

    let settings = oidc::Settings::from_vars(|name| match name {
        "OIDC_ISSUER_URL" => Some(app.address.clone()),
        "OIDC_CLIENT_ID" => Some("reporting-api".into()),
        "OIDC_USERNAME_CLAIM" => Some("sub".into()),
        "OIDC_GROUPS_CLAIM" => Some("roles".into()),
        _ => None,
    })
    .unwrap();
    let example = oidc::app(&settings).await.unwrap();

    assert_eq!(
        call(&example, "/token-protected", &member.access).await,
        (StatusCode::OK, json!({"result": "protected by token ok"}))
    );
    let (status, body) = call(&example, "/group-protected", &member.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"result": "protected by token AND group membership ok", "user": "carol"}));
    let (status, body) = call(&example, "/group-protected", &outsider.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["result"].as_str().unwrap().contains("api-access"), "{body}");

    // keycard rotates: its new tokens carry a kid the example has never seen; it refetches once.
    let out = run_cli(&["keys", "rotate", "--jwt-algorithm", "ES256", "--database-url", app.database_url()], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let old_kid = claims_kid(&member.access);
    let start = std::time::Instant::now();
    let rotated = loop {
        let tokens = app.login_tokens("carol", "carol password 123").await;
        if claims_kid(&tokens.access) != old_kid {
            break tokens;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "keycard still signs with the old key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(call(&example, "/group-protected", &rotated.access).await.0, StatusCode::OK);
    assert_eq!(
        call(&example, "/token-protected", &member.access).await.0,
        StatusCode::OK,
        "the retired key still verifies"
    );
}

fn claims_kid(token: &str) -> String {
    keycard_token::unverified_kid(token).unwrap()
}
